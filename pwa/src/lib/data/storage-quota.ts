/** The browser's storage for the studio: how much is used, and whether it is kept (persisted). */

export interface StorageInfo {
	supported: boolean;
	usage: number;
	quota: number;
	persisted: boolean;
}

export async function storageInfo(): Promise<StorageInfo> {
	const storage = globalThis.navigator?.storage;
	if (!storage?.estimate) return { supported: false, usage: 0, quota: 0, persisted: false };
	const [estimate, persisted] = await Promise.all([
		storage.estimate(),
		storage.persisted ? storage.persisted() : Promise.resolve(false)
	]);
	return { supported: true, usage: estimate.usage ?? 0, quota: estimate.quota ?? 0, persisted };
}

/** Asks the browser to keep the studio's data (offline copies) when space runs low. */
export async function requestPersistence(): Promise<boolean> {
	const storage = globalThis.navigator?.storage;
	if (!storage?.persist) return false;
	try {
		return (await storage.persisted?.()) || (await storage.persist());
	} catch {
		return false;
	}
}
