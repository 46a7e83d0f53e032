import { afterEach, describe, expect, it, vi } from 'vitest';
import { SyncTracker, describeSync, type SyncState } from './tracker';

function tracker(initialPending: number | string[] = []) {
	const probes: number[] = [];
	const saved: number[] = []; // how many changes each save kept
	const states: SyncState[] = [];
	let open = true;
	const t = new SyncTracker({
		initialPending,
		probeDelayMs: 10,
		sendProbe: () => {
			if (open) probes.push(probes.length);
			return open;
		},
		save: (keys) => saved.push(keys.length),
		onChange: (s) => states.push(s)
	});
	return { t, probes, saved, states, close: () => (open = false) };
}

/** The provider's handshake: socket open, the answer to its own step 1, synced. */
function handshake(t: SyncTracker) {
	t.setConnected(true);
	t.setSynced(true); // the provider marks itself synced on the handshake's step 2 ...
	t.step2Received(); // ... which the tracker then sees too
}

afterEach(() => vi.useRealTimers());

describe('SyncTracker', () => {
	it('is offline with nothing pending before any connection', () => {
		const { t } = tracker();
		expect(t.state).toEqual({ kind: 'offline', pending: 0 });
		expect(describeSync(t.state)).toBe('Offline');
	});

	it('counts changes made offline and keeps the count for the next page', () => {
		const { t, saved } = tracker();
		t.localChange();
		t.localChange();
		expect(t.state).toEqual({ kind: 'offline', pending: 2 });
		expect(describeSync(t.state)).toBe('Offline, 2 changes pending');
		expect(saved.at(-1)).toBe(2);
	});

	it('starts from the changes an earlier page saved (or the count older pages saved)', () => {
		expect(tracker(['canvases/main/nodes/a', 'meta/name']).t.state).toEqual({ kind: 'offline', pending: 2 });
		expect(tracker(3).t.state).toEqual({ kind: 'offline', pending: 3 });
	});

	it('confirms pending changes only when the probe sent after the handshake is answered', () => {
		const { t, probes, saved } = tracker(2);
		t.setConnected(true);
		expect(t.state).toEqual({ kind: 'syncing', pending: 2 });
		t.setSynced(true);
		expect(probes).toHaveLength(1); // a probe follows the changes the handshake sent
		t.step2Received(); // the handshake's own answer proves nothing about our changes
		expect(t.state).toEqual({ kind: 'syncing', pending: 2 });
		expect(describeSync(t.state)).toBe('Syncing 2 changes');
		t.step2Received(); // the probe's answer
		expect(t.state).toEqual({ kind: 'synced', pending: 0 });
		expect(saved.at(-1)).toBe(0);
	});

	it('gathers changes made while connected into one probe', () => {
		vi.useFakeTimers();
		const { t, probes } = tracker();
		handshake(t);
		expect(t.state.kind).toBe('synced');
		t.localChange();
		t.localChange();
		t.localChange();
		expect(t.state).toEqual({ kind: 'syncing', pending: 3 });
		vi.advanceTimersByTime(20);
		expect(probes).toHaveLength(1);
		t.localChange(); // made after the probe: not covered by its answer
		t.step2Received();
		expect(t.state).toEqual({ kind: 'syncing', pending: 1 });
		vi.advanceTimersByTime(20);
		t.step2Received();
		expect(t.state).toEqual({ kind: 'synced', pending: 0 });
	});

	it('keeps changes pending when the socket drops before the answer', () => {
		vi.useFakeTimers();
		const { t } = tracker();
		handshake(t);
		t.localChange();
		vi.advanceTimersByTime(20);
		t.setConnected(false);
		expect(t.state).toEqual({ kind: 'offline', pending: 1 });
		// A late answer from the old socket cannot confirm anything on the new one
		handshake(t);
		expect(t.state).toEqual({ kind: 'syncing', pending: 1 });
		t.step2Received();
		expect(t.state).toEqual({ kind: 'synced', pending: 0 });
	});

	it('shows a refusal as an error with its reason until a new connection opens', () => {
		const { t } = tracker();
		t.localChange();
		t.fail('Your session has expired.');
		expect(t.state).toEqual({ kind: 'error', pending: 1, reason: 'Your session has expired.' });
		expect(describeSync(t.state)).toBe('Sync error: Your session has expired.');
		t.setConnected(true);
		expect(t.state.kind).toBe('syncing');
	});

	it('counts a thing edited many times as one change until the server confirms it', () => {
		vi.useFakeTimers();
		const { t, probes, saved } = tracker();
		// Offline: a node dragged in 30 steps, its prompt typed in 12 keystrokes, a new edge
		for (let i = 0; i < 30; i++) t.localChange(['canvases/main/nodes/n1']);
		for (let i = 0; i < 12; i++) t.localChange(['canvases/main/nodes/n2']);
		t.localChange(['canvases/main/edges/e1']);
		expect(t.state).toEqual({ kind: 'offline', pending: 3 });
		expect(describeSync(t.state)).toBe('Offline, 3 changes pending');
		expect(saved.at(-1)).toBe(3);
		expect(t.pendingKeys).toEqual(['canvases/main/nodes/n1', 'canvases/main/nodes/n2', 'canvases/main/edges/e1']);

		handshake(t);
		expect(probes).toHaveLength(1);
		// n1 moves again while the probe is out: the answer cannot confirm that newer move
		t.localChange(['canvases/main/nodes/n1']);
		t.step2Received();
		expect(t.state).toEqual({ kind: 'syncing', pending: 1 });
		expect(t.pendingKeys).toEqual(['canvases/main/nodes/n1']);
		vi.advanceTimersByTime(20);
		t.step2Received();
		expect(t.state).toEqual({ kind: 'synced', pending: 0 });
		expect(saved.at(-1)).toBe(0);

		// Confirmed, then edited again: a new change
		t.localChange(['canvases/main/nodes/n2']);
		expect(t.state).toEqual({ kind: 'syncing', pending: 1 });
	});

	it('reports each distinct state once', () => {
		const { t, states } = tracker();
		t.setConnected(false);
		t.setConnected(false);
		expect(states.map((s) => s.kind)).toEqual(['offline']);
	});
});
