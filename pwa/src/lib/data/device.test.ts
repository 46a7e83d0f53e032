// IndexedDB for Node (fake-indexeddb): the real y-indexeddb code writes the project documents
// that signing out must delete; the browser's own IndexedDB is exercised by the e2e tests.
import 'fake-indexeddb/auto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { ProjectDoc, databaseName } from '$lib/sync/project-doc.svelte';
import {
	ERASE_LATER,
	describeUnsaved,
	eraseLocal,
	finishErasing,
	handOver,
	handedOverNote,
	openedProjects,
	projectDatabases,
	rememberOpened,
	unsavedWork
} from './device';
import { cacheProjects, cachedProjects, pendingProjects, queueProject } from './projects';
import type { Project } from '$lib/api';

function project(id: string, name: string): Project {
	const t = '2026-01-01T00:00:00Z';
	return { id, name, template: 'blank', path: `Projects/${name}`, created_at: t, updated_at: t, archived: false, role: 'owner', description: '' };
}

const opened: ProjectDoc[] = [];

/** A project document in IndexedDB with one edit in it, as opening the project leaves it. */
async function keepDocument(id: string): Promise<ProjectDoc> {
	const p = new ProjectDoc(id, { token: 't', url: 'ws://127.0.0.1:9/sync', connect: false });
	opened.push(p);
	await p.persistence.whenSynced;
	p.doc.getMap('meta').set('name', id);
	await new Promise((r) => setTimeout(r, 20)); // y-indexeddb stores the update
	return p;
}

function close(p: ProjectDoc): void {
	opened.splice(opened.indexOf(p), 1);
	p.destroy();
}

async function documentHas(id: string): Promise<boolean> {
	const doc = new Y.Doc();
	const { IndexeddbPersistence } = await import('y-indexeddb');
	const persistence = new IndexeddbPersistence(databaseName(id), doc);
	await persistence.whenSynced;
	const has = doc.getMap('meta').size > 0;
	await persistence.destroy();
	return has;
}

beforeEach(() => localStorage.clear());
afterEach(() => {
	while (opened.length) opened.pop()!.destroy();
	localStorage.clear();
});

describe('a guest signing in hands what this device keeps to the account', () => {
	it('moves projects made offline, opened projects and the layout; drops the guest’s list', () => {
		cacheProjects('guest', [project('p1', 'Harbour Lights')]);
		queueProject('guest', { id: 'p2', name: 'Made offline', template: 'blank' });
		queueProject('ines', { id: 'p3', name: 'Hers already', template: 'blank' });
		rememberOpened('guest', 'p1');
		localStorage.setItem('studio.layout.guest', JSON.stringify({ leftWidth: 300 }));

		handOver('guest', 'ines');

		expect(pendingProjects('ines').map((p) => p.id)).toEqual(['p3', 'p2']);
		expect(openedProjects('ines')).toEqual(['p1']);
		expect(JSON.parse(localStorage.getItem('studio.layout.ines')!)).toEqual({ leftWidth: 300 });
		expect(Object.keys(localStorage).filter((k) => k.endsWith('.guest'))).toEqual([]);
		expect(cachedProjects('guest')).toEqual([]);
	});

	it('says how many projects came along, and nothing when none did', () => {
		const two = { id: 'g', name: 'Guest 1', tasks: 0, samples_left: 0, projects: [{ id: 'a', name: 'A' }, { id: 'b', name: 'B' }] };
		expect(handedOverNote(two)).toBe('2 projects from your guest session are now in your account.');
		expect(handedOverNote({ ...two, projects: [{ id: 'a', name: 'A' }] })).toBe('1 project from your guest session is now in your account.');
		expect(handedOverNote({ ...two, projects: [] })).toBeNull();
		expect(handedOverNote(null)).toBeNull();
	});
});

describe('unsaved work', () => {
	it('counts the unconfirmed changes of every project of the person, and projects made offline', async () => {
		cacheProjects('ines', [project('p1', 'Harbour Lights'), project('p2', 'Quiet One')]);
		rememberOpened('ines', 'p9');
		localStorage.setItem('studio.pending.p1', JSON.stringify(['canvases/main/nodes/n1', 'meta/name']));
		localStorage.setItem('studio.pending.p9', JSON.stringify(['story/scenes/s1']));
		localStorage.setItem('studio.pending.other', JSON.stringify(['meta/name'])); // someone else's
		cacheProjects('bob', [project('other', 'Bob’s')]);
		queueProject('ines', { id: 'p4', name: 'On the train', template: 'blank' });

		const work = await unsavedWork('ines');

		expect(work.changes).toBe(3);
		expect(work.projects).toEqual([
			{ id: 'p1', name: 'Harbour Lights', changes: 2 },
			{ id: 'p9', name: 'A project', changes: 1 }
		]);
		expect(work.created).toEqual([{ id: 'p4', name: 'On the train' }]);
		expect(describeUnsaved(work)).toBe('3 changes and 1 new project');
		expect(describeUnsaved({ projects: [], changes: 1, created: [] })).toBe('1 change');
		expect(describeUnsaved({ projects: [], changes: 0, created: [] })).toBe('');
	});
});

describe('signing out erases what this device keeps of the person', () => {
	it('deletes their project documents and keys, and leaves another person’s', async () => {
		cacheProjects('ines', [project('p1', 'Harbour Lights')]);
		rememberOpened('ines', 'p1');
		rememberOpened('ines', 'p2');
		rememberOpened('bob', 'b1');
		localStorage.setItem('studio.pending.p1', JSON.stringify(['meta/name']));
		localStorage.setItem('studio.layout.ines', '{}');
		for (const id of ['p1', 'p2', 'b1', 'legacy']) close(await keepDocument(id));
		expect((await projectDatabases()).sort()).toEqual(['b1', 'legacy', 'p1', 'p2']);

		expect(await eraseLocal('ines')).toBe(0);

		// Ines's documents are gone, and a document nobody claims (an older version's) with them
		expect(await projectDatabases()).toEqual(['b1']);
		expect(await documentHas('b1')).toBe(true);
		// Bob's keys stay (his unconfirmed change included); none of Ines's is left
		expect(Object.keys(localStorage).sort()).toEqual(['studio.opened.bob', 'studio.pending.b1']);
	});

	it('deletes a document held open elsewhere at the next start', async () => {
		rememberOpened('ines', 'p1');
		close(await keepDocument('p1'));
		// Held open by something that does not let go when asked (y-indexeddb itself closes its
		// connection when another tab deletes the database)
		const held = await new Promise<IDBDatabase>((resolve) => {
			const req = indexedDB.open(databaseName('p1'));
			req.onsuccess = () => resolve(req.result);
		});

		expect(await eraseLocal('ines', 50)).toBe(1);
		expect(JSON.parse(localStorage.getItem(ERASE_LATER)!)).toEqual(['p1']);

		held.close();
		await finishErasing();
		expect(await projectDatabases()).toEqual([]);
		expect(localStorage.getItem(ERASE_LATER)).toBeNull();
	});

	it('keeps a document opened again before its deletion ran', () => {
		localStorage.setItem(ERASE_LATER, JSON.stringify(['p1', 'p2']));
		rememberOpened('ana', 'p1');
		expect(JSON.parse(localStorage.getItem(ERASE_LATER)!)).toEqual(['p2']);
	});
});
