import { beforeEach, describe, expect, it, vi } from 'vitest';

beforeEach(() => {
	localStorage.clear();
	vi.resetModules();
});

async function fresh() {
	return (await import('./tutorial.svelte')).tutorial;
}

describe('tutorial', () => {
	it('has at most six steps and moves on when the person does what a step asks', async () => {
		const { STEPS } = await import('./tutorial.svelte');
		expect(STEPS.length).toBeLessThanOrEqual(6);
		const t = await fresh();
		expect(t.active).toBe(true);
		expect(t.step).toBe(0);
		t.reached('opened'); // ahead of the current step: jumps there (they found their way)
		expect(t.step).toBe(2);
		t.reached('created'); // behind: nothing changes
		expect(t.step).toBe(2);
		t.reached('node-added');
		t.reached('connected');
		t.reached('generated');
		expect(t.current.until).toBeNull();
		t.next();
		expect(t.done).toBe(true);
		expect(t.active).toBe(false);
	});

	it('is resumable: a skipped tutorial comes back where it was, also after a reload', async () => {
		let t = await fresh();
		t.reached('created');
		t.skip();
		expect(t.active).toBe(false);
		vi.resetModules();
		t = await fresh();
		expect(t.active).toBe(false);
		t.resume();
		expect(t.active).toBe(true);
		expect(t.step).toBe(1);
	});
});
