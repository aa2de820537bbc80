#!/usr/bin/env bash
# The 3-node benchmark: lockmesh and etcd, same hosts, same workload.
#
# Creates three network namespaces (lmb1..lmb3, 10.79.0.1..3/24 on a bridge lmbbr0), starts a
# three-node lockmesh mesh in them (fsync on, --security as given), and runs `lockmesh bench`
# from the first host with its clients spread round-robin over the three nodes: `seq` (one
# client, one resource) and `distinct` (--clients clients, each its own resource). Then, when
# Debian's etcd-server is installed and etcd_lock_bench was built (libcurl), the same two
# scenarios against a three-member etcd on the same namespaces (fsync on, as etcd always does),
# and prints both and the ratio. Everything it starts is stopped and removed on exit, even
# after a failure or Ctrl-C.
#
# Usage (root): tests/bench/mesh_vs_etcd.sh [--build DIR] [--seconds S] [--runs R]
#                                           [--clients N] [--security none|encrypt|mutual]
#                                           [--wait-unlock] [--no-etcd]
# Defaults: --build build, 5 s per run, median of 3 runs, 32 clients, --security mutual.
# Exit status: 0 done; 2 usage error or not root; 1 anything failed (the reason is printed).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$root/build"
seconds=5
runs=3
clients=32
security=mutual
wait_unlock=""
etcd=1

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$(cd "$2" && pwd)"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --security) security="$2"; shift 2 ;;
    --wait-unlock) wait_unlock="--wait-unlock"; shift ;;
    --no-etcd) etcd=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "mesh_vs_etcd: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$security" in none|encrypt|mutual) ;; *) echo "mesh_vs_etcd: --security none|encrypt|mutual" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "mesh_vs_etcd: needs root (network namespaces)" >&2; exit 2; }
lockmesh="$build/lockmesh"
[ -x "$lockmesh" ] || { echo "mesh_vs_etcd: no $lockmesh (build first: cmake --build $build)" >&2; exit 2; }

hosts=(lmb1 lmb2 lmb3)
addrs=(10.79.0.1 10.79.0.2 10.79.0.3)
bridge=lmbbr0
work="$(mktemp -d /tmp/lmbench.XXXXXX)"
etcd_started=0

cleanup() {
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
trap cleanup EXIT
trap 'exit 1' INT TERM

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

in_ns() { local ns="$1"; shift; ip netns exec "$ns" "$@"; }

# --- lockmesh ---------------------------------------------------------------------------
tls=()
if [ "$security" != none ]; then
  "$lockmesh" cert ca --out "$work/ca" >/dev/null
fi
for i in 0 1 2; do
  id="bench-node-$((i + 1))"
  args=(node --node-id "$id" --cluster bench --socket "$work/node$i.sock" --data-dir "$work/data$i"
        --expect 3 --security "$security")
  if [ "$security" != none ]; then
    "$lockmesh" cert node --ca "$work/ca" --cn "$id" --out "$work/cert$i" >/dev/null
    args+=(--tls-cert "$work/cert$i/cert.pem" --tls-key "$work/cert$i/key.pem" --tls-ca "$work/ca/cert.pem")
  fi
  in_ns "${hosts[$i]}" "$lockmesh" "${args[@]}" >"$work/node$i.log" 2>&1 &
done

# Formed: every node reports 3 members and a leader. Bounded: 60 s.
formed=0
for _ in $(seq 600); do
  ok=0
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
  echo "mesh_vs_etcd: the lockmesh mesh did not form within 60 s; node logs:" >&2
  for i in 0 1 2; do echo "--- node $i" >&2; tail -20 "$work/node$i.log" >&2; done
  exit 1
fi
leader="$("$lockmesh" status --socket "$work/node0.sock" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader_id"])')"
echo "lockmesh: 3 nodes formed (leader $leader), security $security, fsync on, $(nproc) CPUs"

bench_mesh() {
  in_ns lmb1 "$lockmesh" bench --no-autostart --socket "$work/node0.sock" \
    --node-socket "$work/node1.sock" --node-socket "$work/node2.sock" \
    --seconds "$seconds" --runs "$runs" --clients "$clients" $wait_unlock "$@"
}
mesh_seq="$(bench_mesh --scenario seq --json)"
mesh_distinct="$(bench_mesh --scenario distinct --json)"
# seq again with the client on a follower: every command then takes one more hop.
mesh_seq_follower="$(in_ns lmb2 "$lockmesh" bench --no-autostart --socket "$work/node1.sock" \
  --seconds "$seconds" --runs "$runs" $wait_unlock --scenario seq --json)"

