import { describe, expect, it } from 'vitest';
import type { AssetKinds } from '$lib/api';
import { AssetUploads, assetNews, checkFile, followAsset, kindOf, sizeWords, type Upload } from './uploads.svelte';

const KINDS: AssetKinds = {
	max_bytes: 5 * 1024 * 1024,
	kinds: { image: ['.png', '.jpg'], video: ['.mp4', '.webm'], audio: ['.wav'] }
};

function upload(over: Partial<Upload>): Upload {
	return {
		id: 'u1',
		name: 'pier.png',
		size: 100,
		sent: 100,
		phase: 'processing',
		assetId: 'a1',
		replacing: null,
		replacingName: null,
		error: null,
		note: null,
		...over
	};
}

describe('checkFile', () => {
	it('takes the kinds the studio takes, up to its size', () => {
		expect(kindOf('Pier.PNG', KINDS)).toBe('image');
		expect(kindOf('clip.webm', KINDS)).toBe('video');
		expect(checkFile({ name: 'clip.mp4', size: 4_000_000 }, KINDS)).toBeNull();
	});

	it('says what it does not take, and what it does', () => {
		expect(checkFile({ name: 'holiday.gif', size: 10 }, KINDS)).toBe(
			'holiday.gif: the studio does not take .gif files. It takes images (.png, .jpg), video (.mp4, .webm), audio (.wav).'
		);
		expect(checkFile({ name: 'README', size: 10 }, KINDS)).toContain('files without a type ending');
	});

	it('says how big the file is and how big it may be', () => {
		expect(checkFile({ name: 'long take.mp4', size: 7.5 * 1024 * 1024 }, KINDS)).toBe(
			'long take.mp4 is 7.5 MB, larger than the 5 MB this studio takes. Export it smaller, or ask whoever runs the studio to raise STUDIO_MAX_UPLOAD_BYTES.'
		);
		expect(checkFile({ name: 'empty.png', size: 0 }, KINDS)).toBe('empty.png is empty.');
	});

	it('keeps a replaced asset its kind', () => {
		expect(checkFile({ name: 'clip.mp4', size: 10 }, KINDS, 'image')).toBe(
			'clip.mp4 is a video file; it cannot replace an image asset. Choose an image file.'
		);
		expect(checkFile({ name: 'new.jpg', size: 10 }, KINDS, 'image')).toBeNull();
	});

	it('leaves the checking to the server when it does not know the kinds', () => {
		expect(checkFile({ name: 'holiday.gif', size: 10 }, null)).toBeNull();
	});

	it('writes sizes for people', () => {
		expect(sizeWords(512)).toBe('512 B');
		expect(sizeWords(2048)).toBe('2 KB');
		expect(sizeWords(2 * 1024 ** 3)).toBe('2 GB');
	});
});

describe('following an upload through the asset events', () => {
	it('reads which asset an event is about', () => {
		expect(assetNews({ type: 'asset.thumbnail.ready', project_id: 'p', asset: 'a1' })).toEqual(['a1', { thumbnail: 'ready' }]);
		expect(assetNews({ type: 'asset.changed', project_id: 'p', asset: { id: 'a1' }, stale_nodes: 2 })).toEqual([
			'a1',
			{ staleNodes: 2 }
		]);
		expect(assetNews({ type: 'asset.thumbnail.failed', project_id: 'p', asset: 'a1', error: 'bad' })).toEqual([
			'a1',
			{ thumbnail: 'failed', error: 'bad' }
		]);
		expect(assetNews({ type: 'task.progress', project_id: 'p' })).toBeNull();
	});

	it('is ready when its preview is, and says why when there is none', () => {
		expect(followAsset(upload({}), { thumbnail: 'ready' }).phase).toBe('ready');
		const failed = followAsset(upload({}), { thumbnail: 'failed', error: "'clip.mp4' could not be read as a video" });
		expect(failed).toMatchObject({ phase: 'ready', error: "No preview: 'clip.mp4' could not be read as a video" });
		const still = upload({ phase: 'uploading' });
		expect(followAsset(still, { thumbnail: 'ready' })).toBe(still);
	});

	it('tells how many nodes a replace made out of date', () => {
		const replace = upload({ replacing: 'a1' });
		expect(followAsset(replace, { staleNodes: 2 }).note).toBe('2 nodes that use it are now out of date.');
		expect(followAsset(replace, { staleNodes: 1 }).note).toBe('1 node that uses it is now out of date.');
		expect(followAsset(replace, { staleNodes: 0 })).toBe(replace);
	});

	it('refuses files the studio would refuse before sending anything', () => {
		const uploads = new AssetUploads('p1');
		uploads.kinds = KINDS;
		uploads.add([new File(['x'], 'holiday.gif'), new File([new Uint8Array(6 * 1024 * 1024)], 'huge.png')]);
		expect(uploads.items.map((u) => [u.name, u.phase])).toEqual([
			['holiday.gif', 'failed'],
			['huge.png', 'failed']
		]);
		expect(uploads.items[1]!.error).toContain('larger than the 5 MB');
		uploads.clearFinished();
		expect(uploads.items).toEqual([]);
	});
});
