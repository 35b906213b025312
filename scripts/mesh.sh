# Sourced by faults.sh and e2e.sh: runs the built binaries (not in-process)
# on fixed loopback ports against databases <db>_<service> and streams under
# a fresh prefix. Needs lib.sh sourced first.
#   mesh_init DIR DB PORT_BASE   keys, databases, ports (PORT_BASE+1 … +8, admin +101 … +107;
#                                keep them under 32768, clear of the kernel's ephemeral ports)
#   start smtp                   the SMTP catcher (mails kept in DIR/mails)
#   start prometheus             Prometheus (port PORT_BASE+9) scraping every service each second,
#                                the alert rules loaded
#   start otlp                   an OTLP trace receiver (port PORT_BASE+10) keeping every span in
#                                DIR/spans.jsonl; services started after it export their traces there
#   start SERVICE                starts it and waits for its health
# MESH_PROFILE=release runs the optimised binaries; MESH_ENV[svc]="K=V …"
# adds settings to one service.
#   stop_all                     stops every service started
mesh_init() {
  M=$1 MESH_DB=$2
  local base=$3
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/${MESH_PROFILE:-debug}"
  declare -gA MESH_ENV 2>/dev/null || true
  "$BIN/auth" keygen >"$M/auth.pem"; "$BIN/auth" keygen >"$M/tickets.pem"; "$BIN/auth" sealkey >"$M/seal.key"
  prefix="${MESH_DB^^}$(date +%s)"
  for svc in auth event join feed mail media; do
    psql -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -c "DROP DATABASE IF EXISTS ${MESH_DB}_$svc" -c "CREATE DATABASE ${MESH_DB}_$svc"
  done
  declare -gA PORT=([auth]=$((base + 1)) [event]=$((base + 2)) [join]=$((base + 3)) [bff]=$((base + 4)) [feed]=$((base + 5)) [mail]=$((base + 6)) [smtp]=$((base + 7)) [media]=$((base + 8)) [prometheus]=$((base + 9)) [otlp]=$((base + 10)))
  declare -gA ADMIN=([auth]=$((base + 101)) [event]=$((base + 102)) [join]=$((base + 103)) [bff]=$((base + 104)) [feed]=$((base + 105)) [mail]=$((base + 106)) [media]=$((base + 107)))
  trap stop_all EXIT
}

