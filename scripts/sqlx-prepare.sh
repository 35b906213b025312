#!/usr/bin/env bash
# Refreshes each service's `.sqlx/` (the query shapes offline builds check
# against): migrates a scratch database with the service's migrations, then
# rebuilds the crate with its queries described live and saved.
source "$(dirname "$0")/lib.sh"
export PGPASSWORD=$PG_PASSWORD
cd "$ROOT"
for dir in crates/*/ services/*/; do
  [ -f "$dir/sqlx.toml" ] || continue
  svc=$(basename "$dir")
  pkg=$(sed -n 's/^name = "\(.*\)"/\1/p' "$dir/Cargo.toml" | head -1)
  db="${svc}_sqlx"
  psql -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" 2>/dev/null
  # Every service database also holds the outbox and inbox of cityevents-messaging.
  cat crates/messaging/migrations/*.sql $( [ "$svc" = messaging ] || echo "$dir"/migrations/*.sql ) | psql -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$db" -v ON_ERROR_STOP=1 >/dev/null
  var=$(echo "${svc}_DATABASE_URL" | tr '[:lower:]' '[:upper:]')
  rm -rf "$dir/.sqlx" && mkdir -p "$dir/.sqlx"
  touch "$dir"/src/lib.rs
  log "describing $svc queries against $db"
  env "$var=$(pg_url "$db")" SQLX_OFFLINE_DIR="$ROOT/$dir.sqlx" SQLX_OFFLINE=false cargo check -q -p "$pkg" --all-targets
done
