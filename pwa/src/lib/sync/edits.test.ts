import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { addNode, connect, deleteElements, moveNodes, setParam } from './canvas';
import { changedThings, thingOf } from './edits';
import { SyncTracker } from './tracker';

function project(): Y.Doc {
	const doc = new Y.Doc();
	doc.transact(() => {
		doc.getMap('meta').set('name', 'Harbour Lights');
		const canvas = new Y.Map<unknown>();
		canvas.set('name', 'Main');
		canvas.set('nodes', new Y.Map());
		canvas.set('edges', new Y.Map());
		doc.getMap('canvases').set('main', canvas);
	});
	return doc;
}

/** A tracker fed the way ProjectDoc feeds it: the things each local transaction changed. */
function watch(doc: Y.Doc): SyncTracker {
	const tracker = new SyncTracker({ sendProbe: () => true });
	doc.on('update', (_u: Uint8Array, _origin: unknown, _doc: Y.Doc, tr: Y.Transaction) => {
		tracker.localChange(changedThings(tr));
	});
	return tracker;
}

describe('changedThings', () => {
	it('names the node, the connection or the field a transaction changed', () => {
		const doc = project();
		const seen: string[][] = [];
		doc.on('update', (_u: Uint8Array, _o: unknown, _d: Y.Doc, tr: Y.Transaction) => seen.push(changedThings(tr)));
		const a = addNode(doc, 'main', 'prompt', 0, 0);
		const b = addNode(doc, 'main', 'image.diffusion', 300, 0);
		moveNodes(doc, 'main', [{ id: a, x: 40, y: 10 }]);
		setParam(doc, 'main', a, 'text', 'a lighthouse at dusk');
		setParam(doc, 'main', b, 'steps', 12);
		const e = connect(doc, 'main', { source: a, sourceHandle: 'out', target: b, targetHandle: 'prompt' });
		doc.getMap('meta').set('name', 'Harbour Lights II');
		expect(seen).toEqual([
			[`canvases/main/nodes/${a}`],
			[`canvases/main/nodes/${b}`],
			[`canvases/main/nodes/${a}`],
			[`canvases/main/nodes/${a}`],
			[`canvases/main/nodes/${b}`],
			[`canvases/main/edges/${e}`],
			['meta/name']
		]);
	});

	it('cuts paths to the depth where things live', () => {
		expect(thingOf(['canvases', 'main', 'nodes', 'n1', 'params', 'text'])).toBe('canvases/main/nodes/n1');
		expect(thingOf(['canvases', 'main', 'name'])).toBe('canvases/main/name');
		expect(thingOf(['story', 'scenes', 's1', 'shots', 'x'])).toBe('story/scenes/s1');
		expect(thingOf(['assets', 'a1', 'sha256'])).toBe('assets/a1');
		expect(thingOf(['chat', '*'])).toBe('chat');
	});
});

describe('the pending count a person sees', () => {
	it('is the number of things edited, not the number of transactions', () => {
		const doc = project();
		const tracker = watch(doc);
		const a = addNode(doc, 'main', 'prompt', 0, 0);
		const b = addNode(doc, 'main', 'image.diffusion', 300, 0);
		// A drag writes the position many times; typing writes the prompt on every key
		for (let step = 1; step <= 40; step++) moveNodes(doc, 'main', [{ id: a, x: step * 5, y: step }]);
		const prompt = 'a lighthouse at dusk';
		for (let i = 1; i <= prompt.length; i++) setParam(doc, 'main', a, 'text', prompt.slice(0, i));
		connect(doc, 'main', { source: a, sourceHandle: 'out', target: b, targetHandle: 'prompt' });
		expect(tracker.pending).toBe(3); // two nodes and one connection
		// Deleting the generator removes it and the connection into it: still those two things
		deleteElements(doc, 'main', [b], []);
		expect(tracker.pending).toBe(3);
		expect(tracker.state).toEqual({ kind: 'offline', pending: 3 });
	});
});
