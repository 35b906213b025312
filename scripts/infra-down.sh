#!/usr/bin/env bash
# Stops what infra-up.sh started.
source "$(dirname "$0")/lib.sh"
redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
[ -f "$STATE/nats/nats.pid" ] && kill "$(cat "$STATE/nats/nats.pid")" 2>/dev/null || true
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
as_root pg_ctlcluster "$version" main stop 2>/dev/null || true
log "infrastructure stopped"
