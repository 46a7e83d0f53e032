/**
 * Uploads into a project's assets, from the Asset Browser: each file is checked first (kind and
 * size, as GET /api/asset-kinds says), sent with its progress, then followed through the asset
 * events on `/events` — `asset.thumbnail.queued` / `.ready` / `.failed` (the preview being made),
 * `asset.changed` (a replaced file, and how many nodes it made out of date).
 *
 * A replace is the same with PUT …/assets/{id}/file: a new version under the same asset id.
 */
import { api, errorMessage, type AssetKinds, type AssetOut, type TaskEvent } from '$lib/api';

export type UploadPhase = 'waiting' | 'uploading' | 'processing' | 'ready' | 'failed';

export interface Upload {
	id: string;
	name: string;
	size: number;
	sent: number;
	phase: UploadPhase;
	/** The asset it made or replaced, once the server has it. */
	assetId: string | null;
	/** Set for a replace: the asset being given a new version, and its name. */
	replacing: string | null;
	replacingName: string | null;
	/** Why it failed (phase 'failed'), or what went wrong after it arrived (no preview). */
	error: string | null;
	/** Something more to know: "2 nodes that use it are now out of date". */
	note: string | null;
}

/** Kinds whose uploads get a preview made by an `asset.thumbnail` task. */
export const PREVIEWED = new Set(['image', 'video']);

export function suffixOf(name: string): string {
	const dot = name.lastIndexOf('.');
	return dot > 0 ? name.slice(dot).toLowerCase() : '';
}

/** The asset kind a file name is (`image`, `video` …), or null when the studio does not take it. */
export function kindOf(name: string, kinds: AssetKinds | null): string | null {
	if (!kinds) return null;
	const suffix = suffixOf(name);
	for (const [kind, suffixes] of Object.entries(kinds.kinds)) if (suffixes.includes(suffix)) return kind;
	return null;
}

function article(word: string): string {
	return /^[aeiou]/.test(word) ? 'an' : 'a';
}