# --- etcd -------------------------------------------------------------------------------
etcd_seq=""
etcd_distinct=""
etcd_note=""
if [ "$etcd" = 0 ]; then
  etcd_note="etcd: skipped (--no-etcd)"
elif [ ! -x "$build/tests/bench/etcd_lock_bench" ]; then
  etcd_note="etcd: skipped (no $build/tests/bench/etcd_lock_bench: libcurl4-openssl-dev was not installed at configure time)"
else
  set +e
  endpoints="$("$here/etcd_cluster.sh" start "$work" lmb1=10.79.0.1 lmb2=10.79.0.2 lmb3=10.79.0.3)"
  rc=$?
  set -e
  if [ "$rc" = 3 ]; then
    etcd_note="etcd: skipped (Debian's etcd-server is not installed: apt-get install etcd-server)"
  elif [ "$rc" != 0 ]; then
    echo "mesh_vs_etcd: the etcd cluster did not start (see above)" >&2
    exit 1
  else
    etcd_started=1
    bench_etcd() {
      in_ns lmb1 "$build/tests/bench/etcd_lock_bench" --endpoints "$endpoints" \
        --seconds "$seconds" --runs "$runs" --clients "$clients" "$@"
    }
    etcd_seq="$(bench_etcd --scenario seq --json)"
    etcd_distinct="$(bench_etcd --scenario distinct --json)"
  fi
fi

# --- report -----------------------------------------------------------------------------
MESH_SEQ="$mesh_seq" MESH_DISTINCT="$mesh_distinct" MESH_SEQ_FOLLOWER="$mesh_seq_follower" \
ETCD_SEQ="$etcd_seq" LEADER="$leader" \
ETCD_DISTINCT="$etcd_distinct" CLIENTS="$clients" WAIT="${wait_unlock:-}" python3 - <<'EOF'
import json, os

def first(text):
    if not text:
        return None
    return json.loads(text)["results"][0]

rows = [("seq", 1, first(os.environ["MESH_SEQ"]), first(os.environ["ETCD_SEQ"])),
        ("distinct", int(os.environ["CLIENTS"]), first(os.environ["MESH_DISTINCT"]),
         first(os.environ["ETCD_DISTINCT"]))]
unlock = "acknowledged" if os.environ["WAIT"] else "pipelined with the next lock"
print(f"lockmesh unlock: {unlock}; etcd unlock: acknowledged (its API has no other)")
print(f"{'scenario':<9} {'clients':>7} | {'lockmesh c/s':>12} {'p50 ms':>7} {'p99 ms':>7} | "
      f"{'etcd c/s':>9} {'p50 ms':>7} {'p99 ms':>7} | {'ratio c/s':>9} {'ratio p50':>9}")
for name, clients, m, e in rows:
    line = (f"{name:<9} {clients:>7} | {m['cycles_per_second']:>12.0f} "
            f"{m['latency_ms']['p50']:>7.3f} {m['latency_ms']['p99']:>7.3f} | ")
    if e:
        line += (f"{e['cycles_per_second']:>9.0f} {e['latency_ms']['p50']:>7.3f} "
                 f"{e['latency_ms']['p99']:>7.3f} | "
                 f"{m['cycles_per_second'] / e['cycles_per_second']:>8.1f}x "
                 f"{e['latency_ms']['p50'] / m['latency_ms']['p50']:>8.1f}x")
    else:
        line += f"{'-':>9} {'-':>7} {'-':>7} | {'-':>9} {'-':>9}"
    print(line)
f = first(os.environ["MESH_SEQ_FOLLOWER"])
print(f"{'seq (F)':<9} {1:>7} | {f['cycles_per_second']:>12.0f} {f['latency_ms']['p50']:>7.3f} "
      f"{f['latency_ms']['p99']:>7.3f} |")
print("ratio c/s = lockmesh cycles/s / etcd cycles/s; ratio p50 = etcd p50 / lockmesh p50 "
      "(above 1: lockmesh is faster)")
print(f"lockmesh: seq's client is on the leader ({os.environ['LEADER']}), seq (F)'s on a follower; "
      "distinct's clients are spread over the 3 nodes; etcd's over its 3 members")
EOF
[ -z "$etcd_note" ] || echo "$etcd_note"
