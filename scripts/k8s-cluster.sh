# A real Kubernetes control plane on loopback, for the chart's tests:
# etcd, kube-apiserver, controller-manager, scheduler, and kwok as a fake
# kubelet (pods are scheduled and turn Ready, nothing runs). Sourced, not
# run: `k8s_start DIR` starts it with its state in DIR and exports
# KUBECONFIG; `k8s_stop` stops it (call it from a trap). Built by
# scripts/k8s-tools.sh; the recipe is ../shared/K8S-LOCAL.md.
#
# Ports (loopback only), from K8S_PORT_BASE (default 32000): etcd +379 and
# +380, kube-apiserver +443, controller-manager +257, scheduler +259,
# kwok +247.

K8S_PIDS=()

k8s_start() {
  local dir=$1 base=${K8S_PORT_BASE:-32000} bin
  bin=$(bash "$ROOT/scripts/k8s-tools.sh")
  export PATH="$bin:$PATH" K8S_BIN=$bin K8S_DIR=$dir
  local etcd=$((base + 379)) peer=$((base + 380)) api=$((base + 443))
  mkdir -p "$dir/pki" "$dir/etcd"
  local pki=$dir/pki
  # PKI: a CA, the API server's certificate, an admin client, the
  # service-account key pair.
  (
    cd "$pki"
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -subj /CN=cityevents-test-ca -days 2 -out ca.crt 2>/dev/null
    openssl ecparam -name prime256v1 -genkey -noout -out api.key 2>/dev/null
    openssl req -new -key api.key -subj /CN=kube-apiserver -out api.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n' >api.ext
    openssl x509 -req -in api.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile api.ext -out api.crt 2>/dev/null
    openssl ecparam -name prime256v1 -genkey -noout -out admin.key 2>/dev/null
    openssl req -new -key admin.key -subj /O=system:masters/CN=kubernetes-admin -out admin.csr 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile admin.ext -out admin.crt 2>/dev/null
    openssl ecparam -name prime256v1 -genkey -noout -out sa.key 2>/dev/null
    openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null
  )
  export KUBECONFIG=$dir/kubeconfig
  cat >"$KUBECONFIG" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: local
    cluster:
      server: https://127.0.0.1:$api
      certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
  - name: admin
    user:
      client-certificate-data: $(base64 -w0 "$pki/admin.crt")
      client-key-data: $(base64 -w0 "$pki/admin.key")
contexts:
  - name: local
    context: {cluster: local, user: admin}
current-context: local
EOF
  chmod 600 "$KUBECONFIG"

  "$bin/etcd" --name node0 --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd" --advertise-client-urls "http://127.0.0.1:$etcd" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "node0=http://127.0.0.1:$peer" --auto-compaction-retention=1 \
    --log-level=warn >"$dir/etcd.log" 2>&1 &
  K8S_PIDS+=($!)
  k8s_wait "etcd" curl -sf "http://127.0.0.1:$etcd/health"

  "$bin/kube-apiserver" --etcd-servers="http://127.0.0.1:$etcd" --bind-address=127.0.0.1 \
    --secure-port="$api" --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
    --kubelet-preferred-address-types=InternalIP --service-cluster-ip-range=10.0.0.0/24 \
    --tls-cert-file="$pki/api.crt" --tls-private-key-file="$pki/api.key" --client-ca-file="$pki/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --authorization-mode=Node,RBAC --allow-privileged=true >"$dir/apiserver.log" 2>&1 &
  K8S_PIDS+=($!)
  k8s_wait "kube-apiserver" kubectl get --raw /readyz

  local common=(--kubeconfig="$KUBECONFIG" --authentication-kubeconfig="$KUBECONFIG"
    --authorization-kubeconfig="$KUBECONFIG" --bind-address=127.0.0.1 --leader-elect=false)
  "$bin/kube-controller-manager" "${common[@]}" --secure-port=$((base + 257)) \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --use-service-account-credentials >"$dir/controller-manager.log" 2>&1 &
  K8S_PIDS+=($!)
  "$bin/kube-scheduler" "${common[@]}" --secure-port=$((base + 259)) >"$dir/scheduler.log" 2>&1 &
  K8S_PIDS+=($!)

  # kwok's stages, plus one that completes `helm test` pods (its own only
  # completes Jobs' pods).
  {
    cat "$bin/kwok-stages.yaml"
    echo "---"
    sed -e 's/name: pod-complete$/name: pod-complete-helm-test/' \
      -e "s/'.metadata.ownerReferences.\[\].kind'/'.metadata.annotations[\"helm.sh\/hook\"]'/" \
      -e "s/- 'Job'/- 'test'\n      - 'test-success'/" "$bin/pod-complete.yaml"
  } >"$dir/stages.yaml"
  "$bin/kwok" --kubeconfig="$KUBECONFIG" --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds=40 --cidr=10.244.0.0/16 --node-ip=127.0.0.1 \
    --node-port=$((base + 247)) --server-address=127.0.0.1:$((base + 247)) \
    --tls-cert-file="$pki/api.crt" --tls-private-key-file="$pki/api.key" \
    --config="$dir/stages.yaml" >"$dir/kwok.log" 2>&1 &
  K8S_PIDS+=($!)

  kubectl apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: kwok-node-0
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: zone-a
    type: kwok
status:
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
EOF
  k8s_wait "the fake node" kubectl wait --for=condition=Ready node/kwok-node-0 --timeout=2s
  k8s_wait "the default ServiceAccount" kubectl get serviceaccount default -n default
  # The CRDs the chart uses: Gateway API, Envoy Gateway's policies,
  # ServiceMonitor and PrometheusRule.
  kubectl apply --server-side -f "$bin/crds" >/dev/null
  kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
  log "Kubernetes v$(kubectl version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])' | tr -d v) control plane ready (KUBECONFIG=$KUBECONFIG)"
}

# k8s_wait WHAT CMD...: retries CMD for up to 60 s.
k8s_wait() {
  local what=$1; shift
  for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return; sleep 0.2; done
  log "$what did not come up"; tail -20 "$K8S_DIR"/*.log; return 1
}

k8s_stop() {
  local i pid
  # Reverse order: kwok, scheduler, controller-manager, apiserver, etcd.
  for ((i = ${#K8S_PIDS[@]} - 1; i >= 0; i--)); do
    pid=${K8S_PIDS[$i]}
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  K8S_PIDS=()
}
