#!/usr/bin/env bash
# `make bench`: the join load scenarios against real PostgreSQL, Redis and
# NATS (started here if needed), built with optimisations. Prints joins/s and
# latency percentiles; see docs/benchmarks.md.
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/infra-up.sh"
# Databases left by earlier test and bench runs keep autovacuum busy while
# the bench measures; drop them first.
export PGPASSWORD=$PG_PASSWORD
psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -tAc \
  "SELECT datname FROM pg_database WHERE datname ~ '_test_[0-9a-f]{32}$'" |
  while read -r db; do
    psql -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -c "DROP DATABASE \"$db\" WITH (FORCE)"
  done
cd "$ROOT"
SQLX_OFFLINE=true cargo bench --locked -p join --bench joins
