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
