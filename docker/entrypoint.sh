#!/bin/sh
# Entry point of the lockmesh image (run by tini, as user lockmesh).
#   (no arguments) / node [FLAGS]   run `lockmesh node`, configured by LOCKMESH_* variables
#   --flag ...                      the same, with flags for `lockmesh node`
#   lock|status|cert|... ARGS       any other lockmesh subcommand
#   /path/prog ARGS, sh, bash       that program
#
# Node identity and state (docs/docker.md):
# - The node makes an id on first start and keeps it in its data dir ($LOCKMESH_DATA_DIR/
#   node-id): every container has its own, and keeps it across restarts. LOCKMESH_NODE_ID
#   sets it (compose.secure.yaml: the id is the certificate's CN).
# - LOCKMESH_DATA_SLOTS=DIR (compose.yaml's `node` service: one volume for all its
#   replicas): the data dir is DIR/slot-N/data, for the first slot no running container
#   holds, preferring the one this container had (a restart), else a new slot. The container
#   holds DIR/slot-N/lock (flock, on fd 9, inherited by the node) while it runs, so two
#   containers never share a slot, and `down` then `up` gives the nodes back their state.
set -eu

say() { echo "lockmesh-entrypoint: $*" >&2; }

# Takes slot directory $1: opens fd 9 on its lock file and locks it without waiting.
# Returns 0 with the lock held (fd 9 stays open), 1 if another container holds it.
take_slot() {
  mkdir -p "$1" 2>/dev/null || return 1
  exec 9>>"$1/lock" || return 1
  if flock -n 9; then
    return 0
  fi
  exec 9>&-
  return 1
}

# Claims a slot under $1 (see above); sets LOCKMESH_DATA_DIR.
claim_data_slot() {
  slots=$1
  me=$(hostname)
  mkdir -p "$slots"
  slot=""
  for f in "$slots"/slot-*/container; do
    [ -e "$f" ] || continue
    if [ "$(cat "$f" 2>/dev/null)" = "$me" ] && take_slot "${f%/container}"; then
      slot=${f%/container}
      break
    fi
  done
  if [ -z "$slot" ]; then
    for dir in "$slots"/slot-*/; do
      [ -d "$dir" ] || continue
      if take_slot "${dir%/}"; then
        slot=${dir%/}
        break
      fi
    done
  fi
  n=1
  while [ -z "$slot" ] && [ "$n" -le 1000 ]; do
    # mkdir is atomic: the container that makes slot-N takes it, unless another one that
    # saw it already took it first (then go on to the next number).
    if mkdir "$slots/slot-$n" 2>/dev/null && take_slot "$slots/slot-$n"; then
      slot="$slots/slot-$n"
    fi
    n=$((n + 1))
  done
  if [ -z "$slot" ]; then
    say "no free data slot in $slots"
    return 1
  fi
  echo "$me" >"$slot/container.tmp" && mv "$slot/container.tmp" "$slot/container"
  export LOCKMESH_DATA_DIR="$slot/data"
  mkdir -p "$LOCKMESH_DATA_DIR"
  say "data dir $LOCKMESH_DATA_DIR (container $me)"
}

run_node() {
  if [ -n "${LOCKMESH_DATA_SLOTS:-}" ]; then
    claim_data_slot "$LOCKMESH_DATA_SLOTS" || exit 99
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
