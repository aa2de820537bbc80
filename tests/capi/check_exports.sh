#!/usr/bin/env bash
# Lists the dynamic symbols libmesh.so defines and fails on any that is not the C ABI
# (lockmesh_*) or the public C++ API (mesh::Status, mesh::Client, mesh::AsyncClient,
# mesh::Node and the free functions of the public headers): no mesh::pb, mesh::net,
# mesh::core, protobuf, mbedTLS, libuv or standard-library code. Also checks the soname is
# versioned. Usage: check_exports.sh LIBMESH_SO
set -euo pipefail
lib=$1
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[[ "$soname" =~ ^libmesh\.so\.[0-9]+$ ]] || { echo "soname is '$soname', not libmesh.so.N"; exit 1; }
# Defined symbols only ("U" are imports); the version node itself (LOCKMESH_1, type A) is not code.
syms=$(nm -D --defined-only "$lib" | awk '$2 != "A" { $1 = ""; $2 = ""; sub(/^  /, ""); print }' | c++filt | sed "s/@.*$//")
public='^(lockmesh_[a-z_]+'
public+='|mesh::Status::([A-Za-z~]+|operator=)(\[abi:cxx11\])?\(.*'
public+='|mesh::(ParseLockMode|LockModeName|DefaultSocketPath|DefaultDataDir|UniqueId)(\[abi:cxx11\])?\(.*'
public+='|mesh::Client::(Connect|~Client|Lock|TryLock|Unlock|SetLostCallback|GetStatus|ListLocks|Shutdown|Poll|fd)\(.*'
public+='|mesh::(AsyncClient|Node)::Create\(.*'
public+='|(typeinfo|typeinfo name|vtable) for mesh::(AsyncClient|Node))$'
internal=$(grep -Ev "$public" <<<"$syms" || true)
count=$(wc -l <<<"$syms")
echo "$lib ($soname): $count exported symbols"
if [ -n "$internal" ]; then
  echo "exported but not public API ($(wc -l <<<"$internal")):"
  head -50 <<<"$internal"
  exit 1
fi
grep -q '^lockmesh_connect$' <<<"$syms" || { echo "lockmesh_connect is not exported"; exit 1; }
grep -q '^mesh::Client::Connect(' <<<"$syms" || { echo "mesh::Client::Connect is not exported"; exit 1; }
echo "only the public API is exported"
