// The studio is a client-only single-page app: adapter-static writes one
// fallback index.html and the Python server serves it for every page route.
export const ssr = false;
export const prerender = false;
