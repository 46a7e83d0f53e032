/**
 * Typed client for the studio backend's JSON API (same origin).
 *
 * Every request carries `Authorization: Bearer <token>` when a token is stored
 * under localStorage["studio.token"]. Failures are RFC 9457 problem details
 * (`application/problem+json` with `title`, `detail`, `status`); they are
 * raised as {@link ApiError} so the UI can show `detail` to the person.
 */

import type { components, operations } from './openapi';

export const TOKEN_KEY = 'studio.token';

/** Request bodies and query parameters, generated from the server's OpenAPI document. */
type Schemas = components['schemas'];
export type ProjectListQuery = NonNullable<operations['ApiProjectsListProjects']['parameters']['query']>;
export type RegisterInput = Schemas['RegisterIn'];
export type LoginInput = Schemas['LoginIn'];
export type ProjectChanges = Schemas['ProjectPatch'];
export type TaskInput = Schemas['TaskIn'];

// ---------------------------------------------------------------------------
// Wire types

export interface User {
	id: string;
	name: string;
	guest: boolean;
}

/** What a guest handed over when it signed in to an account (the sign-in's `from_guest`). */
export type HandedOver = Schemas['HandedOver'];

export interface AuthResponse {
	token: string;
	user: User;
	/** Signing in from a guest session: what moved to the account (null or absent otherwise). */
	from_guest?: HandedOver | null;
}

export interface Template {
	id: string;
	name: string;
	description: string;
	[extra: string]: unknown;
}

export type ProjectRole = 'owner' | 'editor' | 'viewer' | (string & {});

/** A person on a project (GET /api/projects lists them on each project, owners first). */
export type Collaborator = Schemas['Collaborator'];

/**
 * A project as the server describes it (`ProjectOut` in the OpenAPI document). `collaborators`
 * is optional only because lists cached by older versions of the studio lack it.
 */
export type Project = Omit<Schemas['ProjectOut'], 'role' | 'collaborators' | 'deleted_at' | 'preview_url'> & {
	role: ProjectRole;
	collaborators?: Collaborator[];
	deleted_at?: string | null;
	preview_url?: string;
};

/** A project as an import made it; `missing_media`: files whose content the file did not carry. */
export type ImportedProject = Project & { missing_media?: string[] };

export type ProjectList = Omit<Schemas['ProjectListOut'], 'items'> & { items: Project[] };

export type ProjectSort = 'updated' | 'created' | 'name' | '-updated' | '-created' | '-name';

export interface ProjectQuery extends Pick<ProjectListQuery, 'q' | 'template'> {
	sort?: ProjectSort;
	archived?: 'false' | 'true' | 'all';
}

/** `id`: a UUID made by this browser (projects created offline keep it everywhere). */
export type NewProject = Schemas['ProjectIn'];

export type BulkAction = Schemas['BulkIn']['action'];

export interface BulkResult {
	action: BulkAction;
	results: { id: string; ok: boolean; status: number; detail?: string }[];
}

/** One entry of GET /api/projects/{id}/members. */
export interface Member {
	user: { id: string; name: string; email: string | null };
	role: ProjectRole;
	added_at: string;
}

export type TaskState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface Task {
	id: string;
	kind: string;
	project_id: string;
	node_id: string | null;
	state: TaskState;
	progress: number;
	queue_position: number | null;
	eta_s: number | null;
	error: string | null;
	outputs: unknown;
	created_at?: string;
	[extra: string]: unknown;
}

export interface TaskEvent {
	type: string;
	project_id?: string;
	task?: Task;
	[extra: string]: unknown;
}

/** An uploaded file of a project, as `POST /api/projects/{id}/assets` answers. */
export interface AssetOut {
	id: string;
	name: string;
	kind: string;
	path: string;
	sha256: string;
	size: number;
}

/** What the studio takes as assets: the largest file, and the file name endings of each kind. */
export interface AssetKinds {
	max_bytes: number;
	kinds: Record<string, string[]>;
}

export interface Health {
	status: string;
	[extra: string]: unknown;
}

