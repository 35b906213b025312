#!/usr/bin/env bash
# `make bench`: the join load scenarios against real PostgreSQL, Redis and
# NATS (started here if needed), built with optimisations. Prints joins/s and
# latency percentiles; see docs/benchmarks.md.
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/infra-up.sh"
cd "$ROOT"
SQLX_OFFLINE=true cargo bench --locked -p join --bench joins
