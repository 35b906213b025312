#!/usr/bin/env bash
# The alert rules: generated from the SLOs and current, valid, and their
# unit tests passing (promtool). Part of `make test`.
source "$(dirname "$0")/lib.sh"
P="$ROOT/k8s/prometheus"
fresh=$(mktemp)
trap 'rm -f "$fresh"' EXIT
python3 "$ROOT/scripts/slo-rules.py" "$P/slos.toml" >"$fresh"
if ! diff -u "$P/rules/slo.rules.yml" "$fresh"; then
  log "k8s/prometheus/rules/slo.rules.yml is stale: python3 scripts/slo-rules.py k8s/prometheus/slos.toml > k8s/prometheus/rules/slo.rules.yml"
  exit 1
fi
promtool check rules "$P"/rules/*.yml
promtool test rules "$P"/tests/*.test.yml
# Every runbook an alert links to is written.
grep -ho 'docs/runbooks/[a-z-]*\.md' "$P"/rules/*.yml | sort -u | while read -r page; do
  [ -s "$ROOT/$page" ] || { log "$page is linked from an alert but missing"; exit 1; }
done
log "alert rules current, valid and tested"
