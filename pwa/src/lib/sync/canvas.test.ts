import * as Y from 'yjs';
import { describe, expect, it } from 'vitest';
import {
	addNode,
	clearStale,
	connect,
	deleteElements,
	listCanvases,
	moveNodes,
	nodesTouched,
	onlyMoves,
	openCanvasId,
	readEdges,
	readNodes,
	replaceText,
	setParam,
	staleNodeIds
} from './canvas';

/** A document shaped as the server seeds it (sync/MODEL.md). */
function seeded(): Y.Doc {
	const doc = new Y.Doc();
	doc.transact(() => {
		doc.getMap('meta').set('name', 'Film');
		doc.getMap('meta').set('open_canvas', 'main');
		const main = new Y.Map<unknown>();
		main.set('name', 'Main');
		main.set('order', 0);
		main.set('nodes', new Y.Map());
		main.set('edges', new Y.Map());
		doc.getMap('canvases').set('main', main);
	});
	return doc;
}

function sync(a: Y.Doc, b: Y.Doc) {
	Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)));
	Y.applyUpdate(a, Y.encodeStateAsUpdate(b, Y.encodeStateVector(a)));
}

describe('canvas edits', () => {
	it('finds the canvas that opens first', () => {
		const doc = seeded();
		expect(listCanvases(doc)).toEqual([{ id: 'main', name: 'Main', order: 0 }]);
		expect(openCanvasId(doc)).toBe('main');
		expect(openCanvasId(new Y.Doc())).toBeNull();
	});

	it('adds a node with its default parameters, text ones as Y.Text, in one update', () => {
		const doc = seeded();
		let updates = 0;
		doc.on('update', () => updates++);
		const id = addNode(doc, 'main', 'prompt', 10.6, 20.2);
		expect(updates).toBe(1);
		const [node] = readNodes(doc, 'main');
		expect(node).toEqual({ id, type: 'prompt', x: 11, y: 20, params: { text: '', negative: '' }, stale: null });
		const params = ((doc.getMap('canvases').get('main') as Y.Map<unknown>).get('nodes') as Y.Map<Y.Map<unknown>>)
			.get(id)!
			.get('params') as Y.Map<unknown>;
		expect(params.get('text')).toBeInstanceOf(Y.Text);
	});

	it('moves, connects and deletes; deleting a node removes its edges', () => {
		const doc = seeded();
		const a = addNode(doc, 'main', 'prompt', 0, 0);
		const b = addNode(doc, 'main', 'image.diffusion', 300, 0);
		moveNodes(doc, 'main', [{ id: a, x: 50, y: 60 }]);
		expect(readNodes(doc, 'main').find((n) => n.id === a)).toMatchObject({ x: 50, y: 60 });
		const e = connect(doc, 'main', { source: a, sourceHandle: 'out', target: b, targetHandle: 'prompt' });
		expect(connect(doc, 'main', { source: a, sourceHandle: 'out', target: b, targetHandle: 'prompt' })).toBe(e);
		expect(readEdges(doc, 'main')).toEqual([{ id: e, source: a, sourceHandle: 'out', target: b, targetHandle: 'prompt' }]);
		deleteElements(doc, 'main', [a], []);
		expect(readNodes(doc, 'main').map((n) => n.id)).toEqual([b]);
		expect(readEdges(doc, 'main')).toEqual([]);
	});

	it('writes nothing for a move to the same place', () => {
		const doc = seeded();
		const a = addNode(doc, 'main', 'note', 5, 5);
		let updates = 0;
		doc.on('update', () => updates++);
		moveNodes(doc, 'main', [{ id: a, x: 5.2, y: 4.9 }]);
		expect(updates).toBe(0);
	});

	it('merges two people typing in the same prompt character by character', () => {
		const alice = seeded();
		const bob = new Y.Doc();
		sync(alice, bob);
		const id = addNode(alice, 'main', 'prompt', 0, 0);
		setParam(alice, 'main', id, 'text', 'a girl on a causeway');
		sync(alice, bob);
		setParam(alice, 'main', id, 'text', 'a small girl on a causeway');
		setParam(bob, 'main', id, 'text', 'a girl on a long causeway');
		sync(alice, bob);
		const text = readNodes(alice, 'main')[0]!.params.text;
		expect(text).toBe('a small girl on a long causeway');
		expect(readNodes(bob, 'main')[0]!.params.text).toBe(text);
	});

	it('sets plain parameters by last writer and refuses a node that is gone', () => {
		const doc = seeded();
		const id = addNode(doc, 'main', 'image.diffusion', 0, 0);
		setParam(doc, 'main', id, 'steps', 12);
		expect(readNodes(doc, 'main')[0]!.params.steps).toBe(12);
		deleteElements(doc, 'main', [id], []);
		expect(() => setParam(doc, 'main', id, 'steps', 3)).toThrow(/gone/);
	});

	it('edits text by its differing middle only', () => {
		const doc = new Y.Doc();
		const text = doc.getText('t');
		text.insert(0, 'hello world');
		const deltas: unknown[] = [];
		text.observe((e) => deltas.push(e.delta));
		replaceText(text, 'hello brave world');
		expect(text.toString()).toBe('hello brave world');
		expect(deltas).toEqual([[{ retain: 6 }, { insert: 'brave ' }]]);
		replaceText(text, 'hello');
		expect(text.toString()).toBe('hello');
	});
});

