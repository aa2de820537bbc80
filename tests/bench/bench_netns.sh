# Sourced (not run) by the 3-node benchmarks (mesh_vs_etcd.sh, cli_vs_etcd.sh): three network
# namespaces on one bridge, a three-node lockmesh mesh in them, etcd's cluster next to it,
# and the cleanup of all of it.
#
# The sourcing script sets before sourcing: `here` (this directory), `build` (the build dir),
# `bench_name` (its name, for messages); then calls, in order:
#   netns_setup                         three namespaces lmb1..lmb3 (10.79.0.1..3/24, bridge lmbbr0)
#   mesh_start SECURITY                 a 3-node mesh (fsync on) in them; sockets $work/node{0,1,2}.sock;
#                                       waits until it has formed (60 s) and sets `leader`
#   etcd_start                          etcd_cluster.sh start; sets `endpoints`; returns 3 if
#                                       Debian's etcd-server is not installed
# and `in_ns NS CMD...`. Everything is stopped and removed on exit (trap set here), even
# after a failure or Ctrl-C.

hosts=(lmb1 lmb2 lmb3)
addrs=(10.79.0.1 10.79.0.2 10.79.0.3)
bridge=lmbbr0
work="$(mktemp -d /tmp/lmbench.XXXXXX)"
etcd_started=0
lockmesh="$build/lockmesh"
[ "$(id -u)" -eq 0 ] || { echo "$bench_name: needs root (network namespaces)" >&2; exit 2; }
[ -x "$lockmesh" ] || { echo "$bench_name: no $lockmesh (build first: cmake --build $build)" >&2; exit 2; }

netns_cleanup() {
  set +e
  if [ "$etcd_started" = 1 ]; then "$here/etcd_cluster.sh" stop "$work" >/dev/null 2>&1; fi
  for ns in "${hosts[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null; done
  done
  for _ in $(seq 50); do
    left=0
    for ns in "${hosts[@]}"; do [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && left=1; done
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  for ns in "${hosts[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  ip link del "$bridge" 2>/dev/null
  rm -rf "$work"
}
trap netns_cleanup EXIT
trap 'exit 1' INT TERM

in_ns() { local ns="$1"; shift; ip netns exec "$ns" "$@"; }

netns_setup() {
  # A crashed earlier run may have left its namespaces behind.
  for ns in "${hosts[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  ip link del "$bridge" 2>/dev/null || true
  ip link add "$bridge" type bridge mcast_snooping 0
  ip link set "$bridge" up
  for i in 0 1 2; do
    ns="${hosts[$i]}"
    ip netns add "$ns"
    ip link add "${ns}v" type veth peer name eth0 netns "$ns"
    ip link set "${ns}v" master "$bridge" up
    ip -n "$ns" link set lo up multicast on
    ip -n "$ns" link set eth0 up multicast on
    ip -n "$ns" addr add "${addrs[$i]}/24" dev eth0
    ip -n "$ns" route add 224.0.0.0/4 dev eth0
  done
}

mesh_start() {
  local security="$1"
  if [ "$security" != none ]; then
    "$lockmesh" cert ca --out "$work/ca" >/dev/null
  fi
  for i in 0 1 2; do
    local id="bench-node-$((i + 1))"
    local args=(node --node-id "$id" --cluster bench --socket "$work/node$i.sock"
                --data-dir "$work/data$i" --expect 3 --security "$security")
    if [ "$security" != none ]; then
      "$lockmesh" cert node --ca "$work/ca" --cn "$id" --out "$work/cert$i" >/dev/null
      args+=(--tls-cert "$work/cert$i/cert.pem" --tls-key "$work/cert$i/key.pem"
             --tls-ca "$work/ca/cert.pem")
    fi
    in_ns "${hosts[$i]}" "$lockmesh" "${args[@]}" >"$work/node$i.log" 2>&1 &
  done
  # Formed: every node reports 3 members and a leader. Bounded: 60 s.
  local formed=0
  for _ in $(seq 600); do
    local ok=0
    for i in 0 1 2; do
      if "$lockmesh" status --socket "$work/node$i.sock" --json 2>/dev/null |
         python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s.get("leader_id") and len(s.get("members",[]))==3 else 1)' 2>/dev/null; then
        ok=$((ok + 1))
      fi
    done
    if [ "$ok" = 3 ]; then formed=1; break; fi
    sleep 0.1
  done
  if [ "$formed" = 0 ]; then
    echo "$bench_name: the lockmesh mesh did not form within 60 s; node logs:" >&2
    for i in 0 1 2; do echo "--- node $i" >&2; tail -20 "$work/node$i.log" >&2; done
    exit 1
  fi
  leader="$("$lockmesh" status --socket "$work/node0.sock" --json |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["leader_id"])')"
}

etcd_start() {
  local rc=0
  endpoints="$("$here/etcd_cluster.sh" start "$work" lmb1=10.79.0.1 lmb2=10.79.0.2 lmb3=10.79.0.3)" || rc=$?
  if [ "$rc" = 3 ]; then return 3; fi
  if [ "$rc" != 0 ]; then
    echo "$bench_name: the etcd cluster did not start (see above)" >&2
    exit 1
  fi
  etcd_started=1
}