# start SERVICE: the settings every service has, then its own (unknown keys are errors).
start() {
  if [ "$1" = prometheus ]; then
    {
      echo "global: {scrape_interval: 1s, evaluation_interval: 1s}"
      echo "rule_files: [\"$ROOT/k8s/prometheus/rules/*.yml\"]"
      echo "scrape_configs:"
      for svc in "${!ADMIN[@]}"; do
        echo "  - {job_name: $svc, static_configs: [{targets: [\"127.0.0.1:${ADMIN[$svc]}\"]}]}"
      done
    } >"$M/prometheus.yml"
    prometheus --config.file="$M/prometheus.yml" --storage.tsdb.path="$M/prometheus" \
      --web.listen-address="127.0.0.1:${PORT[prometheus]}" >>"$M/prometheus.log" 2>&1 &
    echo $! >"$M/prometheus.pid"
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:${PORT[prometheus]}/-/ready" >/dev/null && return; sleep 0.1; done
    log "Prometheus did not start"; tail -5 "$M/prometheus.log"; exit 1
  fi
  if [ "$1" = otlp ]; then
    otlp_receiver "$M" "${PORT[otlp]}"
    OTLP_ENDPOINT="http://127.0.0.1:${PORT[otlp]}"
    return
  fi
  if [ "$1" = smtp ]; then
    "$TOOLS/venv/bin/python" "$ROOT/scripts/smtp-catcher.py" "${PORT[smtp]}" "$M/mails" >>"$M/smtp.log" 2>&1 &
    echo $! >"$M/smtp.pid"
    for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/${PORT[smtp]}") 2>/dev/null && return; sleep 0.1; done
    log "the SMTP catcher did not start"; cat "$M/smtp.log"; exit 1
  fi
  local svc=$1 own=() verifier=(CITYEVENTS_VERIFIER__REVOCATION_PREFIX="$prefix:auth:")
  local auth="http://127.0.0.1:${PORT[auth]}" event="http://127.0.0.1:${PORT[event]}" join="http://127.0.0.1:${PORT[join]}"
  local feed="http://127.0.0.1:${PORT[feed]}" media="http://127.0.0.1:${PORT[media]}"
  case $svc in
    auth) own=(CITYEVENTS_TOKENS__VERIFIER__REVOCATION_PREFIX="$prefix:auth:"
               CITYEVENTS_TOKENS__SIGNING_KEY_FILES="[\"$M/auth.pem\"]" CITYEVENTS_TOKENS__LINK_SEAL__KEY_FILES="[\"$M/seal.key\"]"
               CITYEVENTS_TRUSTED_PROXIES='["127.0.0.1"]'
               CITYEVENTS_RATE_LIMITS__REGISTER_PER_ADDRESS='{per_minute=60000,burst=10000}'
               CITYEVENTS_RATE_LIMITS__LOGIN_PER_ADDRESS='{per_minute=60000,burst=10000}') ;;
    event) own=("${verifier[@]}" CITYEVENTS_AUTH__ENDPOINT="$auth" CITYEVENTS_MEDIA__ENDPOINT="$media") ;;
    join) own=("${verifier[@]}" CITYEVENTS_AUTH__ENDPOINT="$auth" CITYEVENTS_EVENT__ENDPOINT="$event"
               CITYEVENTS_TICKETS__SIGNING_KEY_FILE="$M/tickets.pem") ;;
    feed) own=("${verifier[@]}" CITYEVENTS_AUTH__ENDPOINT="$auth" CITYEVENTS_FEED__CURSOR_KEY="$prefix-cursors") ;;
    mail) own=("${verifier[@]}" CITYEVENTS_AUTH__ENDPOINT="$auth" CITYEVENTS_LINK_SEAL__KEY_FILES="[\"$M/seal.key\"]"
               CITYEVENTS_SMTP__PORT="${PORT[smtp]}" CITYEVENTS_MAIL__UNSUBSCRIBE_KEY="$prefix-unsubscribe"
               CITYEVENTS_MAIL__PUBLIC_BASE_URL="http://localhost:5173/#" # the web app (routes in the fragment)
               CITYEVENTS_MAIL__API_BASE_URL="http://127.0.0.1:${PORT[bff]}") ;;
    media) own=("${verifier[@]}" CITYEVENTS_AUTH__ENDPOINT="$auth" CITYEVENTS_MEDIA__STORAGE_PATH="$M/media"
                CITYEVENTS_MEDIA__URL_KEYS="[\"k1:$prefix-media-url-key\"]") ;;
    bff) own=("${verifier[@]}" CITYEVENTS_AUTH__ENDPOINT="$auth" CITYEVENTS_EVENT__ENDPOINT="$event"
              CITYEVENTS_JOIN__ENDPOINT="$join" CITYEVENTS_FEED__ENDPOINT="$feed" CITYEVENTS_MEDIA__ENDPOINT="$media"
              CITYEVENTS_MAIL__ENDPOINT="http://127.0.0.1:${PORT[mail]}"
              CITYEVENTS_EDGE__CORS_ORIGINS='["http://localhost:5173"]') ;;
  esac
  [ "$svc" = bff ] || own+=(CITYEVENTS_DATABASE__URL="$(pg_url "${MESH_DB}_$svc")")
  # Every trace whole (the default keeps a tenth, and failed or slow spans).
  [ -z "${OTLP_ENDPOINT:-}" ] || own+=(CITYEVENTS_TELEMETRY__OTLP_ENDPOINT="$OTLP_ENDPOINT" CITYEVENTS_TELEMETRY__SAMPLE_RATIO=1)
  # shellcheck disable=SC2206 # "K=V K=V", values without spaces
  [ -z "${MESH_ENV[$svc]:-}" ] || own+=(${MESH_ENV[$svc]})
  env CITYEVENTS_SERVER__GRPC_ADDR="127.0.0.1:${PORT[$svc]}" CITYEVENTS_SERVER__ADMIN_ADDR="127.0.0.1:${ADMIN[$svc]}" \
    CITYEVENTS_SERVER__DRAIN_DELAY_MS=200 CITYEVENTS_TELEMETRY__LOG_FILTER=warn \
    CITYEVENTS_REDIS__URL="redis://127.0.0.1:$REDIS_PORT" \
    CITYEVENTS_NATS__STREAM_PREFIX="$prefix" "${own[@]}" \
    "$BIN/$svc" serve >>"$M/$svc.log" 2>&1 &
  echo $! >"$M/$svc.pid"
  for _ in $(seq 100); do
    kill -0 "$(cat "$M/$svc.pid")" 2>/dev/null || break
    grpcurl -plaintext -connect-timeout 1 -max-time 2 -d '{}' "127.0.0.1:${PORT[$svc]}" grpc.health.v1.Health/Check >/dev/null 2>&1 && return
    sleep 0.1
  done
  log "$svc did not start"; tail -20 "$M/$svc.log"; exit 1
}

stop_all() {
  for svc in web prometheus bff media mail feed join event auth smtp otlp; do
    [ -f "$M/$svc.pid" ] && kill "$(cat "$M/$svc.pid")" 2>/dev/null || true
  done
}
