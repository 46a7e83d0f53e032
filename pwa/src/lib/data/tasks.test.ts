import { describe, expect, it } from 'vitest';
import type { Task } from '$lib/api';
import { applyEvent, applyNotice, etaWords, followStaleMarks, noticesFromMarks } from './tasks.svelte';

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

describe('followStaleMarks', () => {
	const stale = (node: string) => ({ type: 'node.stale', project_id: 'p1', node, reason: `${node} input replaced` });

	it('drops a notice once the mark it is about has been seen and is cleared', () => {
		const seen = new Set<string>();
		let notices = applyNotice(applyNotice([], stale('n1'), 'p1'), stale('n2'), 'p1');
		notices = followStaleMarks(notices, new Set(['n1', 'n2']), seen);
		expect(notices.map((n) => n.node)).toEqual(['n2', 'n1']);

		// n1 regenerated (or kept as it is): its notice goes, n2's stays
		notices = followStaleMarks(notices, new Set(['n2']), seen);
		expect(notices.map((n) => n.node)).toEqual(['n2']);
		// n2's node deleted: gone too
		expect(followStaleMarks(notices, new Set(), seen)).toEqual([]);
	});

	it('keeps a notice whose marked document has not arrived yet', () => {
		const seen = new Set<string>();
		const notices = applyNotice([], stale('n1'), 'p1');
		expect(followStaleMarks(notices, new Set(), seen)).toBe(notices);
		expect(followStaleMarks(notices, new Set(['n1']), seen)).toBe(notices);
		expect(followStaleMarks(notices, new Set(), seen)).toEqual([]);
	});

	it('keeps notices that are not about a node, and returns the same list when nothing goes', () => {
		const other = [{ id: 'note:1', text: 'Something else', node: null }];
		expect(followStaleMarks(other, new Set(), new Set(['note:1']))).toBe(other);
	});

	it('lets a node marked again get its notice back', () => {
		const seen = new Set<string>();
		let notices = followStaleMarks(applyNotice([], stale('n1'), 'p1'), new Set(['n1']), seen);
		notices = followStaleMarks(notices, new Set(), seen);
		expect(notices).toEqual([]);
		notices = followStaleMarks(applyNotice(notices, stale('n1'), 'p1'), new Set(), seen);
		expect(notices.map((n) => n.node)).toEqual(['n1']);
	});
});

describe('noticesFromMarks', () => {
	it('brings back a notice for every node still marked out of date, once, unless dismissed', () => {
		const marks = new Map([
			['n1', 'Ana replaced pier.png'],
			['n2', 'An input of this node changed since its last take.']
		]);
		const restored = noticesFromMarks([], marks, new Set());
		expect(restored.map((n) => n.text)).toEqual([
			'A node is out of date: Ana replaced pier.png.',
			'A node is out of date: An input of this node changed since its last take.'
		]);
		expect(restored.map((n) => n.node)).toEqual(['n1', 'n2']);
		expect(noticesFromMarks(restored, marks, new Set())).toBe(restored);
		expect(noticesFromMarks([], marks, new Set(['stale:n1'])).map((n) => n.node)).toEqual(['n2']);
	});
});
