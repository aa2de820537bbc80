#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds a C++ and a C application against it
# twice — with find_package(lockmesh) and with pkg-config — and takes a lock with each, and with
# the installed Python package, through a node started from the installed binary.
# Usage: check_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d /tmp/lockmesh-install-XXXXXX)
node_pid=""
cleanup() {
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/lockmesh include/mesh/client.h include/mesh/node.h include/mesh/status.h include/lockmesh.h \
         lib/libmesh.a lib/libmesh.so lib/libmesh.so.1 lib/cmake/lockmesh/lockmeshConfig.cmake \
         lib/pkgconfig/lockmesh.pc lib/python3/dist-packages/lockmesh/__init__.py; do
  [ -e "$prefix/$f" ] || { echo "missing after install: $f"; exit 1; }
done
# The FLoM front end is a symlink to the same binary, which picks its personality by name.
[ "$(readlink "$prefix/bin/flom")" = lockmesh ] || { echo "bin/flom is not a link to lockmesh"; exit 1; }
"$prefix/bin/flom" --help 2>&1 | grep -qi flom || { echo "bin/flom does not start the FLoM front end"; exit 1; }

"$prefix/bin/lockmesh" node --local --socket "$tmp/node.sock" --data-dir "$tmp/data" 2>"$tmp/node.log" &
node_pid=$!
for _ in $(seq 1 200); do [ -S "$tmp/node.sock" ] && break; sleep 0.05; done
[ -S "$tmp/node.sock" ] || { echo "installed node did not start:"; cat "$tmp/node.log"; exit 1; }

cmake -S "$src/tests/install/consumer" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/cmake-build" >/dev/null
LD_LIBRARY_PATH=$prefix/lib "$tmp/cmake-build/consumer" "$tmp/node.sock"
LD_LIBRARY_PATH=$prefix/lib "$tmp/cmake-build/consumer_c" "$tmp/node.sock"

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
g++ -std=c++20 "$src/tests/install/consumer/main.cc" -o "$tmp/pc-consumer" $(pkg-config --cflags --libs lockmesh)
LD_LIBRARY_PATH=$prefix/lib "$tmp/pc-consumer" "$tmp/node.sock"
cc -std=c99 -Wall -Werror "$src/tests/install/consumer/main.c" -o "$tmp/pc-consumer-c" $(pkg-config --cflags --libs lockmesh)
LD_LIBRARY_PATH=$prefix/lib "$tmp/pc-consumer-c" "$tmp/node.sock"

# The installed Python package finds the installed library by itself (no LOCKMESH_LIBRARY,
# no LD_LIBRARY_PATH).
env -u LOCKMESH_LIBRARY -u LD_LIBRARY_PATH PYTHONDONTWRITEBYTECODE=1 \
  PYTHONPATH="$prefix/lib/python3/dist-packages" /usr/bin/python3 -c '
import sys, lockmesh
assert lockmesh._lib._name.startswith(sys.argv[2]), lockmesh._lib._name
with lockmesh.Client(sys.argv[1]) as c, c.lock("install_test_py", timeout=5.0) as l:
    print("Python token", l.token)
' "$tmp/node.sock" "$prefix/"
echo "install check passed"
