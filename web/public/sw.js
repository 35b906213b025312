// The app's own files, kept for when the network drops (a door checking
// tickets in offline can still reload the page). Network first, so a new
// release is picked up at once; the cache answers only when the network
// cannot. API calls (another origin, or POSTs) are never touched.
const CACHE = "cityevents-app-v1";

// Installing keeps the page and the files it names (the built scripts and
// styles), so the first visit is enough to work offline afterwards.
self.addEventListener("install", (event) => event.waitUntil((async () => {
  const cache = await caches.open(CACHE);
  const page = await fetch(self.registration.scope, { cache: "no-cache" });
  const html = await page.clone().text();
  await cache.put(self.registration.scope, page);
  const files = [...html.matchAll(/(?:src|href)="([^"#]+)"/g)]
    .map((m) => new URL(m[1], self.registration.scope))
    .filter((u) => u.origin === self.location.origin);
  await cache.addAll(files.map((u) => u.href));
  await self.skipWaiting();
})()));
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin || url.pathname.startsWith("/v1/")) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const res = await fetch(req);
      if (res.ok) await cache.put(req.mode === "navigate" ? self.registration.scope : req, res.clone());
      return res;
    } catch (err) {
      const hit = await cache.match(req.mode === "navigate" ? self.registration.scope : req);
      if (hit) return hit;
      throw err;
    }
  })());
});
