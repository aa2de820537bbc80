#!/bin/sh
# The example service of compose.yaml: a container that runs its own lockmesh node (it joins
# the mesh as a learner: every host that takes locks runs a node, there is no server) and
# takes the lock `demo` in a loop with `lockmesh lock`, printing the fencing token.
#   LOCKMESH_EXAMPLE_RESOURCE  resource to lock (default demo)
#   LOCKMESH_EXAMPLE_HOLD      seconds to hold it each time (default 1)
#   LOCKMESH_EXAMPLE_PAUSE     seconds between two locks (default 2)
set -u
resource=${LOCKMESH_EXAMPLE_RESOURCE:-demo}
hold=${LOCKMESH_EXAMPLE_HOLD:-1}
pause=${LOCKMESH_EXAMPLE_PAUSE:-2}

/usr/local/bin/lockmesh-entrypoint node &
node=$!
stopping=0
trap 'stopping=1' TERM INT

# Wait (bounded) until the node has joined a cluster.
i=0
until /usr/local/bin/lockmesh-healthcheck >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$stopping" = 1 ] || ! kill -0 "$node" 2>/dev/null || [ "$i" -gt 240 ]; then
    echo "example: the node did not join a cluster in 120 s" >&2
    kill -TERM "$node" 2>/dev/null
    wait "$node"
    exit 1
  fi
  sleep 0.5
done
echo "example: $(/usr/local/bin/lockmesh-healthcheck)"

n=0
while [ "$stopping" = 0 ] && kill -0 "$node" 2>/dev/null; do
  n=$((n + 1))
  lockmesh lock -x -w 30 "$resource" -- \
    sh -c 'echo "example: lock $LOCKMESH_RESOURCE #'"$n"' held by $(hostname), fencing token $LOCKMESH_TOKEN"; sleep '"$hold" \
    || echo "example: lockmesh lock exited $?" >&2
  [ "$stopping" = 0 ] && sleep "$pause"
done
kill -TERM "$node" 2>/dev/null
wait "$node"
