import { describe, expect, it } from 'vitest';
import type { Task } from '$lib/api';
import { applyEvent, applyNotice, etaWords } from './tasks.svelte';

function task(over: Partial<Task>): Task {
	return {
		id: 't1',
		kind: 'image.diffusion',
		project_id: 'p1',
		node_id: 'n1',
		state: 'queued',
		progress: 0,
		queue_position: 2,
		eta_s: 90,
		error: null,
		outputs: null,
		...over
	};
}

describe('task events', () => {
	it('adds new tasks first and updates known ones in place', () => {
		let list: Task[] = [];
		list = applyEvent(list, { type: 'task.queued', project_id: 'p1', task: task({}) }, 'p1');
		list = applyEvent(list, { type: 'task.queued', project_id: 'p1', task: task({ id: 't2' }) }, 'p1');
		expect(list.map((t) => t.id)).toEqual(['t2', 't1']);
		list = applyEvent(list, { type: 'task.progress', project_id: 'p1', task: task({ state: 'running', progress: 0.5 }) }, 'p1');
		expect(list[1]).toMatchObject({ id: 't1', state: 'running', progress: 0.5 });
	});

	it('never moves a task backwards when an answer arrives after a later event', () => {
		let list = applyEvent([], { type: 'task.failed', project_id: 'p1', task: task({ state: 'failed', error: 'No model' }) }, 'p1');
		list = applyEvent(list, { type: 'task.queued', project_id: 'p1', task: task({ state: 'queued' }) }, 'p1');
		expect(list[0]).toMatchObject({ state: 'failed', error: 'No model' });
	});

	it('ignores other projects and other event types', () => {
		const list = [task({})];
		expect(applyEvent(list, { type: 'task.progress', project_id: 'p2', task: task({ project_id: 'p2' }) }, 'p1')).toBe(list);
		expect(applyEvent(list, { type: 'project.committed', project_id: 'p1' }, 'p1')).toBe(list);
	});

	it('says the time left in words', () => {
		expect(etaWords(null)).toBe('');
		expect(etaWords(20)).toBe('under a minute left');
		expect(etaWords(60)).toBe('about 1 minute left');
		expect(etaWords(150)).toBe('about 3 minutes left');
		expect(etaWords(7200)).toBe('about 2 hours left');
	});
});

describe('applyNotice', () => {
	it('turns a node.stale event of this project into one notice per node, newest first', () => {
		const stale = (node: string, reason: string, project_id = 'p1') => ({ type: 'node.stale', project_id, node, reason });
		let notices = applyNotice([], stale('n1', 'Ana replaced pier.png'), 'p1');
		expect(notices).toEqual([{ id: 'stale:n1', text: 'A node is out of date: Ana replaced pier.png.', node: 'n1' }]);
		notices = applyNotice(notices, stale('n2', 'pier.png was edited on disk'), 'p1');
		notices = applyNotice(notices, stale('n1', 'Bob replaced pier.png'), 'p1');
		expect(notices.map((n) => n.text)).toEqual([
			'A node is out of date: Bob replaced pier.png.',
			'A node is out of date: pier.png was edited on disk.'
		]);
		expect(applyNotice(notices, stale('n3', 'x', 'other'), 'p1')).toBe(notices);
		expect(applyNotice(notices, { type: 'task.progress', project_id: 'p1' }, 'p1')).toBe(notices);
	});
});
