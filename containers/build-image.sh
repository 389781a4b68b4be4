#!/usr/bin/env bash
# `make image`: the wheel (with the reference page: the node tools must be installed), then the
# Containerfile with podman. Prints the build time and the image's size.
#
#   IMAGE      the tag (default layers-mock:<version>; also tagged layers-mock:latest)
#   BASE       the base image (default python:3.11-slim). When it is not present and cannot be
#              pulled within 20 s (no registry reachable, as on the dev boxes and in CI), the
#              base is made from this machine's Debian mirror (containers/build-base.sh).
#              BASE=debootstrap skips the pull attempt.
#   PYTHON     the interpreter that builds the wheel (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/containers/containers.conf}
PYTHON=${PYTHON:-.venv/bin/python}
VERSION=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')
IMAGE=${IMAGE:-layers-mock:$VERSION}
BASE=${BASE:-python:3.11-slim}
LOCAL_BASE=localhost/layers-base:bookworm
start=$(date +%s)

rm -rf dist/image
"$PYTHON" -m build --wheel --no-isolation --outdir dist/image . >/dev/null
wheel=$(ls dist/image/*.whl)
# The listing is read whole first: `grep -q` stops at the first match, and with pipefail the
# listing's broken pipe would fail the test though the page is there.
listing=$("$PYTHON" -m zipfile -l "$wheel")
if ! grep -q "layers_kit/contract/reference.html" <<<"$listing"; then
  echo "make image: $wheel carries no reference page; run npm ci first" >&2
  exit 1
fi

if [ "$BASE" = debootstrap ]; then
  BASE=$LOCAL_BASE
elif ! podman image exists "$BASE" && ! timeout 20 podman pull -q "$BASE" >/dev/null 2>&1; then
  echo "make image: $BASE cannot be pulled here; making $LOCAL_BASE from the Debian mirror" >&2
  BASE=$LOCAL_BASE
fi
[ "$BASE" = "$LOCAL_BASE" ] && containers/build-base.sh "$LOCAL_BASE"

secret=()
CA=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$CA" ] && secret=(--secret "id=cacert,src=$CA")
podman build --quiet --format docker --build-arg "BASE=$BASE" --build-arg "VERSION=$VERSION" \
  "${secret[@]}" -t "$IMAGE" -t layers-mock:latest -f Containerfile . >/dev/null
end=$(date +%s)
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "built $IMAGE from $BASE in $((end - start)) s; $((size / 1000000)) MB"
