#!/usr/bin/env bash
# The command-line benchmark: one process per critical section, as a shell script uses a
# lock manager. Times `lockmesh lock R -- true`, `flom -r R -- true` (lockmesh's FLoM front
# end, build/flom) and `etcdctl lock R true`, each against a running 3-node cluster in three
# network namespaces (bench_netns.sh: a lockmesh mesh, fsync on, and Debian's etcd), side by
# side in one run: --rounds rounds, each a hyperfine run of all three commands (--runs
# each), so that a load change on the machine hits all three alike. Prints each command's
# median wall time over all runs and the ratios, and the instructions that the lockmesh
# client itself executes for one `lock R -- true` (callgrind, parent only: the `true` child
# is not traced). FLoM itself is not in Debian and nothing is downloaded: without a `flom`
# of FLoM's own on PATH there is no FLoM daemon to time (said in the output).
#
# Usage (root): tests/bench/cli_vs_etcd.sh [--build DIR] [--runs N] [--rounds R]
#                                          [--security none|encrypt|mutual]
# Defaults: --build build, 40 runs per round, 5 rounds, --security mutual (between the
# nodes; the CLI reaches its node over a UNIX socket, etcdctl its member over plain HTTP).
# Needs hyperfine, valgrind and etcdctl (apt-get install hyperfine valgrind etcd-client).
# Exit status: 0 done; 2 usage error, not root or a tool missing; 1 anything failed.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$root/build"
runs=40
rounds=5
security=mutual

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$(cd "$2" && pwd)"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --security) security="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "cli_vs_etcd: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$security" in none|encrypt|mutual) ;; *) echo "cli_vs_etcd: --security none|encrypt|mutual" >&2; exit 2 ;; esac
for tool in hyperfine valgrind callgrind_annotate etcdctl; do
  command -v "$tool" >/dev/null || { echo "cli_vs_etcd: $tool not found (apt-get install hyperfine valgrind etcd-client)" >&2; exit 2; }
done
flom="$build/flom"
[ -x "$flom" ] || { echo "cli_vs_etcd: no $flom (build first)" >&2; exit 2; }
bench_name=cli_vs_etcd
# shellcheck source=bench_netns.sh
. "$here/bench_netns.sh"
netns_setup
mesh_start "$security"
rc=0
etcd_start || rc=$?
[ "$rc" = 0 ] || { echo "cli_vs_etcd: Debian's etcd-server is not installed (apt-get install etcd-server)" >&2; exit 2; }
echo "lockmesh: 3 nodes formed (leader $leader), security $security, fsync on; etcd: 3 members; $(nproc) CPUs"

# The client runs next to the leader (node 0's host), as etcdctl next to member 1.
leader_index="${leader##*-}"
leader_index=$((leader_index - 1))  # node ids are bench-node-1..3 (bench_netns.sh)
sock="$work/node$leader_index.sock"
leader_ns="${hosts[$leader_index]}"
leader_ip="${addrs[$leader_index]}"
lm_cmd="$lockmesh lock --no-autostart --socket $sock cli-bench -- true"
flom_cmd="$flom -d 0 -s $sock -r cli-bench -- true"
etcd_cmd="etcdctl --endpoints http://$leader_ip:2379 lock cli-bench true"
for c in "$lm_cmd" "$flom_cmd" "$etcd_cmd"; do
  # shellcheck disable=SC2086
  in_ns "$leader_ns" $c >/dev/null || { echo "cli_vs_etcd: '$c' failed" >&2; exit 1; }
done

for r in $(seq "$rounds"); do
  in_ns "$leader_ns" hyperfine -N --style none --warmup 3 --runs "$runs" \
    --export-json "$work/round$r.json" \
    -n lockmesh "$lm_cmd" -n flom "$flom_cmd" -n etcdctl "$etcd_cmd" >/dev/null
done

# Instructions of the lockmesh client for one lock (parent only), against the same node.
in_ns "$leader_ns" valgrind --tool=callgrind --trace-children=no \
  --callgrind-out-file="$work/callgrind.out" $lm_cmd >/dev/null 2>"$work/callgrind.log"
instructions="$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$work/callgrind.out")"
[ -n "$instructions" ] || instructions="$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$work/callgrind.out")"

WORK="$work" ROUNDS="$rounds" INSTR="$instructions" python3 - <<'EOF'
import json, os, statistics
times = {}
for r in range(1, int(os.environ["ROUNDS"]) + 1):
    with open(f"{os.environ['WORK']}/round{r}.json") as f:
        for res in json.load(f)["results"]:
            times.setdefault(res["command"], []).extend(res["times"])
med = {name: statistics.median(t) * 1000 for name, t in times.items()}
q = {name: statistics.quantiles(t, n=10) for name, t in times.items()}
print(f"{'command':<10} {'runs':>5} {'median ms':>10} {'p10 ms':>8} {'p90 ms':>8}")
for name in ("lockmesh", "flom", "etcdctl"):
    print(f"{name:<10} {len(times[name]):>5} {med[name]:>10.2f} {q[name][0]*1000:>8.2f} "
          f"{q[name][-1]*1000:>8.2f}")
print(f"etcdctl / lockmesh: {med['etcdctl'] / med['lockmesh']:.1f}x (goal >= 5x)")
print(f"etcdctl / flom (lockmesh's FLoM front end): {med['etcdctl'] / med['flom']:.1f}x")
instr = int(os.environ["INSTR"] or 0)
print(f"lockmesh lock R -- true, client instructions (callgrind, parent only): "
      f"{instr / 1e6:.2f} M (goal <= 1.5 M)")
EOF
if command -v flom >/dev/null && ! flom --version 2>&1 | grep -q lockmesh; then
  echo "note: a FLoM of its own is on PATH ($(command -v flom)); this script does not time it"
else
  echo "FLoM: not timed (not packaged in Debian, no FLoM binary on this machine, nothing downloaded)"
fi
