#!/bin/sh
# One-shot job of compose.secure.yaml: a CA and one node certificate per node, for mutual TLS.
#   lockmesh-make-certs
# For every directory $LOCKMESH_KEYS_DIR/ID (default /keys/ID: one volume per node, mounted
# there by this job alone) it makes, unless present, a certificate with CN ID: the private
# key goes to /keys/ID/key.pem (that node mounts the volume read-only at /keys), the
# certificate to $LOCKMESH_CERTS_DIR/nodes/ID/cert.pem (default /certs, public, read-only in
# the nodes). The CA stays in $LOCKMESH_CA_DIR (default /ca), a volume only this job mounts;
# its certificate is copied to /certs/ca.pem. Idempotent: an existing CA and existing
# certificates are kept, missing ones are added. Run as root (compose.secure.yaml), it hands
# every file to the image's user (uid 28017), keys 0600 in directories 0700.
set -eu
ca=${LOCKMESH_CA_DIR:-/ca}
certs=${LOCKMESH_CERTS_DIR:-/certs}
keys=${LOCKMESH_KEYS_DIR:-/keys}
owner=28017:28017
if [ ! -s "$ca/key.pem" ]; then
  lockmesh cert ca --out "$ca" --cn "${LOCKMESH_CA_CN:-lockmesh compose CA}" >/dev/null
  echo "made a CA in $ca"
fi
mkdir -p "$certs/nodes"
cp "$ca/cert.pem" "$certs/ca.pem.tmp"
mv "$certs/ca.pem.tmp" "$certs/ca.pem"
made=0
all=0
for dir in "$keys"/*/; do
  [ -d "$dir" ] || continue
  id=$(basename "$dir")
  all=$((all + 1))
  if [ ! -s "$dir/key.pem" ] || [ ! -s "$certs/nodes/$id/cert.pem" ]; then
    work=$(mktemp -d)
    lockmesh cert node --ca "$ca" --cn "$id" --out "$work/out" >/dev/null
    mkdir -p "$certs/nodes/$id"
    mv "$work/out/key.pem" "$dir/key.pem"
    mv "$work/out/cert.pem" "$certs/nodes/$id/cert.pem"
    rm -rf "$work"
    made=$((made + 1))
  fi
  chmod 0600 "$dir/key.pem"
  chmod 0700 "$dir"
  [ "$(id -u)" = 0 ] && chown -R "$owner" "$dir"
done
if [ "$(id -u)" = 0 ]; then
  chown -R "$owner" "$certs" "$ca"
  chmod 0700 "$ca"
fi
echo "node certificates in $certs/nodes: $made made, $all in all (keys in $keys/ID, one volume each)"
lockmesh cert show "$certs/ca.pem" | head -n 4
