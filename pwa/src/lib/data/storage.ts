/** JSON in localStorage that never throws (storage can be disabled or full). */

export function readJson<T>(key: string, fallback: T): T {
	try {
		const raw = globalThis.localStorage?.getItem(key);
		return raw ? (JSON.parse(raw) as T) : fallback;
	} catch {
		return fallback;
	}
}

export function writeJson(key: string, value: unknown): void {
	try {
		globalThis.localStorage?.setItem(key, JSON.stringify(value));
	} catch {
		// Not kept; the app still works for this page.
	}
}

export function removeKey(key: string): void {
	try {
		globalThis.localStorage?.removeItem(key);
	} catch {
		// Nothing stored.
	}
}
