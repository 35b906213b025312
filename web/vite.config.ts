import { defineConfig } from "vite";

// `VITE_API_BASE` (the BFF's URL) is read at build time; by default the app
// calls the origin it is served from.
export default defineConfig({
  // The manifest lists every built file, the lazily loaded ones too, so
  // the service worker (public/sw.js) keeps them all for offline use.
  build: { target: "es2022", sourcemap: true, manifest: "asset-manifest.json" },
  server: { port: 5173, strictPort: true },
  preview: { port: 5173, strictPort: true },
});
