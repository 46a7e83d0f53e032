import { describe, expect, it } from 'vitest';
import { SHORTCUTS, shortcutFor } from './shortcuts';

function press(key: string, target: EventTarget = document.body, extra: KeyboardEventInit = {}) {
	const e = new KeyboardEvent('keydown', { key, ...extra });
	Object.defineProperty(e, 'target', { value: target });
	return shortcutFor(e);
}

describe('shortcuts', () => {
	it('maps keys to actions', () => {
		expect(press('?')).toBe('help');
		expect(press('n')).toBe('add-node');
		expect(press('[')).toBe('toggle-left');
		expect(press('x')).toBeNull();
	});

	it('stay quiet while typing or with a modifier held', () => {
		expect(press('n', document.createElement('input'))).toBeNull();
		expect(press('n', document.createElement('textarea'))).toBeNull();
		expect(press('n', document.body, { ctrlKey: true })).toBeNull();
	});

	it('lists every action in the help overlay', () => {
		const listed = new Set(SHORTCUTS.map((s) => s.id));
		for (const key of ['?', 'n', 'g', '[', ']', ',']) expect(listed.has(press(key)!)).toBe(true);
	});
});
