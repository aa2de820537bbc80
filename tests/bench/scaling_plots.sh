#!/usr/bin/env bash
# Scaling curves of lockmesh, drawn as PNG plots with gnuplot:
# cycles/s and p99 cycle latency of `lockmesh bench --scenario distinct` against
#   1. clients: 1 to 4,096 on one local node;
#   2. held locks: 1,000 to 1,000,000 held on that node (by `bench --scenario hold`) while
#      16 clients cycle on other resources;
#   3. cluster size: 1, 3, 5 and 9 mesh nodes on loopback (--voters 3: the nodes past the
#      third are learners), 32 clients spread over all the nodes.
# Every node fsyncs (as in production). Run by hand, not by CI:
#   bash tests/bench/scaling_plots.sh [--build DIR] [--out DIR] [--seconds S] [--quick]
# Needs gnuplot (Debian: apt-get install gnuplot-nox) and python3. Writes
# OUT/scaling_clients.png, OUT/scaling_locks.png, OUT/scaling_cluster.png and the figures
# behind them (OUT/scaling_*.tsv; scaling_locks.tsv also has the holder's grant rate and the
# node's RSS per held lock). With --seconds 3 (default) it took 4 minutes on a 2-CPU machine
# (the 1,000,000 locks are half of it); --quick (fewer points, 1 s runs, at most 100,000
# locks) 72 seconds. Nodes listen on 127.0.0.1 only, with --no-multicast
# and a cluster name of their own; everything is stopped and removed at exit.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$root/build"
out="$root/docs/perf"
seconds=3
quick=0
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$(cd "$2" && pwd)"; shift 2 ;;
    --out) mkdir -p "$2"; out="$(cd "$2" && pwd)"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --quick) quick=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "scaling_plots: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
lockmesh="$build/lockmesh"
[ -x "$lockmesh" ] || { echo "scaling_plots: no $lockmesh (build first)" >&2; exit 2; }
command -v gnuplot >/dev/null || { echo "scaling_plots: needs gnuplot (apt-get install gnuplot-nox)" >&2; exit 2; }
mkdir -p "$out"

if [ "$quick" = 1 ]; then
  seconds=1
  client_points=(1 16 256 4096)
  lock_points=(1000 10000 100000)
  cluster_points=(1 3 5 9)
else
  client_points=(1 4 16 64 256 1024 4096)
  lock_points=(1000 10000 100000 1000000)
  cluster_points=(1 3 5 9)
fi
# 4,096 clients: as many connections in the bench and in the node.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

work="$(mktemp -d /tmp/lmscale.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
started=$(date +%s)

