#!/usr/bin/env bash
# The web app's own checks (part of `make test`): its client generated from
# proto/ again, `tsc --noEmit`, the Vitest suite, and a production build.
source "$(dirname "$0")/lib.sh"
WEB="$ROOT/web"
(cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error)
(cd "$WEB" && rm -rf src/gen && npm run -s gen)
(cd "$WEB" && npx tsc --noEmit)
(cd "$WEB" && npx vitest run --reporter=dot)
(cd "$WEB" && npx vite build --logLevel warn)
log "web app: typed, tested and built (web/dist)"
