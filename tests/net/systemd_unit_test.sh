#!/usr/bin/env bash
# The installed systemd unit (packaging/systemd/lockmesh.service.in, as configured by CMake):
# `systemd-analyze verify` accepts it with ExecStart pointed at the built binary, and it is the
# notify service the node speaks to (Type=notify, a watchdog, the node's own user).
# Usage: systemd_unit_test.sh CONFIGURED_UNIT LOCKMESH_BINARY
set -u
unit=$1
bin=$2
if ! command -v systemd-analyze >/dev/null; then
  if [ "${CI:-}" = true ]; then
    echo "FAIL: systemd-analyze is missing (package systemd, in .ci/packages)"
    exit 1
  fi
  echo "SKIP: systemd-analyze is not installed (apt-get install systemd)"
  exit 0
fi
dir=$(mktemp -d /tmp/lockmesh-unit-XXXXXX)
trap 'rm -rf "$dir"' EXIT
sed "s|^ExecStart=[^ ]*/lockmesh |ExecStart=$bin |" "$unit" >"$dir/lockmesh.service"
grep -q "^ExecStart=$bin node " "$dir/lockmesh.service" || { echo "FAIL: no ExecStart to rewrite"; exit 1; }
fail=0
for want in '^Type=notify$' '^NotifyAccess=main$' '^WatchdogSec=' '^User=lockmesh$' \
  '^RuntimeDirectory=lockmesh$' '^StateDirectory=lockmesh$' '--socket-group lockmesh'; do
  grep -qE -- "$want" "$dir/lockmesh.service" || { echo "FAIL: the unit lacks $want"; fail=1; }
done
# --man=no: the page is checked by docs.man_page; here it is not installed yet.
if ! out=$(systemd-analyze verify --man=no "$dir/lockmesh.service" 2>&1) || [ -n "$out" ]; then
  echo "FAIL: systemd-analyze verify: $out"
  fail=1
fi
[ $fail = 0 ] && echo "systemd unit: verified"
exit $fail