/** RFC 9457 problem details, as much of it as the UI uses. */
export interface ProblemDetails {
	type?: string;
	title?: string;
	status?: number;
	detail?: string;
	instance?: string;
	[extension: string]: unknown;
}

// ---------------------------------------------------------------------------
// Errors

export class ApiError extends Error {
	readonly status: number;
	readonly title: string;
	readonly detail: string;
	readonly problem: ProblemDetails | null;

	constructor(status: number, title: string, detail: string, problem: ProblemDetails | null = null) {
		super(detail || title);
		this.name = 'ApiError';
		this.status = status;
		this.title = title;
		this.detail = detail || title;
		this.problem = problem;
	}

	/** The request never reached the server (offline, server down, CORS...). */
	get isNetworkError(): boolean {
		return this.status === 0;
	}
}

/** A human-readable message for any thrown value. */
export function errorMessage(err: unknown): string {
	if (err instanceof ApiError) return err.detail;
	if (err instanceof Error && err.message) return err.message;
	return 'Something went wrong.';
}

function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function toApiError(res: Response): Promise<ApiError> {
	const fallbackTitle = res.statusText || `HTTP ${res.status}`;
	const type = res.headers.get('content-type') ?? '';
	if (type.includes('json')) {
		try {
			const body: unknown = await res.json();
			if (isRecord(body)) {
				const problem = body as ProblemDetails;
				const title = typeof problem.title === 'string' ? problem.title : fallbackTitle;
				const detail = typeof problem.detail === 'string' ? problem.detail : title;
				const status = typeof problem.status === 'number' ? problem.status : res.status;
				return new ApiError(status, title, detail, problem);
			}
		} catch {
			// Malformed JSON: fall through to the generic error.
		}
	}
	return new ApiError(res.status, fallbackTitle, `The server answered ${res.status} ${fallbackTitle}.`);
}

// ---------------------------------------------------------------------------
// Token storage

export function getToken(): string | null {
	try {
		return globalThis.localStorage?.getItem(TOKEN_KEY) ?? null;
	} catch {
		return null; // storage disabled (private mode, sandboxed iframe)
	}
}

export function setToken(token: string): void {
	try {
		globalThis.localStorage?.setItem(TOKEN_KEY, token);
	} catch {
		// Not persisted; the session still works until the page is closed.
	}
}

export function clearToken(): void {
	try {
		globalThis.localStorage?.removeItem(TOKEN_KEY);
	} catch {
		// Nothing stored, nothing to clear.
	}
}

// ---------------------------------------------------------------------------
// Core request helpers

type Query = Record<string, string | number | boolean | undefined | null>;

export interface RequestOptions {
	query?: Query;
	body?: unknown;
	signal?: AbortSignal;
	headers?: Record<string, string>;
}

function buildUrl(path: string, query?: Query): string {
	if (!query) return path;
	const params = new URLSearchParams();
	for (const [key, value] of Object.entries(query)) {
		if (value === undefined || value === null) continue;
		params.set(key, String(value));
	}
	const qs = params.toString();
	return qs ? `${path}?${qs}` : path;
}

/** Performs a request and returns the raw successful Response. */
export async function send(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
	const headers = new Headers(opts.headers);
	headers.set('Accept', headers.get('Accept') ?? 'application/json, application/problem+json');
	const token = getToken();
	if (token) headers.set('Authorization', `Bearer ${token}`);

	let body: BodyInit | undefined;
	if (opts.body !== undefined) {
		headers.set('Content-Type', 'application/json');
		body = JSON.stringify(opts.body);
	}

	let res: Response;
	try {
		res = await fetch(buildUrl(path, opts.query), { method, headers, body, signal: opts.signal });
	} catch (err) {
		if (err instanceof DOMException && err.name === 'AbortError') throw err;
		throw new ApiError(0, 'Network error', 'Could not reach the studio server. Is it running?');
	}
	if (!res.ok) throw await toApiError(res);
	return res;
}

