#!/usr/bin/env bash
# A local stand-in for the default base image (python:3.11-slim) where no container registry
# is reachable: Debian bookworm (minbase) from this machine's own Debian mirror, plus Debian's
# Python 3.11 (python3, python3-venv, python3-pip), imported into podman as NAME.
#
#   containers/build-base.sh [NAME]        default NAME: localhost/layers-base:bookworm
#
# Needs root, debootstrap and podman. About 1-2 minutes; the result is about 170 MB.
set -euo pipefail
NAME=${1:-localhost/layers-base:bookworm}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$(cd "$(dirname "$0")" && pwd)/containers.conf}

if podman image exists "$NAME"; then echo "base image $NAME exists"; exit 0; fi

# The mirror apt uses here (deb822 sources first, then the one-line format).
mirror=$(sed -n 's/^URIs:[[:space:]]*\(\S*\/debian\)[[:space:]]*$/\1/p' \
           /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 || true)
if [ -z "$mirror" ]; then
  mirror=$(grep -hsE '^deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
           | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

rootfs=$(mktemp -d /var/tmp/layers-base.XXXXXX)
cleanup() { rm -rf "$rootfs"; }
trap cleanup EXIT
echo "debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip >/dev/null
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
tar -C "$rootfs" -c . | podman import --change 'CMD ["python3"]' - "$NAME" >/dev/null
echo "base image $NAME: $(podman image inspect --format '{{.Size}}' "$NAME") bytes"
