/// <reference types="@sveltejs/kit" />
/// <reference no-default-lib="true"/>
/// <reference lib="esnext" />
/// <reference lib="webworker" />

// Offline app shell for the studio.
// - install: precache the shell (index.html served at "/"), the built JS/CSS
//   and everything in static/ under a cache named after this build's version.
// - activate: drop caches from older builds (a new build waits until the page asks it to take over).
// - fetch: cache-first for the shell and static assets; /api and /sync always
//   go to the network (they are live data and must never be served stale).
import { build, files, version } from '$service-worker';

const sw = globalThis.self as unknown as ServiceWorkerGlobalScope;

const CACHE_PREFIX = 'studio-shell-';
const CACHE = `${CACHE_PREFIX}${version}`;
const SHELL = '/';
const PRECACHE = [SHELL, ...build, ...files];
const PRECACHED = new Set(PRECACHE);

function isLiveData(pathname: string): boolean {
	return pathname.startsWith('/api/') || pathname === '/api' || pathname.startsWith('/sync');
}

sw.addEventListener('install', (event) => {
	event.waitUntil(
		(async () => {
			const cache = await caches.open(CACHE);
			await cache.addAll(PRECACHE);
		})()
	);
});

// A new version waits (no skipWaiting at install): the page offers "Reload to update" and
// sends this message when the person agrees, so no open page is swapped under their feet.
sw.addEventListener('message', (event) => {
	if ((event.data as { type?: string } | null)?.type === 'SKIP_WAITING') void sw.skipWaiting();
});

sw.addEventListener('activate', (event) => {
	event.waitUntil(
		(async () => {
			for (const key of await caches.keys()) {
				if (key.startsWith(CACHE_PREFIX) && key !== CACHE) await caches.delete(key);
			}
			await sw.clients.claim();
		})()
	);
});

async function cacheFirst(request: Request, key: string): Promise<Response> {
	const cache = await caches.open(CACHE);
	const hit = await cache.match(key);
	if (hit) return hit;
	const res = await fetch(request);
	if (res.ok && res.type === 'basic') await cache.put(key, res.clone());
	return res;
}

async function networkWithCacheFallback(request: Request): Promise<Response> {
	try {
		return await fetch(request);
	} catch (err) {
		const hit = await caches.match(request);
		if (hit) return hit;
		throw err;
	}
}

sw.addEventListener('fetch', (event) => {
	const { request } = event;
	if (request.method !== 'GET') return;

	const url = new URL(request.url);
	if (url.origin !== sw.location.origin) return;
	if (isLiveData(url.pathname)) return; // network only, untouched

	if (request.mode === 'navigate') {
		// Every page route is the same SPA shell.
		event.respondWith(cacheFirst(request, SHELL));
		return;
	}
	if (PRECACHED.has(url.pathname)) {
		event.respondWith(cacheFirst(request, url.pathname));
		return;
	}
	event.respondWith(networkWithCacheFallback(request));
});
