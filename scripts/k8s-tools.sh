#!/usr/bin/env bash
# Builds, once, what the chart's tests run (../docs/operations.md, "The
# chart"): a real Kubernetes control plane (kube-apiserver,
# controller-manager, scheduler, kubectl v1.37.2; etcd 3.7) pinned by
# k8s/tools/go.mod, kwok (a fake kubelet), helm, and the CRDs the chart
# uses (Gateway API, ServiceMonitor, PrometheusRule) from Go module zips.
# Everything lands in a cache outside the clone ($CE_K8S_CACHE, default
# ~/.cache/cityevents-ci/k8s): the cold build takes about 11 minutes and
# 8 GB; afterwards this script returns in a second. Prints the bin folder.
source "$(dirname "$0")/lib.sh"

V=1.37.2
KWOK=v0.8.0
HELM=v3.22.0
GATEWAY_API=v1.6.3
PROM_OPERATOR=v0.85.0
ENVOY_GATEWAY=v1.6.0
CACHE="${CE_K8S_CACHE:-$HOME/.cache/cityevents-ci/k8s}"
export GOMODCACHE="$CACHE/gomod" GOCACHE="$CACHE/gocache" CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
key=$( (cat "$ROOT/k8s/tools/go.sum"; echo "$V $KWOK $HELM") | sha256sum | cut -c1-12)
BIN="$CACHE/bin-$key"
crds="$GATEWAY_API $PROM_OPERATOR $ENVOY_GATEWAY"
dir_of() { go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'; }

if [ ! -f "$BIN/.done" ]; then
  log "building the Kubernetes control plane v$V, etcd, kwok $KWOK and helm $HELM into $BIN (once: ~11 min)"
  mkdir -p "$BIN"
  LD="-s -w -X k8s.io/component-base/version.gitVersion=v$V -X k8s.io/component-base/version.gitMajor=1
 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean
 -X k8s.io/component-base/version.gitCommit=0000000000000000000000000000000000000000
 -X k8s.io/component-base/version.buildDate=2026-01-01T00:00:00Z
 -X k8s.io/client-go/pkg/version.gitVersion=v$V -X k8s.io/client-go/pkg/version.gitMajor=1
 -X k8s.io/client-go/pkg/version.gitMinor=37"
  (cd "$ROOT/k8s/tools" &&
    go build -trimpath -ldflags "$LD" -o "$BIN/" k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl &&
    go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3)
  GOBIN="$BIN" go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK"
  GOBIN="$BIN" go install "helm.sh/helm/v3/cmd/helm@$HELM"

  # kwok's stages, from its module zip.
  kw=$(dir_of "sigs.k8s.io/kwok@$KWOK")
  {
    cat "$kw/kustomize/stage/node/fast/node-initialize.yaml"
    for f in "$kw"/kustomize/stage/node/heartbeat-with-lease/*.yaml; do echo "---"; cat "$f"; done
    for f in pod-ready pod-complete pod-delete; do echo "---"; cat "$kw/kustomize/stage/pod/fast/$f.yaml"; done
  } >"$BIN/kwok-stages.yaml"
  cp "$kw/kustomize/stage/pod/fast/pod-complete.yaml" "$BIN/pod-complete.yaml"
  chmod -R u+w "$BIN"
  touch "$BIN/.done"
fi

# The CRDs the chart uses, from module zips: Gateway API (standard
# channel), Envoy Gateway's traffic policies, ServiceMonitor and
# PrometheusRule.
if [ "$(cat "$BIN/crds/.versions" 2>/dev/null)" != "$crds" ]; then
  gw=$(dir_of "sigs.k8s.io/gateway-api@$GATEWAY_API")
  po=$(dir_of "github.com/prometheus-operator/prometheus-operator@$PROM_OPERATOR")
  eg=$(dir_of "github.com/envoyproxy/gateway@$ENVOY_GATEWAY")
  rm -rf "$BIN/crds" && mkdir -p "$BIN/crds"
  cp "$gw"/config/crd/standard/*.yaml "$BIN/crds/"
  cp "$po"/example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,prometheusrules}.yaml "$BIN/crds/"
  cp "$eg"/charts/gateway-helm/crds/generated/gateway.envoyproxy.io_{backend,client}trafficpolicies.yaml "$BIN/crds/"
  chmod -R u+w "$BIN/crds"
  echo "$crds" >"$BIN/crds/.versions"
fi
echo "$BIN"
