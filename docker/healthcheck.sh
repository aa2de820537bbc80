#!/bin/sh
# HEALTHCHECK of the lockmesh image: healthy when the node answers on its socket, belongs to a
# cluster (a cluster id) and knows a leader. A node still forming its cluster (--expect), or
# cut off from every leader, is not healthy. One line of output for `docker inspect`.
out=$(/usr/local/bin/lockmesh status --json 2>&1) || { echo "no node: $out"; exit 1; }
field() { printf '%s\n' "$out" | sed -n "s/^  \"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" | head -n 1; }
node=$(field node_id)
if printf '%s\n' "$out" | grep -q '^  "mesh": false'; then
  echo "node $node: local (no mesh), answering"
  exit 0
fi
role=$(field role)
cluster=$(field cluster_id)
leader=$(field leader_id)
if [ -z "$cluster" ]; then
  echo "node $node ($role): not in a cluster yet"
  exit 1
fi
if [ -z "$leader" ]; then
  echo "node $node ($role) of cluster $cluster: no leader known"
  exit 1
fi
echo "node $node ($role) of cluster $cluster, leader $leader"
