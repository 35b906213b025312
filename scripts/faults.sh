#!/usr/bin/env bash
# `make faults`: the built binaries (auth, event, join) against real
# PostgreSQL, Redis and NATS, driven by a Python grpcio client generated from
# proto/ (tests/faults/storm.py). Five storms of joins with 20-250 ms client
# deadlines, each reconciled afterwards (answers ⇄ registrations ⇄ counters,
# and at the end ⇄ the join stream): a plain one, then one each with join
# killed (SIGKILL), join stopped (SIGTERM), nats-server killed and
# PostgreSQL stopped (immediate), each restarted in the middle.
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/infra-up.sh"
export PGPASSWORD=$PG_PASSWORD
F="$STATE/faults"
rm -rf "$F" && mkdir -p "$F/stubs"
export FAULTS_STATE="$F" STUBS="$F/stubs"
PY="$TOOLS/venv/bin/python"
"$PY" -c 'import nats' 2>/dev/null || "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check 'nats-py==2.*'
python_stubs "$STUBS"

log "building the binaries"
(cd "$ROOT" && SQLX_OFFLINE=true cargo build -q --bins)
source "$ROOT/scripts/mesh.sh"
mesh_init "$F" faults 21060
start auth
start event
start join
A="127.0.0.1:${PORT[auth]}" E="127.0.0.1:${PORT[event]}" J="127.0.0.1:${PORT[join]}"

USERS=${FAULTS_USERS:-300}
log "registering $USERS users"
"$PY" "$ROOT/tests/faults/storm.py" register "$A" "$USERS"
psql -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d faults_auth -c "UPDATE users SET email_verified = true"

# The join stream holds every registration of the database exactly once
# (once the outbox has drained).
reconcile_stream() {
  local n regs
  for _ in $(seq 100); do
    n=$(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d faults_join -tAc "SELECT count(*) FROM outbox")
    [ "$n" = 0 ] && break; sleep 0.1
  done
  regs=$(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d faults_join -tAc "SELECT count(*) FROM registrations")
  "$PY" "$ROOT/tests/faults/storm.py" stream "nats://127.0.0.1:$NATS_PORT" "${prefix}_JOIN" "$regs"
}

# storm_through WHAT FAULT: a storm on a new event (capacity 100, waitlist
# 50) with FAULT (a function) run a second in, then its reconciliation.
storm_through() {
  log "storm: $1"
  local ev storm
  ev=$("$PY" "$ROOT/tests/faults/storm.py" event "$E" 100 50)
  "$PY" "$ROOT/tests/faults/storm.py" storm "$J" "$ev" & storm=$!
  sleep 1; $2
  wait $storm
  "$PY" "$ROOT/tests/faults/storm.py" check "$J" "$ev" 100 50
}
kill_join() { kill -9 "$(cat "$F/join.pid")"; sleep 0.5; start join; }
term_join() { kill -TERM "$(cat "$F/join.pid")"; wait "$(cat "$F/join.pid")" 2>/dev/null || true; start join; }
kill_nats() { kill -9 "$(cat "$STATE/nats/nats.pid")"; sleep 1; bash "$ROOT/scripts/infra-up.sh" >/dev/null 2>&1; }
stop_postgres() {
  local version
  version=$(ls /usr/lib/postgresql | sort -n | tail -1)
  as_root pg_ctlcluster "$version" main stop -m immediate
  sleep 1; as_root pg_ctlcluster "$version" main start >/dev/null 2>&1 || true
  for _ in $(seq 300); do pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && break; sleep 0.2; done
}

log "storm 1: short deadlines"
ev1=$("$PY" "$ROOT/tests/faults/storm.py" prepare "$A" "$E" 100 50)
"$PY" "$ROOT/tests/faults/storm.py" storm "$J" "$ev1"
"$PY" "$ROOT/tests/faults/storm.py" check "$J" "$ev1" 100 50
reconcile_stream

storm_through "join killed (SIGKILL) and restarted" kill_join
storm_through "join stopped (SIGTERM) and restarted" term_join
storm_through "nats-server killed (SIGKILL) and restarted" kill_nats
storm_through "PostgreSQL stopped (immediate) and started" stop_postgres
reconcile_stream
log "faults passed"
