/**
 * Installing the studio as an app, and updating it. A new service worker (a new deploy) waits
 * instead of taking over: the page shows "A new version is ready" and reloads only when the
 * person says so, so nothing they are doing is lost to a silent reload.
 */

interface InstallPrompt extends Event {
	prompt(): Promise<void>;
	userChoice: Promise<{ outcome: 'accepted' | 'dismissed' }>;
}

const CHECK_EVERY_MS = 30 * 60 * 1000;

class AppUpdate {
	/** A new version, installed and waiting for the person's go-ahead. */
	waiting = $state<ServiceWorker | null>(null);
	/** The browser's install offer, when it makes one. */
	installOffer = $state<InstallPrompt | null>(null);
	installed = $state(false);
	private started = false;
	private accepted = false;

	start(): void {
		if (this.started || typeof window === 'undefined') return;
		this.started = true;
		window.addEventListener('beforeinstallprompt', (e) => {
			e.preventDefault(); // offered in the app's own header instead of the browser's bar
			this.installOffer = e as InstallPrompt;
		});
		window.addEventListener('appinstalled', () => {
			this.installed = true;
			this.installOffer = null;
		});
		if (!('serviceWorker' in navigator)) return;
		navigator.serviceWorker.addEventListener('controllerchange', () => {
			// Only the update the person accepted reloads the page (the first install also
			// changes the controller, and must not).
			if (this.accepted) location.reload();
		});
		void navigator.serviceWorker.ready.then((reg) => this.watch(reg));
	}

	private watch(reg: ServiceWorkerRegistration): void {
		const offer = (sw: ServiceWorker | null) => {
			if (sw && navigator.serviceWorker.controller) this.waiting = sw;
		};
		offer(reg.waiting);
		reg.addEventListener('updatefound', () => {
			const incoming = reg.installing;
			incoming?.addEventListener('statechange', () => {
				if (incoming.state === 'installed') offer(incoming);
			});
		});
		setInterval(() => void reg.update().catch(() => {}), CHECK_EVERY_MS);
	}

	/** Switch to the waiting version; the page reloads once it has taken over. */
	apply(): void {
		if (!this.waiting) return;
		this.accepted = true;
		this.waiting.postMessage({ type: 'SKIP_WAITING' });
	}

	async install(): Promise<void> {
		const offer = this.installOffer;
		if (!offer) return;
		await offer.prompt();
		const choice = await offer.userChoice;
		if (choice.outcome === 'accepted') this.installed = true;
		this.installOffer = null;
	}
}

export const appUpdate = new AppUpdate();
