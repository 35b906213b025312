#!/usr/bin/env bash
# `make bench` (feed part): discovery over BENCH_FEED_EVENTS (100,000)
# events and BENCH_FEED_JOINS (200,000) joins of 2,000 people, put on the
# streams by `loadgen seed-feed` as the services would publish them. Then:
#   1. `feed rebuild` replays both streams into an empty projection and
#      prints its apply rate;
#   2. the optimised feed service (its consumers pointed at empty streams,
#      so nothing else runs) answers, driven open-loop by crates/loadgen
#      over gRPC: a cached first page, uncached full-text searches (5,000
#      different bodies: each repeats after the cache's 2 s), typo'd
#      searches, geo queries and "for you";
#   3. EXPLAIN (ANALYZE, BUFFERS) of each kind, into $STATE/bench-feed.
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/infra-up.sh"
export PGPASSWORD=$PG_PASSWORD
B="$STATE/bench-feed"
rm -rf "$B" && mkdir -p "$B"
EVENTS=${BENCH_FEED_EVENTS:-100000} JOINS=${BENCH_FEED_JOINS:-200000} SECS=${BENCH_SECS:-10}
PROFILE=${BENCH_PROFILE:-release}
log "building the binaries ($PROFILE)"
(cd "$ROOT" && SQLX_OFFLINE=true cargo build -q --profile "$PROFILE" --locked -p auth -p feed -p cityevents-loadgen)
MESH_PROFILE=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
source "$ROOT/scripts/mesh.sh"
mesh_init "$B" benchfeed 51090
start auth
LOADGEN="$BIN/loadgen"
CITYEVENTS_TOKENS__SIGNING_KEY_FILES="[\"$M/auth.pem\"]" "$BIN/auth" bench-tokens 2000 >"$B/tokens.txt"

seeded="${prefix}S"
log "seeding $EVENTS events and $JOINS joins onto the streams $seeded"
"$LOADGEN" --tokens "$B/tokens.txt" seed-feed --nats "nats://127.0.0.1:$NATS_PORT" --prefix "$seeded" \
  --events "$EVENTS" --joins "$JOINS" --out "$B"

log "feed rebuild: both streams into an empty projection"
export CITYEVENTS_DATABASE__URL CITYEVENTS_NATS__STREAM_PREFIX
CITYEVENTS_DATABASE__URL=$(pg_url benchfeed_feed)
for run in 1 2; do
  CITYEVENTS_NATS__STREAM_PREFIX=$seeded CITYEVENTS_TELEMETRY__LOG_FILTER=warn "$BIN/feed" rebuild | sed "s/^/rebuild $run: /"
done
unset CITYEVENTS_DATABASE__URL CITYEVENTS_NATS__STREAM_PREFIX
psql -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d benchfeed_feed -c "VACUUM ANALYZE events" -c "VACUUM ANALYZE registrations"

start feed
FEED="http://127.0.0.1:${PORT[feed]}"
WATCH=(--watch "feed=$(cat "$M/feed.pid")")
gen() { # LABEL RATE [loadgen options…] then the body
  local label=$1 rate=$2; shift 2
  "$LOADGEN" --label "$label" --rate "$rate" --duration "$SECS" "${WATCH[@]}" "$@"
}
search() { echo grpc --endpoint "$FEED" --method cityevents.feed.v1.FeedService/Search; }
log "cached first page (one search, 10,000/s)"
# shellcheck disable=SC2046 # words of one target
gen "cached page" "${BENCH_FEED_CACHED_RATE:-10000}" $(search) --body '{"query":"concert","page_size":20}'
log "uncached full-text search, typo'd search, geo query (bodies from the seeder, in turn)"
# shellcheck disable=SC2046
gen "full-text" "${BENCH_FEED_RATE:-500}" --tokens "$B/fts.txt" $(search) --body '{token}'
# shellcheck disable=SC2046
gen "typo" "${BENCH_FEED_RATE:-500}" --tokens "$B/typo.txt" $(search) --body '{token}'
# shellcheck disable=SC2046
gen "geo 3 km" "${BENCH_FEED_RATE:-500}" --tokens "$B/geo.txt" $(search) --body '{token}'
log "for you (2,000 people with about 100 joins each)"
gen "for you" "${BENCH_FEED_FORYOU_RATE:-200}" --tokens "$B/tokens.txt" -H 'authorization: Bearer {token}' \
  grpc --endpoint "$FEED" --method cityevents.feed.v1.FeedService/PersonalFeed --body '{"page_size":20}'

log "EXPLAIN (ANALYZE, BUFFERS) of each kind of query: $B/explain.txt"
explain() {
  echo "== feed explain $*"
  CITYEVENTS_DATABASE__URL=$(pg_url benchfeed_feed) CITYEVENTS_TELEMETRY__LOG_FILTER=warn "$BIN/feed" explain "$@"
  echo
}
{
  explain query=concert sort=relevance
  explain query=concrt fuzzy=yes sort=relevance
  explain near=52.52,13.405,3 sort=distance
  explain city=berlin category=music sort=soonest
  explain sort=trending
} >"$B/explain.txt" 2>&1
# "For you" is one static statement: its text from the compile-time cache.
user=$(python3 - "$B/tokens.txt" <<'PY'
import base64, json, sys
t = open(sys.argv[1]).readline().split(".")[1]
print(json.loads(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)))["sub"])
PY
)
sql=$(python3 - "$ROOT/services/feed/.sqlx" <<'PY'
import glob, json, sys
for f in glob.glob(sys.argv[1] + "/*.json"):
    q = json.load(open(f))["query"]
    if q.startswith("WITH mine AS"):
        print(q)
PY
)
{
  echo "== for you"
  psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d benchfeed_feed -X -q \
    -c "SET plan_cache_mode = force_custom_plan" \
    -c "PREPARE f(uuid, float8, float8, float8, int8) AS $sql" \
    -c "EXPLAIN (ANALYZE, BUFFERS) EXECUTE f('$user', NULL, NULL, NULL, 1000)"
} >>"$B/explain.txt" 2>&1
grep -E "^== |Index|Bitmap|Execution Time" "$B/explain.txt" | sed 's/^ */  /' | head -80
