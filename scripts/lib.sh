# Shared settings for the scripts in this folder. Sourced, not run.
# Every path the scripts write lives under CE_STATE_DIR, outside the clone.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${CE_STATE_DIR:-$HOME/.local/state/cityevents}"
TOOLS="$STATE/tools"
export PATH="$TOOLS/bin:$HOME/go/bin:$HOME/.cargo/bin:$PATH"
PG_HOST=127.0.0.1 PG_PORT="${PG_PORT:-5432}" PG_USER=postgres PG_PASSWORD=postgres
REDIS_PORT="${REDIS_PORT:-6379}"
NATS_PORT="${NATS_PORT:-4222}"
SERVICES="auth event join feed media mail"
mkdir -p "$STATE" "$TOOLS"

log() { printf '==> %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# Loopback: no TLS to PostgreSQL.
pg_url() { echo "postgres://$PG_USER:$PG_PASSWORD@$PG_HOST:$PG_PORT/${1:-postgres}?sslmode=disable"; }
# One line on how fast this machine is now, so bench runs on different
# machines (or the same one at another time) can be told apart from a
# change in the software: the CPU, one core's SHA-256 throughput over 1 GiB,
# and the share of CPU time the host took for other guests (steal) over the
# measurement.
machine_line() {
  local model steal0 total0 steal1 total1 t0 t1
  model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
  read -r _ a b c d e f g h _ < /proc/stat; steal0=$h total0=$((a+b+c+d+e+f+g+h))
  t0=$(date +%s%N); head -c 1073741824 /dev/zero | sha256sum >/dev/null; t1=$(date +%s%N)
  read -r _ a b c d e f g h _ < /proc/stat; steal1=$h total1=$((a+b+c+d+e+f+g+h))
  printf 'machine: %s, %s CPUs; sha256 %d MB/s on one core; %d%% stolen meanwhile\n' "$model" "$(nproc)" \
    $(( 1073741824 * 1000 / (t1 - t0) )) $(( 100 * (steal1 - steal0) / (total1 - total0 + 1) ))
}

# python_stubs DIR: Python messages and gRPC stubs of every contract in
# proto/ (one contract imports another: all of them, always).
python_stubs() {
  mkdir -p "$1"
  "$TOOLS/venv/bin/python" -m grpc_tools.protoc -I "$ROOT/proto" -I "$(bash "$ROOT/scripts/proto-deps.sh")" \
    --python_out="$1" --grpc_python_out="$1" "$ROOT"/proto/cityevents/*/v1/*.proto
}

# otlp_receiver DIR PORT: a minimal OTLP trace receiver (scripts/otlp-receiver.py,
# stubs generated from opentelemetry-proto's own .proto files) on PORT, keeping
# every span in DIR/spans.jsonl; its pid in DIR/otlp.pid.
otlp_receiver() {
  local dir=$1 port=$2 stubs="$1/otlp-stubs" otel
  otel=$(cd "$ROOT" && cargo metadata --format-version 1 --locked | "$TOOLS/venv/bin/python" -c '
import json, os, sys
p = next(p for p in json.load(sys.stdin)["packages"] if p["name"] == "opentelemetry-proto")
print(os.path.join(os.path.dirname(p["manifest_path"]), "src/proto/opentelemetry-proto"))')
  mkdir -p "$stubs"
  "$TOOLS/venv/bin/python" -m grpc_tools.protoc -I "$otel" --python_out="$stubs" --grpc_python_out="$stubs" \
    "$otel"/opentelemetry/proto/{common,resource,trace,collector/trace}/v1/*.proto
  STUBS="$stubs" "$TOOLS/venv/bin/python" "$ROOT/scripts/otlp-receiver.py" "$port" "$dir/spans.jsonl" >>"$dir/otlp.log" 2>&1 &
  echo $! >"$dir/otlp.pid"
  for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return; sleep 0.1; done
  log "the OTLP receiver did not start"; cat "$dir/otlp.log"; exit 1
}
