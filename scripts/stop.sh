#!/usr/bin/env bash
# `make stop`: stops the services `make run` started, then the infrastructure.
source "$(dirname "$0")/lib.sh"
for pidfile in "$STATE"/run/*.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    log "stopped $(basename "$pidfile" .pid)"
  fi
  rm -f "$pidfile"
done
bash "$ROOT/scripts/infra-down.sh"
