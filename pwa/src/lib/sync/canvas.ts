/**
 * The node canvas as CRDT edits on the project document (shapes in sync/MODEL.md):
 * `canvases` (Map) → canvas id → Map {`name`, `order`, `nodes`: Map id → Map {`type`, `x`, `y`,
 * `params`: Map}, `edges`: Map id → Map {`source`, `sourceHandle`, `target`, `targetHandle`}}.
 *
 * Every function here is one transaction, so each user action is one update on the wire.
 * `text`, `prompt` and `negative` parameters are Y.Text (they merge character by character).
 */
import * as Y from 'yjs';
import { defaultParams } from './nodes';

export const TEXT_PARAMS = new Set(['text', 'prompt', 'negative']);

/**
 * The server's mark on a node whose input asset changed since its last take (app/stale.py):
 * `reason` in words for people, the `asset` id, `since` when. A new take removes it.
 */
export interface StaleMark {
	reason: string;
	asset: string | null;
	since: string | null;
}

export interface CanvasNode {
	id: string;
	type: string;
	x: number;
	y: number;
	params: Record<string, unknown>;
	stale: StaleMark | null;
}

export interface CanvasEdge {
	id: string;
	source: string;
	sourceHandle: string | null;
	target: string;
	targetHandle: string | null;
}

export interface CanvasInfo {
	id: string;
	name: string;
	order: number;
}

type YMap = Y.Map<unknown>;

function asMap(value: unknown): YMap | null {
	return value instanceof Y.Map ? (value as YMap) : null;
}

