#!/usr/bin/env bash
# `make bench`: the join load scenarios and auth's memory under sign-ups against real PostgreSQL, Redis and
# NATS (started here if needed), built with optimisations. Prints joins/s and
# latency percentiles; see docs/benchmarks.md.
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/infra-up.sh"
# The bench first drops the databases and streams earlier test runs left
# (testkit::sweep_leftovers): they keep autovacuum and NATS busy.
cd "$ROOT"
# Build first, then calibrate: a machine straight out of a long compile is
# often slower for a while (see docs/benchmarks.md).
SQLX_OFFLINE=true cargo bench --locked -p join --bench joins --no-run
machine_line
SQLX_OFFLINE=true cargo bench --locked -p join --bench joins
# The same traced at the default sampling and exported over OTLP to a
# receiver (telemetry's cost on the join path; the receiver's CPU apart).
OTLP_DIR=$(mktemp -d)
otlp_receiver "$OTLP_DIR" 21199
CE_BENCH_OTLP=http://127.0.0.1:21199 SQLX_OFFLINE=true cargo bench --locked -p join --bench joins
echo "the OTLP receiver used $(ps -o cputime= -p "$(cat "$OTLP_DIR/otlp.pid")") of CPU for $(wc -l <"$OTLP_DIR/spans.jsonl") spans"
kill "$(cat "$OTLP_DIR/otlp.pid")"; rm -rf "$OTLP_DIR"
# Auth's memory under a sign-up storm (argon2id, 19 MiB a hash).
SQLX_OFFLINE=true cargo bench --locked -p auth --bench memory
# Mail: confirmations rendered per second, then sent over SMTP to the local catcher.
SQLX_OFFLINE=true cargo bench --locked -p mail --bench mails
# Media: a 12-megapixel JPEG to every variant, on one core.
SQLX_OFFLINE=true cargo bench --locked -p media --bench images
# The BFF: joins over REST and gRPC through the edge against the join
# service direct, the event page, a step-up to the saturating rate, and
# 10,000 live watchers (crates/loadgen, outside the services' processes).
bash "$ROOT/scripts/bench-bff.sh"
# Discovery over 100,000 events: rebuild rate, cached and uncached searches,
# typos, geo and "for you"; EXPLAIN of each (scripts/bench-feed.sh).
bash "$ROOT/scripts/bench-feed.sh"
machine_line
