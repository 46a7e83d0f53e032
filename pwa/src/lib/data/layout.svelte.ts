/**
 * The studio's panel layout, remembered per person (localStorage["studio.layout.<user id>"]):
 * panel widths, which panels are collapsed, the centre tab, and the one panel a phone shows.
 */
import { readJson, writeJson } from './storage';

export type PhonePanel = 'browser' | 'canvas' | 'inspector' | 'tasks';

export interface Layout {
	leftWidth: number;
	rightWidth: number;
	leftCollapsed: boolean;
	rightCollapsed: boolean;
	phonePanel: PhonePanel;
	tab: string;
}

export const DEFAULT_LAYOUT: Layout = {
	leftWidth: 260,
	rightWidth: 320,
	leftCollapsed: false,
	rightCollapsed: false,
	phonePanel: 'canvas',
	tab: 'scene'
};

export const MIN_PANEL = 180;
export const MAX_PANEL = 560;
const PHONES: PhonePanel[] = ['browser', 'canvas', 'inspector', 'tasks'];

export function clampWidth(px: number): number {
	if (!Number.isFinite(px)) return MIN_PANEL;
	return Math.round(Math.min(MAX_PANEL, Math.max(MIN_PANEL, px)));
}

/** A stored layout made safe: unknown or broken values fall back to the defaults. */
export function sanitize(raw: unknown): Layout {
	const v = (raw && typeof raw === 'object' ? raw : {}) as Partial<Record<keyof Layout, unknown>>;
	return {
		leftWidth: typeof v.leftWidth === 'number' ? clampWidth(v.leftWidth) : DEFAULT_LAYOUT.leftWidth,
		rightWidth: typeof v.rightWidth === 'number' ? clampWidth(v.rightWidth) : DEFAULT_LAYOUT.rightWidth,
		leftCollapsed: v.leftCollapsed === true,
		rightCollapsed: v.rightCollapsed === true,
		phonePanel: PHONES.includes(v.phonePanel as PhonePanel) ? (v.phonePanel as PhonePanel) : 'canvas',
		tab: typeof v.tab === 'string' && v.tab ? v.tab : 'scene'
	};
}

export const layoutKey = (userKey: string) => `studio.layout.${userKey}`;

export class LayoutState {
	value = $state<Layout>({ ...DEFAULT_LAYOUT });
	private key: string;

	constructor(userKey: string) {
		this.key = layoutKey(userKey);
		this.value = sanitize(readJson<unknown>(this.key, null));
	}

	update(changes: Partial<Layout>): void {
		this.value = sanitize({ ...this.value, ...changes });
		writeJson(this.key, this.value);
	}
}
