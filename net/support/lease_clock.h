// net/support/lease_clock: the one clock that every time handed to core/ (Raft, the node's and the
// leader's leases, the client's lease) is read from.
//
// CLOCK_BOOTTIME, not CLOCK_MONOTONIC (what uv_hrtime and libuv's timers use): both are
// monotonic and immune to wall-clock steps, but CLOCK_MONOTONIC stands still while the host
// is suspended. A leader suspended and resumed would then still count its Raft leader lease
// (it heard from a quorum "a moment ago") and acknowledge keepalives after another leader had
// expired those nodes; a node or client would count its lease as valid for up to a ttl after
// the resume. With CLOCK_BOOTTIME the suspension is a clock jump: the leader's lease has
// lapsed, Raft steps it down, LeaderLeases treats the gap as its own pause (core/lease), and
// nodes and clients find their leases lapsed. libuv timers still run on CLOCK_MONOTONIC: they
// only say when to look again; every decision compares times of this clock.
//
// Thread-safe (a system call, no state).
#ifndef LOCKMESH_NET_SUPPORT_LEASE_CLOCK_H_
#define LOCKMESH_NET_SUPPORT_LEASE_CLOCK_H_

#include <time.h>

#include <cstdint>

namespace mesh::net {

/// Microseconds of CLOCK_BOOTTIME (monotonic, counts suspended time).
inline uint64_t LeaseClockUs() {
  timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

}  // namespace mesh::net

#endif  // LOCKMESH_NET_SUPPORT_LEASE_CLOCK_H_
