#!/usr/bin/env bash
# `make run`: starts the infrastructure, builds and starts every service that
# exists so far in the background, seeds demo data, prints the endpoints.
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/infra-up.sh"
export PGPASSWORD=$PG_PASSWORD
RUN="$STATE/run"
mkdir -p "$RUN"

log "building services"
(cd "$ROOT" && SQLX_OFFLINE=true cargo build -q --bins)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug"

key="$RUN/auth-signing.pem"
[ -f "$key" ] || "$BIN/auth" keygen >"$key"
tickets="$RUN/ticket-signing.pem"
[ -f "$tickets" ] || "$BIN/auth" keygen >"$tickets"
# Seals verification and reset links for the mail service (auth and mail only).
seal="$RUN/link-seal.key"
[ -f "$seal" ] || "$BIN/auth" sealkey >"$seal"

# name grpc-port admin-port [extra VAR=value settings]
start() {
  local name=$1 grpc=$2 admin=$3
  shift 3
  if [ -f "$RUN/$name.pid" ] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
    log "$name already running"
    return
  fi
  # The BFF keeps no database of its own.
  local db=()
  [ "$name" = bff ] || db=(CITYEVENTS_DATABASE__URL="$(pg_url "cityevents_$name")")
  CITYEVENTS_SERVER__GRPC_ADDR="127.0.0.1:$grpc" \
  CITYEVENTS_SERVER__ADMIN_ADDR="127.0.0.1:$admin" \
  CITYEVENTS_REDIS__URL="redis://127.0.0.1:$REDIS_PORT" \
    env "${db[@]}" "$@" nohup "$BIN/$name" serve >"$RUN/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
  for _ in $(seq 100); do
    grpcurl -plaintext -connect-timeout 1 -max-time 2 -d '{}' "127.0.0.1:$grpc" grpc.health.v1.Health/Check >/dev/null 2>&1 && break
    sleep 0.1
  done
  grpcurl -plaintext -connect-timeout 1 -max-time 2 -d '{}' "127.0.0.1:$grpc" grpc.health.v1.Health/Check >/dev/null || {
    log "$name did not become healthy; see $RUN/$name.log"; tail -5 "$RUN/$name.log"; exit 1; }
}

# Auth believes the BFF's x-forwarded-for (its per-address limits see the
# real client, not one address for the whole site).
start auth 50051 9101 CITYEVENTS_TOKENS__SIGNING_KEY_FILES="[\"$key\"]" CITYEVENTS_TOKENS__LINK_SEAL__KEY_FILES="[\"$seal\"]" \
  CITYEVENTS_TRUSTED_PROXIES='["127.0.0.1"]'

start event 50052 9102 CITYEVENTS_AUTH__ENDPOINT=http://127.0.0.1:50051 CITYEVENTS_JOIN__ENDPOINT=http://127.0.0.1:50053 \
  CITYEVENTS_MEDIA__ENDPOINT=http://127.0.0.1:50055
start join 50053 9103 CITYEVENTS_AUTH__ENDPOINT=http://127.0.0.1:50051 CITYEVENTS_EVENT__ENDPOINT=http://127.0.0.1:50052 CITYEVENTS_TICKETS__SIGNING_KEY_FILE="$tickets"
# Discovery: the projection of the event and join streams.
cursor_key="$RUN/feed-cursor.key"
[ -f "$cursor_key" ] || head -c 32 /dev/urandom | base64 >"$cursor_key"
start feed 50054 9104 CITYEVENTS_AUTH__ENDPOINT=http://127.0.0.1:50051 CITYEVENTS_FEED__CURSOR_KEY="$(cat "$cursor_key")"
# Mail goes to a local SMTP catcher that keeps each one as a file.
MAILS="$RUN/mails"
if ! { [ -f "$RUN/smtp.pid" ] && kill -0 "$(cat "$RUN/smtp.pid")" 2>/dev/null; }; then
  nohup "$TOOLS/venv/bin/python" "$ROOT/scripts/smtp-catcher.py" 2525 "$MAILS" >"$RUN/smtp.log" 2>&1 &
  echo $! >"$RUN/smtp.pid"
  for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/2525) 2>/dev/null && break; sleep 0.1; done
