import { render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import ArcPreview from '$lib/components/ArcPreview.svelte';
import SyncBadge from '$lib/studio/SyncBadge.svelte';

describe('SyncBadge', () => {
	it('says each sync state in words, as a live status', () => {
		const { rerender } = render(SyncBadge, { state: { kind: 'synced', pending: 0 } });
		const badge = screen.getByRole('status');
		expect(badge.textContent?.trim()).toBe('Synced');
		rerender({ state: { kind: 'offline', pending: 3 } });
		expect(badge.textContent?.trim()).toBe('Offline, 3 changes pending');
		expect(badge.dataset.pending).toBe('3');
		rerender({ state: { kind: 'error', pending: 1, reason: 'You are not a member of this project.' } });
		expect(badge.textContent).toContain('Sync error: You are not a member of this project.');
	});
});

describe('ArcPreview', () => {
	it('describes the arc for screen readers with each act’s share', () => {
		render(ArcPreview, {
			label: 'Story arc of Three-Act',
			acts: [
				{ name: 'Act I', title: 'Setup', share: 25, phase: 'setup' },
				{ name: 'Act II', title: 'Confrontation', share: 50, phase: 'confrontation' },
				{ name: 'Act III', title: 'Resolution', share: 25, phase: 'resolution' }
			],
			points: [{ name: 'Midpoint', position: 50 }]
		});
		const figure = screen.getByRole('figure');
		expect(figure.getAttribute('aria-label')).toBe(
			'Story arc of Three-Act: Act I Setup 25%, Act II Confrontation 50%, Act III Resolution 25%'
		);
	});
});
