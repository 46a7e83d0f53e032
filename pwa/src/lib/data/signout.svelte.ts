/**
 * Signing out without losing work. Signing out removes what this device keeps of the person
 * (`device.ts`), so changes the server has not confirmed would go with it: the person is told
 * first ("3 changes not yet saved to the server") and chooses to wait for them to sync, which
 * opens each such project and signs out once the server has every change, or to sign out anyway.
 */
import { ProjectDoc } from '$lib/sync/project-doc.svelte';
import { describeUnsaved, unsavedWork, type UnsavedWork } from './device';
import { library } from './library.svelte';
import { network } from './network.svelte';
import { session } from './session.svelte';

export type SignOutPhase = 'idle' | 'checking' | 'confirm' | 'waiting' | 'signing-out';

/** A project opened only to send its changes (a `ProjectDoc`, as far as waiting needs one). */
export interface Syncing {
	readonly state: { kind: string; pending: number; reason?: string };
	destroy(): void;
}

export interface SignOutOptions {
	/** Opens project `id` so its changes reach the server (default: a `ProjectDoc`). */
	open?: (id: string, token: string) => Promise<Syncing>;
	/** Signs out for real (default: `library.signOut`). */
	signOut?: () => Promise<number>;
	/** Sends the projects created offline (default: `library.flush`). */
	flush?: () => Promise<unknown>;
	/** How often waiting looks again (ms). */
	pollMs?: number;
}

async function openProject(id: string, token: string): Promise<Syncing> {
	return new ProjectDoc(id, { token });
}

export class SignOutFlow {
	phase = $state<SignOutPhase>('idle');
	/** What would be lost (set when the person is asked, refreshed while waiting). */
	work = $state<UnsavedWork | null>(null);
	/** While waiting: why it is not done yet (offline, or the server refused a project). */
	problem = $state<string | null>(null);
	/** Project copies a sign-out could not delete yet (open in another tab). */
	leftOpen = $state(0);
	private docs: Syncing[] = [];
	private settle: ((signedOut: boolean) => void) | null = null;
	private timer: ReturnType<typeof setInterval> | null = null;
	private readonly opts: SignOutOptions;

	constructor(opts: SignOutOptions = {}) {
		this.opts = opts;
	}

	/** Words for what is unsaved ("3 changes"), empty when nothing is. */
	get unsaved(): string {
		return this.work ? describeUnsaved(this.work) : '';
	}

	/** Signs out at once when nothing is unsaved; otherwise asks (phase `confirm`). True: signed out. */
	async start(): Promise<boolean> {
		if (this.phase !== 'idle') return false;
		this.phase = 'checking';
		const work = await unsavedWork(session.key);
		if (work.changes === 0 && work.created.length === 0) {
			await this.finish();
			return true;
		}
		this.work = work;
		this.phase = 'confirm';
		return false;
	}

	/** Sign out anyway: the unsaved changes are discarded with the rest. */
	async discard(): Promise<void> {
		this.stopWaiting();
		await this.finish();
	}

	/** Keep signed in. */
	cancel(): void {
		this.stopWaiting();
		this.work = null;
		this.problem = null;
		this.phase = 'idle';
		this.settled(false);
	}

	/** Sends every unsaved change, then signs out. True once signed out; false when cancelled. */
	async wait(): Promise<boolean> {
		const token = session.token;
		if (this.phase !== 'confirm' || !token || !this.work) return false;
		this.phase = 'waiting';
		const open = this.opts.open ?? openProject;
		const flush = this.opts.flush ?? (() => library.flush());
		const done = new Promise<boolean>((resolve) => (this.settle = resolve));
		if (this.work.created.length) await flush().catch(() => undefined);
		for (const p of this.work?.projects ?? []) {
			if (this.phase !== 'waiting') return done;
			this.docs.push(await open(p.id, token));
		}
		if (this.phase !== 'waiting') return done;
		const check = async () => {
			const work = await unsavedWork(session.key);
			if (this.phase !== 'waiting') return;
			this.work = work;
			this.problem = this.describeProblem();
			if (work.changes === 0 && work.created.length === 0) {
				this.stopWaiting();
				await this.finish();
			} else if (work.created.length && network.online) {
				await flush().catch(() => undefined);
			}
		};
		this.timer = setInterval(() => void check(), this.opts.pollMs ?? 250);
		void check();
		return done;
	}

	private describeProblem(): string | null {
		if (!network.browserOnline) return 'You are offline: the changes are sent when the connection returns.';
		const failed = this.docs.find((d) => d.state.kind === 'error');
		if (failed?.state.reason) return `The server did not take some changes: ${failed.state.reason}`;
		return null;
	}

	private stopWaiting(): void {
		if (this.timer !== null) clearInterval(this.timer);
		this.timer = null;
		for (const doc of this.docs.splice(0)) doc.destroy();
	}

	private settled(signedOut: boolean): void {
		this.settle?.(signedOut);
		this.settle = null;
	}

	private async finish(): Promise<void> {
		this.phase = 'signing-out';
		this.leftOpen = await (this.opts.signOut ?? (() => library.signOut()))();
		this.work = null;
		this.problem = null;
		this.phase = 'idle';
		this.settled(true);
	}
}