fi
unsubscribe_key="$RUN/unsubscribe.key"
[ -f "$unsubscribe_key" ] || head -c 32 /dev/urandom | base64 >"$unsubscribe_key"
start mail 50056 9106 CITYEVENTS_AUTH__ENDPOINT=http://127.0.0.1:50051 CITYEVENTS_LINK_SEAL__KEY_FILES="[\"$seal\"]" \
  CITYEVENTS_SMTP__PORT=2525 CITYEVENTS_MAIL__UNSUBSCRIBE_KEY="$(cat "$unsubscribe_key")" \
  CITYEVENTS_MAIL__PUBLIC_BASE_URL="http://localhost:5173/#" CITYEVENTS_MAIL__API_BASE_URL=http://127.0.0.1:8080
# Images (kept under the run folder; URLs signed with a key made once).
media_key="$RUN/media-url.key"
[ -f "$media_key" ] || echo "k1:$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')" >"$media_key"
start media 50055 9105 CITYEVENTS_AUTH__ENDPOINT=http://127.0.0.1:50051 \
  CITYEVENTS_MEDIA__STORAGE_PATH="$RUN/media" CITYEVENTS_MEDIA__URL_KEYS="[\"$(cat "$media_key")\"]"
# The public edge: gRPC, gRPC-web, REST/JSON and server-sent events on :8080.
start bff 8080 9107 CITYEVENTS_AUTH__ENDPOINT=http://127.0.0.1:50051 CITYEVENTS_EVENT__ENDPOINT=http://127.0.0.1:50052 \
  CITYEVENTS_JOIN__ENDPOINT=http://127.0.0.1:50053 CITYEVENTS_FEED__ENDPOINT=http://127.0.0.1:50054 \
  CITYEVENTS_MAIL__ENDPOINT=http://127.0.0.1:50056 CITYEVENTS_MEDIA__ENDPOINT=http://127.0.0.1:50055 CITYEVENTS_EDGE__CORS_ORIGINS='["http://localhost:5173","http://127.0.0.1:5173"]'

# Prometheus scraping every service (job = service), the alert rules loaded.
PROM="$RUN/prometheus"
mkdir -p "$PROM"
{
  echo "global: {scrape_interval: 5s, evaluation_interval: 5s}"
  echo "rule_files: [\"$ROOT/k8s/prometheus/rules/*.yml\"]"
  echo "scrape_configs:"
  for pair in auth:9101 event:9102 join:9103 feed:9104 media:9105 mail:9106 bff:9107; do
    echo "  - {job_name: ${pair%%:*}, static_configs: [{targets: [\"127.0.0.1:${pair#*:}\"]}]}"
  done
} >"$PROM/prometheus.yml"
if ! { [ -f "$RUN/prometheus.pid" ] && kill -0 "$(cat "$RUN/prometheus.pid")" 2>/dev/null; }; then
  nohup prometheus --config.file="$PROM/prometheus.yml" --storage.tsdb.path="$PROM/data" \
    --web.listen-address=127.0.0.1:9090 >"$RUN/prometheus.log" 2>&1 &
  echo $! >"$RUN/prometheus.pid"
fi

# Demo accounts (idempotent): an admin and a user, both verified.
seed() {
  local email=$1 role=$2
  grpcurl -plaintext -d "{\"email\":\"$email\",\"password\":\"cityevents-demo\",\"display_name\":\"${email%@*}\"}" \
    127.0.0.1:50051 cityevents.auth.v1.AuthService/Register >/dev/null 2>&1 || true
  psql -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d cityevents_auth \
    -c "UPDATE users SET role = '$role', email_verified = true WHERE email = '$email'"
}
seed admin@cityevents.local admin
seed ada@cityevents.local user

# A published demo event organized by ada (once).
token=$(grpcurl -plaintext -d '{"email":"ada@cityevents.local","password":"cityevents-demo"}' \
  127.0.0.1:50051 cityevents.auth.v1.AuthService/Login | python3 -c 'import json,sys; print(json.load(sys.stdin)["session"]["accessToken"])')
