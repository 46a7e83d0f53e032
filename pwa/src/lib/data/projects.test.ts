import { beforeEach, describe, expect, it } from 'vitest';
import { ApiError, type NewProject, type Project } from '$lib/api';
import {
	cacheProjects,
	cacheRemove,
	cacheUpsert,
	cachedProjects,
	filterLocal,
	flushPending,
	pendingProjects,
	queueProject
} from './projects';

function project(over: Partial<Project>): Project {
	return {
		id: over.id ?? crypto.randomUUID(),
		name: 'Untitled',
		template: 'blank',
		path: 'Projects/Untitled',
		created_at: '2026-01-01T00:00:00Z',
		updated_at: '2026-01-01T00:00:00Z',
		archived: false,
		role: 'owner',
		description: '',
		...over
	};
}

const isNet = (e: unknown) => e instanceof ApiError && e.isNetworkError;
const words = (e: unknown) => (e instanceof Error ? e.message : String(e));

beforeEach(() => localStorage.clear());

describe('project cache', () => {
	it('keeps the list per person and merges changes by id', () => {
		const a = project({ name: 'A' });
		const b = project({ name: 'B' });
		cacheProjects('u1', [a]);
		cacheUpsert('u1', [{ ...a, name: 'A2' }, b]);
		expect(cachedProjects('u1').map((p) => p.name)).toEqual(['A2', 'B']);
		expect(cachedProjects('u2')).toEqual([]);
		cacheRemove('u1', [a.id]);
		expect(cachedProjects('u1').map((p) => p.name)).toEqual(['B']);
	});

	it('survives garbage in storage', () => {
		localStorage.setItem('studio.projects.u1', '{not json');
		expect(cachedProjects('u1')).toEqual([]);
	});
});

describe('local filter (offline search)', () => {
	const list = [
		project({ name: 'Low Tide', template: 'three-act', updated_at: '2026-01-03T00:00:00Z' }),
		project({ name: 'Lost Property', template: 'save-the-cat', updated_at: '2026-01-02T00:00:00Z', description: 'a ferry' }),
		project({ name: 'Old Reel', archived: true, updated_at: '2026-01-04T00:00:00Z' })
	];

	it('matches every word in the name or description, case-insensitively', () => {
		expect(filterLocal(list, { q: 'tide' }).map((p) => p.name)).toEqual(['Low Tide']);
		expect(filterLocal(list, { q: 'FERRY lost' }).map((p) => p.name)).toEqual(['Lost Property']);
		expect(filterLocal(list, { q: 'zeppelin' })).toEqual([]);
	});

	it('filters by template and archived, and sorts', () => {
		expect(filterLocal(list, { template: 'save-the-cat' }).map((p) => p.name)).toEqual(['Lost Property']);
		expect(filterLocal(list, {}).map((p) => p.name)).toEqual(['Low Tide', 'Lost Property']);
		expect(filterLocal(list, { archived: 'true' }).map((p) => p.name)).toEqual(['Old Reel']);
		expect(filterLocal(list, { archived: 'all', sort: 'name' }).map((p) => p.name)).toEqual([
			'Lost Property',
			'Low Tide',
			'Old Reel'
		]);
	});
});

describe('projects created offline', () => {
	it('are kept with an id made here and sent with that id later', async () => {
		const listed = queueProject('u1', { name: 'Train', template: 'blank' });
		expect(listed.pending).toBe(true);
		expect(listed.id).toMatch(/^[0-9a-f-]{36}$/);
		const sent: NewProject[] = [];
		const result = await flushPending(
			'u1',
			async (input) => {
				sent.push(input);
				return project({ id: input.id ?? undefined, name: input.name });
			},
			isNet,
			words
		);
		expect(sent).toEqual([{ id: listed.id, name: 'Train', template: 'blank' }]);
		expect(result.created.map((p) => p.id)).toEqual([listed.id]);
		expect(pendingProjects('u1')).toEqual([]);
		expect(cachedProjects('u1').map((p) => p.id)).toEqual([listed.id]);
	});

	it('stay queued while the server cannot be reached', async () => {
		queueProject('u1', { name: 'One', template: 'blank' });
		queueProject('u1', { name: 'Two', template: 'blank' });
		let calls = 0;
		const result = await flushPending(
			'u1',
			async () => {
				calls++;
				throw new ApiError(0, 'Network error', 'Could not reach the studio server.');
			},
			isNet,
			words
		);
		expect(result.offline).toBe(true);
		expect(calls).toBe(1); // no point trying the rest
		expect(pendingProjects('u1').map((p) => p.name)).toEqual(['One', 'Two']);
	});

	it('keep the server’s reason when it refuses one, and are not sent again', async () => {
		queueProject('u1', { name: '...', template: 'blank' });
		const refuse = async (): Promise<Project> => {
			throw new ApiError(422, 'Invalid name', 'A name cannot be only dots.');
		};
		const first = await flushPending('u1', refuse, isNet, words);
		expect(first.failed[0]?.error).toBe('A name cannot be only dots.');
		let calls = 0;
		await flushPending(
			'u1',
			async () => {
				calls++;
				return project({});
			},
			isNet,
			words
		);
		expect(calls).toBe(0);
		expect(pendingProjects('u1')[0]?.error).toBe('A name cannot be only dots.');
	});
});
