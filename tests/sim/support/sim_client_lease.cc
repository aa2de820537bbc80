// The client library's own lease in the simulator (core/lease/client_lease.h): each client
// is a process of its own beside its node. While it holds or waits for a lock it sends its
// node a LeaseRequest every client_lease_interval over the local socket; the node answers
// at once with what its NodeLease still holds (0 if nothing), unless it is frozen — then
// the requests wait in its socket and are answered after the thaw. The client counts a
// delivered lock as held only while its ClientLease is valid; a grant that reaches it
// without a valid lease waits for the reply to a request sent after it arrived. When the
// lease lapses while it holds, the client declares the lock lost on its own and releases
// it, whatever its node does.
#include <algorithm>
#include <string>

#include "sim/support/sim_cluster.h"
#include "sim/support/sim_cluster_internal.h"

namespace mesh::sim {

core::lease::ClientLeaseOptions Cluster::ClientLeaseOpts() const {
  core::lease::ClientLeaseOptions o;
  o.max_drift = 2 * options_.clock_drift / (1 + options_.clock_drift) + 1e-6;
  o.margin = options_.lease_margin;
  return o;
}

void Cluster::NewClientLease(Node& n, Client& c) {
  c.lease = core::lease::ClientLease(ClientLeaseOpts());
  c.conn = ++n.next_conn;
  c.lease_renew_at = 0;
  c.await_seq = 0;
}

Time Cluster::ClientDeadline(const Node&, const Client& c) const {
  if (!options_.client_lease) return kNever;
  Time t = c.lease.NextDeadline();
  if (c.may_hold()) t = std::min(t, c.lease_renew_at);
  return t;
}

void Cluster::ClientLeaseDuties(Node& n, Client& c) {
  if (!options_.client_lease) return;
  const Time local = Local(n);
  if (c.lease.Lapsed(local) && c.delivered) {
    // Jeopardy: the client gives the lock up on its own and releases it.
    ++stats_.lost;
    n.lost_at = now_;
    EndHold(n, c, "declares lost (client lease lapsed)");
    c.next_action = local;
    ClientAct(n, c);
  }
  if (c.may_hold() && local >= c.lease_renew_at) SendLeaseRequest(n, c);
}

uint64_t Cluster::SendLeaseRequest(Node& n, Client& c) {
  const Time local = Local(n);
  const uint64_t seq = c.lease.MakeRequest(local);
  c.lease_renew_at = local + options_.client_lease_interval;
  const int i = n.index;
  const uint64_t inc = n.incarnation;
  const std::string id = n.id;
  const int k = c.k;
  const uint64_t conn = c.conn;
  const Time delay = net_rng_.Between(options_.local_min_delay, options_.local_max_delay);
  Schedule(now_ + delay, [this, i, inc, id, k, conn, seq] {
    Node& m = *nodes_[i];
    if (!m.up || m.incarnation != inc || m.id != id) return;
    if (m.frozen()) {
      m.lease_inbox.emplace_back(k, conn, seq);
      return;
    }
    AnswerLeaseRequest(m, k, conn, seq);
  });
  return seq;
}

void Cluster::AnswerLeaseRequest(Node& n, int k, uint64_t conn, uint64_t seq) {
  const Time local = Local(n);
  const Time remaining = n.lease->Valid(local) ? n.lease->valid_until() - local : 0;
  const int i = n.index;
  const uint64_t inc = n.incarnation;
  const std::string id = n.id;
  const Time delay = net_rng_.Between(options_.local_min_delay, options_.local_max_delay);
  Schedule(now_ + delay, [this, i, inc, id, k, conn, seq, remaining] {
    Node& m = *nodes_[i];
    if (!m.up || m.incarnation != inc || m.id != id) return;
    if (k >= static_cast<int>(m.clients.size()) || m.clients[k].conn != conn) return;
    OnLeaseReply(m, m.clients[k], seq, remaining);
  });
}

void Cluster::OnLeaseReply(Node& n, Client& c, uint64_t seq, Time remaining) {
  c.lease.OnReply(seq, remaining);
  if (c.await_seq != 0 && seq >= c.await_seq && c.lease.Valid(Local(n)) &&
      c.state == Client::State::kHolding && !c.delivered) {
    c.await_seq = 0;
    Deliver(n, c);
  }
  ScheduleWake(n);
}

}  // namespace mesh::sim
