#!/usr/bin/env bash
# `make e2e`: the product's main journey against the built binaries (auth,
# event, join and the BFF in front) with real PostgreSQL, Redis and NATS,
# driven by clients nobody here wrote: Python's urllib for REST and
# server-sent events, grpcio stubs generated from proto/ for native gRPC, and
# PyNaCl opening the verification link as the mail service will.
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/infra-up.sh"
export PGPASSWORD=$PG_PASSWORD
E2E="$STATE/e2e"
rm -rf "$E2E" && mkdir -p "$E2E/stubs"
PY="$TOOLS/venv/bin/python"
"$PY" -c 'import nats, nacl' 2>/dev/null ||
  "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check 'nats-py==2.*' 'pynacl==1.*'
GOOGLEAPIS=$(bash "$ROOT/scripts/proto-deps.sh")
"$PY" -m grpc_tools.protoc -I "$ROOT/proto" -I "$GOOGLEAPIS" --python_out="$E2E/stubs" --grpc_python_out="$E2E/stubs" \
  "$ROOT"/proto/cityevents/{api,auth,event,feed,join,messaging}/v1/*.proto

log "building the binaries"
(cd "$ROOT" && SQLX_OFFLINE=true cargo build -q --bins)
source "$ROOT/scripts/mesh.sh"
mesh_init "$E2E" e2e 51070
for svc in auth event join bff; do start "$svc"; done
STUBS="$E2E/stubs" "$PY" "$ROOT/tests/e2e/journey.py" \
  "127.0.0.1:${PORT[bff]}" "nats://127.0.0.1:$NATS_PORT" "$prefix" "$M/seal.key"
log "e2e passed"
