/**
 * What a person counts as "a change": one thing of the project edited in this browser (a node,
 * a connection, a story item, a project field), however many keystrokes or drag steps it took.
 *
 * A Yjs transaction names the shared types it changed (and, for maps, which keys); each is
 * mapped to the thing it belongs to by its path from the document root, cut to the depth where
 * the things live: `canvases/<canvas>/nodes/<node>`, `story/<section>/<item>`, `meta/<field>`,
 * `assets/<asset>` and so on. Moving a node fifty times, or typing a prompt, is one change.
 */
import * as Y from 'yjs';

/** How many path segments name one thing, per root type (2 for the roots not listed). */
const DEPTH: Record<string, number> = { canvases: 4, story: 3, chat: 1 };

/** The path of `type` from its root (`['canvases', 'main', 'nodes', 'n1', 'params']`). */
export function pathOf(type: Y.AbstractType<unknown>): string[] {
	const path: string[] = [];
	let current: Y.AbstractType<unknown> = type;
	while (current._item !== null) {
		const item: Y.Item = current._item;
		// An entry of a Y.Array has no key; its index is not worth finding for a count.
		path.unshift(item.parentSub ?? '*');
		current = item.parent as Y.AbstractType<unknown>;
	}
	path.unshift(Y.findRootTypeKey(current));
	return path;
}

/** The thing a path belongs to, as one key (`canvases/main/nodes/n1`). */
export function thingOf(path: string[]): string {
	const depth = DEPTH[path[0] ?? ''] ?? 2;
	return path.slice(0, depth).join('/');
}

/** The things a transaction changed, each once. */
export function changedThings(tr: Y.Transaction): string[] {
	const things = new Set<string>();
	tr.changed.forEach((keys, type) => {
		const path = pathOf(type as Y.AbstractType<unknown>);
		const named = [...keys].filter((k): k is string => typeof k === 'string');
		if (named.length === 0) things.add(thingOf(path));
		for (const key of named) things.add(thingOf([...path, key]));
	});
	return [...things];
}
