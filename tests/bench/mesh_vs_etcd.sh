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
bench_name=mesh_vs_etcd
# shellcheck source=bench_netns.sh
. "$here/bench_netns.sh"
netns_setup

# --- lockmesh ---------------------------------------------------------------------------
mesh_start "$security"
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
  rc=0
  etcd_start || rc=$?
  if [ "$rc" = 3 ]; then
    etcd_note="etcd: skipped (Debian's etcd-server is not installed: apt-get install etcd-server)"
  else
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
