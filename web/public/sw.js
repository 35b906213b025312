// The app's own files, kept for when the network drops (a door checking
// tickets in offline can still reload the page). Network first, so a new
// release is picked up at once; the cache answers only when the network
// cannot.
const CACHE = "cityevents-app-v1";

// Installing keeps the page and the files it names (the built scripts and
// styles), so the first visit is enough to work offline afterwards.
self.addEventListener("install", (event) => event.waitUntil((async () => {
  const cache = await caches.open(CACHE);
  const page = await fetch(self.registration.scope, { cache: "no-cache" });
  await keepPage(cache, page);
  await self.skipWaiting();
})()));

/** Keeps `page` and every file of its build (those it names, and the
 *  lazily loaded ones the build's asset-manifest.json lists), and drops
 *  files of older releases (the build hashes their names). */
async function keepPage(cache, page) {
  const html = await page.clone().text();
  await cache.put(self.registration.scope, page);
  const named = [...html.matchAll(/(?:src|href)="([^"#]+)"/g)].map((m) => m[1]);
  try {
    const manifest = await (await fetch(new URL("asset-manifest.json", self.registration.scope), { cache: "no-cache" })).json();
    for (const chunk of Object.values(manifest)) named.push(chunk.file, ...(chunk.css ?? []), ...(chunk.assets ?? []));
  } catch {
    // Without a manifest (a dev server), the page's own files.
  }
  const files = [...new Set(named.map((f) => new URL(f, self.registration.scope).href))]
    .filter((u) => u.startsWith(self.location.origin));
  const missing = [];
  for (const f of files) if (!(await cache.match(f))) missing.push(f);
  await cache.addAll(missing);
  for (const req of await cache.keys()) {
    if (req.url !== self.registration.scope && !files.includes(req.url)) await cache.delete(req);
  }
}
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  // Only the page and its built files: API calls and images (another
  // origin, POSTs, or `/v1/…`, `/media/…` when served beside the API) pass
  // untouched.
  const own = req.mode === "navigate" || new URL("assets/", self.registration.scope).pathname === url.pathname.slice(0, url.pathname.lastIndexOf("/") + 1);
  if (req.method !== "GET" || url.origin !== self.location.origin || !own) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const res = await fetch(req);
      if (res.ok && req.mode === "navigate") event.waitUntil(keepPage(cache, res.clone()).catch(() => undefined));
      else if (res.ok) await cache.put(req, res.clone());
      return res;
    } catch (err) {
      const hit = await cache.match(req.mode === "navigate" ? self.registration.scope : req);
      if (hit) return hit;
      throw err;
    }
  })());
});
