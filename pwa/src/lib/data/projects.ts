/**
 * The project list as this browser keeps it: the last list the server sent (so the gallery
 * opens offline), projects created while offline (sent for real, with the same id, when the
 * server can be reached), and the filter the gallery applies to the cached list offline.
 */
import type { NewProject, Project, ProjectSort } from '$lib/api';
import { readJson, writeJson } from './storage';

export interface PendingProject {
	id: string;
	name: string;
	template: string;
	created_at: string;
	/** Why the server refused it, when it did (then it stays here for the person to see). */
	error?: string;
}

/** A project as the gallery shows it: from the server, or created here and not yet sent. */
export type ListedProject = Project & { pending?: boolean; pendingError?: string };

const cacheKey = (userId: string) => `studio.projects.${userId}`;
const pendingKey = (userId: string) => `studio.pending-projects.${userId}`;

export function cachedProjects(userId: string): Project[] {
	const list = readJson<unknown>(cacheKey(userId), []);
	return Array.isArray(list) ? (list as Project[]) : [];
}

export function cacheProjects(userId: string, projects: Project[]): void {
	writeJson(cacheKey(userId), projects);
}

/** Merges `changed` into the cache (by id), keeping every other cached project. */
export function cacheUpsert(userId: string, changed: Project[]): void {
	const byId = new Map(cachedProjects(userId).map((p) => [p.id, p]));
	for (const p of changed) byId.set(p.id, p);
	cacheProjects(userId, [...byId.values()]);
}

export function cacheRemove(userId: string, ids: string[]): void {
	const gone = new Set(ids);
	cacheProjects(userId, cachedProjects(userId).filter((p) => !gone.has(p.id)));
}

export function pendingProjects(userId: string): PendingProject[] {
	const list = readJson<unknown>(pendingKey(userId), []);
	return Array.isArray(list) ? (list as PendingProject[]) : [];
}

function savePending(userId: string, list: PendingProject[]): void {
	writeJson(pendingKey(userId), list);
}

export function uuid(): string {
	if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
	const b = new Uint8Array(16);
	globalThis.crypto.getRandomValues(b);
	b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
	b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
	const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
	return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Keeps a project made offline; returns it as the gallery shows it. */
export function queueProject(userId: string, input: NewProject, now = new Date()): ListedProject {
	const pending: PendingProject = {
		id: input.id ?? uuid(),
		name: input.name,
		template: input.template ?? 'blank',
		created_at: now.toISOString()
	};
	savePending(userId, [...pendingProjects(userId).filter((p) => p.id !== pending.id), pending]);
	return asListed(pending);
}

export function asListed(p: PendingProject): ListedProject {
	return {
		id: p.id,
		name: p.name,
		template: p.template,
		path: '',
		created_at: p.created_at,
		updated_at: p.created_at,
		archived: false,
		role: 'owner',
		description: '',
		collaborators: [],
		pending: true,
		pendingError: p.error
	};
}

export interface FlushResult {
	created: Project[];
	failed: PendingProject[];
	/** True when the server could not be reached (the rest stays queued). */
	offline: boolean;
}

/**
 * Sends every queued project to the server with its own id. A network failure stops the run
 * and keeps the rest; a refusal (a name the server does not accept) is kept with its reason.
 * Sending the same id twice is harmless: the server answers with the project it made.
 */
export async function flushPending(
	userId: string,
	create: (input: NewProject) => Promise<Project>,
	isNetworkError: (err: unknown) => boolean,
	describe: (err: unknown) => string
): Promise<FlushResult> {
	const result: FlushResult = { created: [], failed: [], offline: false };
	for (const p of pendingProjects(userId)) {
		if (p.error) {
			result.failed.push(p);
			continue;
		}
		try {
			const project = await create({ id: p.id, name: p.name, template: p.template });
			result.created.push(project);
			savePending(userId, pendingProjects(userId).filter((q) => q.id !== p.id));
		} catch (err) {
			if (isNetworkError(err)) {
				result.offline = true;
				break;
			}
			const failed = { ...p, error: describe(err) };
			savePending(userId, pendingProjects(userId).map((q) => (q.id === p.id ? failed : q)));
			result.failed.push(failed);
		}
	}
	if (result.created.length) cacheUpsert(userId, result.created);
	return result;
}

export function dropPending(userId: string, id: string): void {
	savePending(userId, pendingProjects(userId).filter((p) => p.id !== id));
}

export interface LocalQuery {
	q?: string;
	template?: string;
	archived?: 'false' | 'true' | 'all';
	sort?: ProjectSort;
}

const KEYS: Record<string, (p: Project) => string> = {
	name: (p) => p.name.toLocaleLowerCase(),
	updated: (p) => p.updated_at,
	created: (p) => p.created_at
};

/** The offline stand-in for the server's search: every word must appear in name or description. */
export function filterLocal<T extends Project>(projects: T[], query: LocalQuery): T[] {
	const words = (query.q ?? '').toLocaleLowerCase().split(/\s+/).filter(Boolean);
	const archived = query.archived ?? 'false';
	const sort = query.sort ?? '-updated';
	const key = KEYS[sort.replace(/^-/, '')] ?? KEYS.updated!;
	const desc = sort.startsWith('-');
	return projects
		.filter((p) => {
			if (archived !== 'all' && p.archived !== (archived === 'true')) return false;
			if (query.template && p.template !== query.template) return false;
			const hay = `${p.name} ${p.description ?? ''}`.toLocaleLowerCase();
			return words.every((w) => hay.includes(w));
		})
		.sort((a, b) => {
			const ka = key(a);
			const kb = key(b);
			const order = ka < kb ? -1 : ka > kb ? 1 : a.id.localeCompare(b.id);
			return desc ? -order : order;
		});
}
