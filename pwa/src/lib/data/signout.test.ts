import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cacheProjects, queueProject } from './projects';
import { network } from './network.svelte';
import { session } from './session.svelte';
import { SignOutFlow, type Syncing } from './signout.svelte';
import type { Project } from '$lib/api';

function project(id: string, name: string): Project {
	const t = '2026-01-01T00:00:00Z';
	return { id, name, template: 'blank', path: `Projects/${name}`, created_at: t, updated_at: t, archived: false, role: 'owner', description: '' };
}

/** A project opened to send its changes: the server confirms them when `confirm` is called. */
class Sending implements Syncing {
	state: Syncing['state'] = { kind: 'syncing', pending: 1 };
	destroyed = false;
	constructor(readonly id: string) {}
	confirm(): void {
		localStorage.removeItem(`studio.pending.${this.id}`);
		this.state = { kind: 'synced', pending: 0 };
	}
	destroy(): void {
		this.destroyed = true;
	}
}

function flowFor() {
	const opened: Sending[] = [];
	let signedOut = 0;
	let flushed = 0;
	const flow = new SignOutFlow({
		open: async (id) => {
			const s = new Sending(id);
			opened.push(s);
			return s;
		},
		signOut: async () => {
			signedOut += 1;
			return 0;
		},
		flush: async () => {
			flushed += 1;
		},
		pollMs: 5
	});
	return { flow, opened, signedOut: () => signedOut, flushed: () => flushed };
}

const until = async (check: () => boolean, ms = 2000) => {
	const end = Date.now() + ms;
	while (!check()) {
		if (Date.now() > end) throw new Error('timed out');
		await new Promise((r) => setTimeout(r, 5));
	}
};

beforeEach(() => {
	localStorage.clear();
	session.adopt({ token: 'secret', user: { id: 'ines', name: 'Inès', guest: false } });
	cacheProjects('ines', [project('p1', 'Harbour Lights'), project('p2', 'Night Ferry')]);
	network.browserOnline = true;
});
afterEach(() => localStorage.clear());

describe('signing out', () => {
	it('signs out at once when the server has every change', async () => {
		const { flow, signedOut } = flowFor();
		expect(await flow.start()).toBe(true);
		expect(signedOut()).toBe(1);
		expect(flow.phase).toBe('idle');
	});

	it('asks first when changes are not saved yet, and "sign out anyway" discards them', async () => {
		localStorage.setItem('studio.pending.p1', JSON.stringify(['meta/name', 'canvases/main/nodes/n1']));
		localStorage.setItem('studio.pending.p2', JSON.stringify(['story/scenes/s1']));
		const { flow, signedOut } = flowFor();

		expect(await flow.start()).toBe(false);
		expect(flow.phase).toBe('confirm');
		expect(flow.unsaved).toBe('3 changes');
		expect(signedOut()).toBe(0);

		await flow.discard();
		expect(signedOut()).toBe(1);
	});

	it('waits for every change to reach the server, then signs out', async () => {
		localStorage.setItem('studio.pending.p1', JSON.stringify(['meta/name']));
		localStorage.setItem('studio.pending.p2', JSON.stringify(['story/scenes/s1', 'meta/description']));
		const { flow, opened, signedOut } = flowFor();
		await flow.start();

		const done = flow.wait();
		await until(() => opened.length === 2);
		expect(opened.map((o) => o.id)).toEqual(['p1', 'p2']);
		expect(flow.phase).toBe('waiting');
		opened[0]!.confirm();
		await until(() => flow.unsaved === '2 changes');
		expect(signedOut()).toBe(0); // not before the last one
		opened[1]!.confirm();

		expect(await done).toBe(true);
		expect(signedOut()).toBe(1);
		expect(opened.every((o) => o.destroyed)).toBe(true);
	});

	it('sends projects made offline before signing out', async () => {
		queueProject('ines', { id: 'p3', name: 'On the train', template: 'blank' });
		const { flow, flushed, signedOut } = flowFor();
		await flow.start();
		expect(flow.unsaved).toBe('1 new project');
		const done = flow.wait();
		await until(() => flushed() > 0);
		localStorage.removeItem('studio.pending-projects.ines'); // the server created it
		expect(await done).toBe(true);
		expect(signedOut()).toBe(1);
	});

	it('says why waiting takes long, and staying signed in keeps everything', async () => {
		localStorage.setItem('studio.pending.p1', JSON.stringify(['meta/name']));
		network.browserOnline = false;
		const { flow, opened, signedOut } = flowFor();
		await flow.start();
		const done = flow.wait();
		await until(() => flow.problem !== null);
		expect(flow.problem).toBe('You are offline: the changes are sent when the connection returns.');

		network.browserOnline = true;
		opened[0]!.state = { kind: 'error', pending: 1, reason: 'you are a viewer of this project' };
		await until(() => flow.problem?.includes('viewer') ?? false);
		expect(flow.problem).toBe('The server did not take some changes: you are a viewer of this project');

		flow.cancel();
		expect(await done).toBe(false);
		expect(signedOut()).toBe(0);
		expect(opened[0]!.destroyed).toBe(true);
		expect(localStorage.getItem('studio.pending.p1')).not.toBeNull();
		expect(session.token).toBe('secret');
	});
});
