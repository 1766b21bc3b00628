#!/usr/bin/env bash
# Builds the project's images locally (nothing is pulled):
#   uwl-base:bookworm  base.sh (pulled debian:bookworm-slim, or debootstrap)
#   uwl-nats:dev       a NATS server (tests of the node services)
#   uwl:<tag>          every service binary + NATS and nginx configs: uwl:dev
#                      with dev-profile binaries (what the tests use, so CI
#                      compiles once), uwl:release with release ones (what
#                      deploy/cluster runs)
# The binaries are built once on the host with PROFILE (default: dev).
# uwl:<tag> carries a digest of the sources it was built from (label
# uwl.sources); with --if-stale nothing is built when it matches.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
profile=${PROFILE:-dev}
tag=$([[ "$profile" == dev ]] && echo dev || echo "$profile")

# Every file the image is made of, committed or not, by content.
sources=$(cd "$root" && git ls-files -co --exclude-standard -- Cargo.toml Cargo.lock services shared nats nginx deploy/images deploy/monitoring \
  | LC_ALL=C sort | while IFS= read -r f; do if [[ -f "$f" ]]; then sha256sum "$f"; fi; done | sha256sum | cut -c1-16)
if [[ "${1:-}" == --if-stale ]]; then
  have=$(docker image inspect -f '{{ index .Config.Labels "uwl.sources" }}' "uwl:$tag" 2>/dev/null || true)
  if [[ "$have" == "$sources" ]]; then
    echo "uwl:$tag is current (sources $sources)"
    exit 0
  fi
  echo "uwl:$tag ${have:+was built from sources $have: }rebuilding for sources $sources"
fi

"$here/base.sh"
docker build -q -t uwl-nats:dev -f "$here/nats.Dockerfile" "$root/nats" >/dev/null
echo "built uwl-nats:dev"

bins=(uwl-sync uwl-miner uwl-verifier uwl-metrics uwl-ingest uwl-admin uwl-worker)
pkgs=()
for b in "${bins[@]}"; do pkgs+=(-p "$b"); done
(cd "$root" && cargo build --locked --profile "$profile" --bins "${pkgs[@]}")
dir=$([[ "$profile" == dev ]] && echo debug || echo "$profile")
stage="$root/target/image"
rm -rf "$stage" && mkdir -p "$stage/bin" "$stage/nginx" "$stage/monitoring"
for b in "${bins[@]}"; do cp "$root/target/$dir/$b" "$stage/bin/"; done
cp -r "$root/nats" "$stage/nats"
cp "$root/nginx/nginx.conf.template" "$here/nginx-start" "$here/alertmanager-start" "$stage/nginx/"
cp "$root"/deploy/monitoring/*.yml "$stage/monitoring/"
docker build -q -t "uwl:$tag" --label "uwl.sources=$sources" -f "$here/uwl.Dockerfile" "$stage" >/dev/null
echo "built uwl:$tag ($profile binaries)"
