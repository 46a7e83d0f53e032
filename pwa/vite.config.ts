import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vitest/config';

// During `npm run dev`, forward API calls to the local Python backend.
const backend = process.env.STUDIO_BACKEND ?? 'http://127.0.0.1:8000';

export default defineConfig({
	plugins: [sveltekit()],
	server: {
		proxy: {
			'/api': backend,
			'/sync': { target: backend, ws: true },
			'/events': { target: backend, ws: true }
		}
	},
	test: {
		include: ['src/**/*.test.ts'],
		environment: 'jsdom'
	},
	// Under Vitest, components mount the browser way (Svelte's client build), not the SSR one.
	resolve: process.env.VITEST ? { conditions: ['browser'] } : undefined
});