# Prints the field `path` (a.b.c, [0] for lists) of the JSON on stdin.
json() { python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[int(k)] if k.isdigit() else v[k]
print(v)' "$1"; }

# Waits until `cond` (a command) succeeds, at most $1 seconds.
wait_for() {
  local limit=$1; shift
  local t=0
  until "$@"; do
    t=$((t + 1)); [ "$t" -le $((limit * 10)) ] || return 1
    sleep 0.1
  done
}

# bench distinct on the local node at $1 (plus --node-socket ...): "cycles/s<TAB>p99 ms".
bench_distinct() {
  local sock=$1 clients=$2; shift 2
  local j
  j="$("$lockmesh" bench --no-autostart --socket "$sock" --scenario distinct --clients "$clients" \
        --seconds "$seconds" --json "$@")"
  printf '%s\t%s\n' "$(json results.0.cycles_per_second <<<"$j")" "$(json results.0.latency_ms.p99 <<<"$j")"
}

# ---------------------------------------------------------------- 1 and 2: one local node
sock="$work/local.sock"
"$lockmesh" node --local --socket "$sock" --data-dir "$work/local" >"$work/local.log" 2>&1 &
pids+=($!)
wait_for 20 "$lockmesh" status --socket "$sock" >/dev/null 2>&1 ||
  { echo "scaling_plots: the local node did not start:" >&2; tail "$work/local.log" >&2; exit 1; }

echo "# clients	cycles_per_second	p99_ms" >"$out/scaling_clients.tsv"
for c in "${client_points[@]}"; do
  line="$(bench_distinct "$sock" "$c")"
  printf '%s\t%s\n' "$c" "$line" | tee -a "$out/scaling_clients.tsv"
done

# The node's held locks; -1 while it does not answer (a snapshot of a large table blocks it).
held_count() {
  local j
  j="$("$lockmesh" status --socket "$sock" --json 2>/dev/null)" && json locks_held <<<"$j" || echo -1
}
held_at_least() { [ "$(held_count)" -ge "$1" ]; }
held_none() { [ "$(held_count)" = 0 ]; }
echo "# held_locks	cycles_per_second	p99_ms	grants_per_second	node_bytes_per_held_lock" >"$out/scaling_locks.tsv"
for n in "${lock_points[@]}"; do
  # The holder takes n locks (32-byte names) and holds them long enough for the distinct
  # run, then releases them and reports (grant rate, the node's bytes per held lock).
  "$lockmesh" bench --no-autostart --socket "$sock" --scenario hold --locks "$n" --name-bytes 32 \
    --hold-seconds "$(python3 -c "print($seconds + 10)")" --json >"$work/hold.json" 2>"$work/hold.err" &
  holder=$!
  pids+=($holder)
  wait_for 900 held_at_least "$n" ||
    { echo "scaling_plots: $n locks not held within 900 s" >&2; cat "$work/hold.err" >&2; exit 1; }
  line="$(bench_distinct "$sock" 16)"
  wait "$holder" || { echo "scaling_plots: the holder failed:" >&2; cat "$work/hold.err" >&2; exit 1; }
  printf '%s\t%s\t%.0f\t%.0f\n' "$n" "$line" "$(json results.0.grants_per_second <"$work/hold.json")" \
    "$(json results.0.bytes_per_held_lock <"$work/hold.json")" | tee -a "$out/scaling_locks.tsv"
  wait_for 60 held_none || { echo "scaling_plots: the node still holds locks" >&2; exit 1; }
done
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
pids=()

# ---------------------------------------------------------------- 3: meshes on loopback
free_ports() { python3 -c 'import socket,sys
socks=[socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks: s.close()' "$1"; }

echo "# nodes	cycles_per_second	p99_ms	voters	learners" >"$out/scaling_cluster.tsv"
for n in "${cluster_points[@]}"; do
  read -r -a ports <<<"$(free_ports "$n")"
  join="127.0.0.1:${ports[0]}"
  cluster="lmscale$$n$n"
  pids=()
  for ((i = 0; i < n; i++)); do
    "$lockmesh" node --node-id "n$i" --cluster "$cluster" --socket "$work/m$n-$i.sock" \
      --data-dir "$work/m$n-$i" --listen "127.0.0.1:${ports[$i]}" --no-multicast --join "$join" \
      --expect 1 --voters 3 >"$work/m$n-$i.log" 2>&1 &
    pids+=($!)
    if [ "$i" = 0 ]; then
      wait_for 30 sh -c "'$lockmesh' status --socket '$work/m$n-0.sock' --json 2>/dev/null | grep -q '\"leader_id\": \"n0\"'" ||
        { echo "scaling_plots: node n0 did not lead" >&2; tail "$work/m$n-0.log" >&2; exit 1; }
    fi
  done
  # Formed: n members (min(n,3) voters), everyone connected, and every node knows the leader.
  formed() {
    local j
    j="$("$lockmesh" status --socket "$work/m$n-0.sock" --json 2>/dev/null)" || return 1
    python3 -c 'import json,sys
s=json.loads(sys.argv[1]); n=int(sys.argv[2])
m=s["members"]
ok = len(m)==n and sum(x["voter"] for x in m)==min(n,3) and all(x["connected"] for x in m) and all(x["lag"]==0 for x in m)
sys.exit(0 if ok else 1)' "$j" "$n"
  }
  wait_for 120 formed ||
    { echo "scaling_plots: the $n-node mesh did not form" >&2; "$lockmesh" status --socket "$work/m$n-0.sock" >&2 || true; exit 1; }
  extra=()
  for ((i = 1; i < n; i++)); do extra+=(--node-socket "$work/m$n-$i.sock"); done
  line="$(bench_distinct "$work/m$n-0.sock" 32 "${extra[@]}")"
  voters=$((n < 3 ? n : 3))
  printf '%s\t%s\t%s\t%s\n' "$n" "$line" "$voters" "$((n - voters))" | tee -a "$out/scaling_cluster.tsv"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
done

# ---------------------------------------------------------------- plots
cpu="$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
note="$(nproc) CPUs ($cpu), fsync on, $(date -u +'%d %b %Y'), ${seconds} s per point"
plot() {  # file xlabel title
  local name=$1 xlabel=$2 title=$3
  gnuplot <<EOF
set terminal pngcairo size 900,380 font "sans,10"
set output "$out/scaling_$name.png"
set multiplot layout 1,2 title "$title\n{/*0.8 $note}"
set logscale x
set grid
set key off
set xlabel "$xlabel"
set ylabel "cycles/s"
set yrange [0:*]
plot "$out/scaling_$name.tsv" using 1:2 with linespoints lw 2 pt 7
set ylabel "p99 cycle latency (ms)"
plot "$out/scaling_$name.tsv" using 1:3 with linespoints lw 2 pt 7 lc rgb "#c03030"
unset multiplot
EOF
}
plot clients "clients (each on its own resource)" "lockmesh bench distinct on one node: clients"
plot locks "locks held on the node meanwhile" "lockmesh bench distinct (16 clients) while N locks are held"
gnuplot <<EOF
set terminal pngcairo size 900,380 font "sans,10"
set output "$out/scaling_cluster.png"
set multiplot layout 1,2 title "lockmesh bench distinct, 32 clients spread over every node of a mesh on loopback\n{/*0.8 $note; 3 voters, the other nodes learners}"
set grid
set key off
set xlabel "nodes"
set xtics ("1" 1, "3" 3, "5" 5, "9" 9)
set xrange [0:10]
set ylabel "cycles/s"
set yrange [0:*]
plot "$out/scaling_cluster.tsv" using 1:2 with linespoints lw 2 pt 7
set ylabel "p99 cycle latency (ms)"
plot "$out/scaling_cluster.tsv" using 1:3 with linespoints lw 2 pt 7 lc rgb "#c03030"
unset multiplot
EOF
echo "scaling_plots: wrote $out/scaling_{clients,locks,cluster}.png in $(( $(date +%s) - started )) s"
