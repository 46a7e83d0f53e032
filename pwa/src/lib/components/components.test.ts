import { cleanup, render, screen } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';
import AccountForm from '$lib/components/AccountForm.svelte';
import ArcPreview from '$lib/components/ArcPreview.svelte';
import SyncBadge from '$lib/studio/SyncBadge.svelte';

describe('SyncBadge', () => {
	it('says each sync state in words, as a live status', () => {
		const { rerender } = render(SyncBadge, { state: { kind: 'synced', pending: 0 } });
		const badge = screen.getByRole('status');
		expect(badge.textContent?.trim()).toBe('Synced');
		rerender({ state: { kind: 'offline', pending: 3 } });
		expect(badge.textContent?.trim()).toBe('Offline, 3 changes pending');
		expect(badge.dataset.pending).toBe('3');
		rerender({ state: { kind: 'error', pending: 1, reason: 'You are not a member of this project.' } });
		expect(badge.textContent).toContain('Sync error: You are not a member of this project.');
	});
});

describe('ArcPreview', () => {
	it('describes the arc for screen readers with each act’s share', () => {
		render(ArcPreview, {
			label: 'Story arc of Three-Act',
			acts: [
				{ name: 'Act I', title: 'Setup', share: 25, phase: 'setup' },
				{ name: 'Act II', title: 'Confrontation', share: 50, phase: 'confrontation' },
				{ name: 'Act III', title: 'Resolution', share: 25, phase: 'resolution' }
			],
			points: [{ name: 'Midpoint', position: 50 }]
		});
		const figure = screen.getByRole('figure');
		expect(figure.getAttribute('aria-label')).toBe(
			'Story arc of Three-Act: Act I Setup 25%, Act II Confrontation 50%, Act III Resolution 25%'
		);
	});
});

describe('AccountForm', () => {
	afterEach(cleanup);

	it('signs up with a name, an email and a new password the server will accept', () => {
		render(AccountForm, { mode: 'register', heading: false });
		const form = screen.getByRole('form', { name: 'Sign up' });
		expect(form.dataset.testid).toBe('register-form');
		expect(screen.getByLabelText('Name').getAttribute('autocomplete')).toBe('name');
		expect(screen.getByLabelText('Email').getAttribute('autocomplete')).toBe('email');
		const password = screen.getByLabelText('Password');
		expect(password.getAttribute('autocomplete')).toBe('new-password');
		expect(password.getAttribute('minlength')).toBe('10'); // what the server requires
		expect(password.getAttribute('aria-describedby')).toBeTruthy();
		expect(document.getElementById(password.getAttribute('aria-describedby')!)?.textContent).toBe('At least 10 characters.');
		expect(screen.getByRole('button', { name: 'Sign up and keep my projects' })).toBeTruthy();
	});

	it('signs in with an email and the current password, under its own heading', () => {
		render(AccountForm, { mode: 'signin' });
		const form = screen.getByRole('form', { name: 'Sign in' });
		expect(form.dataset.testid).toBe('signin-form');
		expect(screen.queryByLabelText('Name')).toBeNull();
		expect(screen.getByLabelText('Email').dataset.testid).toBe('signin-email');
		expect(screen.getByLabelText('Password').getAttribute('autocomplete')).toBe('current-password');
		expect(screen.getByLabelText('Password').hasAttribute('minlength')).toBe(false);
		expect(screen.getByRole('heading', { name: 'Sign in' })).toBeTruthy();
		expect(screen.getByRole('button', { name: 'Sign in' }).dataset.testid).toBe('signin-submit');
	});
});
