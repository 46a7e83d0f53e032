/**
 * The signed-in person, kept across reloads: the token in localStorage["studio.token"] and the
 * user in localStorage["studio.user"], so the studio opens offline as the same person.
 */
import { api, clearToken, getToken, setToken, type AuthResponse, type User } from '$lib/api';
import { readJson, removeKey, writeJson } from './storage';

export const USER_KEY = 'studio.user';

class Session {
	token = $state<string | null>(getToken());
	user = $state<User | null>(readJson<User | null>(USER_KEY, null));

	get signedIn(): boolean {
		return this.token !== null;
	}

	/** The key under which this person's local data is kept (the user id, or "me" before it is known). */
	get key(): string {
		return this.user?.id ?? 'me';
	}

	adopt(auth: AuthResponse): void {
		setToken(auth.token);
		writeJson(USER_KEY, auth.user);
		this.token = auth.token;
		this.user = auth.user;
	}

	setUser(user: User): void {
		writeJson(USER_KEY, user);
		this.user = user;
	}

	async startGuest(): Promise<void> {
		this.adopt(await api.startGuest());
	}

	/** Signs in to an existing account (this device then works as that person). */
	async signIn(email: string, password: string): Promise<User> {
		const auth = await api.login({ email: email.trim(), password });
		this.adopt(auth);
		return auth.user;
	}

	/**
	 * Signs out: the server revokes the token when it can be reached (offline, the token is only
	 * forgotten here). Local project copies stay in IndexedDB for the next sign-in.
	 */
	async signOut(): Promise<void> {
		try {
			if (this.token) await api.logout();
		} catch {
			// Offline or already revoked: forgetting it here is what matters to this device.
		}
		this.forget();
	}

	/** Forget the session (a 401, or signing out). Local project copies stay in IndexedDB. */
	forget(): void {
		clearToken();
		removeKey(USER_KEY);
		this.token = null;
		this.user = null;
	}
}

export const session = new Session();