/**
 * Sends `file` as the multipart field `file` with XMLHttpRequest, the one browser API that
 * reports upload progress: `onProgress(sent, total)` as the bytes go. Resolves to the JSON answer;
 * failures are {@link ApiError}s as with {@link request}.
 */
export function sendFile<T>(
	method: 'POST' | 'PUT',
	path: string,
	file: File,
	onProgress: (sent: number, total: number) => void,
	signal?: AbortSignal
): Promise<T> {
	return new Promise<T>((resolve, reject) => {
		const xhr = new XMLHttpRequest();
		xhr.open(method, path);
		xhr.setRequestHeader('Accept', 'application/json, application/problem+json');
		const token = getToken();
		if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
		xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
		xhr.onerror = () => reject(new ApiError(0, 'Network error', 'The upload was cut off: could not reach the studio server.'));
		xhr.onabort = () => reject(new DOMException('The upload was stopped.', 'AbortError'));
		xhr.onload = () => {
			const res = new Response(xhr.status === 204 ? null : xhr.responseText, {
				status: xhr.status,
				statusText: xhr.statusText,
				headers: { 'content-type': xhr.getResponseHeader('content-type') ?? '' }
			});
			if (!res.ok) {
				void toApiError(res).then(reject);
				return;
			}
			try {
				resolve(JSON.parse(xhr.responseText) as T);
			} catch {
				reject(new ApiError(xhr.status, 'Bad response', 'The server sent a response that is not valid JSON.'));
			}
		};
		signal?.addEventListener('abort', () => xhr.abort(), { once: true });
		const form = new FormData();
		form.set('file', file);
		xhr.send(form);
	});
}

/** Performs a request and decodes a JSON body (undefined for 204). */
export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
	const res = await send(method, path, opts);
	if (res.status === 204) return undefined as T;
	try {
		return (await res.json()) as T;
	} catch {
		throw new ApiError(res.status, 'Bad response', 'The server sent a response that is not valid JSON.');
	}
}

// ---------------------------------------------------------------------------
// Endpoints

