import { defineConfig } from "vite";

// `VITE_API_BASE` (the BFF's URL) is read at build time; by default the app
// calls the origin it is served from.
export default defineConfig({
  build: { target: "es2022", sourcemap: true },
  server: { port: 5173, strictPort: true },
  preview: { port: 5173, strictPort: true },
});
