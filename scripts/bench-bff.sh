#!/usr/bin/env bash
# `make bench` (BFF part): the optimised binaries (auth, event, join, BFF)
# on real PostgreSQL, Redis and NATS, driven by the open-loop generator
# (crates/loadgen) from outside their processes. Scenarios: hot-event join
# over REST and over gRPC through the BFF, the same joins sent straight to
# the join service with keys and without (what the edge and a key cost per
# join), the event page, and a step-up of REST joins until p99 passes
# 100 ms, then twice the rate held. The tokens of BENCH_PEOPLE (20,000)
# people come from `auth bench-tokens` and are reused as real clients reuse
# theirs: each scenario has its own events, and every person joins the
# first, then the next (loadgen --round-var). Client addresses
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
(cd "$ROOT" && SQLX_OFFLINE=true cargo build -q --profile "$PROFILE" --locked -p auth -p event -p join -p feed -p mail -p media -p bff -p cityevents-loadgen)
machine_line
MESH_PROFILE=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
source "$ROOT/scripts/mesh.sh"
mesh_init "$B" benchbff 21080
MESH_ENV[bff]="CITYEVENTS_EDGE__TRUSTED_PROXIES=[\"127.0.0.1\"]"
for svc in smtp auth media event join feed mail bff; do start "$svc"; done
LOADGEN="$BIN/loadgen"

PEOPLE=${BENCH_PEOPLE:-20000}
log "minting the tokens of $PEOPLE people (each reused, as real clients do)"
CITYEVENTS_TOKENS__SIGNING_KEY_FILES="[\"$M/auth.pem\"]" "$BIN/auth" bench-tokens "$PEOPLE" >"$B/tokens.txt"
ORG=$(head -1 "$B/tokens.txt")
BFF="http://127.0.0.1:${PORT[bff]}"
# events CAPACITY N: the ids of N new published events (capacity 0 is
# unlimited), one a line, in a file whose path is printed. Joins name them
# with --round-var: every person joins the first, then the next, …
events() {
  local file; file=$(mktemp -p "$B" events.XXXX)
  python3 - "$BFF" "$ORG" "$1" "$2" >"$file" <<'PY'
import json, sys, time, urllib.error, urllib.request
bff, token, capacity, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def call(method, path, body):
    req = urllib.request.Request(bff + path, data=json.dumps(body).encode(), method=method,
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    try:
        return json.load(urllib.request.urlopen(req, timeout=10))
    except urllib.error.HTTPError as e:
        sys.exit(f"{method} {path}: {e.code} {e.read().decode()}")
at = lambda h: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + h * 3600))
for _ in range(n):
    draft = {"title": "Bench night", "startsAt": at(24), "endsAt": at(26), "timeZone": "Europe/Berlin",
             "capacity": capacity, "visibility": "VISIBILITY_PUBLIC",
             "venue": {"name": "Hall", "address": "Str. 1", "city": "Berlin"}}
    e = call("POST", "/v1/events", draft)["event"]
    e = call("POST", f"/v1/events/{e['id']}:publish", {"expectedVersion": e["version"]})["event"]
    print(e["id"])
PY
  echo "$file"
}
# Events enough for SECONDS at RATE joins/s (every person joins each once).
enough() { echo $(( $1 * $2 / PEOPLE + 1 )); }
WATCH=(--watch "bff=$(cat "$M/bff.pid")" --watch "join=$(cat "$M/join.pid")" --watch "auth=$(cat "$M/auth.pid")")
gen() { # LABEL RATES EVENTS-FILE, then the target
  local label=$1 rates=$2 evs=$3; shift 3
  "$LOADGEN" --label "$label" --rate "$rates" --duration "$SECS" --tokens "$B/tokens.txt" "${WATCH[@]}" \
    --round-var "event=$evs" -H 'authorization: Bearer {token}' -H 'x-forwarded-for: {ip}' "$@"
}
KEY=(-H 'idempotency-key: {uuid}')
JOIN_REST=(rest --method POST --url "$BFF/v1/events/{event}/registration" --body '{}')
grpc_join() { echo grpc --endpoint "$1" --method "$2" --body '{"eventId":"{event}"}'; }

