#!/usr/bin/env bash
# Starts, if stopped, PostgreSQL, Redis and NATS (JetStream) on loopback, and
# creates each service's database. Installs them first if missing. Idempotent.
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/install-deps.sh"

start_postgres() {
  local version cluster
  version=$(ls /usr/lib/postgresql | sort -n | tail -1)
  cluster=main
  if ! pg_lsclusters -h | grep -q "^$version $cluster"; then
    as_root pg_createcluster "$version" "$cluster" >/dev/null
  fi
  if ! pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then
    log "starting postgresql $version"
    # After an unclean stop PostgreSQL syncs every data file before it opens;
    # pg_ctl's default 60 s is not always enough.
    as_root pg_ctlcluster "$version" "$cluster" start -- -t 600
    for _ in $(seq 50); do pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && break; sleep 0.2; done
  fi
  # syncfs: one call per file system instead of an fsync per file at crash
  # recovery (PostgreSQL 14+; takes effect on reload).
  if [ "$(PGPASSWORD=$PG_PASSWORD psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -tAc 'show recovery_init_sync_method' 2>/dev/null)" = fsync ]; then
    PGPASSWORD=$PG_PASSWORD psql -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" \
      -c "ALTER SYSTEM SET recovery_init_sync_method = 'syncfs'" -c 'SELECT pg_reload_conf()' >/dev/null
  fi
  as_root su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD '$PG_PASSWORD'\"" >/dev/null
  # Tests create a database each; allow plenty of connections.
  local max
  max=$(PGPASSWORD=$PG_PASSWORD psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -tAc 'show max_connections')
  if [ "$max" -lt 300 ]; then
    PGPASSWORD=$PG_PASSWORD psql -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -c 'ALTER SYSTEM SET max_connections = 500'
    as_root pg_ctlcluster "$version" "$cluster" restart
    for _ in $(seq 50); do pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && break; sleep 0.2; done
  fi
}

create_databases() {
  local svc db
  for svc in $SERVICES; do
    db="cityevents_$svc"
    if ! PGPASSWORD=$PG_PASSWORD psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -tAc "select 1 from pg_database where datname='$db'" | grep -q 1; then
      PGPASSWORD=$PG_PASSWORD psql -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -c "CREATE DATABASE $db"
    fi
  done
}

start_redis() {
  if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    log "starting redis on $REDIS_PORT"
    mkdir -p "$STATE/redis"
    redis-server --daemonize yes --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$STATE/redis" \
      --save "" --appendonly no --pidfile "$STATE/redis/redis.pid" --logfile "$STATE/redis/redis.log"
    for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
}

start_nats() {
  if ! (exec 3<>/dev/tcp/127.0.0.1/"$NATS_PORT") 2>/dev/null; then
    log "starting nats-server (JetStream) on $NATS_PORT"
    mkdir -p "$STATE/nats"
    nohup nats-server -js -sd "$STATE/nats/store" -a 127.0.0.1 -p "$NATS_PORT" -m 8222 \
      -P "$STATE/nats/nats.pid" >"$STATE/nats/nats.log" 2>&1 &
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$NATS_PORT") 2>/dev/null && break; sleep 0.1; done
  fi
}

start_postgres
create_databases
start_redis
start_nats
log "postgres $(pg_url) · redis redis://127.0.0.1:$REDIS_PORT · nats nats://127.0.0.1:$NATS_PORT"
