/**
 * The signed-in person, kept across reloads: the token in localStorage["studio.token"] and the
 * user in localStorage["studio.user"], so the studio opens offline as the same person.
 */
import { TOKEN_KEY, api, clearToken, getToken, setToken, type AuthResponse, type RegisterInput, type User } from '$lib/api';
import { handOver, handedOverNote } from './device';
import { readJson, removeKey, writeJson } from './storage';

export const USER_KEY = 'studio.user';

class Session {
	token = $state<string | null>(getToken());
	user = $state<User | null>(readJson<User | null>(USER_KEY, null));
	/** Said once after signing in or up ("Signed in as Inès. 2 projects from your guest…"). */
	welcome = $state<string | null>(null);

	constructor() {
		// Signing in or out in one tab does so in every tab of the studio (a signed-out tab must
		// not keep a project open, nor its documents, which signing out deletes).
		globalThis.addEventListener?.('storage', (e: StorageEvent) => {
			if (e.key !== null && e.key !== TOKEN_KEY && e.key !== USER_KEY) return;
			this.token = getToken();
			this.user = readJson<User | null>(USER_KEY, null);
		});
	}

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

	/**
	 * Signs in to an existing account (this device then works as that person). From a guest
	 * session, the guest's projects become the account's (the server says which in `from_guest`)
	 * and what this device keeps of them goes along (see `device.ts`).
	 */
	async signIn(email: string, password: string): Promise<AuthResponse> {
		const before = this.user;
		const auth = await api.login({ email: email.trim(), password });
		if (before?.guest) handOver(before.id, auth.user.id);
		this.adopt(auth);
		this.welcome = [`Signed in as ${auth.user.name}.`, handedOverNote(auth.from_guest)].filter(Boolean).join(' ');
		return auth;
	}

	/** Creates an account; a guest keeps its id, so its projects and local copies stay as they are. */
	async register(input: RegisterInput): Promise<AuthResponse> {
		const auth = await api.register({ ...input, name: input.name.trim(), email: input.email.trim() });
		this.adopt(auth);
		this.welcome = `Signed up as ${auth.user.name}. Your projects came with you.`;
		return auth;
	}

	/**
	 * Signs out: the server revokes the token when it can be reached (offline, the token is only
	 * forgotten here). What this device keeps of the person is removed by `library.signOut`.
	 */
	async signOut(): Promise<void> {
		try {
			if (this.token) await api.logout();
		} catch {
			// Offline or already revoked: forgetting it here is what matters to this device.
		}
		this.forget();
	}

	/**
	 * Forget the session (a 401, or signing out). Local project copies stay in IndexedDB: after
	 * a 401 they may hold edits the person gets back by signing in again.
	 */
	forget(): void {
		clearToken();
		removeKey(USER_KEY);
		this.token = null;
		this.user = null;
		this.welcome = null;
	}
}

export const session = new Session();
