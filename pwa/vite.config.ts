import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vite';

// During `npm run dev`, forward API calls to the local Python backend.
const backend = process.env.STUDIO_BACKEND ?? 'http://127.0.0.1:8000';

export default defineConfig({
	plugins: [sveltekit()],
	server: {
		proxy: {
			'/api': backend,
			'/sync': { target: backend, ws: true }
		}
	}
});
