/**
 * Whether the studio server can be reached: the browser's online/offline events, corrected by
 * what requests to the server actually do (a network error means unreachable, any answer means
 * reachable), re-checked with /api/health while unreachable.
 */
import { api } from '$lib/api';

export type Reachability = 'checking' | 'ok' | 'down';

class Network {
	browserOnline = $state(globalThis.navigator?.onLine ?? true);
	server = $state<Reachability>('checking');
	private timer: ReturnType<typeof setInterval> | null = null;
	private started = false;

	get online(): boolean {
		return this.browserOnline && this.server !== 'down';
	}

	start(): void {
		if (this.started || typeof window === 'undefined') return;
		this.started = true;
		window.addEventListener('online', () => {
			this.browserOnline = true;
			void this.check();
		});
		window.addEventListener('offline', () => {
			this.browserOnline = false;
			this.server = 'down';
		});
		void this.check();
	}

	/** Asks /api/health; keeps asking every 5 s while the server cannot be reached. */
	async check(): Promise<boolean> {
		try {
			const h = await api.health();
			this.reached(h.status === 'ok');
			return true;
		} catch {
			this.unreachable();
			return false;
		}
	}

	reached(ok = true): void {
		this.server = ok ? 'ok' : 'down';
		if (ok && this.timer !== null) {
			clearInterval(this.timer);
			this.timer = null;
		}
	}

	unreachable(): void {
		this.server = 'down';
		if (this.timer === null && typeof window !== 'undefined') {
			this.timer = setInterval(() => void this.check(), 5000);
		}
	}
}

export const network = new Network();
