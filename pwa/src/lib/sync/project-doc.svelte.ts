/**
 * One opened project: its Y.Doc, kept in IndexedDB (y-indexeddb) and synced over
 * `/sync/{id}?token=` with the stock y-websocket provider.
 *
 * The IndexedDB copy is read first, so a project opened before opens offline with everything
 * in it; the socket connects afterwards and sends what the server lacks. Going offline (the
 * browser's `offline` event) closes the socket at once; `online` opens it again.
 */
import * as Y from 'yjs';
import { IndexeddbPersistence } from 'y-indexeddb';
import { WebsocketProvider } from 'y-websocket';
import { changedThings } from './edits';
import { Close, closeReason, isSyncStep2, isTerminal, syncStep1Frame } from './protocol';
import { SyncTracker, type SyncState } from './tracker';

const PENDING_PREFIX = 'studio.pending.';

/** IndexedDB database holding a project's document. */
export function databaseName(projectId: string): string {
	return `studio-project-${projectId}`;
}

/** The keys of the unconfirmed local changes saved for `projectId` (older pages saved a count). */
function savedKeys(projectId: string): number | string[] {
	try {
		const raw = globalThis.localStorage?.getItem(PENDING_PREFIX + projectId);
		if (!raw) return [];
		const value: unknown = JSON.parse(raw);
		if (Array.isArray(value)) return value.filter((k): k is string => typeof k === 'string');
		return typeof value === 'number' && value > 0 ? value : [];
	} catch {
		return [];
	}
}

/** How many local changes of `projectId` the server has not confirmed yet (0 when none or unknown). */
export function savedPending(projectId: string): number {
	const saved = savedKeys(projectId);
	return Array.isArray(saved) ? saved.length : saved;
}

function savePending(projectId: string, pending: string[]): void {
	try {
		if (pending.length > 0) globalThis.localStorage?.setItem(PENDING_PREFIX + projectId, JSON.stringify(pending));
		else globalThis.localStorage?.removeItem(PENDING_PREFIX + projectId);
	} catch {
		// Storage disabled: the count is only shown, never needed for correctness.
	}
}

export function syncUrl(location: Location | URL = globalThis.location): string {
	const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
	return `${scheme}//${location.host}/sync`;
}

export interface OpenOptions {
	token: string;
	/** Base of the sync socket (default: this page's origin + /sync). */
	url?: string;
	/** Whether to connect at once (default: when the browser says it is online). */
	connect?: boolean;
}

export class ProjectDoc {
	readonly id: string;
	readonly doc: Y.Doc;
	readonly persistence: IndexeddbPersistence;
	readonly provider: WebsocketProvider;
	readonly tracker: SyncTracker;
	/** Reactive: the sync state for the UI. */
	state = $state<SyncState>({ kind: 'offline', pending: 0 });
	/** Reactive: true once the local copy (IndexedDB) has been read. */
	loaded = $state(false);
	/** Reactive: true once the document has content (from IndexedDB or the server). */
	ready = $state(false);
	/** Reactive: counts the times the server said this person's role changed (ask for it again). */
	roleChanges = $state(0);
	private readonly cleanups: (() => void)[] = [];

	constructor(id: string, opts: OpenOptions) {
		this.id = id;
		this.doc = new Y.Doc();
		this.persistence = new IndexeddbPersistence(databaseName(id), this.doc);
		this.provider = new WebsocketProvider(opts.url ?? syncUrl(), id, this.doc, {
			connect: false,
			params: { token: opts.token },
			shouldReconnect: (event) => !isTerminal(event.code),
			maxBackoffTime: 2500
		});
		this.tracker = new SyncTracker({
			initialPending: savedKeys(id),
			sendProbe: () => this.sendProbe(),
			save: (n) => savePending(id, n),
			onChange: (s) => (this.state = s)
		});
		this.state = this.tracker.state;
		this.wire(opts.connect ?? globalThis.navigator?.onLine ?? true);
	}

	private wire(connectNow: boolean): void {
		const { doc, provider, persistence, tracker } = this;
		const onUpdate = (_update: Uint8Array, origin: unknown, _doc: Y.Doc, tr: Y.Transaction) => {
			if (origin !== provider && origin !== persistence) tracker.localChange(changedThings(tr));
			this.checkReady();
		};
		doc.on('update', onUpdate);
		this.cleanups.push(() => doc.off('update', onUpdate));

		let socket: WebSocket | null = null;
		const onMessage = (event: MessageEvent) => {
			if (event.data instanceof ArrayBuffer && isSyncStep2(new Uint8Array(event.data))) {
				tracker.step2Received();
			}
		};
		// After a role change, the role is asked for again at once and once more when the socket is
		// back: the server reads the role at connect, so a change made while it was away counts too.
		let roleChanged = false;
		provider.on('status', ({ status }) => {
			if (status === 'connected' && roleChanged) {
				roleChanged = false;
				this.roleChanges += 1;
			}
			if (status === 'connected') {
				socket?.removeEventListener('message', onMessage);
				socket = provider.ws;
				socket?.addEventListener('message', onMessage);
				tracker.setConnected(true);
			} else if (status === 'disconnected') {
				tracker.setConnected(false);
			}
		});
		provider.on('sync', (synced: boolean) => tracker.setSynced(synced));
		provider.on('closed', ({ code, reason }) => {
			tracker.fail(closeReason(code, reason) ?? `The connection closed (code ${code}).`);
		});
		provider.on('connection-close', (event) => {
			if (event?.code === Close.ROLE_CHANGED) {
				roleChanged = true;
				this.roleChanges += 1;
			}
			if (event && !isTerminal(event.code)) tracker.setConnected(false);
		});

		const online = () => {
			if (!provider.shouldConnect) provider.connect();
		};
		const offline = () => provider.disconnect();
		globalThis.addEventListener?.('online', online);
		globalThis.addEventListener?.('offline', offline);
		this.cleanups.push(() => {
			globalThis.removeEventListener?.('online', online);
			globalThis.removeEventListener?.('offline', offline);
			socket?.removeEventListener('message', onMessage);
		});

		// Read the local copy first: the handshake then asks the server only for what is missing.
		void persistence.whenSynced.then(() => {
			this.loaded = true;
			this.checkReady();
			if (connectNow && !this.destroyed) provider.connect();
		});
	}

	private destroyed = false;

	private checkReady(): void {
		if (!this.ready && this.doc.getMap('meta').size > 0) this.ready = true;
	}

	private sendProbe(): boolean {
		const ws = this.provider.ws;
		if (!ws || ws.readyState !== WebSocket.OPEN) return false;
		ws.send(syncStep1Frame(Y.encodeStateVector(this.doc)));
		return true;
	}

	/** Use a new token from the next connection on (after signing in again). */
	setToken(token: string): void {
		this.provider.params = { ...this.provider.params, token };
		if (!this.provider.shouldConnect && (globalThis.navigator?.onLine ?? true)) this.provider.connect();
	}

	destroy(): void {
		this.destroyed = true;
		for (const undo of this.cleanups) undo();
		this.tracker.destroy();
		this.provider.destroy();
		void this.persistence.destroy();
		this.doc.destroy();
	}
}
