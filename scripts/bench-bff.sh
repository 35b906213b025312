#!/usr/bin/env bash
# `make bench` (BFF part): the optimised binaries (auth, event, join, BFF)
# on real PostgreSQL, Redis and NATS, driven by the open-loop generator
# (crates/loadgen) from outside their processes. Scenarios: hot-event join
# over REST and over gRPC through the BFF, the same joins sent straight to
# the join service with keys and without (what the edge and a key cost per
# join), the event page, and a
# step-up of REST joins until p99 passes 100 ms, then twice the rate held.
# Each user joins once: tokens of distinct users come from `auth
# bench-tokens`, and each scenario joins its own event. Client addresses
# vary per request (x-forwarded-for from a trusted proxy), as traffic from
# many people does; the per-address limit is the edge's own. Last, 10,000
# live watchers on one event (BENCH_WATCHERS): update latency and the BFF's
# memory per watcher.
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/infra-up.sh"
export PGPASSWORD=$PG_PASSWORD
B="$STATE/bench-bff"
rm -rf "$B" && mkdir -p "$B"
RATE=${BENCH_RATE:-2000} SECS=${BENCH_SECS:-10}
STEPS=${BENCH_STEPS:-1000,2000,3000,4000,5000,6000,8000}
# BENCH_PROFILE=dev tries the script on the debug build (figures meaningless).
PROFILE=${BENCH_PROFILE:-release}
log "building the binaries ($PROFILE)"
(cd "$ROOT" && SQLX_OFFLINE=true cargo build -q --profile "$PROFILE" --locked -p auth -p event -p join -p bff -p cityevents-loadgen)
machine_line
MESH_PROFILE=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
source "$ROOT/scripts/mesh.sh"
mesh_init "$B" benchbff 51080
MESH_ENV[bff]="CITYEVENTS_EDGE__TRUSTED_PROXIES=[\"127.0.0.1\"]"
for svc in auth event join bff; do start "$svc"; done
LOADGEN="$BIN/loadgen"

log "minting tokens of distinct users"
CITYEVENTS_TOKENS__SIGNING_KEY_FILES="[\"$M/auth.pem\"]" "$BIN/auth" bench-tokens 250000 >"$B/tokens.txt"
ORG=$(head -1 "$B/tokens.txt")
BFF="http://127.0.0.1:${PORT[bff]}"
# new_event CAPACITY: a published event's id (capacity 0 is unlimited).
new_event() {
  python3 - "$BFF" "$ORG" "$1" <<'PY'
import json, sys, time, urllib.error, urllib.request
bff, token, capacity = sys.argv[1], sys.argv[2], int(sys.argv[3])
def call(method, path, body):
    req = urllib.request.Request(bff + path, data=json.dumps(body).encode(), method=method,
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    try:
        return json.load(urllib.request.urlopen(req, timeout=10))
    except urllib.error.HTTPError as e:
        sys.exit(f"{method} {path}: {e.code} {e.read().decode()}")
at = lambda h: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + h * 3600))
draft = {"title": "Bench night", "startsAt": at(24), "endsAt": at(26), "timeZone": "Europe/Berlin",
         "capacity": capacity, "visibility": "VISIBILITY_PUBLIC",
         "venue": {"name": "Hall", "address": "Str. 1", "city": "Berlin"}}
e = call("POST", "/v1/events", {"draft": draft})["event"]
e = call("POST", f"/v1/events/{e['id']}:publish", {"expectedVersion": e["version"]})["event"]
print(e["id"])
PY
}
WATCH=(--watch "bff=$(cat "$M/bff.pid")" --watch "join=$(cat "$M/join.pid")" --watch "auth=$(cat "$M/auth.pid")")
rest_join() { # LABEL EVENT RATES
  "$LOADGEN" --label "$1" --rate "$3" --duration "$SECS" --tokens "$B/tokens.txt" "${WATCH[@]}" \
    -H 'authorization: Bearer {token}' -H 'idempotency-key: {uuid}' -H 'x-forwarded-for: {ip}' --var "event=$2" \
    rest --method POST --url "$BFF/v1/events/{event}/registration" --body '{}'
}
log "hot-event join through the BFF, REST (${RATE}/s for ${SECS} s)"
ev=$(new_event 0); rest_join "bff rest join" "$ev" "$RATE"
log "hot-event join through the BFF, gRPC"
ev=$(new_event 0)
"$LOADGEN" --label "bff grpc join" --rate "$RATE" --duration "$SECS" --tokens "$B/tokens.txt" "${WATCH[@]}" \
  -H 'authorization: Bearer {token}' -H 'idempotency-key: {uuid}' -H 'x-forwarded-for: {ip}' --var "event=$ev" \
  grpc --endpoint "$BFF" --method cityevents.api.v1.RegistrationsService/JoinEvent --body '{"eventId":"{event}"}'
log "the same joins straight to the join service (no BFF)"
ev=$(new_event 0)
"$LOADGEN" --label "join direct" --rate "$RATE" --duration "$SECS" --tokens "$B/tokens.txt" "${WATCH[@]}" \
  -H 'authorization: Bearer {token}' -H 'idempotency-key: {uuid}' --var "event=$ev" \
  grpc --endpoint "http://127.0.0.1:${PORT[join]}" --method cityevents.join.v1.JoinService/Join --body '{"eventId":"{event}"}'
log "the same joins straight to the join service without idempotency keys (what a key costs)"
ev=$(new_event 0)
"$LOADGEN" --label "join direct, no key" --rate "$RATE" --duration "$SECS" --tokens "$B/tokens.txt" "${WATCH[@]}" \
  -H 'authorization: Bearer {token}' --var "event=$ev" \
  grpc --endpoint "http://127.0.0.1:${PORT[join]}" --method cityevents.join.v1.JoinService/Join --body '{"eventId":"{event}"}'
log "event page (event, counts, my registration), REST"
ev=$(new_event 100)
"$LOADGEN" --label "event page" --rate "$RATE" --duration "$SECS" --tokens "$B/tokens.txt" "${WATCH[@]}" \
  -H 'authorization: Bearer {token}' -H 'x-forwarded-for: {ip}' --var "event=$ev" \
  rest --method GET --url "$BFF/v1/events/{event}"
log "step-up: REST joins at ${STEPS}/s, 5 s each, until p99 > 100 ms; then twice the rate held"
ev=$(new_event 0); SECS=5 rest_join "step-up" "$ev" "$STEPS"
log "live watchers: ${WATCHERS:=${BENCH_WATCHERS:-10000}} streams on one event, five seats taken while they watch"
ev=$(new_event 100)
"$LOADGEN" --tokens "$B/tokens.txt" --watch "bff=$(cat "$M/bff.pid")" \
  watchers --endpoint "$BFF" --event "$ev" --count "$WATCHERS" --updates 5
machine_line
