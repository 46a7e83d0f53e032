/**
 * Live tasks of one project: the list from GET /api/projects/{id}/tasks, then every change from
 * the `/events` socket (task.queued / progress / succeeded / failed / cancelled). The socket
 * reconnects by itself; after a reconnect the list is fetched again so nothing is missed.
 * The same socket's `node.stale` events become notices ("out of date: Ana replaced pier.png"),
 * which go again by themselves once the node's mark is cleared (see {@link followStaleMarks}).
 */
import { api, errorMessage, type Task, type TaskEvent } from '$lib/api';

export const ACTIVE = new Set(['queued', 'running']);
const RANK: Record<string, number> = { queued: 0, running: 1, succeeded: 2, failed: 2, cancelled: 2 };

/** Applies one event to the list (newest first); returns the new list, or the same one. */
export function applyEvent(tasks: Task[], event: TaskEvent, projectId: string): Task[] {
	const task = event.task;
	if (!task || !event.type.startsWith('task.') || (event.project_id ?? task.project_id) !== projectId) {
		return tasks;
	}
	const i = tasks.findIndex((t) => t.id === task.id);
	if (i === -1) return [task, ...tasks];
	const known = tasks[i]!;
	// Events and answers can cross (a task may fail before its POST returns): never go backwards.
	if ((RANK[task.state] ?? 0) < (RANK[known.state] ?? 0)) return tasks;
	const next = tasks.slice();
	next[i] = { ...known, ...task };
	return next;
}

/** Something the Notification area tells the person, with the node it is about. */
export interface Notice {
	id: string;
	text: string;
	node: string | null;
}

const MAX_NOTICES = 20;

function staleNotice(node: string | null, reason: string): Notice {
	return { id: `stale:${node ?? reason}`, text: `A node is out of date: ${reason.replace(/\.+$/, '')}.`, node };
}

/** Adds the notice an event makes (newest first; one per node), or returns the same list. */
export function applyNotice(notices: Notice[], event: TaskEvent, projectId: string): Notice[] {
	if (event.type !== 'node.stale' || event.project_id !== projectId) return notices;
	const node = typeof event.node === 'string' ? event.node : null;
	const reason = typeof event.reason === 'string' && event.reason ? event.reason : 'one of its inputs changed';
	const notice = staleNotice(node, reason);
	return [notice, ...notices.filter((n) => n.id !== notice.id)].slice(0, MAX_NOTICES);
}

/**
 * A notice for every node the document marks out of date that has none yet (after a reload, or a
 * mark made while this page was closed), unless the person dismissed it here. Returns the same
 * list when nothing is added.
 */
export function noticesFromMarks(
	notices: Notice[],
	marks: ReadonlyMap<string, string>,
	dismissed: ReadonlySet<string>
): Notice[] {
	const have = new Set(notices.map((n) => n.id));
	const added = [...marks]
		.map(([node, reason]) => staleNotice(node, reason))
		.filter((n) => !have.has(n.id) && !dismissed.has(n.id));
	return added.length ? [...notices, ...added].slice(0, MAX_NOTICES) : notices;
}

/**
 * Notices about out-of-date nodes follow the document: once a notice's node has been seen marked
 * there, the notice goes when the mark goes — a new take, "Keep as it is" in any browser, the node
 * deleted. Until then it stays (the event may arrive before the marked document does). `seen`
 * holds the ids of the notices whose mark has been seen, and is updated. Returns the same list
 * when nothing goes.
 */
export function followStaleMarks(notices: Notice[], stale: ReadonlySet<string>, seen: Set<string>): Notice[] {
	let dropped = false;
	const kept = notices.filter((n) => {
		if (!n.node || !n.id.startsWith('stale:')) return true;
		if (stale.has(n.node)) {
			seen.add(n.id);
			return true;
		}
		if (!seen.has(n.id)) return true;
		seen.delete(n.id);
		dropped = true;
		return false;
	});
	return dropped ? kept : notices;
}