describe('stale marks', () => {
	it('reads the server\'s mark on a node and clears it in one edit that other copies receive', () => {
		const server = seeded();
		const id = addNode(server, 'main', 'image.diffusion', 0, 0);
		expect(readNodes(server, 'main')[0]!.stale).toBeNull();
		// As app/stale.py writes it: a map {reason, asset, since} on the node
		server.transact(() => {
			const node = ((server.getMap('canvases').get('main') as Y.Map<unknown>).get('nodes') as Y.Map<unknown>).get(
				id
			) as Y.Map<unknown>;
			const mark = new Y.Map<unknown>();
			mark.set('reason', 'Ana replaced pier.png');
			mark.set('asset', 'asset-1');
			mark.set('since', '2026-11-25T10:00:00+00:00');
			node.set('stale', mark);
		});
		const browser = new Y.Doc();
		Y.applyUpdate(browser, Y.encodeStateAsUpdate(server));
		expect(readNodes(browser, 'main')[0]!.stale).toEqual({
			reason: 'Ana replaced pier.png',
			asset: 'asset-1',
			since: '2026-11-25T10:00:00+00:00'
		});

		const updates: Uint8Array[] = [];
		browser.on('update', (u: Uint8Array) => updates.push(u));
		clearStale(browser, 'main', id);
		clearStale(browser, 'main', id); // nothing left to clear: no edit
		expect(updates).toHaveLength(1);
		Y.applyUpdate(server, updates[0]!);
		expect(readNodes(server, 'main')[0]!.stale).toBeNull();
	});

	it('lists the marked nodes of every canvas', () => {
		const doc = seeded();
		const a = addNode(doc, 'main', 'image.diffusion', 0, 0);
		const b = addNode(doc, 'main', 'image.diffusion', 100, 0);
		expect(staleNodeIds(doc)).toEqual(new Set());
		doc.transact(() => {
			const second = new Y.Map<unknown>();
			const nodes = new Y.Map<unknown>();
			const node = new Y.Map<unknown>();
			node.set('type', 'image.diffusion');
			node.set('stale', new Y.Map([['reason', 'pier.png was edited on disk']]));
			nodes.set('far', node);
			second.set('nodes', nodes);
			doc.getMap('canvases').set('second', second);
			const main = ((doc.getMap('canvases').get('main') as Y.Map<unknown>).get('nodes') as Y.Map<Y.Map<unknown>>).get(a)!;
			main.set('stale', new Y.Map([['reason', 'Ana replaced pier.png']]));
		});
		expect(staleNodeIds(doc)).toEqual(new Set([a, 'far']));
		clearStale(doc, 'main', a);
		expect(staleNodeIds(doc)).toEqual(new Set(['far']));
		expect(staleNodeIds(doc).has(b)).toBe(false);
	});
});

describe('what a change touched', () => {
	/** What an observeDeep on `canvases` makes of one edit (Yjs events are read in the handler). */
	function eventsOf(doc: Y.Doc, edit: () => void) {
		let seen = { touched: (_canvas: string): Set<string> | null => new Set(), moves: true };
		const observer = (events: Y.YEvent<Y.AbstractType<unknown>>[]) => {
			const main = nodesTouched(events, 'main');
			const second = nodesTouched(events, 'second');
			seen = { touched: (canvas) => (canvas === 'main' ? main : second), moves: onlyMoves(events) };
		};
		doc.getMap('canvases').observeDeep(observer);
		edit();
		doc.getMap('canvases').unobserveDeep(observer);
		return seen;
	}

	it('names the nodes a move or a parameter changed, and asks for a full read when nodes come or go', () => {
		const doc = seeded();
		const a = addNode(doc, 'main', 'prompt', 0, 0);
		const b = addNode(doc, 'main', 'prompt', 10, 10);
		const move = eventsOf(doc, () => moveNodes(doc, 'main', [{ id: a, x: 5, y: 6 }]));
		expect(move.touched('main')).toEqual(new Set([a]));
		expect(move.moves).toBe(true);

		const typing = eventsOf(doc, () => setParam(doc, 'main', b, 'prompt', 'a lighthouse'));
		expect(typing.touched('main')).toEqual(new Set([b]));
		expect(typing.moves).toBe(false);

		const both = eventsOf(doc, () => moveNodes(doc, 'main', [{ id: a, x: 1, y: 1 }, { id: b, x: 2, y: 2 }]));
		expect(both.touched('main')).toEqual(new Set([a, b]));

		expect(eventsOf(doc, () => addNode(doc, 'main', 'note', 0, 0)).touched('main')).toBeNull();
		expect(eventsOf(doc, () => connect(doc, 'main', { source: a, sourceHandle: 'out', target: b, targetHandle: 'prompt' })).touched('main')).toBeNull();
		expect(eventsOf(doc, () => deleteElements(doc, 'main', [a], [])).touched('main')).toBeNull();
		expect(eventsOf(doc, () => addNode(doc, 'main', 'note', 0, 0)).moves).toBe(false);
	});

	it('leaves another canvas alone, and notices its own canvas being replaced', () => {
		const doc = seeded();
		const other = eventsOf(doc, () => {
			const second = new Y.Map<unknown>();
			second.set('nodes', new Y.Map());
			doc.getMap('canvases').set('second', second);
		});
		expect(other.touched('main')).toEqual(new Set());
		const id = addNode(doc, 'second', 'note', 0, 0);
		expect(eventsOf(doc, () => moveNodes(doc, 'second', [{ id, x: 3, y: 3 }])).touched('main')).toEqual(new Set());
		const replaced = eventsOf(doc, () => doc.getMap('canvases').set('main', new Y.Map()));
		expect(replaced.touched('main')).toBeNull();
	});
});