export const api = {
	health(signal?: AbortSignal): Promise<Health> {
		return request<Health>('GET', '/api/health', { signal });
	},

	/** Creates a guest account and stores its token. */
	async startGuest(): Promise<AuthResponse> {
		const auth = await request<AuthResponse>('POST', '/api/auth/guest', { body: {} });
		setToken(auth.token);
		return auth;
	},

	templates(signal?: AbortSignal): Promise<Template[]> {
		return request<Template[]>('GET', '/api/templates', { signal });
	},

	projects(query: ProjectQuery = {}, signal?: AbortSignal): Promise<ProjectList> {
		const q = query.q?.trim();
		return request<ProjectList>('GET', '/api/projects', {
			query: {
				q: q ? q : undefined,
				sort: query.sort ?? '-updated',
				template: query.template || undefined,
				archived: query.archived && query.archived !== 'false' ? query.archived : undefined,
				limit: 500
			},
			signal
		});
	},

	project(id: string, signal?: AbortSignal): Promise<Project> {
		return request<Project>('GET', `/api/projects/${encodeURIComponent(id)}`, { signal });
	},

	updateProject(id: string, changes: ProjectChanges): Promise<Project> {
		return request<Project>('PATCH', `/api/projects/${encodeURIComponent(id)}`, { body: changes });
	},

	bulk(action: Exclude<BulkAction, 'export'>, ids: string[]): Promise<BulkResult> {
		return request<BulkResult>('POST', '/api/projects/bulk', { body: { action, ids } });
	},

	/** The zip of every chosen project's bundle, as a Blob to download. */
	async bulkExport(ids: string[]): Promise<Blob> {
		const res = await send('POST', '/api/projects/bulk', {
			body: { action: 'export', ids },
			headers: { Accept: 'application/zip, application/problem+json' }
		});
		return res.blob();
	},

	restoreProject(id: string): Promise<Project> {
		return request<Project>('POST', `/api/projects/${encodeURIComponent(id)}/restore`);
	},

	/**
	 * Imports an exported file: a bundle or zip is one new project, the gallery's bulk export
	 * every project it holds (all or none). Media a bundle could not carry are `missing_media`.
	 */
	async importProject(file: File): Promise<ImportedProject[]> {
		const form = new FormData();
		form.set('file', file);
		const headers: Record<string, string> = { Accept: 'application/json, application/problem+json' };
		const token = getToken();
		if (token) headers.Authorization = `Bearer ${token}`;
		let res: Response;
		try {
			res = await fetch('/api/projects/import', { method: 'POST', body: form, headers });
		} catch {
			throw new ApiError(0, 'Network error', 'Could not reach the studio server. Is it running?');
		}
		if (!res.ok) throw await toApiError(res);
		const body = (await res.json()) as ImportedProject | { items: ImportedProject[] };
		return 'items' in body ? body.items : [body];
	},

	members(id: string, signal?: AbortSignal): Promise<Member[]> {
		return request<Member[]>('GET', `/api/projects/${encodeURIComponent(id)}/members`, { signal });
	},

	me(signal?: AbortSignal): Promise<User> {
		return request<User>('GET', '/api/me', { signal });
	},

	/** Turns the current guest (when signed in as one) into an account that keeps its projects. */
	register(input: RegisterInput): Promise<AuthResponse> {
		return request<AuthResponse>('POST', '/api/auth/register', { body: input });
	},

	login(input: LoginInput): Promise<AuthResponse> {
		return request<AuthResponse>('POST', '/api/auth/login', { body: input });
	},

	/** Revokes the current token on the server. */
	logout(): Promise<void> {
		return request<void>('POST', '/api/auth/logout');
	},

	projectTasks(id: string, signal?: AbortSignal): Promise<Task[]> {
		return request<Task[]>('GET', `/api/projects/${encodeURIComponent(id)}/tasks`, { signal });
	},

	startTask(projectId: string, input: TaskInput): Promise<Task> {
		return request<Task>('POST', `/api/projects/${encodeURIComponent(projectId)}/tasks`, { body: input });
	},

	cancelTask(id: string): Promise<Task> {
		return request<Task>('POST', `/api/tasks/${encodeURIComponent(id)}/cancel`);
	},

	createProject(input: NewProject): Promise<Project> {
		return request<Project>('POST', '/api/projects', { body: input });
	},

	/** What the studio takes as assets (file kinds and the largest size). */
	assetKinds(signal?: AbortSignal): Promise<AssetKinds> {
		return request<AssetKinds>('GET', '/api/asset-kinds', { signal });
	},

	/** Uploads a file into the project's assets, telling `onProgress` how far it is. */
	uploadAsset(projectId: string, file: File, onProgress: (sent: number, total: number) => void, signal?: AbortSignal): Promise<AssetOut> {
		return sendFile<AssetOut>('POST', `/api/projects/${encodeURIComponent(projectId)}/assets`, file, onProgress, signal);
	},

	/** A new version of an asset (same id): the nodes that use it are marked out of date. */
	replaceAsset(
		projectId: string,
		assetId: string,
		file: File,
		onProgress: (sent: number, total: number) => void,
		signal?: AbortSignal
	): Promise<AssetOut> {
		const path = `/api/projects/${encodeURIComponent(projectId)}/assets/${encodeURIComponent(assetId)}/file`;
		return sendFile<AssetOut>('PUT', path, file, onProgress, signal);
	},

	/** An asset's preview image as a Blob; a 404 ApiError while it has none. */
	async assetThumbnail(projectId: string, assetId: string, signal?: AbortSignal): Promise<Blob> {
		const path = `/api/projects/${encodeURIComponent(projectId)}/assets/${encodeURIComponent(assetId)}/thumbnail`;
		const res = await send('GET', path, { signal, headers: { Accept: 'image/*, application/problem+json' } });
		return res.blob();
	},

	/** The project's preview image as a Blob (use URL.createObjectURL). */
	async projectPreview(id: string, signal?: AbortSignal): Promise<Blob> {
		const res = await send('GET', `/api/projects/${encodeURIComponent(id)}/preview`, {
			signal,
			headers: { Accept: 'image/*' }
		});
		return res.blob();
	}
};
