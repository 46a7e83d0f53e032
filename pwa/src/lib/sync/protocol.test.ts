import * as Y from 'yjs';
import * as decoding from 'lib0/decoding';
import * as syncProtocol from 'y-protocols/sync';
import { describe, expect, it } from 'vitest';
import { Close, closeReason, isSyncStep2, isTerminal, syncStep1Frame } from './protocol';

describe('protocol', () => {
	it('writes a sync step 1 that y-protocols reads back, also past 127 bytes', () => {
		const doc = new Y.Doc();
		for (let i = 0; i < 40; i++) new Y.Doc().getMap('m').set('k', i); // other clients
		doc.getMap('meta').set('name', 'x'.repeat(300));
		const sv = Y.encodeStateVector(doc);
		const frame = syncStep1Frame(sv);
		const decoder = decoding.createDecoder(frame);
		expect(decoding.readVarUint(decoder)).toBe(0);
		expect(decoding.readVarUint(decoder)).toBe(syncProtocol.messageYjsSyncStep1);
		expect(decoding.readVarUint8Array(decoder)).toEqual(sv);

		const big = new Uint8Array(300).fill(7);
		const d2 = decoding.createDecoder(syncStep1Frame(big));
		decoding.readVarUint(d2);
		decoding.readVarUint(d2);
		expect(decoding.readVarUint8Array(d2)).toEqual(big);
	});

	it('recognises a step 2 and nothing else', () => {
		expect(isSyncStep2(new Uint8Array([0, 1, 0]))).toBe(true);
		expect(isSyncStep2(new Uint8Array([0, 0, 0]))).toBe(false);
		expect(isSyncStep2(new Uint8Array([0, 2, 0]))).toBe(false);
		expect(isSyncStep2(new Uint8Array([1, 1]))).toBe(false);
	});

	it('puts refusals into words and stops only where reconnecting cannot help', () => {
		expect(closeReason(Close.UNAUTHENTICATED)).toContain('session has expired');
		expect(closeReason(Close.NOT_FOUND)).toContain('trash');
		expect(closeReason(Close.FORBIDDEN, 'not a member')).toContain('(not a member)');
		expect(closeReason(1006)).toBeNull();
		expect(isTerminal(Close.UNAUTHENTICATED)).toBe(true);
		expect(isTerminal(Close.RATE_LIMITED)).toBe(false);
		// A role change closes the socket to be reconnected at once, with words if it is shown.
		expect(isTerminal(Close.ROLE_CHANGED)).toBe(false);
		expect(closeReason(Close.ROLE_CHANGED)).toContain('role in this project changed');
		expect(isTerminal(1006)).toBe(false);
	});
});
