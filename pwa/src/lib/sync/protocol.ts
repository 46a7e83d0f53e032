/**
 * The y-websocket wire protocol, browser side: the twin of `sync/protocol.py`.
 *
 * Every frame is binary: a var-uint message type, then the payload. The stock
 * `y-websocket` provider writes and reads the frames; this module names the
 * message kinds, turns the server's close codes into words a person can act on,
 * and recognises the frames the sync tracker listens for.
 */

export const PROTOCOL_VERSION = 1;

export const MessageType = { SYNC: 0, AWARENESS: 1, QUERY_AWARENESS: 3 } as const;
export const SyncType = { STEP1: 0, STEP2: 1, UPDATE: 2 } as const;

/** Close codes the server sends before any document byte when it refuses a peer. */
export const Close = {
	NORMAL: 1000,
	GOING_AWAY: 1001,
	TOO_LARGE: 1009,
	BAD_MESSAGE: 4400,
	UNAUTHENTICATED: 4401,
	FORBIDDEN: 4403,
	NOT_FOUND: 4404,
	SLOW_CONSUMER: 4408,
	RATE_LIMITED: 4429,
	/** On an open socket: this person's role changed; clients reconnect (4500-4599: try again). */
	ROLE_CHANGED: 4500
} as const;

const REASONS: Record<number, string> = {
	[Close.TOO_LARGE]: 'An edit was too large for the server (over 8 MiB).',
	[Close.BAD_MESSAGE]: 'The server refused an edit from this browser as malformed.',
	[Close.UNAUTHENTICATED]: 'Your session has expired. Sign in again to sync this project.',
	[Close.FORBIDDEN]: 'You are not a member of this project (any more). Ask an owner to add you.',
	[Close.NOT_FOUND]: 'This project was deleted or moved to the trash. Restore it to keep syncing.',
	[Close.SLOW_CONSUMER]: 'This browser fell too far behind; it reconnects by itself.',
	[Close.ROLE_CHANGED]: 'Your role in this project changed; the studio reconnects by itself.',
	[Close.RATE_LIMITED]: 'Too many presence updates; the studio reconnects by itself.'
};

/** Words for a close code, or null for an ordinary close (network gone, server restart). */
export function closeReason(code: number, reason = ''): string | null {
	const known = REASONS[code];
	if (known) return reason ? `${known} (${reason})` : known;
	if (code >= 4000 && code < 5000) return reason || `The server closed the connection (code ${code}).`;
	return null;
}

/** Codes after which reconnecting cannot help until the person acts (y-websocket stops on 4400-4499). */
export function isTerminal(code: number): boolean {
	return code >= 4400 && code < 4500 && code !== Close.SLOW_CONSUMER && code !== Close.RATE_LIMITED;
}

/** Whether `frame` is a sync step 2 (the server's answer to a sync step 1). */
export function isSyncStep2(frame: Uint8Array): boolean {
	// Both type bytes are single-byte var-uints.
	return frame.length >= 2 && frame[0] === MessageType.SYNC && frame[1] === SyncType.STEP2;
}

/** A sync step 1 frame carrying `stateVector` (var-uint length prefix, as lib0 writes it). */
export function syncStep1Frame(stateVector: Uint8Array): Uint8Array {
	const head: number[] = [MessageType.SYNC, SyncType.STEP1];
	let n = stateVector.length;
	while (n > 0x7f) {
		head.push(0x80 | (n & 0x7f));
		n >>>= 7;
	}
	head.push(n);
	const out = new Uint8Array(head.length + stateVector.length);
	out.set(head);
	out.set(stateVector, head.length);
	return out;
}
