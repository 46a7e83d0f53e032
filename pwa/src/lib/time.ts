const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
	['year', 365 * 24 * 3600],
	['month', 30 * 24 * 3600],
	['week', 7 * 24 * 3600],
	['day', 24 * 3600],
	['hour', 3600],
	['minute', 60]
];

const formatter = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** "just now", "5 minutes ago", "yesterday", "3 weeks ago"... */
export function relativeTime(iso: string, now: number = Date.now()): string {
	const then = Date.parse(iso);
	if (Number.isNaN(then)) return 'unknown time';
	const seconds = Math.round((then - now) / 1000);
	if (Math.abs(seconds) < 45) return 'just now';
	for (const [unit, size] of UNITS) {
		if (Math.abs(seconds) >= size || unit === 'minute') {
			return formatter.format(Math.round(seconds / size), unit);
		}
	}
	return 'just now';
}

/** Full local date and time, for tooltips and <time title>. */
export function absoluteTime(iso: string): string {
	const then = Date.parse(iso);
	return Number.isNaN(then) ? iso : new Date(then).toLocaleString();
}
