#!/usr/bin/env bash
# Builds the project's images locally (nothing is pulled): the base image
# (base.sh), then uwl-nats:dev. Usage: deploy/images/build.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

"$here/base.sh"
docker build -q -t uwl-nats:dev -f "$here/nats.Dockerfile" "$root/nats" >/dev/null
echo "built uwl-nats:dev"
