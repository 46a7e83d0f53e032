import { describe, expect, it } from 'vitest';
import { peopleLabel } from './people';

const ana = { id: 'a', name: 'Ana', role: 'owner' };
const bob = { id: 'b', name: 'Bob', role: 'editor' };
const cy = { id: 'c', name: 'Cy', role: 'viewer' };

describe('peopleLabel', () => {
	it('calls the person looking "you" and names the others', () => {
		expect(peopleLabel([ana], 'a')).toBe('Only you');
		expect(peopleLabel([ana, bob], 'a')).toBe('You and Bob');
		expect(peopleLabel([ana, bob, cy], 'b')).toBe('You, Ana and Cy');
		expect(peopleLabel([ana], 'b')).toBe('Only Ana');
		expect(peopleLabel([ana, bob], null)).toBe('Ana and Bob');
		expect(peopleLabel([], 'a')).toBe('');
	});
});
