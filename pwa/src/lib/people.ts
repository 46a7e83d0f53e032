/** How a project card names the people on it. */
import type { Collaborator } from '$lib/api';

/**
 * "Only you", "You and Bob", "You, Ana and Bob", "Only Ana": the person looking (`me`) is
 * "you" and comes first; the others by name, in the order the server lists them (owners first).
 */
export function peopleLabel(people: readonly Collaborator[], me: string | null | undefined): string {
	const others = people.filter((c) => c.id !== me).map((c) => c.name);
	const withMe = people.some((c) => c.id === me);
	const names = withMe ? ['You', ...others] : others;
	if (names.length === 0) return '';
	if (names.length === 1) return withMe ? 'Only you' : `Only ${names[0]}`;
	return `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}
