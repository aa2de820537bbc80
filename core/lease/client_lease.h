// core/lease: the client's own lease (docs/design.md §4; Chubby's "jeopardy"), as a pure state
// machine.
//
// A node's clients must not depend on their node to be told that their locks are lost: a
// frozen node (GC pause, swap storm, VM steal, SIGSTOP) tells nobody, and its socket stays
// open. So the client library counts a lease of its own, on its own monotonic clock, and
// declares its locks lost when that lease ends without a renewal — whatever the node does.
//
// The rule. The client sends a LeaseRequest at its local time c (read BEFORE the request is
// written). The node answers it at once with remaining = the time its own NodeLease
// (lease.h) still holds, on the node's clock (0 when the node's lease is not valid). The
// client's lease then ends at
//     c + remaining * (1 - drift) - margin                       (client's clock)
// The lease is based on the client's send time, never on a time computed by the node and
// sent later: a node frozen between computing a reply and writing it would otherwise hand
// out a lease that is stale by the length of the freeze.
//
// Safety argument (drift as in lease.h: over any stretch of real time, any clock advances at
// least (1 - drift) times as much as any other). Let the client send at real time C (its
// clock reads c), and the node compute its reply at real P >= C (the request cannot be read
// before it is sent), when its lease has `remaining` left: the node's lease ends at real
// G = the moment the node's clock has advanced `remaining` past P.
//  1. Over [P, G] the node's clock advances `remaining`, so the client's clock advances at
//     least remaining * (1 - drift). At P the client's clock reads at least c (P >= C).
//     So at G the client's clock reads at least c + remaining * (1 - drift): the client's
//     lease, which ends `margin` earlier still, has ended by real time G.
//  2. lease.h shows that no other node can be granted this node's locks before G (the
//     leader expires the node strictly after G). By 1, neither before the client's lease
//     ends: while its lease holds, the client's locks are its own.
//  3. A grant that reaches the client while its lease does not hold is held back (the
//     client renews at once): the node may have lost the lock meanwhile. A renewal sent
//     after the grant arrived and answered with a valid node lease shows the node's lease
//     held at P, after the grant: the session's locks were still the node's then (the node
//     closes the connection once it applies an expiry of its sessions, before answering
//     anything later on that connection).
// The margin absorbs what the argument leaves out: the time from the client's timer firing
// to the application acting on the lost lock (for `lockmesh lock`: signalling its command),
// and timer granularity. It must be positive. The client and its node share a host, so
// their clock rates hardly differ; the cluster's drift bound is used anyway.
//
// What this does not cover: the client itself frozen (the whole host paused, the client
// process stopped). Its timer cannot fire; only the fencing token protects the resource
// then (docs/mesh.md, "Client-side leases").
//
// Nothing here reads a clock: every time is passed in, in microseconds of the client's own
// monotonic clock. Threading: not thread-safe; each object belongs to one client's loop.
#ifndef LOCKMESH_CORE_LEASE_CLIENT_LEASE_H_
#define LOCKMESH_CORE_LEASE_CLIENT_LEASE_H_

#include <cstdint>
#include <map>

#include "core/lease/lease.h"

namespace mesh::core::lease {

/// Client lease tuning, told by the node in its HelloReply (the node's own LeaseOptions).
struct ClientLeaseOptions {
  /// Bound on the rate difference between the client's and the node's clocks (0.01 = 1%).
  double max_drift = 0.01;
  /// Subtracted from every lease (see the header comment); > 0.
  Time margin = 100'000;
};

/// Client side. Owned by one client connection (a new connection starts with no lease).
class ClientLease {
 public:
  /// How many unanswered requests are remembered; older ones are forgotten (their late
  /// replies are then ignored, which only ever shortens the lease).
  static constexpr size_t kMaxOutstanding = 64;

  explicit ClientLease(const ClientLeaseOptions& options);

  /// A LeaseRequest is about to be sent at local time `now` (read before writing it).
  /// Returns its sequence number, to be carried by the request and echoed by the reply.
  uint64_t MakeRequest(Time now);

  /// The node answered request `seq` with `remaining_us` (0: the node holds no lease).
  /// Extends the lease to LeaseEnd(send time of seq, remaining_us) if that is later.
  /// Unknown sequence numbers (never sent, forgotten, already answered) are ignored;
  /// requests sent before `seq` are forgotten (their replies can no longer help).
  void OnReply(uint64_t seq, Time remaining_us);

  /// True if the lease holds at `now`: the client's locks are its own.
  bool Valid(Time now) const { return valid_until_ > now; }
  /// Local time until which the lease holds (0: never renewed).
  Time valid_until() const { return valid_until_; }

  /// True once per lease end: a reply set one and `now` is past it. The client then
  /// reports every held lock lost. (A reply so late that its lease has already ended
  /// reports one more lapse; nothing can be held then, so that is harmless.)
  bool Lapsed(Time now);

  /// Local time at which Lapsed() will next report, for the client's timer; UINT64_MAX if
  /// it has nothing to report.
  Time NextDeadline() const;

  /// The lease end that a reply of `remaining_us` to a request sent at `sent` grants:
  /// sent + floor(remaining_us * (1 - drift)) - margin, or `sent` (no lease) if that
  /// span does not exceed the margin. Never later than sent + remaining_us.
  Time LeaseEnd(Time sent, Time remaining_us) const;

  /// Requests sent and not answered or forgotten yet (for tests and status).
  size_t outstanding() const { return sent_.size(); }

 private:
  ClientLeaseOptions options_;
  uint64_t next_seq_ = 1;
  std::map<uint64_t, Time> sent_;  // seq -> local send time, unanswered
  Time valid_until_ = 0;
  Time reported_end_ = 0;  // the lease end that Lapsed() last reported
};

}  // namespace mesh::core::lease

#endif  // LOCKMESH_CORE_LEASE_CLIENT_LEASE_H_
