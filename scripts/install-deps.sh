#!/usr/bin/env bash
# Installs, if missing, what running and testing CityEvents needs on this machine:
# PostgreSQL (with PostGIS), Redis, NATS and Prometheus from Debian; buf, grpcio-tools and the googleapis
# protos and aiosmtpd (the local SMTP catcher) from PyPI (into a virtualenv
# under $CE_STATE_DIR); grpcurl from Go.
# Idempotent: a second run installs nothing.
source "$(dirname "$0")/lib.sh"

missing=()
command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
# The feed's geo queries (PostGIS for PostgreSQL 15, Debian's build).
ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 || missing+=(postgresql-15-postgis-3)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v nats-server >/dev/null || missing+=(nats-server)
command -v npm >/dev/null || missing+=(nodejs npm)
# The web app's browser tests (playwright-core drives Debian's Chromium).
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} from Debian"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Prometheus and promtool (alert rules and their unit tests; `make run`
# scrapes the services), without the exporters Debian recommends.
if ! command -v promtool >/dev/null; then
  log "installing prometheus from Debian"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

VENV="$TOOLS/venv"
if [ ! -x "$VENV/bin/buf" ] || ! "$VENV/bin/python" -c 'import grpc_tools, google.api.http_pb2, aiosmtpd, moto' 2>/dev/null; then
  log "installing buf, grpcio-tools, googleapis-common-protos, aiosmtpd and moto (an S3 server) into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    'buf-bin==1.*' 'grpcio-tools==1.*' 'googleapis-common-protos==1.*' 'pytest==8.*' 'aiosmtpd==1.4.*' \
    'moto[server]==5.*'
fi
mkdir -p "$TOOLS/bin"
ln -sf "$VENV/bin/buf" "$TOOLS/bin/buf"

if ! command -v grpcurl >/dev/null; then
  log "installing grpcurl with go install"
  GOBIN="$TOOLS/bin" go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4
fi
log "tools ready under $TOOLS"
