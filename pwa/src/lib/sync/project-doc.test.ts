// IndexedDB for Node: fake-indexeddb implements the IndexedDB API in memory, so the real
// y-indexeddb code runs unchanged (the browser's own IndexedDB is exercised by the e2e tests).
import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import { addNode, moveNodes } from './canvas';
import { ProjectDoc, databaseName, savedPending } from './project-doc.svelte';
import * as Y from 'yjs';

const opened: ProjectDoc[] = [];
function open(id: string): ProjectDoc {
	const p = new ProjectDoc(id, { token: 't', url: 'ws://127.0.0.1:9/sync', connect: false });
	opened.push(p);
	return p;
}

async function until(check: () => boolean, ms = 2000): Promise<void> {
	const end = Date.now() + ms;
	while (!check()) {
		if (Date.now() > end) throw new Error('timed out');
		await new Promise((r) => setTimeout(r, 10));
	}
}

afterEach(() => {
	while (opened.length) opened.pop()!.destroy();
	localStorage.clear();
});

function seed(doc: Y.Doc) {
	doc.transact(() => {
		doc.getMap('meta').set('name', 'Film');
		const main = new Y.Map<unknown>();
		main.set('nodes', new Y.Map());
		main.set('edges', new Y.Map());
		doc.getMap('canvases').set('main', main);
	}, 'server');
}

describe('ProjectDoc', () => {
	it('keeps the document in IndexedDB: a second opening has every edit', async () => {
		const id = crypto.randomUUID();
		const first = open(id);
		await until(() => first.loaded);
		expect(first.ready).toBe(false); // nothing yet: clients never seed a document themselves
		seed(first.doc);
		expect(first.ready).toBe(true);
		const node = addNode(first.doc, 'main', 'note', 1, 2);
		await new Promise((r) => setTimeout(r, 50)); // y-indexeddb writes asynchronously
		first.destroy();
		opened.pop();

		const second = open(id);
		await until(() => second.loaded);
		expect(second.ready).toBe(true);
		const nodes = (second.doc.getMap('canvases').get('main') as Y.Map<unknown>).get('nodes') as Y.Map<unknown>;
		expect([...nodes.keys()]).toEqual([node]);
		expect(databaseName(id)).toBe(`studio-project-${id}`);
	});

	it('counts local edits made without a connection and keeps the count for the next page', async () => {
		const id = crypto.randomUUID();
		const p = open(id);
		await until(() => p.loaded);
		seed(p.doc); // counted as local here (the name and the canvas): no provider delivered it
		const node = addNode(p.doc, 'main', 'note', 0, 0);
		for (let x = 1; x <= 10; x++) moveNodes(p.doc, 'main', [{ id: node, x, y: 0 }]); // the same node
		expect(p.state).toEqual({ kind: 'offline', pending: 3 });
		expect(savedPending(id)).toBe(3);
		const again = open(id);
		expect(again.state).toEqual({ kind: 'offline', pending: 3 });
	});
});
