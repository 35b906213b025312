#!/usr/bin/env bash
# The chart (helm/cityevents) against a real Kubernetes API server
# (scripts/k8s-cluster.sh: kube-apiserver, controller-manager, scheduler,
# etcd, kwok as a fake kubelet):
#   1. helm lint, and the schema refusing a typo'd key and a wrong type;
#   2. helm template with default, dev and production-like values, each
#      applied with a server-side dry run (with the CRDs the chart uses),
#      and every service's binary accepting the settings it is given;
#   3. helm install --wait (production-like), the objects read back and
#      checked (scripts/chart-check.py), helm test, helm upgrade rolling a
#      Deployment on a changed value;
#   4. the BFF's EndpointSlice discovery (`bff replicas join`) following
#      the join Deployment scaled 1 → 3 → 1;
#   5. helm uninstall leaving nothing behind; then the same install,
#      check and uninstall in dev mode.
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/k8s-cluster.sh"
CHART="$ROOT/helm/cityevents"
WORK=$(mktemp -d)
trap 'k8s_stop; rm -rf "$WORK"' EXIT
cd "$ROOT"
SQLX_OFFLINE=true cargo build -q --locked --bins
BINS="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
k8s_start "$WORK/k8s"
KUBE_VERSION=$(kubectl version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')
# Helm reads the chart's links to k8s/prometheus/rules and grafana/dashboards
# (files/) and says so on every call; that note is expected.
helm() {
  local err rc=0
  err=$(mktemp)
  command helm "$@" 2>"$err" || rc=$?
  grep -v 'found symbolic link in path' "$err" >&2 || true
  rm -f "$err"
  return "$rc"
}

step() { printf '\n==> %s\n' "$*"; }
expect_refusal() { # expect_refusal WORDS -- helm args: helm must fail and say WORDS
  local words=$1; shift 2
  if helm template t "$CHART" --kube-version "$KUBE_VERSION" "$@" >"$WORK/out" 2>&1; then
    log "the schema accepted $*"; exit 1
  fi
  grep -q "$words" "$WORK/out" || { log "the refusal of $* does not say '$words':"; cat "$WORK/out"; exit 1; }
  echo "refused ($*): $(grep -m1 "$words" "$WORK/out" | sed 's/^ *//')"
}

step "helm lint"
helm lint --strict "$CHART"
helm lint --strict "$CHART" -f "$CHART/ci/dev-values.yaml"
helm lint --strict "$CHART" -f "$CHART/ci/production-values.yaml"

step "values.schema.json refuses a typo'd key and a wrong type"
expect_refusal "replcas" -- --set services.join.replcas=3
expect_refusal "replicas" -- --set-string defaults.replicas=two
expect_refusal "discovery" -- --set services.bff.discovery=consul

step "helm template, each applied with a server-side dry run"
kubectl create namespace dry-run >/dev/null
for values in default dev production; do
  args=(); [ "$values" = default ] || args=(-f "$CHART/ci/$values-values.yaml")
  helm template ce "$CHART" -n dry-run --kube-version "$KUBE_VERSION" "${args[@]}" >"$WORK/$values.yaml" 2>"$WORK/template.err" ||
    { cat "$WORK/template.err"; exit 1; }
  kubectl apply --dry-run=server -n dry-run -f "$WORK/$values.yaml" >"$WORK/$values.applied"
  echo "$values values: $(grep -c '^kind:' "$WORK/$values.yaml") objects accepted by the API server ($(grep -o '^kind: .*' "$WORK/$values.yaml" | sort | uniq -c | awk '{printf "%s %s, ", $1, $3}' | sed 's/, $//'))"
done

step "every service accepts the settings the chart gives it (<service> config)"
for values in dev production; do
  "$TOOLS/venv/bin/python" "$ROOT/scripts/chart-config-check.py" "$WORK/$values.yaml" "$BINS" | sed "s/^/$values values: /"
done

step "helm install --wait (production-like values)"
kubectl create namespace prod >/dev/null
helm install ce "$CHART" -n prod -f "$CHART/ci/production-values.yaml" --wait --timeout 3m >/dev/null
kubectl get deploy -n prod -l app.kubernetes.io/instance=ce
python3 "$ROOT/scripts/chart-check.py" prod ce --autoscaling

step "helm test"
helm test ce -n prod --timeout 2m

step "helm upgrade: a changed value rolls the Deployments; generated keys stay"
key_before=$(kubectl get secret ce-cityevents-secrets -n prod -o jsonpath='{.data.auth-signing\.pem}' | sha256sum)
before=$(kubectl get deploy ce-cityevents-join -n prod -o jsonpath='{.spec.template.metadata.annotations.checksum/config}')
gen=$(kubectl get deploy ce-cityevents-join -n prod -o jsonpath='{.metadata.generation}')
helm upgrade ce "$CHART" -n prod -f "$CHART/ci/production-values.yaml" --set-json telemetry.sampleRatio=0.5 --wait --timeout 3m >/dev/null
after=$(kubectl get deploy ce-cityevents-join -n prod -o jsonpath='{.spec.template.metadata.annotations.checksum/config}')
gen2=$(kubectl get deploy ce-cityevents-join -n prod -o jsonpath='{.metadata.generation}')
[ "$before" != "$after" ] && [ "$gen2" -gt "$gen" ] || { log "the join Deployment did not roll"; exit 1; }
kubectl rollout status deploy/ce-cityevents-join -n prod --timeout=60s
echo "join rolled: generation $gen → $gen2, config checksum ${before:0:12} → ${after:0:12}"
kubectl get configmap ce-cityevents-join -n prod -o jsonpath='{.data.CITYEVENTS_TELEMETRY__SAMPLE_RATIO}' | grep -qx 0.5
key_after=$(kubectl get secret ce-cityevents-secrets -n prod -o jsonpath='{.data.auth-signing\.pem}' | sha256sum)
[ "$key_before" = "$key_after" ] || { log "the upgrade replaced the generated signing key"; exit 1; }
echo "the generated signing key survived the upgrade"

step "rotating the JWT key: a key added to the Secret stays and is mounted first"
openssl genpkey -algorithm ed25519 -out "$WORK/auth-signing-2.pem"
kubectl patch secret ce-cityevents-secrets -n prod --type merge -p "$(python3 -c '
import json, sys; print(json.dumps({"stringData": {"auth-signing-2.pem": open(sys.argv[1]).read()}}))' "$WORK/auth-signing-2.pem")" >/dev/null
helm upgrade ce "$CHART" -n prod --reuse-values --set 'keys.authSigning={auth-signing-2.pem,auth-signing.pem}' --wait --timeout 3m >/dev/null
kubectl get secret ce-cityevents-secrets -n prod -o jsonpath='{.data.auth-signing-2\.pem}' | base64 -d | cmp - "$WORK/auth-signing-2.pem"
files=$(kubectl get configmap ce-cityevents-auth -n prod -o jsonpath='{.data.CITYEVENTS_TOKENS__SIGNING_KEY_FILES}')
[ "$files" = '["/etc/cityevents/keys/auth-signing-2.pem","/etc/cityevents/keys/auth-signing.pem"]' ] || { log "auth signs with $files"; exit 1; }
kubectl get deploy ce-cityevents-auth -n prod -o jsonpath='{.spec.template.spec.volumes[?(@.name=="keys")].secret.items[*].key}' | grep -q 'auth-signing-2.pem auth-signing.pem'
echo "auth signs with the new key and still verifies with the old one: $files"

step "EndpointSlice discovery follows the join Deployment (bff replicas join)"
kubectl delete hpa ce-cityevents-join -n prod >/dev/null # the scale is ours for this step
kubectl scale deploy/ce-cityevents-join -n prod --replicas=1 >/dev/null
CITYEVENTS_JOIN__ENDPOINT="http://ce-cityevents-join.prod:50051" CITYEVENTS_JOIN__DISCOVERY=kubernetes \
  "$BINS/bff" replicas join >"$WORK/replicas.out" 2>"$WORK/replicas.err" &
watcher=$!
sees() { # sees N: the watcher's last line counts N ready replicas
  for _ in $(seq 150); do
    [ "$(tail -1 "$WORK/replicas.out" | awk '{print $2}')" = "$1" ] && { echo "watcher: $(tail -1 "$WORK/replicas.out")"; return; }
    sleep 0.2
  done
  log "the watcher never saw $1 replicas:"; cat "$WORK/replicas.out" "$WORK/replicas.err"; kill "$watcher"; exit 1
}
sees 1
kubectl scale deploy/ce-cityevents-join -n prod --replicas=3 >/dev/null
sees 3
kubectl scale deploy/ce-cityevents-join -n prod --replicas=1 >/dev/null
sees 1
kill -TERM "$watcher"; wait "$watcher"
echo "the watcher stopped cleanly on SIGTERM"

step "helm uninstall leaves nothing behind"
helm uninstall ce -n prod --wait --timeout 2m >/dev/null
left() { # every namespaced object of the release still there
  kubectl api-resources --verbs=list --namespaced -o name | grep -v '^events' | paste -sd, |
    xargs -I{} kubectl get {} -n "$1" -l "app.kubernetes.io/instance=$2" -o name 2>/dev/null
}
for _ in $(seq 50); do [ -z "$(left prod ce)" ] && break; sleep 0.2; done
[ -z "$(left prod ce)" ] || { log "left behind:"; left prod ce; exit 1; }
echo "nothing of release ce is left in namespace prod"

step "dev mode: helm install --wait, check, test, uninstall"
kubectl create namespace dev >/dev/null
helm install demo "$CHART" -n dev -f "$CHART/ci/dev-values.yaml" --wait --timeout 3m | sed -n '/^NOTES/,$p' | head -8
python3 "$ROOT/scripts/chart-check.py" dev demo
helm test demo -n dev --timeout 2m >/dev/null && echo "helm test passed"
helm uninstall demo -n dev --wait --timeout 2m >/dev/null
for _ in $(seq 50); do [ -z "$(left dev demo)" ] && break; sleep 0.2; done
[ -z "$(left dev demo)" ] || { log "left behind:"; left dev demo; exit 1; }
echo "nothing of release demo is left in namespace dev"

cat <<'EOF'

==> the chart passed against a real API server. What the fake kubelet
    (kwok) cannot prove: no container runs, so images, probes answering,
    the services' start-up, HPA scaling on metrics, NetworkPolicy
    enforcement, Gateway and ServiceMonitor behaviour and any traffic are
    not exercised here; the objects, their validation, scheduling, rollout,
    hooks, EndpointSlices and RBAC are.
EOF
