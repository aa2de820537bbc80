#!/bin/sh
# One-shot job of compose.secure.yaml: a CA and one node certificate per id, for mutual TLS.
#   lockmesh-make-certs [COUNT]
# COUNT (default $LOCKMESH_CERT_COUNT, else 9) certificates for the ids node-1 .. node-COUNT.
# The CA (its private key) stays in $LOCKMESH_CA_DIR (default /ca), a volume only this job
# mounts; the nodes' certificates and keys and the CA certificate go to $LOCKMESH_CERTS_DIR
# (default /certs), which the nodes mount read-write to claim an id (lockmesh-entrypoint).
# Idempotent: an existing CA and existing certificates are kept, missing ones are added, so
# running it again with a larger COUNT makes room for more containers.
set -eu
ca=${LOCKMESH_CA_DIR:-/ca}
certs=${LOCKMESH_CERTS_DIR:-/certs}
count=${1:-${LOCKMESH_CERT_COUNT:-9}}
case "$count" in
  '' | *[!0-9]*) echo "lockmesh-make-certs: COUNT must be a number, not '$count'" >&2; exit 2 ;;
esac
if [ ! -s "$ca/cert.pem" ]; then
  lockmesh cert ca --out "$ca" --cn "${LOCKMESH_CA_CN:-lockmesh compose CA}" >/dev/null
  echo "made a CA in $ca"
fi
cp "$ca/cert.pem" "$certs/ca.pem.tmp"
mv "$certs/ca.pem.tmp" "$certs/ca.pem"
mkdir -p "$certs/nodes" "$certs/claims"
made=0
i=1
while [ "$i" -le "$count" ]; do
  id="node-$i"
  if [ ! -s "$certs/nodes/$id/cert.pem" ]; then
    lockmesh cert node --ca "$ca" --cn "$id" --out "$certs/nodes/$id" >/dev/null
    made=$((made + 1))
  fi
  i=$((i + 1))
done
touch "$certs/ready"
echo "node certificates in $certs/nodes: $made made, $(ls "$certs/nodes" | wc -l) in all;" \
     "$(ls "$certs/claims" | wc -l) claimed"
lockmesh cert show "$certs/ca.pem" | head -n 4