function num(value: unknown, fallback = 0): number {
	return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

function str(value: unknown): string | null {
	return typeof value === 'string' ? value : null;
}

export function newId(prefix: string): string {
	const random = globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`;
	return `${prefix}-${random.replace(/-/g, '').slice(0, 12)}`;
}

/** The canvases in their order. */
export function listCanvases(doc: Y.Doc): CanvasInfo[] {
	const out: CanvasInfo[] = [];
	doc.getMap('canvases').forEach((value, id) => {
		const canvas = asMap(value);
		if (canvas) out.push({ id, name: str(canvas.get('name')) ?? id, order: num(canvas.get('order')) });
	});
	return out.sort((a, b) => a.order - b.order || a.id.localeCompare(b.id));
}

/** The canvas that opens first: meta.open_canvas when it exists, else the first in order. */
export function openCanvasId(doc: Y.Doc): string | null {
	const wanted = str(doc.getMap('meta').get('open_canvas'));
	const canvases = listCanvases(doc);
	if (wanted && canvases.some((c) => c.id === wanted)) return wanted;
	return canvases[0]?.id ?? null;
}

function canvasMap(doc: Y.Doc, canvasId: string): YMap {
	const canvas = asMap(doc.getMap('canvases').get(canvasId));
	if (!canvas) throw new Error(`There is no canvas ${canvasId} in this project.`);
	return canvas;
}

function childMap(parent: YMap, key: string): YMap {
	let child = asMap(parent.get(key));
	if (!child) {
		child = new Y.Map();
		parent.set(key, child);
	}
	return child;
}

export function plain(value: unknown): unknown {
	if (value instanceof Y.Text) return value.toString();
	if (value instanceof Y.Map || value instanceof Y.Array) return value.toJSON();
	return value;
}

function readStale(value: unknown): StaleMark | null {
	const mark = plain(value);
	if (!mark || typeof mark !== 'object' || Array.isArray(mark)) return null;
	const m = mark as Record<string, unknown>;
	return {
		reason: str(m.reason) || 'An input of this node changed since its last take.',
		asset: str(m.asset),
		since: str(m.since)
	};
}

function readNode(id: string, node: YMap): CanvasNode {
	const params: Record<string, unknown> = {};
	asMap(node.get('params'))?.forEach((v, k) => (params[k] = plain(v)));
	return {
		id,
		type: str(node.get('type')) ?? 'note',
		x: num(node.get('x')),
		y: num(node.get('y')),
		params,
		stale: readStale(node.get('stale'))
	};
}

export function readNodes(doc: Y.Doc, canvasId: string): CanvasNode[] {
	const canvas = asMap(doc.getMap('canvases').get(canvasId));
	const nodes = canvas ? asMap(canvas.get('nodes')) : null;
	const out: CanvasNode[] = [];
	nodes?.forEach((value, id) => {
		const node = asMap(value);
		if (node) out.push(readNode(id, node));
	});
	// Code-unit order, not localeCompare: ids are ASCII, and a collator costs milliseconds on
	// a canvas of hundreds of nodes that is read again on every change.
	return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * What a change to `canvases` (the events an `observeDeep` on it receives) did to canvas
 * `canvasId`: the ids of the nodes whose own content changed, when that is all it did (a move,
 * a parameter, a stale mark); `null` when more changed (nodes or edges added or removed, the
 * canvas itself), so the whole canvas must be read again. An empty set: nothing of this canvas.
 */
export function nodesTouched(events: Y.YEvent<Y.AbstractType<unknown>>[], canvasId: string): Set<string> | null {
	const ids = new Set<string>();
	for (const event of events) {
		const path = event.path;
		if (path.length === 0) {
			// the canvases map itself: a canvas added or removed
			if (event.changes.keys.has(canvasId)) return null;
			continue;
		}
		if (path[0] !== canvasId) continue;
		if (path.length < 3 || path[1] !== 'nodes') return null;
		ids.add(String(path[2]));
	}
	return ids;
}

/** Whether every change in `events` only moved nodes (their `x`/`y`), on any canvas. */
export function onlyMoves(events: Y.YEvent<Y.AbstractType<unknown>>[]): boolean {
	return events.every(
		(event) =>
			event.path.length === 3 &&
			event.path[1] === 'nodes' &&
			[...event.changes.keys.keys()].every((key) => key === 'x' || key === 'y')
	);
}

export function readNode1(doc: Y.Doc, canvasId: string, nodeId: string): CanvasNode | null {
	const canvas = asMap(doc.getMap('canvases').get(canvasId));
	const node = canvas ? asMap(asMap(canvas.get('nodes'))?.get(nodeId)) : null;
	return node ? readNode(nodeId, node) : null;
}

export function readEdges(doc: Y.Doc, canvasId: string): CanvasEdge[] {
	const canvas = asMap(doc.getMap('canvases').get(canvasId));
	const edges = canvas ? asMap(canvas.get('edges')) : null;
	const out: CanvasEdge[] = [];
	edges?.forEach((value, id) => {
		const edge = asMap(value);
		const source = str(edge?.get('source'));
		const target = str(edge?.get('target'));
		if (edge && source && target) {
			out.push({
				id,
				source,
				target,
				sourceHandle: str(edge.get('sourceHandle')),
				targetHandle: str(edge.get('targetHandle'))
			});
		}
	});
	// Code-unit order, not localeCompare: ids are ASCII, and a collator costs milliseconds on
	// a canvas of hundreds of nodes that is read again on every change.
	return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}


function paramValue(key: string, value: unknown): unknown {
	if (TEXT_PARAMS.has(key) && typeof value === 'string') {
		const text = new Y.Text();
		text.insert(0, value);
		return text;
	}
	return value;
}

/** Adds a node of `type` at (x, y); returns its id. */
export function addNode(doc: Y.Doc, canvasId: string, type: string, x: number, y: number): string {
	const id = newId(type.split('.')[0] ?? 'node');
	doc.transact(() => {
		const nodes = childMap(canvasMap(doc, canvasId), 'nodes');
		const node = new Y.Map<unknown>();
		node.set('type', type);
		node.set('x', Math.round(x));
		node.set('y', Math.round(y));
		const params = new Y.Map<unknown>();
		for (const [k, v] of Object.entries(defaultParams(type))) params.set(k, paramValue(k, v));
		node.set('params', params);
		nodes.set(id, node);
	});
	return id;
}

/** Moves nodes to their new positions (whole pixels); unchanged positions write nothing. */
export function moveNodes(doc: Y.Doc, canvasId: string, moves: { id: string; x: number; y: number }[]): void {
	doc.transact(() => {
		const nodes = asMap(canvasMap(doc, canvasId).get('nodes'));
		for (const { id, x, y } of moves) {
			const node = asMap(nodes?.get(id));
			if (!node) continue;
			const nx = Math.round(x);
			const ny = Math.round(y);
			if (node.get('x') !== nx) node.set('x', nx);
			if (node.get('y') !== ny) node.set('y', ny);
		}
	});
}

/** Connects two handles; returns the edge id (an existing identical edge is reused). */
export function connect(doc: Y.Doc, canvasId: string, edge: Omit<CanvasEdge, 'id'>): string {
	const existing = readEdges(doc, canvasId).find(
		(e) =>
			e.source === edge.source &&
			e.target === edge.target &&
			e.sourceHandle === edge.sourceHandle &&
			e.targetHandle === edge.targetHandle
	);
	if (existing) return existing.id;
	const id = newId('e');
	doc.transact(() => {
		const edges = childMap(canvasMap(doc, canvasId), 'edges');
		const map = new Y.Map<unknown>();
		map.set('source', edge.source);
		map.set('sourceHandle', edge.sourceHandle);
		map.set('target', edge.target);
		map.set('targetHandle', edge.targetHandle);
		edges.set(id, map);
	});
	return id;
}

/** Deletes nodes (with every edge touching them) and edges. */
export function deleteElements(doc: Y.Doc, canvasId: string, nodeIds: string[], edgeIds: string[]): void {
	const gone = new Set(nodeIds);
	doc.transact(() => {
		const canvas = canvasMap(doc, canvasId);
		const nodes = asMap(canvas.get('nodes'));
		const edges = asMap(canvas.get('edges'));
		for (const id of nodeIds) nodes?.delete(id);
		const dropEdges = new Set(edgeIds);
		for (const e of readEdges(doc, canvasId)) {
			if (gone.has(e.source) || gone.has(e.target)) dropEdges.add(e.id);
		}
		for (const id of dropEdges) edges?.delete(id);
	});
}

/** The ids of the nodes, on every canvas, that carry an out-of-date mark now. */
export function staleNodeIds(doc: Y.Doc): Set<string> {
	return new Set(staleReasons(doc).keys());
}

/** The nodes marked out of date on any canvas, with the words of each mark. */
export function staleReasons(doc: Y.Doc): Map<string, string> {
	const out = new Map<string, string>();
	doc.getMap('canvases').forEach((canvas) => {
		asMap(asMap(canvas)?.get('nodes'))?.forEach((value, id) => {
			const mark = readStale(asMap(value)?.get('stale'));
			if (mark) out.set(id, mark.reason);
		});
	});
	return out;
}

/** Removes a node's out-of-date mark (the person keeps the result as it is). */
export function clearStale(doc: Y.Doc, canvasId: string, nodeId: string): void {
	doc.transact(() => {
		const node = asMap(asMap(canvasMap(doc, canvasId).get('nodes'))?.get(nodeId));
		if (node?.has('stale')) node.delete('stale');
	});
}

/** Sets one parameter. Text parameters change only the characters that differ. */
export function setParam(doc: Y.Doc, canvasId: string, nodeId: string, key: string, value: unknown): void {
	doc.transact(() => {
		const node = asMap(asMap(canvasMap(doc, canvasId).get('nodes'))?.get(nodeId));
		if (!node) throw new Error(`The node ${nodeId} is gone (someone may have deleted it).`);
		const params = childMap(node, 'params');
		const current = params.get(key);
		if (TEXT_PARAMS.has(key) && typeof value === 'string') {
			if (current instanceof Y.Text) {
				replaceText(current, value);
			} else {
				params.set(key, paramValue(key, value));
			}
			return;
		}
		if (current !== value) params.set(key, value);
	});
}

/** Edits `text` into `next` by its differing middle, so concurrent edits elsewhere survive. */
export function replaceText(text: Y.Text, next: string): void {
	const prev = text.toString();
	if (prev === next) return;
	let start = 0;
	const max = Math.min(prev.length, next.length);
	while (start < max && prev[start] === next[start]) start++;
	let end = 0;
	while (
		end < max - start &&
		prev[prev.length - 1 - end] === next[next.length - 1 - end]
	) {
		end++;
	}
	const removed = prev.length - start - end;
	if (removed > 0) text.delete(start, removed);
	const inserted = next.slice(start, next.length - end);
	if (inserted) text.insert(start, inserted);
}
