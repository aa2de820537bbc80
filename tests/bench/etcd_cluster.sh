#!/usr/bin/env bash
# A three-member etcd cluster in three network namespaces, for tests/bench/mesh_vs_etcd.sh.
#
#   etcd_cluster.sh start DIR NS1=IP1 NS2=IP2 NS3=IP3
#       Starts Debian's etcd (package etcd-server) once per namespace: a static cluster
#       (--initial-cluster), clients on http://IP:2379, peers on http://IP:2380, data in
#       DIR/etcd-N, logs DIR/etcd-N.log, pids DIR/etcd-N.pid, fsync on (etcd's default; it has
#       no switch to turn it off in 3.4 short of --unsafe-no-fsync, which is not used). Waits
#       until every member answers /health (60 s at most), then prints the client endpoints,
#       comma-separated, on one line.
#   etcd_cluster.sh stop DIR
#       Stops them by pid (TERM, then KILL after 10 s) and removes DIR/etcd-*.
#
# Exit status: 0 done; 3 etcd is not installed (apt-get install etcd-server); 2 usage;
# 1 the cluster did not come up (the reason and the logs' tails on stderr; what was started
# is stopped).
set -uo pipefail

etcd_bin=/usr/bin/etcd
usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2; }

stop() {
  local dir="$1"
  local pids=()
  for f in "$dir"/etcd-*.pid; do
    [ -e "$f" ] || continue
    pid="$(cat "$f")"
    kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  done
  for _ in $(seq 100); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  rm -rf "$dir"/etcd-*
}

[ $# -ge 2 ] || usage
cmd="$1"
dir="$2"
shift 2
case "$cmd" in
  stop) stop "$dir"; exit 0 ;;
  start) ;;
  *) usage ;;
esac
[ $# -eq 3 ] || usage
if [ ! -x "$etcd_bin" ]; then
  echo "etcd_cluster: $etcd_bin not found (apt-get install etcd-server)" >&2
  exit 3
fi
mkdir -p "$dir"

names=()
nss=()
ips=()
i=1
for arg in "$@"; do
  ns="${arg%%=*}"
  ip="${arg#*=}"
  [ -n "$ns" ] && [ -n "$ip" ] && [ "$ns" != "$arg" ] || usage
  names+=("etcd-$i")
  nss+=("$ns")
  ips+=("$ip")
  i=$((i + 1))
done
initial=""
for k in 0 1 2; do
  initial+="${initial:+,}${names[$k]}=http://${ips[$k]}:2380"
done

for k in 0 1 2; do
  ip netns exec "${nss[$k]}" "$etcd_bin" \
    --name "${names[$k]}" --data-dir "$dir/${names[$k]}" \
    --listen-client-urls "http://${ips[$k]}:2379" --advertise-client-urls "http://${ips[$k]}:2379" \
    --listen-peer-urls "http://${ips[$k]}:2380" --initial-advertise-peer-urls "http://${ips[$k]}:2380" \
    --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token lmbench \
    >"$dir/${names[$k]}.log" 2>&1 &
  echo $! >"$dir/${names[$k]}.pid"
done

endpoints=""
for k in 0 1 2; do endpoints+="${endpoints:+,}http://${ips[$k]}:2379"; done
for _ in $(seq 600); do
  healthy=0
  for k in 0 1 2; do
    if ip netns exec "${nss[$k]}" curl -fsS --max-time 1 "http://${ips[$k]}:2379/health" 2>/dev/null |
       grep -q '"health":"true"'; then
      healthy=$((healthy + 1))
    fi
  done
  if [ "$healthy" = 3 ]; then
    echo "$endpoints"
    exit 0
  fi
  sleep 0.1
done
echo "etcd_cluster: the cluster was not healthy within 60 s; logs:" >&2
for k in 0 1 2; do echo "--- ${names[$k]}" >&2; tail -15 "$dir/${names[$k]}.log" >&2; done
stop "$dir"
exit 1
