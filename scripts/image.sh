#!/usr/bin/env bash
# `make image`: the CityEvents image without a Docker engine or a base
# image — buildah assembles, from scratch, what Containerfile's final stage
# holds: the seven service binaries, the glibc libraries they link, CA
# certificates and a passwd entry for user 65532; no shell, no package
# manager. Then runs it once with podman: every binary starts in it,
# and the BFF, given the local Redis and NATS, answers its liveness and
# readiness checks.
#
#   CE_IMAGE_PROFILE  cargo profile of the binaries (default release; CI
#                     uses dev, whose binaries the other steps built)
#   CE_IMAGE          the image name (default localhost/cityevents:dev)
#   CE_IMAGE_OCI      also write it as an OCI layout to this directory
source "$(dirname "$0")/lib.sh"
PROFILE="${CE_IMAGE_PROFILE:-release}"
IMAGE="${CE_IMAGE:-localhost/cityevents:dev}"
BINS=(auth event join feed media mail bff)

if ! command -v buildah >/dev/null || ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
  log "installing buildah, podman and runc from Debian"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    buildah podman runc crun fuse-overlayfs uidmap ca-certificates >/dev/null
fi

cd "$ROOT"
packages=()
for b in "${BINS[@]}"; do packages+=(-p "$b"); done
SQLX_OFFLINE=true cargo build -q --locked --profile "$PROFILE" "${packages[@]}"
dir=$PROFILE; [ "$PROFILE" = dev ] && dir=debug
out="${CARGO_TARGET_DIR:-$ROOT/target}/$dir"

ctr=$(buildah from --quiet scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
root=$(buildah mount "$ctr")
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp"
chmod 1777 "$root/tmp"
for b in "${BINS[@]}"; do install -m 0755 "$out/$b" "$root/usr/local/bin/$b"; done
# The shared libraries the binaries link (glibc, libgcc), at their paths.
for lib in $(for b in "${BINS[@]}"; do ldd "$out/$b"; done | grep -o '/[^ ]*' | sort -u); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
buildah umount "$ctr" >/dev/null
buildah config --user 65532:65532 --workingdir / --port 50051 --port 8080 --port 9090 \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --label org.opencontainers.image.title=cityevents \
  --label org.opencontainers.image.source=https://github.com/cityevents/cityevents \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  --label org.opencontainers.image.revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  --cmd '["/usr/local/bin/bff", "serve"]' "$ctr"
buildah commit --quiet --rm "$ctr" "$IMAGE" >/dev/null
trap - EXIT
podman image prune -f >/dev/null # the previous build, if any
size=$(podman image inspect "$IMAGE" --format '{{.Size}}')
log "built $IMAGE ($((size / 1024 / 1024)) MiB, $PROFILE binaries)"
[ -z "${CE_IMAGE_OCI:-}" ] || { podman save --format oci-dir -o "$CE_IMAGE_OCI" "$IMAGE"; log "wrote $CE_IMAGE_OCI"; }

# Run it once: every binary starts (its --version), the image has no
# shell, and the BFF answers health as the chart's probes ask.
# runc, not crun: Debian's crun 1.8 refuses a host whose cgroups are mixed
# v1/v2 (as on these VMs). The limits are the host's own: podman's default
# (a million open files) is above what an unprivileged VM may grant.
opts=(--runtime runc --network host --read-only --cap-drop ALL --security-opt no-new-privileges
  --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
run=(podman run --rm "${opts[@]}")
for b in "${BINS[@]}"; do "${run[@]}" "$IMAGE" "/usr/local/bin/$b" --version >/dev/null; done
files=$(podman create --quiet "$IMAGE" | { read -r id; podman export "$id" | tar -t; podman rm "$id" >/dev/null; })
if echo "$files" | grep -qE '^(usr/)?s?bin/(sh|bash|busybox)$'; then log "the image has a shell"; exit 1; fi
[ "$(podman image inspect "$IMAGE" --format '{{.Config.User}}')" = 65532:65532 ] || { log "the image does not run as 65532"; exit 1; }

bash "$ROOT/scripts/infra-up.sh" >/dev/null
port=${CE_IMAGE_PORT:-38080} admin=$((${CE_IMAGE_PORT:-38080} + 1))
name="cityevents-image-check-$$"
podman run -d "${opts[@]}" --name "$name" \
  -e CITYEVENTS_SERVER__GRPC_ADDR="127.0.0.1:$port" -e CITYEVENTS_SERVER__ADMIN_ADDR="127.0.0.1:$admin" \
  -e CITYEVENTS_REDIS__URL="redis://127.0.0.1:$REDIS_PORT" -e CITYEVENTS_NATS__URL="nats://127.0.0.1:$NATS_PORT" \
  -e CITYEVENTS_AUTH__ENDPOINT=http://127.0.0.1:1 -e CITYEVENTS_EVENT__ENDPOINT=http://127.0.0.1:1 \
  -e CITYEVENTS_JOIN__ENDPOINT=http://127.0.0.1:1 -e CITYEVENTS_FEED__ENDPOINT=http://127.0.0.1:1 \
  -e CITYEVENTS_MAIL__ENDPOINT=http://127.0.0.1:1 -e CITYEVENTS_MEDIA__ENDPOINT=http://127.0.0.1:1 \
  "$IMAGE" /usr/local/bin/bff serve >/dev/null
trap 'podman rm -f "$name" >/dev/null 2>&1 || true' EXIT
for service in liveness readiness; do
  for _ in $(seq 100); do
    answer=$(grpcurl -plaintext -max-time 2 -d "{\"service\":\"$service\"}" "127.0.0.1:$port" grpc.health.v1.Health/Check 2>/dev/null) && break
    sleep 0.2
  done
  echo "$answer" | grep -q SERVING || { log "the BFF in the image does not answer $service"; podman logs "$name" | tail -20; exit 1; }
done
curl -sf "http://127.0.0.1:$admin/metrics" | grep -q '^process_resident_memory_bytes' || { log "no metrics from the image"; exit 1; }
podman stop -t 10 "$name" >/dev/null
log "the image runs as 65532 with a read-only root, no shell, every binary starts, the BFF answers liveness and readiness and serves metrics"
