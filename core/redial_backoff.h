// core/redial_backoff: how long a peer transport waits before it dials an address again
// (docs/design.md §5: "redial with exponential backoff and jitter"), as a pure function, so
// that the delay sequence is tested without sockets (net/peer/peer_transport.cc draws the random
// number and runs the timer).
//
//  B1 After `failures` failed attempts in a row (0 after a link that came up and was lost),
//     the base delay is min(max_ms, min_ms * 2^min(failures, 20)).
//  B2 A refusal the peer marked permanent, or a dialer whose node is already connected the
//     other way, waits the longest base delay, max_ms.
//  B3 Jitter: the delay is base * (0.5 + 0.5 * unit), `unit` uniform in [0, 1): in [base/2,
//     base), so that nodes that lost each other at one moment do not redial in lock step.
//
// Threading: a pure function.
#ifndef LOCKMESH_CORE_REDIAL_BACKOFF_H_
#define LOCKMESH_CORE_REDIAL_BACKOFF_H_

#include <cstdint>

namespace mesh::core {

/// Rules B1-B3. `unit` is the caller's uniform draw in [0, 1); values outside are clamped.
/// `min_ms` <= `max_ms` is assumed (else max_ms bounds every delay).
uint64_t RedialDelayMs(uint64_t min_ms, uint64_t max_ms, int failures, bool longest, double unit);

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_REDIAL_BACKOFF_H_
