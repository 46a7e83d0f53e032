/**
 * What this browser keeps for one person, so that it can be handed on or removed as a whole:
 *
 * - the project list (`studio.projects.<user>`) and projects created offline not yet sent
 *   (`studio.pending-projects.<user>`), see `projects.ts`;
 * - the projects opened here (`studio.opened.<user>`): each has its document in IndexedDB
 *   (`studio-project-<id>`) and, while the server lacks some of its edits, their keys
 *   (`studio.pending.<id>`);
 * - the panel layout (`studio.layout.<user>`).
 *
 * A guest who signs in hands all of it to the account (the server moved the projects); signing
 * out removes it, so the next person at a shared computer finds nothing of the last one.
 */
import type { HandedOver } from '$lib/api';
import { layoutKey } from './layout.svelte';
import { erasePreviews } from './previews';
import { cachedProjects, pendingProjects } from './projects';
import { readJson, removeKey, writeJson } from './storage';

const OPENED = 'studio.opened.';
const PROJECTS = 'studio.projects.';
const PENDING_PROJECTS = 'studio.pending-projects.';
const PENDING_EDITS = 'studio.pending.';
const DB_PREFIX = 'studio-project-';
/** Documents a sign-out could not delete yet (another tab had them open): deleted at next start. */
export const ERASE_LATER = 'studio.erase-later';

