// Ambient types shared by the whole app. The App namespace is where SvelteKit
// looks for app-specific Error/PageData/... shapes; none are customised yet.
declare global {
	namespace App {}
}

export {};