/** "820 KB", "1.5 GB". */
export function sizeWords(bytes: number): string {
	if (bytes < 1024) return `${bytes} B`;
	if (bytes < 1024 ** 2) return `${Math.round(bytes / 1024)} KB`;
	if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1).replace(/\.0$/, '')} MB`;
	return `${(bytes / 1024 ** 3).toFixed(1).replace(/\.0$/, '')} GB`;
}

/** "images (.png, .jpg), video (.mp4, .webm)" for error messages and hints. */
export function acceptedWords(kinds: AssetKinds): string {
	const names: Record<string, string> = { image: 'images', video: 'video', audio: 'audio', model: 'models' };
	return Object.entries(kinds.kinds)
		.map(([kind, suffixes]) => `${names[kind] ?? kind} (${suffixes.join(', ')})`)
		.join(', ');
}

/**
 * Why the studio would refuse `file`, in words, or null if it takes it. `sameKind`: for a replace,
 * the kind the file must be. Without `kinds` (not fetched yet, offline) only the server checks.
 */
export function checkFile(file: { name: string; size: number }, kinds: AssetKinds | null, sameKind: string | null = null): string | null {
	if (!kinds) return null;
	const kind = kindOf(file.name, kinds);
	if (kind === null) {
		const suffix = suffixOf(file.name);
		return `${file.name}: the studio does not take ${suffix ? `${suffix} files` : 'files without a type ending'}. It takes ${acceptedWords(kinds)}.`;
	}
	if (sameKind && kind !== sameKind) {
		return `${file.name} is ${article(kind)} ${kind} file; it cannot replace ${article(sameKind)} ${sameKind} asset. Choose ${article(sameKind)} ${sameKind} file.`;
	}
	if (file.size > kinds.max_bytes) {
		return `${file.name} is ${sizeWords(file.size)}, larger than the ${sizeWords(kinds.max_bytes)} this studio takes. Export it smaller, or ask whoever runs the studio to raise STUDIO_MAX_UPLOAD_BYTES.`;
	}
	if (file.size === 0) return `${file.name} is empty.`;
	return null;
}

interface AssetNews {
	thumbnail?: 'queued' | 'ready' | 'failed';
	error?: string;
	staleNodes?: number;
}

/**
 * Applies one `/events` message about assets to an upload; returns the same object when it
 * changes nothing. `asset.changed` is news only for a replace.
 */
export function followAsset(upload: Upload, news: AssetNews): Upload {
	if (upload.phase === 'failed' || upload.phase === 'waiting' || upload.phase === 'uploading') return upload;
	let next = upload;
	if (news.thumbnail === 'ready' && upload.phase === 'processing') next = { ...next, phase: 'ready' };
	if (news.thumbnail === 'failed' && upload.phase === 'processing') {
		next = { ...next, phase: 'ready', error: `No preview: ${news.error || 'the preview could not be made.'}` };
	}
	if (news.staleNodes !== undefined && upload.replacing && news.staleNodes > 0 && next.note === null) {
		const n = news.staleNodes;
		next = { ...next, note: `${n} ${n === 1 ? 'node that uses it is' : 'nodes that use it are'} now out of date.` };
	}
	return next;
}

/** What an event says about which asset (`asset` is an id, or the asset itself for `asset.changed`). */
export function assetNews(event: TaskEvent): [string, AssetNews] | null {
	const raw = event.asset;
	const id = typeof raw === 'string' ? raw : raw && typeof raw === 'object' ? (raw as { id?: unknown }).id : null;
	if (typeof id !== 'string') return null;
	switch (event.type) {
		case 'asset.thumbnail.queued':
			return [id, { thumbnail: 'queued' }];
		case 'asset.thumbnail.ready':
			return [id, { thumbnail: 'ready' }];
		case 'asset.thumbnail.failed':
			return [id, { thumbnail: 'failed', error: typeof event.error === 'string' ? event.error : '' }];
		case 'asset.changed':
			return [id, { staleNodes: typeof event.stale_nodes === 'number' ? event.stale_nodes : 0 }];
		default:
			return null;
	}
}

let counter = 0;

export class AssetUploads {
	items = $state<Upload[]>([]);
	kinds = $state<AssetKinds | null>(null);
	private queue: { upload: Upload; file: File }[] = [];
	private running = false;
	// News that came before the upload's answer named its asset (a small image's preview can be
	// ready before the last bytes of the answer arrive).
	private early = new Map<string, AssetNews[]>();

	constructor(readonly projectId: string) {}

	async loadKinds(): Promise<void> {
		try {
			this.kinds = await api.assetKinds();
		} catch {
			// Offline or an older server: the server's own answer will say what it refuses.
		}
	}

	/** Queues files to upload as new assets; those the studio would refuse fail at once, saying why. */
	add(files: Iterable<File>): void {
		for (const file of files) this.enqueue(file, null, null);
	}

	/** Queues a new version of the asset `assetId` (called `name`, of kind `kind`). */
	replace(assetId: string, name: string, kind: string, file: File): void {
		this.enqueue(file, assetId, kind, name);
	}

	dismiss(id: string): void {
		this.items = this.items.filter((u) => u.id !== id);
	}

	/** Every finished upload off the list. */
	clearFinished(): void {
		this.items = this.items.filter((u) => u.phase === 'waiting' || u.phase === 'uploading' || u.phase === 'processing');
	}

	/** An `/events` message: moves the matching upload along. */
	onEvent(event: TaskEvent): void {
		if (event.project_id !== this.projectId) return;
		const found = assetNews(event);
		if (!found) return;
		const [assetId, news] = found;
		if (this.items.some((u) => u.phase === 'uploading' || u.phase === 'waiting')) {
			this.early.set(assetId, [...(this.early.get(assetId) ?? []), news]);
		}
		this.items = this.items.map((u) => (u.assetId === assetId ? followAsset(u, news) : u));
	}

	private enqueue(file: File, replacing: string | null, kind: string | null, replacingName: string | null = null): void {
		counter += 1;
		const problem = checkFile(file, this.kinds, kind);
		const upload: Upload = {
			id: `upload-${counter}`,
			name: file.name,
			size: file.size,
			sent: 0,
			phase: problem ? 'failed' : 'waiting',
			assetId: replacing,
			replacing,
			replacingName,
			error: problem,
			note: null
		};
		this.items = [...this.items, upload];
		if (problem) return;
		this.queue.push({ upload, file });
		void this.pump();
	}

	private set(id: string, change: Partial<Upload>): void {
		this.items = this.items.map((u) => (u.id === id ? { ...u, ...change } : u));
	}

	// One file at a time: each gets the whole connection, and the list reads top to bottom.
	private async pump(): Promise<void> {
		if (this.running) return;
		this.running = true;
		try {
			let next: { upload: Upload; file: File } | undefined;
			while ((next = this.queue.shift())) await this.send(next.upload, next.file);
		} finally {
			this.running = false;
			this.early.clear();
		}
	}

	private async send(upload: Upload, file: File): Promise<void> {
		this.set(upload.id, { phase: 'uploading' });
		// The request is the file plus a little multipart framing: shown as a share of the file.
		const progress = (sent: number, total: number) =>
			this.set(upload.id, { sent: Math.min(upload.size, Math.round((upload.size * sent) / Math.max(1, total))) });
		let asset: AssetOut;
		try {
			asset = upload.replacing
				? await api.replaceAsset(this.projectId, upload.replacing, file, progress)
				: await api.uploadAsset(this.projectId, file, progress);
		} catch (err) {
			this.set(upload.id, { phase: 'failed', error: `${file.name}: ${errorMessage(err)}` });
			return;
		}
		this.set(upload.id, {
			sent: upload.size,
			assetId: asset.id,
			phase: PREVIEWED.has(asset.kind) ? 'processing' : 'ready'
		});
		for (const news of this.early.get(asset.id) ?? []) {
			this.items = this.items.map((u) => (u.id === upload.id ? followAsset(u, news) : u));
		}
		this.early.delete(asset.id);
	}
}
