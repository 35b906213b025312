#!/usr/bin/env bash
# The dashboards are code (grafana/main.go, the Grafana Foundation SDK): the
# checked-in JSON must be what the code makes. Part of `make test`; `make
# e2e` proves every panel's query against Prometheus.
source "$(dirname "$0")/lib.sh"
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
(cd "$ROOT/grafana" && go run . "$fresh")
if ! diff -ru "$ROOT/grafana/dashboards" "$fresh"; then
  log "grafana/dashboards is stale: (cd grafana && go run . dashboards)"
  exit 1
fi
log "dashboards current ($(ls "$fresh" | wc -l) generated)"
