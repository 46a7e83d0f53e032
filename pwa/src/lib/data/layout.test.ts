import { beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_LAYOUT, LayoutState, MAX_PANEL, MIN_PANEL, clampWidth, layoutKey, sanitize } from './layout.svelte';

beforeEach(() => localStorage.clear());

describe('layout', () => {
	it('is remembered per person', () => {
		const alice = new LayoutState('alice');
		alice.update({ leftWidth: 300, rightCollapsed: true, phonePanel: 'tasks' });
		expect(new LayoutState('alice').value).toMatchObject({ leftWidth: 300, rightCollapsed: true, phonePanel: 'tasks' });
		expect(new LayoutState('bob').value).toEqual(DEFAULT_LAYOUT);
	});

	it('keeps panel widths within bounds', () => {
		expect(clampWidth(10)).toBe(MIN_PANEL);
		expect(clampWidth(5000)).toBe(MAX_PANEL);
		expect(clampWidth(Number.NaN)).toBe(MIN_PANEL);
		const l = new LayoutState('u');
		l.update({ rightWidth: 9999 });
		expect(l.value.rightWidth).toBe(MAX_PANEL);
	});

	it('falls back to the defaults for whatever is broken in storage', () => {
		localStorage.setItem(layoutKey('u'), '{"leftWidth":"wide","phonePanel":"nowhere","tab":7}');
		expect(new LayoutState('u').value).toEqual(DEFAULT_LAYOUT);
		expect(sanitize(null)).toEqual(DEFAULT_LAYOUT);
	});
});
