#!/usr/bin/env bash
# Builds the project's images locally (nothing is pulled):
#   uwl-base:bookworm  base.sh (pulled debian:bookworm-slim, or debootstrap)
#   uwl-nats:dev       a NATS server (tests of the node services)
#   uwl:<tag>          every service binary + NATS and nginx configs: uwl:dev
#                      with dev-profile binaries (what the tests use, so CI
#                      compiles once), uwl:release with release ones (what
#                      deploy/cluster runs)
# The binaries are built once on the host with PROFILE (default: dev).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
profile=${PROFILE:-dev}

"$here/base.sh"
docker build -q -t uwl-nats:dev -f "$here/nats.Dockerfile" "$root/nats" >/dev/null
echo "built uwl-nats:dev"

bins=(uwl-sync uwl-miner uwl-verifier uwl-metrics uwl-ingest uwl-admin uwl-worker)
pkgs=()
for b in "${bins[@]}"; do pkgs+=(-p "$b"); done
(cd "$root" && cargo build --locked --profile "$profile" --bins "${pkgs[@]}")
dir=$([[ "$profile" == dev ]] && echo debug || echo "$profile")
stage="$root/target/image"
rm -rf "$stage" && mkdir -p "$stage/bin" "$stage/nginx"
for b in "${bins[@]}"; do cp "$root/target/$dir/$b" "$stage/bin/"; done
cp -r "$root/nats" "$stage/nats"
cp "$root/nginx/nginx.conf.template" "$here/nginx-start" "$stage/nginx/"
tag=$([[ "$profile" == dev ]] && echo dev || echo "$profile")
docker build -q -t "uwl:$tag" -f "$here/uwl.Dockerfile" "$stage" >/dev/null
echo "built uwl:$tag ($profile binaries)"
