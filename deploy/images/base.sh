#!/usr/bin/env bash
# Makes the base image every project image builds FROM: Debian bookworm with
# nats-server, nginx-light, openssl (nginx's certificate generated at first
# start), Prometheus and Alertmanager (the cluster's monitoring; promtool
# checks the rules in the tests) and the runtime bits our binaries need.
#
# Where a registry answers, it is built from a pulled debian:bookworm-slim.
# Where none does (this project's build and test machines), it is made with
# debootstrap from the machine's own apt mirror and `docker import`ed.
# Idempotent: an existing image with the same package list (its
# uwl.packages label) is kept unless --force is given.
set -euo pipefail

IMAGE=${UWL_BASE_IMAGE:-uwl-base:bookworm}
PACKAGES=ca-certificates,nats-server,nginx-light,openssl,curl,tini,sqlite3,prometheus,prometheus-alertmanager
force=${1:-}

have=$(docker image inspect -f '{{ index .Config.Labels "uwl.packages" }}' "$IMAGE" 2>/dev/null || true)
if [[ "$force" != "--force" && "$have" == "$PACKAGES" ]]; then
  echo "base image $IMAGE present"
  exit 0
fi

if timeout 20 docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
  echo "building $IMAGE from a pulled debian:bookworm-slim"
  docker build -q -t "$IMAGE" - <<DOCKERFILE
FROM debian:bookworm-slim
LABEL uwl.packages="${PACKAGES}"
RUN apt-get update && apt-get install -y --no-install-recommends ${PACKAGES//,/ } && rm -rf /var/lib/apt/lists/*
DOCKERFILE
  exit 0
fi

echo "no registry: making $IMAGE with debootstrap"
if ! command -v debootstrap >/dev/null; then
  apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null
fi
mirror=${UWL_APT_MIRROR:-}
if [[ -z "$mirror" ]]; then
  # the first Debian mirror the machine's own apt uses
  mirror=$(find /etc/apt -maxdepth 2 \( -name '*.list' -o -name '*.sources' \) -exec cat {} + 2>/dev/null \
    | grep -oE '^(URIs:|deb) +https?://[^ ]+' | awk '{print $2}' | grep -v security | head -n1 || true)
  [[ -n "$mirror" ]] || { echo "no Debian mirror in /etc/apt: set UWL_APT_MIRROR" >&2; exit 1; }
fi
root=$(mktemp -d /tmp/uwl-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
start=$(date +%s)
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$root" "$mirror" >/tmp/uwl-debootstrap.log 2>&1 || {
  tail -30 /tmp/uwl-debootstrap.log >&2
  exit 1
}
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c "LABEL uwl.packages=$PACKAGES" - "$IMAGE" >/dev/null
echo "made $IMAGE in $(( $(date +%s) - start )) s"
