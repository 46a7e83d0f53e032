/**
 * The gallery's data: the server's list when it can be reached (cached for offline), the cached
 * list filtered here when it cannot, and the projects created offline on top.
 */
import { ApiError, api, errorMessage, type NewProject, type Project, type ProjectSort, type Template } from '$lib/api';
import { eraseLocal } from './device';
import { network } from './network.svelte';
import {
	asListed,
	cacheProjects,
	cacheRemove,
	cacheUpsert,
	cachedProjects,
	filterLocal,
	flushPending,
	pendingProjects,
	queueProject,
	type ListedProject
} from './projects';
import { session } from './session.svelte';
import { readJson, writeJson } from './storage';

const TEMPLATES_KEY = 'studio.templates';
export const OFFLINE_NOTICE = 'Could not reach the studio server. Showing the projects saved on this device.';

export interface GalleryQuery {
	q: string;
	template: string;
	archived: 'false' | 'true' | 'all';
	sort: ProjectSort;
}

export function isNetworkError(err: unknown): boolean {
	return err instanceof ApiError && err.isNetworkError;
}

class Library {
	items = $state<ListedProject[]>([]);
	total = $state(0);
	loading = $state(false);
	/** Shown when the list comes from this device instead of the server. */
	notice = $state<string | null>(null);
	error = $state<string | null>(null);
	templates = $state<Template[]>(readJson<Template[]>(TEMPLATES_KEY, []));
	templatesError = $state<string | null>(null);

	/**
	 * Signs out (see `session.signOut`), forgets the list shown and removes everything this
	 * device keeps of the person (`eraseLocal`): unsaved changes go with it, so ask first
	 * (`unsavedWork`). Returns how many project copies are still to delete (open in another tab).
	 */
	async signOut(): Promise<number> {
		const key = session.key;
		await session.signOut();
		this.clear();
		return eraseLocal(key);
	}

	/** Forgets the list shown (after signing out or in; the next person's list loads on its own). */
	clear(): void {
		this.items = [];
		this.total = 0;
		this.notice = null;
		this.error = null;
	}

	async loadTemplates(signal?: AbortSignal): Promise<void> {
		try {
			const list = await api.templates(signal);
			this.templates = list;
			this.templatesError = null;
			writeJson(TEMPLATES_KEY, list);
		} catch (err) {
			if (signal?.aborted) return;
			if (isNetworkError(err) && this.templates.length) return; // the cached ones do
			this.templatesError = errorMessage(err);
			throw err;
		}
	}

	/** Loads the list for `query`: from the server, else from this device. */
	async load(query: GalleryQuery, signal?: AbortSignal): Promise<void> {
		const key = session.key;
		this.loading = true;
		// Nothing shown yet (the page just opened): the list this device saw last, at once, until
		// the server's answer replaces it.
		if (!this.items.length) this.showLocal(query);
		try {
			if (!network.browserOnline) throw new ApiError(0, 'Offline', 'The browser is offline.');
			const page = await api.projects(query, signal);
			network.reached();
			const unfiltered = !query.q.trim() && !query.template && query.archived === 'false';
			if (unfiltered) {
				const archived = cachedProjects(key).filter((p) => p.archived);
				cacheProjects(key, [...page.items, ...archived.filter((a) => !page.items.some((p) => p.id === a.id))]);
			} else {
				cacheUpsert(key, page.items);
			}
			const pending = this.pendingMatching(query);
			this.items = [...pending, ...page.items.filter((p) => !pending.some((q) => q.id === p.id))];
			this.total = page.total + pending.length;
			this.notice = null;
			this.error = null;
		} catch (err) {
			if (signal?.aborted) return;
			if (isNetworkError(err)) {
				network.unreachable();
				this.showLocal(query);
				this.notice = OFFLINE_NOTICE;
				this.error = null;
			} else {
				this.error = errorMessage(err);
				throw err;
			}
		} finally {
			if (!signal?.aborted) this.loading = false;
		}
	}

	private pendingMatching(query: GalleryQuery): ListedProject[] {
		return filterLocal(pendingProjects(session.key).map(asListed), query);
	}

	private showLocal(query: GalleryQuery): void {
		const local = filterLocal(cachedProjects(session.key), query);
		const pending = this.pendingMatching(query);
		this.items = [...pending, ...local.filter((p) => !pending.some((q) => q.id === p.id))];
		this.total = this.items.length;
	}

	/** Creates a project; offline, it is kept here and created on the server later (same id). */
	async create(input: NewProject): Promise<ListedProject> {
		const withId = { ...input, id: input.id ?? crypto.randomUUID() };
		try {
			if (!network.browserOnline) throw new ApiError(0, 'Offline', 'The browser is offline.');
			const project = await api.createProject(withId);
			cacheUpsert(session.key, [project]);
			this.add(project);
			return project;
		} catch (err) {
			if (!isNetworkError(err)) throw err;
			network.unreachable();
			const listed = queueProject(session.key, withId);
			this.add(listed);
			return listed;
		}
	}

	private add(project: ListedProject): void {
		const had = this.items.some((p) => p.id === project.id);
		this.items = [project, ...this.items.filter((p) => p.id !== project.id)];
		if (!had) this.total += 1;
	}

	/** Sends the projects created offline; returns how many the server now has. */
	async flush(): Promise<number> {
		if (!pendingProjects(session.key).some((p) => !p.error)) return 0;
		const result = await flushPending(session.key, (i) => api.createProject(i), isNetworkError, errorMessage);
		if (result.offline) network.unreachable();
		for (const project of result.created) {
			this.items = this.items.map((p) => (p.id === project.id ? project : p));
		}
		for (const failed of result.failed) {
			this.items = this.items.map((p) => (p.id === failed.id ? asListed(failed) : p));
		}
		return result.created.length;
	}

	forget(ids: string[]): void {
		cacheRemove(session.key, ids);
		const gone = new Set(ids);
		const before = this.items.length;
		this.items = this.items.filter((p) => !gone.has(p.id));
		this.total -= before - this.items.length;
	}

	replace(projects: Project[]): void {
		cacheUpsert(session.key, projects);
		const byId = new Map(projects.map((p) => [p.id, p]));
		this.items = this.items.map((p) => byId.get(p.id) ?? p);
	}
}

export const library = new Library();
