#!/usr/bin/env bash
# Prints the folder that holds google/api and google/rpc protos (from the PyPI
# package googleapis-common-protos) and links them into proto/.deps for buf.
source "$(dirname "$0")/lib.sh"
py="$TOOLS/venv/bin/python"
[ -x "$py" ] || { bash "$ROOT/scripts/install-deps.sh" >&2; }
dir=$("$py" -c 'import os, google.api.http_pb2 as m; print(os.path.dirname(os.path.dirname(os.path.dirname(m.__file__))))')
mkdir -p "$ROOT/proto/.deps/google"
for sub in api rpc type; do ln -sfn "$dir/google/$sub" "$ROOT/proto/.deps/google/$sub"; done
echo "$dir"
