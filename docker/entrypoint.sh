#!/bin/sh
# Entry point of the lockmesh image (run by tini, as user lockmesh).
#   (no arguments) / node [FLAGS]   run `lockmesh node`, configured by LOCKMESH_* variables
#   --flag ...                      the same, with flags for `lockmesh node`
#   lock|status|cert|... ARGS       any other lockmesh subcommand
#   /path/prog ARGS, sh, bash       that program
#
# Node identity (docs/docker.md):
# - By default the node makes an id on first start and keeps it in its data volume
#   ($LOCKMESH_DATA_DIR/node-id): every container has its own, and keeps it across restarts.
# - LOCKMESH_NODE_ID sets it.
# - LOCKMESH_CERTS_DIR=DIR (mutual TLS, compose.secure.yaml): DIR holds certificates made by
#   lockmesh-make-certs for the ids node-1 .. node-N. The container claims the first free id
#   (an atomic mkdir of DIR/claims/ID), keeps the claim in its data volume, and runs with
#   --security mutual and that id's certificate (its CN is the id).
set -eu

say() { echo "lockmesh-entrypoint: $*" >&2; }

# Claims an id in $LOCKMESH_CERTS_DIR; prints it.
claim_certificate_id() {
  certs=$1
  record="$LOCKMESH_DATA_DIR/claimed-node-id"
  if [ -s "$record" ]; then
    cat "$record"
    return 0
  fi
  # The certificates job may still be writing (compose starts us after it completed, but a
  # plain `docker run` does not wait): give it a minute.
  i=0
  while [ ! -e "$certs/ready" ]; do
    i=$((i + 1))
    if [ "$i" -gt 120 ]; then
      say "no certificates in $certs (no $certs/ready after 60 s): run the certs job first"
      return 1
    fi
    sleep 0.5
  done
  mkdir -p "$certs/claims" 2>/dev/null || true
  for dir in "$certs"/nodes/*/; do
    id=$(basename "$dir")
    if mkdir "$certs/claims/$id" 2>/dev/null; then
      hostname >"$certs/claims/$id/container" 2>/dev/null || true
      mkdir -p "$LOCKMESH_DATA_DIR"
      echo "$id" >"$record.tmp" && mv "$record.tmp" "$record"
      echo "$id"
      return 0
    fi
  done
  count=$(ls -d "$certs"/nodes/*/ 2>/dev/null | wc -l)
  say "all $count node certificates in $certs are claimed by other containers;" \
      "run the certs job again with a larger LOCKMESH_CERT_COUNT (it adds the missing ones)"
  return 1
}

run_node() {
  if [ -z "${LOCKMESH_NODE_ID:-}" ] && [ -n "${LOCKMESH_CERTS_DIR:-}" ]; then
    id=$(claim_certificate_id "$LOCKMESH_CERTS_DIR") || exit 99
    export LOCKMESH_NODE_ID="$id"
    export LOCKMESH_SECURITY="${LOCKMESH_SECURITY:-mutual}"
    export LOCKMESH_TLS_CERT="$LOCKMESH_CERTS_DIR/nodes/$id/cert.pem"
    export LOCKMESH_TLS_KEY="$LOCKMESH_CERTS_DIR/nodes/$id/key.pem"
    export LOCKMESH_TLS_CA="$LOCKMESH_CERTS_DIR/ca.pem"
    say "node id $id (certificate $LOCKMESH_TLS_CERT, container $(hostname))"
    # The same settings for commands run with `docker exec` (unique-id, tls-debug, cert):
    # the user configuration file, in the data volume ($HOME). Variables still override it.
    config_dir="${XDG_CONFIG_HOME:-${HOME:-/var/lib/lockmesh}/.config}/lockmesh"
    mkdir -p "$config_dir"
    cat >"$config_dir/lockmesh.toml.tmp" <<EOF_CONFIG
# Written by lockmesh-entrypoint: the certificate this container claimed in $LOCKMESH_CERTS_DIR.
[node]
node_id = "$id"
security = "$LOCKMESH_SECURITY"
tls_cert = "$LOCKMESH_TLS_CERT"
tls_key = "$LOCKMESH_TLS_KEY"
tls_ca = "$LOCKMESH_TLS_CA"
EOF_CONFIG
    mv "$config_dir/lockmesh.toml.tmp" "$config_dir/lockmesh.toml"
  fi
  if [ -z "${LOCKMESH_NODE_ID:-}" ]; then
    for f in /etc/machine-id /var/lib/dbus/machine-id; do
      if [ -s "$f" ]; then
        say "$f is present: every container using it would claim the same node id." \
            "Do not mount a machine id into the container, or set LOCKMESH_NODE_ID."
        exit 99
      fi
    done
  fi
  exec /usr/local/bin/lockmesh node "$@"
}

case "${1:-node}" in
  node)
    [ $# -gt 0 ] && shift
    run_node "$@"
    ;;
  -*)
    run_node "$@"
    ;;
  lockmesh | flom)
    exec "$@"
    ;;
  /* | sh | bash | lockmesh-*)
    exec "$@"
    ;;
  *)
    exec /usr/local/bin/lockmesh "$@"
    ;;
esac
