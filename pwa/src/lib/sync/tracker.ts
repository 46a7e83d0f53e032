/**
 * What a person sees of one project's sync: synced, syncing N changes, offline with N pending,
 * or an error with its reason. N counts the things edited here that the server has not yet
 * confirmed (see `edits.ts`): dragging a node or typing a prompt is one change, not one per
 * Yjs transaction; an edit confirmed and then made again counts again.
 *
 * y-websocket has no acknowledgement, so the tracker makes one: after local changes (and after
 * each reconnect) it sends a sync step 1 of its own, a "probe". The server handles a socket's
 * frames in order and answers a step 1 with a step 2, so the step 2 that answers a probe proves
 * the server has applied every change sent before it (sync/SPEC.md D1: logged before relayed).
 * The unconfirmed things are saved, so "N pending" survives a reload while offline.
 */

export type SyncState =
	| { kind: 'synced'; pending: 0 }
	| { kind: 'syncing'; pending: number }
	| { kind: 'offline'; pending: number }
	| { kind: 'error'; pending: number; reason: string };

export interface TrackerOptions {
	/** Unconfirmed changes saved by an earlier page: their keys (or, from older pages, a count). */
	initialPending?: number | string[];
	/** Sends a probe (a sync step 1) on the open socket; false when it could not be sent. */
	sendProbe: () => boolean;
	/** Called with the keys of the unconfirmed changes whenever they change. */
	save?: (pending: string[]) => void;
	/** Called whenever the state changes. */
	onChange?: (state: SyncState) => void;
	/** How long local changes are gathered before one probe confirms them all (ms). */
	probeDelayMs?: number;
}

export class SyncTracker {
	private localSeq = 0;
	private ackedSeq = 0;
	/** Each unconfirmed thing → the local sequence number of its last change. */
	private readonly edits = new Map<string, number>();
	private probes: number[] = []; // localSeq at each probe in flight, oldest first
	private handshakeAnswered = false;
	private connected = false;
	private synced = false;
	private error: string | null = null;
	private timer: ReturnType<typeof setTimeout> | null = null;
	private last: SyncState | null = null;
	private readonly opts: TrackerOptions;

	constructor(opts: TrackerOptions) {
		this.opts = opts;
		const saved = opts.initialPending ?? [];
		const keys = Array.isArray(saved)
			? saved.filter((k) => typeof k === 'string')
			: Array.from({ length: Math.max(0, Math.floor(saved)) }, (_, i) => `earlier/${i}`);
		if (keys.length) {
			// Made by an earlier page: the first probe after the next handshake confirms them.
			this.localSeq = 1;
			for (const key of keys) this.edits.set(key, 1);
		}
		this.emit();
	}

	get pending(): number {
		return this.edits.size;
	}

	/** The keys of the unconfirmed changes (what `save` stores). */
	get pendingKeys(): string[] {
		return [...this.edits.keys()];
	}

	get state(): SyncState {
		const pending = this.pending;
		if (this.error !== null) return { kind: 'error', pending, reason: this.error };
		if (!this.connected) return { kind: 'offline', pending };
		if (!this.synced || pending > 0) return { kind: 'syncing', pending };
		return { kind: 'synced', pending: 0 };
	}

	/**
	 * A change made in this browser (not one received from the server or read from IndexedDB),
	 * to the things named by `keys` (none: a change of its own).
	 */
	localChange(keys: readonly string[] = []): void {
		this.localSeq += 1;
		const before = this.edits.size;
		if (keys.length === 0) this.edits.set(`change/${this.localSeq}`, this.localSeq);
		for (const key of keys) this.edits.set(key, this.localSeq);
		if (this.edits.size !== before) this.opts.save?.(this.pendingKeys);
		if (this.connected && this.synced) this.scheduleProbe();
		this.emit();
	}

	/** The socket opened (true) or closed (false). */
	setConnected(connected: boolean): void {
		this.connected = connected;
		this.handshakeAnswered = false;
		this.synced = false;
		this.probes = [];
		if (connected) this.error = null;
		this.emit();
	}

	/** The provider finished its handshake: whatever was pending went out before this point. */
	setSynced(synced: boolean): void {
		this.synced = synced;
		if (synced && this.connected) this.probe();
		this.emit();
	}

	/** A sync step 2 arrived from the server. */
	step2Received(): void {
		if (!this.handshakeAnswered) {
			// The answer to the provider's own step 1, sent before our pending changes.
			this.handshakeAnswered = true;
			return;
		}
		const seq = this.probes.shift();
		if (seq === undefined) return;
		if (seq > this.ackedSeq) {
			this.ackedSeq = seq;
			for (const [key, last] of this.edits) if (last <= seq) this.edits.delete(key);
			this.opts.save?.(this.pendingKeys);
		}
		this.emit();
	}

	/** The server refused this browser for a reason reconnecting cannot fix. */
	fail(reason: string): void {
		this.error = reason;
		this.connected = false;
		this.synced = false;
		this.probes = [];
		this.emit();
	}

	destroy(): void {
		if (this.timer !== null) clearTimeout(this.timer);
		this.timer = null;
	}

	private scheduleProbe(): void {
		if (this.timer !== null) return;
		this.timer = setTimeout(() => {
			this.timer = null;
			this.probe();
		}, this.opts.probeDelayMs ?? 50);
	}

	private probe(): void {
		if (this.localSeq === this.ackedSeq && this.probes.length === 0) {
			return;
		}
		if (this.opts.sendProbe()) this.probes.push(this.localSeq);
	}

	private emit(): void {
		const next = this.state;
		const prev = this.last;
		if (
			prev &&
			prev.kind === next.kind &&
			prev.pending === next.pending &&
			(prev.kind !== 'error' || next.kind !== 'error' || prev.reason === next.reason)
		) {
			return;
		}
		this.last = next;
		this.opts.onChange?.(next);
	}
}

/** The words the UI shows for a state ("Synced", "Syncing 3 changes", ...). */
export function describeSync(state: SyncState): string {
	const changes = (n: number) => `${n} ${n === 1 ? 'change' : 'changes'}`;
	switch (state.kind) {
		case 'synced':
			return 'Synced';
		case 'syncing':
			return state.pending > 0 ? `Syncing ${changes(state.pending)}` : 'Syncing';
		case 'offline':
			return state.pending > 0 ? `Offline, ${changes(state.pending)} pending` : 'Offline';
		case 'error':
			return `Sync error: ${state.reason}`;
	}
}
