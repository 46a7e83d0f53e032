/** The studio's keyboard shortcuts: one list for the handler and the help overlay. */

export type ShortcutAction =
	| 'help'
	| 'add-node'
	| 'delete'
	| 'generate'
	| 'toggle-left'
	| 'toggle-right'
	| 'settings'
	| 'escape';

export const SHORTCUTS: { keys: string; action: string; id: ShortcutAction }[] = [
	{ keys: '?', action: 'Show this list', id: 'help' },
	{ keys: 'N', action: 'Add a node of the chosen type', id: 'add-node' },
	{ keys: 'Delete', action: 'Delete the selected nodes and connections', id: 'delete' },
	{ keys: 'G', action: 'Generate with the selected node', id: 'generate' },
	{ keys: '[', action: 'Show or hide the left panel', id: 'toggle-left' },
	{ keys: ']', action: 'Show or hide the right panel', id: 'toggle-right' },
	{ keys: ',', action: 'Settings (storage, account)', id: 'settings' },
	{ keys: 'Esc', action: 'Close a dialog', id: 'escape' }
];

/** Whether a key press belongs to a field being typed in (then no shortcut fires). */
export function isTyping(target: EventTarget | null): boolean {
	if (!(target instanceof HTMLElement)) return false;
	const tag = target.tagName;
	return tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || target.isContentEditable;
}

/** The shortcut a key press means, or null. Delete is left to the canvas, which owns selection. */
export function shortcutFor(e: KeyboardEvent): ShortcutAction | null {
	if (e.ctrlKey || e.metaKey || e.altKey || isTyping(e.target)) return null;
	switch (e.key) {
		case '?':
			return 'help';
		case 'n':
		case 'N':
			return 'add-node';
		case 'g':
		case 'G':
			return 'generate';
		case '[':
			return 'toggle-left';
		case ']':
			return 'toggle-right';
		case ',':
			return 'settings';
		default:
			return null;
	}
}