function list(key: string): string[] {
	const value = readJson<unknown>(key, []);
	return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** Remembers that `userKey` opened project `id` here (its document is in IndexedDB now). */
export function rememberOpened(userKey: string, id: string): void {
	const ids = list(OPENED + userKey);
	if (!ids.includes(id)) writeJson(OPENED + userKey, [...ids, id]);
	// Opened again before a pending deletion ran: the document is in use, keep it.
	const later = list(ERASE_LATER);
	if (later.includes(id)) writeJson(ERASE_LATER, later.filter((x) => x !== id));
}

export function openedProjects(userKey: string): string[] {
	return list(OPENED + userKey);
}

/** Every localStorage key, or none when storage is disabled. */
function storageKeys(): string[] {
	try {
		const s = globalThis.localStorage;
		return s ? Array.from({ length: s.length }, (_, i) => s.key(i)).filter((k): k is string => k !== null) : [];
	} catch {
		return [];
	}
}

/** The project documents in IndexedDB (none listed where the browser cannot list databases). */
export async function projectDatabases(): Promise<string[]> {
	try {
		const dbs = (await globalThis.indexedDB?.databases?.()) ?? [];
		return dbs.map((d) => d.name ?? '').filter((n) => n.startsWith(DB_PREFIX)).map((n) => n.slice(DB_PREFIX.length));
	} catch {
		return [];
	}
}

/** The projects another person on this device has a copy of (kept by whoever signed out of it). */
function claimedByOthers(userKey: string): Set<string> {
	const others = new Set<string>();
	for (const key of storageKeys()) {
		if (key.startsWith(OPENED) && key !== OPENED + userKey) for (const id of list(key)) others.add(id);
		if (key.startsWith(PROJECTS) && key !== PROJECTS + userKey) {
			for (const p of cachedProjects(key.slice(PROJECTS.length))) others.add(p.id);
		}
	}
	return others;
}

/**
 * The ids of the projects this device holds for `userKey`: listed, created offline, opened, and
 * any project document nobody else claims (kept by an older version that did not record who
 * opened it).
 */
export async function projectsOf(userKey: string): Promise<string[]> {
	const ids = new Set([
		...cachedProjects(userKey).map((p) => p.id),
		...pendingProjects(userKey).map((p) => p.id),
		...openedProjects(userKey)
	]);
	const others = claimedByOthers(userKey);
	for (const id of await projectDatabases()) if (!others.has(id)) ids.add(id);
	return [...ids];
}

/** How many changes of project `id` made here the server has not confirmed. */
export function unsyncedChanges(id: string): number {
	const value = readJson<unknown>(PENDING_EDITS + id, []);
	if (Array.isArray(value)) return value.length;
	return typeof value === 'number' && value > 0 ? Math.floor(value) : 0;
}

export interface UnsavedWork {
	/** Projects with changes the server has not confirmed, and how many each. */
	projects: { id: string; name: string; changes: number }[];
	/** Changes in all. */
	changes: number;
	/** Projects created offline, not yet on the server. */
	created: { id: string; name: string }[];
}

/** What `userKey` would lose by signing out now. */
export async function unsavedWork(userKey: string): Promise<UnsavedWork> {
	const names = new Map([...cachedProjects(userKey), ...pendingProjects(userKey)].map((p) => [p.id, p.name]));
	const projects = (await projectsOf(userKey))
		.map((id) => ({ id, name: names.get(id) ?? 'A project', changes: unsyncedChanges(id) }))
		.filter((p) => p.changes > 0);
	return {
		projects,
		changes: projects.reduce((n, p) => n + p.changes, 0),
		created: pendingProjects(userKey).filter((p) => !p.error).map((p) => ({ id: p.id, name: p.name }))
	};
}

/** Words for what is not saved: "3 changes and 1 new project". Empty when nothing is. */
export function describeUnsaved(work: UnsavedWork): string {
	const parts: string[] = [];
	if (work.changes) parts.push(`${work.changes} ${work.changes === 1 ? 'change' : 'changes'}`);
	if (work.created.length) parts.push(`${work.created.length} new ${work.created.length === 1 ? 'project' : 'projects'}`);
	return parts.join(' and ');
}

/**
 * A guest signed in to an account: the guest's projects are the account's now (the server moved
 * them), so what this device keeps of them goes with the account. Projects created offline are
 * sent later as the account's; the guest's copy of the project list is dropped (the account's
 * own list replaces it).
 */
export function handOver(fromKey: string, toKey: string): void {
	if (fromKey === toKey) return;
	const created = pendingProjects(fromKey);
	if (created.length) {
		const mine = pendingProjects(toKey);
		writeJson(PENDING_PROJECTS + toKey, [...mine, ...created.filter((p) => !mine.some((m) => m.id === p.id))]);
	}
	const opened = openedProjects(fromKey);
	if (opened.length) writeJson(OPENED + toKey, [...new Set([...openedProjects(toKey), ...opened])]);
	const layout = readJson<unknown>(layoutKey(fromKey), null);
	if (layout !== null && readJson<unknown>(layoutKey(toKey), null) === null) writeJson(layoutKey(toKey), layout);
	for (const key of [PENDING_PROJECTS, OPENED, PROJECTS]) removeKey(key + fromKey);
	removeKey(layoutKey(fromKey));
}

/** What to tell a person whose guest session's projects came into their account, if any did. */
export function handedOverNote(handed: HandedOver | null | undefined): string | null {
	const n = handed?.projects.length ?? 0;
	if (n === 0) return null;
	return n === 1
		? '1 project from your guest session is now in your account.'
		: `${n} projects from your guest session are now in your account.`;
}

/** Deletes IndexedDB database `name`; false when it is still open elsewhere after `waitMs`. */
function deleteDatabase(name: string, waitMs: number): Promise<boolean> {
	return new Promise((resolve) => {
		const idb = globalThis.indexedDB;
		if (!idb) return resolve(true);
		let done = false;
		const finish = (ok: boolean) => {
			if (done) return;
			done = true;
			clearTimeout(timer);
			resolve(ok);
		};
		// "blocked" only means it waits for open connections to close; the deletion still happens
		// once they do, so a timeout here is remembered and retried at the next start.
		const timer = setTimeout(() => finish(false), waitMs);
		const req = idb.deleteDatabase(name);
		req.onsuccess = () => finish(true);
		req.onerror = () => finish(false);
	});
}

/**
 * Removes everything this device keeps for `userKey` (see the top of this file). Documents still
 * open in another tab are deleted as soon as that closes, or at the next start of the studio;
 * returns how many of those are left.
 */
export async function eraseLocal(userKey: string, waitMs = 4000): Promise<number> {
	const ids = await projectsOf(userKey);
	for (const id of ids) removeKey(PENDING_EDITS + id);
	for (const key of [PROJECTS, PENDING_PROJECTS, OPENED]) removeKey(key + userKey);
	removeKey(layoutKey(userKey));
	await erasePreviews(userKey);
	const later = [...new Set([...list(ERASE_LATER), ...ids])];
	writeJson(ERASE_LATER, later);
	const left = await eraseDocuments(later, waitMs);
	return left.length;
}

/** Deletes the project documents `ids`; keeps the ones that could not be deleted for later. */
async function eraseDocuments(ids: string[], waitMs: number): Promise<string[]> {
	const results = await Promise.all(ids.map((id) => deleteDatabase(DB_PREFIX + id, waitMs)));
	const left = ids.filter((_, i) => !results[i]);
	if (left.length) writeJson(ERASE_LATER, left);
	else removeKey(ERASE_LATER);
	return left;
}

/** At start: finish deleting what a sign-out could not (nothing is open yet). */
export async function finishErasing(waitMs = 4000): Promise<void> {
	const ids = list(ERASE_LATER);
	if (ids.length) await eraseDocuments(ids, waitMs);
}