/** "about 2 minutes left", "under a minute left", or '' when unknown. */
export function etaWords(seconds: number | null | undefined): string {
	if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '';
	if (seconds < 60) return 'under a minute left';
	const minutes = Math.round(seconds / 60);
	if (minutes < 60) return `about ${minutes} ${minutes === 1 ? 'minute' : 'minutes'} left`;
	const hours = Math.round(minutes / 6) / 10;
	return `about ${hours} hours left`;
}

export class ProjectTasks {
	tasks = $state<Task[]>([]);
	notices = $state<Notice[]>([]);
	connected = $state(false);
	error = $state<string | null>(null);
	private socket: WebSocket | null = null;
	private retry: ReturnType<typeof setTimeout> | null = null;
	private closed = false;
	private attempts = 0;
	private listeners = new Set<(event: TaskEvent) => void>();
	private staleNow: ReadonlySet<string> = new Set();
	private seenStale = new Set<string>();
	private dismissed = new Set<string>();

	constructor(
		readonly projectId: string,
		private token: string
	) {
		this.connect();
	}

	get byNode(): Map<string, Task> {
		const map = new Map<string, Task>();
		for (const t of [...this.tasks].reverse()) if (t.node_id) map.set(t.node_id, t);
		return map;
	}

	private async refresh(): Promise<void> {
		try {
			this.tasks = await api.projectTasks(this.projectId);
			this.error = null;
		} catch (err) {
			this.error = errorMessage(err);
		}
	}

	private connect(): void {
		if (this.closed || typeof WebSocket === 'undefined') return;
		const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
		const ws = new WebSocket(`${scheme}//${location.host}/events?token=${encodeURIComponent(this.token)}`);
		this.socket = ws;
		ws.onopen = () => {
			this.connected = true;
			this.attempts = 0;
			void this.refresh();
		};
		ws.onmessage = (e) => {
			try {
				const event = JSON.parse(String(e.data)) as TaskEvent;
				this.tasks = applyEvent(this.tasks, event, this.projectId);
				this.notices = followStaleMarks(applyNotice(this.notices, event, this.projectId), this.staleNow, this.seenStale);
				for (const listener of this.listeners) listener(event);
			} catch {
				// Not an event this version understands.
			}
		};
		ws.onclose = () => {
			this.connected = false;
			this.socket = null;
			if (this.closed) return;
			this.attempts += 1;
			this.retry = setTimeout(() => this.connect(), Math.min(10_000, 250 * 2 ** this.attempts));
		};
	}

	/** Also hands every event of the socket to `listener` (asset uploads follow theirs); returns
	 * the function that stops it. */
	listen(listener: (event: TaskEvent) => void): () => void {
		this.listeners.add(listener);
		return () => this.listeners.delete(listener);
	}

	/** Starts a task and shows it at once (the queued event updates it). */
	add(task: Task): void {
		this.tasks = applyEvent(this.tasks, { type: 'task.queued', project_id: this.projectId, task }, this.projectId);
	}

	dismiss(id: string): void {
		this.notices = this.notices.filter((n) => n.id !== id);
		this.seenStale.delete(id);
		this.dismissed.add(id);
	}

	/** The nodes the project document marks out of date now, with why (tell it on every change). */
	staleMarks(marks: ReadonlyMap<string, string>): void {
		const nodes = new Set(marks.keys());
		this.staleNow = nodes;
		// A mark that went lets its notice come back if the node is marked again later.
		for (const id of this.dismissed) if (!nodes.has(id.slice('stale:'.length))) this.dismissed.delete(id);
		this.notices = followStaleMarks(noticesFromMarks(this.notices, marks, this.dismissed), nodes, this.seenStale);
	}

	async cancel(id: string): Promise<void> {
		const task = await api.cancelTask(id);
		this.tasks = applyEvent(this.tasks, { type: 'task.cancel', project_id: this.projectId, task }, this.projectId);
	}

	destroy(): void {
		this.closed = true;
		if (this.retry) clearTimeout(this.retry);
		this.socket?.close();
	}
}
