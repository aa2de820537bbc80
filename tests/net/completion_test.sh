#!/usr/bin/env bash
# The bash completion (apps/lockmesh/completion/lockmesh.bash) against the built binary and a
# real local node: subcommands, a subcommand's flags, fixed flag values, sub-subcommands,
# flom's flags, the command after `--`, and resource names the node holds.
# Usage: completion_test.sh LOCKMESH_BINARY COMPLETION_SCRIPT
set -u
bin=$1
script=$2
dir=$(mktemp -d /tmp/lockmesh-completion-XXXXXX)
node=""
cleanup() {
  [ -n "$node" ] && kill "$node" 2>/dev/null && wait "$node" 2>/dev/null
  [ -n "${holders:-}" ] && kill $holders 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
mkdir "$dir/bin"
ln -s "$bin" "$dir/bin/lockmesh"
ln -s "$bin" "$dir/bin/flom"
export PATH="$dir/bin:$PATH"
# shellcheck disable=SC1090
source "$script"
fail=0
# expect WORDS... = EXPECTED...: each EXPECTED word must be among the completions.
expect() {
  local words=() want=() seen=0 w
  for w in "$@"; do
    if [ "$w" = "=" ]; then seen=1; continue; fi
    if [ $seen = 0 ]; then words+=("$w"); else want+=("$w"); fi
  done
  COMP_WORDS=("${words[@]}")
  COMP_CWORD=$((${#words[@]} - 1))
  COMPREPLY=()
  _lockmesh
  for w in "${want[@]}"; do
    if ! printf '%s\n' "${COMPREPLY[@]}" | grep -qxF -- "$w"; then
      echo "FAIL: [${words[*]}] lacks '$w' (got: ${COMPREPLY[*]})"
      fail=1
    fi
  done
}
expect lockmesh "" = lock node locks status cert trust tls-debug bench unique-id
expect lockmesh lo = lock locks
expect lockmesh lock --no = --no-wait --no-create --no-autostart
expect lockmesh lock -m "" = EX PR NL
expect lockmesh status --ch = --check
expect lockmesh cert "" = ca node self-signed show
expect lockmesh node --max-pending = --max-pending-per-source --max-pending-connections
expect flom --resource-n = --resource-name
expect lockmesh lock demo -- ech = echo
# Resource names from the node.
"$bin" node --local --socket "$dir/s" --data-dir "$dir/d" >"$dir/node.log" 2>&1 &
node=$!
for _ in $(seq 1 300); do [ -S "$dir/s" ] && break; sleep 0.1; done
holders=""
for r in build-alpha build-beta other; do
  "$bin" lock --no-autostart --socket "$dir/s" "$r" -- sleep 60 >/dev/null 2>&1 &
  holders="$holders $!"
done
for _ in $(seq 1 300); do
  [ "$("$bin" locks --socket "$dir/s" --json 2>/dev/null | grep -c '"resource"')" = 3 ] && break
  sleep 0.1
done
expect lockmesh lock --socket "$dir/s" bui = build-alpha build-beta
expect lockmesh lock -x --socket "$dir/s" "" = build-alpha build-beta other
if [ $fail = 0 ]; then echo "completion: all cases passed"; fi
exit $fail
