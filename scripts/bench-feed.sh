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
mesh_init "$B" benchfeed 21090
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
for rate in ${BENCH_FEED_RATES:-100 300}; do
  # shellcheck disable=SC2046
  gen "full-text" "$rate" --tokens "$B/fts.txt" $(search) --body '{token}'
  # shellcheck disable=SC2046
  gen "typo" "$rate" --tokens "$B/typo.txt" $(search) --body '{token}'
  # shellcheck disable=SC2046
  gen "geo 3 km" "$rate" --tokens "$B/geo.txt" $(search) --body '{token}'
done
log "for you (2,000 people with about 100 joins each)"
for rate in ${BENCH_FEED_FORYOU_RATES:-50 100}; do
  gen "for you" "$rate" --tokens "$B/tokens.txt" -H 'authorization: Bearer {token}' \
    grpc --endpoint "$FEED" --method cityevents.feed.v1.FeedService/PersonalFeed --body '{"page_size":20}'
done

log "EXPLAIN (ANALYZE, BUFFERS) of each kind of query: $B/explain.txt"
explain() {
  echo "== feed explain $*"
  CITYEVENTS_DATABASE__URL=$(pg_url benchfeed_feed) CITYEVENTS_TELEMETRY__LOG_FILTER=warn "$BIN/feed" explain "$@"
  echo
}
{
  explain query=concert sort=relevance
  explain query=concrt 'tsquery=(concrt:* | concert:*)' sort=relevance
  explain near=52.52,13.405,3 sort=distance
  explain city=berlin category=music sort=soonest
  explain sort=trending
} >"$B/explain.txt" 2>&1
# "For you": its candidate statement (text from the compile-time cache) for
# the person with the most joins, with their top categories and organizers.
python3 - "$ROOT/services/feed/.sqlx" >"$B/for-you.sql" <<'PY'
import glob, json, sys
for f in glob.glob(sys.argv[1] + "/*.json"):
    q = json.load(open(f))["query"]
    if "unnest($1::text[]) cat" in q:
        print("PREPARE f(text[], int8, uuid[], int8, int8, float8, float8, float8, int8) AS " + q + ";")
PY
DB=(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d benchfeed_feed -X -q -tA)
user=$("${DB[@]}" -c "SELECT user_id FROM registrations GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
top() { "${DB[@]}" -c "SELECT array_agg(k) FROM (SELECT e.$1 AS k FROM registrations r JOIN events e USING (event_id)
  WHERE r.user_id = '$user' GROUP BY 1 ORDER BY count(*) DESC LIMIT $2) t"; }
echo "EXPLAIN (ANALYZE, BUFFERS) EXECUTE f('$(top category 3)', 40, '$(top organizer_id 5)', 10, 60, NULL, NULL, NULL, 60);" >>"$B/for-you.sql"
{ echo "== for you (candidates)"; "${DB[@]}" -f "$B/for-you.sql"; } >>"$B/explain.txt" 2>&1
grep -E "^== |Index|Bitmap|Execution Time" "$B/explain.txt" | sed 's/^ */  /' | head -80
