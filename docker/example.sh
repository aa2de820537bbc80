#!/bin/sh
# The example application of compose.yaml: a container WITHOUT a node of its own (the sidecar
# pattern). Its node runs in another container (`example-node`) that shares the volume
# mounted at /run/lockmesh, where the node's socket is ($LOCKMESH_SOCKET), and both run as
# the image's user (uid 28017: the socket is 0600). It takes the lock `demo` in a loop with
# `lockmesh lock`, printing the fencing token; any program using libmesh or the Python
# package does the same through that socket.
#   LOCKMESH_EXAMPLE_RESOURCE  resource to lock (default demo)
#   LOCKMESH_EXAMPLE_HOLD      seconds to hold it each time (default 1)
#   LOCKMESH_EXAMPLE_PAUSE     seconds between two locks (default 2)
set -u
resource=${LOCKMESH_EXAMPLE_RESOURCE:-demo}
hold=${LOCKMESH_EXAMPLE_HOLD:-1}
pause=${LOCKMESH_EXAMPLE_PAUSE:-2}
stopping=0
trap 'stopping=1' TERM INT

# Wait (bounded) until the sidecar node answers on the shared socket and is in a cluster.
i=0
until /usr/local/bin/lockmesh-healthcheck >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$stopping" = 1 ] || [ "$i" -gt 240 ]; then
    echo "example: no node in a cluster on $LOCKMESH_SOCKET after 120 s" >&2
    exit 1
  fi
  sleep 0.5
done
echo "example: $(/usr/local/bin/lockmesh-healthcheck)"

n=0
while [ "$stopping" = 0 ]; do
  n=$((n + 1))
  lockmesh lock -x -w 30 "$resource" -- \
    sh -c 'echo "example: lock $LOCKMESH_RESOURCE #'"$n"' held by $(hostname), fencing token $LOCKMESH_TOKEN"; sleep '"$hold" \
    || echo "example: lockmesh lock exited $?" >&2
  [ "$stopping" = 0 ] && sleep "$pause"
done
