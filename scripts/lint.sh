#!/usr/bin/env bash
# `make lint`: formatting, clippy, buf lint, and buf breaking against the
# previous commit (when it has contracts).
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/install-deps.sh"
bash "$ROOT/scripts/proto-deps.sh" >/dev/null
cd "$ROOT"
cargo fmt --all -- --check
SQLX_OFFLINE=true cargo clippy --workspace --all-targets --locked -- -D warnings
(cd proto && buf lint)
log "buf lint passed"

if git rev-parse -q --verify HEAD~1 >/dev/null && git cat-file -e HEAD~1:proto/buf.yaml 2>/dev/null; then
  prev=$(mktemp -d)
  git archive HEAD~1 proto | tar -x -C "$prev"
  cp -a proto/.deps "$prev/proto/.deps"
  (cd "$prev/proto" && buf build -o "$prev/before.binpb")
  (cd proto && buf build -o "$prev/after.binpb")
  buf breaking "$prev/after.binpb" --against "$prev/before.binpb" \
    --config '{"version":"v2","breaking":{"use":["FILE"]}}'
  rm -rf "$prev"
  log "buf breaking passed against HEAD~1"
fi
