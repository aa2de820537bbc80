// core/lease/lease_tuning: the lease options a mesh node runs with, derived from its flags
// (docs/design.md §4), so that the node and the simulator tune leases by one rule.
//
//  T1 margin = min(100 ms, session_ttl / 20), but at least 10 ms: subtracted from every
//     node-side lease (core/lease/lease.h).
//  T2 keepalive_interval = session_ttl / 10, but at least 50 ms: ten keepalives fit in a
//     lease, so that an occasional lost one does not cost the locks.
//  T3 election_timeout = Raft's election timeout: a longer gap between two of the leader's own
//     calls is a pause of its own (LeaseOptions::election_timeout).
//  session_ttl and max_drift are taken as given.
//
// Threading: a pure function.
#ifndef LOCKMESH_CORE_LEASE_LEASE_TUNING_H_
#define LOCKMESH_CORE_LEASE_LEASE_TUNING_H_

#include <cstdint>

#include "core/lease/lease.h"

namespace mesh::core::lease {

/// Rules T1-T3, all times in microseconds.
LeaseOptions MeshLeaseOptions(uint64_t session_ttl_us, double max_drift,
                              uint64_t election_timeout_us);

}  // namespace mesh::core::lease

#endif  // LOCKMESH_CORE_LEASE_LEASE_TUNING_H_
