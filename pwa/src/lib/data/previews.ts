/**
 * Project previews kept on this device, so the gallery shows them offline and at once.
 *
 * The preview endpoint needs the bearer token, so the service worker cannot cache it as a plain
 * image; the gallery keeps the last image it got per project in Cache Storage, one cache per
 * person (`studio-previews-<user key>`), which signing out deletes with the rest of their data.
 */

const PREFIX = 'studio-previews-';

function store(): CacheStorage | null {
	return globalThis.caches ?? null;
}

function keyOf(projectId: string): string {
	return `/__previews/${encodeURIComponent(projectId)}`;
}

/** The preview this device last saw for `projectId`, or null. */
export async function cachedPreview(userKey: string, projectId: string): Promise<Blob | null> {
	const caches = store();
	if (!caches) return null;
	try {
		const hit = await (await caches.open(PREFIX + userKey)).match(keyOf(projectId));
		return hit ? await hit.blob() : null;
	} catch {
		return null; // storage unavailable (private mode, quota): the network alone then
	}
}

/** Keep `blob` as the preview of `projectId`. */
export async function keepPreview(userKey: string, projectId: string, blob: Blob): Promise<void> {
	const caches = store();
	if (!caches) return;
	try {
		const headers = { 'Content-Type': blob.type || 'image/png' };
		await (await caches.open(PREFIX + userKey)).put(keyOf(projectId), new Response(blob, { headers }));
	} catch {
		// full or unavailable: the preview is simply not kept
	}
}

/** Forget every preview kept for `userKey` (signing out). */
export async function erasePreviews(userKey: string): Promise<void> {
	const caches = store();
	if (!caches) return;
	try {
		await caches.delete(PREFIX + userKey);
	} catch {
		// nothing kept
	}
}