if ! grpcurl -plaintext -H "authorization: Bearer $token" -d '{}' 127.0.0.1:50052 \
    cityevents.event.v1.EventService/ListOrganizedEvents | grep -q '"id"'; then
  start_at=$(date -u -d '+7 days' +%Y-%m-%dT18:00:00Z); end_at=$(date -u -d '+7 days' +%Y-%m-%dT21:00:00Z)
  created=$(grpcurl -plaintext -H "authorization: Bearer $token" -d "{\"draft\":{\"title\":\"Rust & Coffee\",
    \"category\":\"tech\",\"startsAt\":\"$start_at\",\"endsAt\":\"$end_at\",\"timeZone\":\"Europe/Berlin\",
    \"venue\":{\"name\":\"Café Kante\",\"city\":\"Berlin\",\"latitude\":52.52,\"longitude\":13.40},
    \"capacity\":20,\"waitlistCap\":10}}" 127.0.0.1:50052 cityevents.event.v1.EventService/CreateEvent)
  id=$(echo "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["event"]["id"])')
  grpcurl -plaintext -H "authorization: Bearer $token" -d "{\"event_id\":\"$id\",\"expected_version\":1}" \
    127.0.0.1:50052 cityevents.event.v1.EventService/PublishEvent >/dev/null
  log "demo event $id published"
fi

# The web app (web/), built against the BFF and served beside it.
log "building the web app"
(cd "$ROOT/web" && npm ci --no-audit --no-fund --loglevel=error && rm -rf src/gen && npm run -s gen &&
  VITE_API_BASE=http://127.0.0.1:8080 npx vite build --logLevel warn --outDir "$RUN/web" --emptyOutDir)
if ! { [ -f "$RUN/web.pid" ] && kill -0 "$(cat "$RUN/web.pid")" 2>/dev/null; }; then
  nohup python3 -m http.server 5173 --bind 127.0.0.1 --directory "$RUN/web" >"$RUN/web.log" 2>&1 &
  echo $! >"$RUN/web.pid"
fi

cat <<MSG

CityEvents is running. The web app is at http://localhost:5173
The public API (gRPC, gRPC-web, REST/JSON) is at http://127.0.0.1:8080
  bff      http  127.0.0.1:8080    metrics http://127.0.0.1:9107/metrics   log $RUN/bff.log   OpenAPI http://127.0.0.1:8080/openapi.json
  auth     gRPC  127.0.0.1:50051   metrics http://127.0.0.1:9101/metrics   log $RUN/auth.log
  event    gRPC  127.0.0.1:50052   metrics http://127.0.0.1:9102/metrics   log $RUN/event.log
  join     gRPC  127.0.0.1:50053   metrics http://127.0.0.1:9103/metrics   log $RUN/join.log
  feed     gRPC  127.0.0.1:50054   metrics http://127.0.0.1:9104/metrics   log $RUN/feed.log
  media    gRPC  127.0.0.1:50055   metrics http://127.0.0.1:9105/metrics   log $RUN/media.log   images in $RUN/media
  mail     gRPC  127.0.0.1:50056   metrics http://127.0.0.1:9106/metrics   log $RUN/mail.log
  mails    every mail sent is a file in $MAILS (a local SMTP catcher on 127.0.0.1:2525)
  metrics  Prometheus http://127.0.0.1:9090 scrapes every service; alerts at http://127.0.0.1:9090/alerts
  postgres $(pg_url)   redis redis://127.0.0.1:$REDIS_PORT   nats nats://127.0.0.1:$NATS_PORT
Demo accounts (password "cityevents-demo"): admin@cityevents.local (admin), ada@cityevents.local
Try:  curl -s -X POST http://127.0.0.1:8080/v1/account:signIn -H 'content-type: application/json' \\
        -d '{"email":"ada@cityevents.local","password":"cityevents-demo"}'
      curl -s -X POST http://127.0.0.1:8080/v1/events/<id>/registration -H 'content-type: application/json' \\
        -H "authorization: Bearer <accessToken>" -H 'idempotency-key: try-1' -d '{}'
      grpcurl -plaintext -d '{"event_id":"<id>"}' 127.0.0.1:8080 cityevents.api.v1.LiveService/WatchEvent
      curl -s 'http://127.0.0.1:8080/v1/search?search.query=cofee'   # typos forgiven
Stop: make stop
MSG