log "warm-up: every person's token used once (the verifiers remember them)"
"$LOADGEN" --label "warm-up" --rate 2000 --duration "$(( PEOPLE / 2000 + 1 ))" --tokens "$B/tokens.txt" \
  -H 'authorization: Bearer {token}' -H 'x-forwarded-for: {ip}' rest --url "$BFF/v1/me/tickets"
log "hot-event join through the BFF, REST (${RATE}/s for ${SECS} s)"
gen "bff rest join" "$RATE" "$(events 0 "$(enough "$RATE" "$SECS")")" "${KEY[@]}" "${JOIN_REST[@]}"
log "hot-event join through the BFF, gRPC"
# shellcheck disable=SC2046 # words of one target
gen "bff grpc join" "$RATE" "$(events 0 "$(enough "$RATE" "$SECS")")" "${KEY[@]}" \
  $(grpc_join "$BFF" cityevents.api.v1.RegistrationsService/JoinEvent)
log "the same joins straight to the join service (no BFF), with keys and without"
# shellcheck disable=SC2046
gen "join direct" "$RATE" "$(events 0 "$(enough "$RATE" "$SECS")")" "${KEY[@]}" \
  $(grpc_join "http://127.0.0.1:${PORT[join]}" cityevents.join.v1.JoinService/Join)
# shellcheck disable=SC2046
gen "join direct, no key" "$RATE" "$(events 0 "$(enough "$RATE" "$SECS")")" \
  $(grpc_join "http://127.0.0.1:${PORT[join]}" cityevents.join.v1.JoinService/Join)
log "event page (event, organizer, counts, my registration), REST"
gen "event page" "$RATE" "$(events 100 1)" rest --method GET --url "$BFF/v1/events/{event}"
log "step-up: REST joins at ${STEPS}/s, 5 s each, until p99 > 100 ms; then twice the rate held"
SECS=5 gen "step-up" "$STEPS" "$(events 0 "$(enough 60000 5)")" "${KEY[@]}" "${JOIN_REST[@]}"
log "live watchers: ${WATCHERS:=${BENCH_WATCHERS:-10000}} streams on one event, five seats taken while they watch"
"$LOADGEN" --tokens "$B/tokens.txt" --watch "bff=$(cat "$M/bff.pid")" \
  watchers --endpoint "$BFF" --event "$(head -1 "$(events 100 1)")" --count "$WATCHERS" --updates 5
log "discovery freshness: publish -> found by search, cancel -> gone (20 events, polled every 5 ms through the BFF)"
python3 - "$BFF" "$ORG" <<'PY'
import json, statistics, sys, time, urllib.request, uuid
bff, token = sys.argv[1], sys.argv[2]
def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(bff + path, data=data, method=method,
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=10))
def until(word, present):
    start = time.monotonic()
    while time.monotonic() - start < 10:
        found = call("GET", f"/v1/search?search.query={word}&search.pageSize=5")["events"]
        if bool(found) == present:
            return (time.monotonic() - start) * 1000
        time.sleep(0.005)
    sys.exit(f"FAIL {word} not {'found' if present else 'gone'} within 10 s")
at = lambda h: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + h * 3600))
shown, gone = [], []
for _ in range(20):
    word = "probe" + uuid.uuid4().hex[:10]
    draft = {"title": f"Freshness {word}", "startsAt": at(24), "endsAt": at(26), "timeZone": "Europe/Berlin",
             "capacity": 10, "venue": {"name": "Hall", "city": "Berlin", "latitude": 52.5, "longitude": 13.4}}
    e = call("POST", "/v1/events", draft)["event"]
    until(word, False)  # cached as empty first, as a real searcher would
    e = call("POST", f"/v1/events/{e['id']}:publish", {"expectedVersion": e["version"]})["event"]
    shown.append(until(word, True))
    call("POST", f"/v1/events/{e['id']}:cancel", {"expectedVersion": e["version"], "reason": "bench"})
    gone.append(until(word, False))
for what, xs in (("published -> found", shown), ("cancelled -> gone", gone)):
    xs.sort()
    print(f"freshness {what}: p50 {statistics.median(xs):.0f} ms, p95 {xs[int(len(xs) * 0.95) - 1]:.0f} ms, max {xs[-1]:.0f} ms")
PY
machine_line
