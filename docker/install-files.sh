#!/bin/sh
# Lays out the files of the lockmesh image under OUT, as the runtime stage copies them to /:
# the binary (stripped), its `flom` link, the scripts (entry point, health check, example
# loop, certificate maker) and the example configuration. One script for both ways the image
# is built: docker/Dockerfile's build stage, from the binary it compiled, and the docker test
# (tests/docker), from the binary the host's build made (docs/docker.md, "Building").
#   install-files.sh SOURCE_DIR LOCKMESH_BINARY OUT
set -eu
if [ "$#" -ne 3 ]; then
  echo "usage: install-files.sh SOURCE_DIR LOCKMESH_BINARY OUT" >&2
  exit 2
fi
src=$1 binary=$2 out=$3
mkdir -p "$out/usr/local/bin"
install -m 0755 "$binary" "$out/usr/local/bin/lockmesh"
strip "$out/usr/local/bin/lockmesh"
ln -sf lockmesh "$out/usr/local/bin/flom"
install -m 0755 "$src/docker/entrypoint.sh" "$out/usr/local/bin/lockmesh-entrypoint"
install -m 0755 "$src/docker/healthcheck.sh" "$out/usr/local/bin/lockmesh-healthcheck"
install -m 0755 "$src/docker/example.sh" "$out/usr/local/bin/lockmesh-example"
install -m 0755 "$src/docker/make-certs.sh" "$out/usr/local/bin/lockmesh-make-certs"
install -D -m 0644 "$src/docker/lockmesh.toml.example" \
  "$out/usr/share/doc/lockmesh/lockmesh.toml.example"
echo "shared libraries of lockmesh:"
ldd "$binary" || true
