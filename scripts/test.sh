#!/usr/bin/env bash
# `make test`: everything a change must pass, against real PostgreSQL, Redis
# and NATS (started here if they are not running).
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/infra-up.sh"
export GOOGLEAPIS_PROTO_DIR
GOOGLEAPIS_PROTO_DIR=$(bash "$ROOT/scripts/proto-deps.sh")
cd "$ROOT"
bash "$ROOT/scripts/rules-test.sh"
bash "$ROOT/scripts/dashboards-test.sh"
bash "$ROOT/scripts/chart-test.sh"
bash "$ROOT/scripts/web-test.sh"
# Tests make a database and streams each and never drop them; drop what
# earlier runs left (thousands slow PostgreSQL's recovery and NATS's start).
SQLX_OFFLINE=true cargo run -q --locked -p cityevents-testkit --bin sweep
SQLX_OFFLINE=true cargo test --workspace --locked
