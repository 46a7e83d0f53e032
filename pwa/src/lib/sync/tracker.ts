/**
 * What a person sees of one project's sync: synced, syncing N changes, offline with N pending,
 * or an error with its reason.
 *
 * y-websocket has no acknowledgement, so the tracker makes one: after local changes (and after
 * each reconnect) it sends a sync step 1 of its own, a "probe". The server handles a socket's
 * frames in order and answers a step 1 with a step 2, so the step 2 that answers a probe proves
 * the server has applied every change sent before it (sync/SPEC.md D1: logged before relayed).
 * The count of unconfirmed changes is saved, so "N pending" survives a reload while offline.
 */

export type SyncState =
	| { kind: 'synced'; pending: 0 }
	| { kind: 'syncing'; pending: number }
	| { kind: 'offline'; pending: number }
	| { kind: 'error'; pending: number; reason: string };

export interface TrackerOptions {
	/** Unconfirmed changes saved by an earlier page. */
	initialPending?: number;
	/** Sends a probe (a sync step 1) on the open socket; false when it could not be sent. */
	sendProbe: () => boolean;
	/** Called with the number of unconfirmed changes whenever it changes. */
	save?: (pending: number) => void;
	/** Called whenever the state changes. */
	onChange?: (state: SyncState) => void;
	/** How long local changes are gathered before one probe confirms them all (ms). */
	probeDelayMs?: number;
}

export class SyncTracker {
	private localSeq: number;
	private ackedSeq = 0;
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
		this.localSeq = Math.max(0, Math.floor(opts.initialPending ?? 0));
		this.emit();
	}

	get pending(): number {
		return this.localSeq - this.ackedSeq;
	}

	get state(): SyncState {
		const pending = this.pending;
		if (this.error !== null) return { kind: 'error', pending, reason: this.error };
		if (!this.connected) return { kind: 'offline', pending };
		if (!this.synced || pending > 0) return { kind: 'syncing', pending };
		return { kind: 'synced', pending: 0 };
	}

	/** A change made in this browser (not one received from the server or read from IndexedDB). */
	localChange(): void {
		this.localSeq += 1;
		this.opts.save?.(this.pending);
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
			this.opts.save?.(this.pending);
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
		if (this.pending === 0 && this.probes.length === 0) {
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
