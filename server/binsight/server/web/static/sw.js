// binsight's service worker: the page keeps working on a phone without a connection.
// Network first for everything it handles, so an online page is always current; when the network
// fails, the last good copy answers: the app shell (the page, its scripts, styles and icons) and the
// last bins, plans and manifests fetched. Answers from the cache carry `X-Binsight-Cached: <ms>` (when
// they were fetched), so the page can say it is showing saved data.
const SHELL = 'binsight-shell-v1';
const DATA = 'binsight-data-v1';
const SHELL_FILES = ['/', '/static/css/app.css', '/static/js/main.js', '/static/icons/favicon.svg'];
// API reads worth having offline: who I am, the bins, plans and manifests. Nothing else is stored.
const DATA_PATHS = [/^\/api\/me$/, /^\/api\/bins$/, /^\/api\/plans(\/|$)/, /^\/api\/manifests?(\/|$)/];
const FETCHED_AT = 'X-Binsight-Fetched';

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.addAll(SHELL_FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== SHELL && k !== DATA).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

// Signing out on this page empties the saved data (a shared phone keeps no one's plan). The page also
// names the files it loaded before this worker ran (its first visit), so they are saved too.
self.addEventListener('message', (event) => {
  if (event.data === 'binsight:forget') {
    event.waitUntil(caches.delete(DATA));
  } else if (event.data && event.data.type === 'binsight:keep' && Array.isArray(event.data.urls)) {
    const own = event.data.urls.map((u) => new URL(u, self.location.origin))
      .filter((u) => u.origin === self.location.origin && u.pathname.startsWith('/static/'));
    event.waitUntil(caches.open(SHELL).then((c) => Promise.all(own.map((u) => c.match(u.pathname)
      .then((hit) => hit || fetch(u.pathname).then((res) => (res.ok ? c.put(u.pathname, res) : null)))
      .catch(() => null)))));
  }
});

function stamped(res) {
  const headers = new Headers(res.headers);
  headers.set(FETCHED_AT, String(Date.now()));
  return res.blob().then((body) => new Response(body, { status: res.status, statusText: res.statusText, headers }));
}

async function networkFirst(request, cacheName) {
  const cache = await caches.open(cacheName);
  try {
    const res = await fetch(request);
    if (res.ok) await cache.put(request, await stamped(res.clone()));
    return res;
  } catch (err) {
    const saved = await cache.match(request, { ignoreVary: true });
    if (!saved) throw err;
    const headers = new Headers(saved.headers);
    headers.set('X-Binsight-Cached', headers.get(FETCHED_AT) || '0');
    return new Response(await saved.blob(), { status: saved.status, statusText: saved.statusText, headers });
  }
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname === '/' || url.pathname.startsWith('/static/')) {
    // The page's own address may carry a query: one copy of the shell serves them all.
    event.respondWith(networkFirst(url.pathname === '/' ? new Request('/') : request, SHELL));
  } else if (DATA_PATHS.some((re) => re.test(url.pathname))) {
    event.respondWith(networkFirst(request, DATA));
  }
});
