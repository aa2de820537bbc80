// Unit tests of core/lease (docs/design.md §4): the leader's per-node silence tracking and
// acknowledgement rule, and the node's lease deadline with the drift bound.
#include "core/lease/lease.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/admission.h"
#include "core/lock_table.h"

namespace mesh::core::lease {
namespace {

LeaseOptions Options() {
  LeaseOptions o;
  o.session_ttl = 10'000'000;
  o.max_drift = 0.01;
  o.margin = 100'000;
  o.keepalive_interval = 1'000'000;
  return o;
}

pb::Keepalive KeepaliveFrom(const std::string& node, uint64_t seq) {
  pb::Keepalive k;
  k.set_node_id(node);
  k.set_seq(seq);
  return k;
}

TEST(LeaderLeasesTest, AcknowledgesOnlyWithLeaderLease) {
  LeaderLeases leader(Options());
  pb::KeepaliveAck ack;
  // Not leader: nothing is acknowledged.
  EXPECT_FALSE(leader.OnKeepalive(0, KeepaliveFrom("n2", 1), true, "n1", 5, &ack));
  leader.BecomeLeader(1'000, {"n1", "n2", "n3"});
  EXPECT_FALSE(leader.OnKeepalive(2'000, KeepaliveFrom("n2", 1), false, "n1", 5, &ack));
  ASSERT_TRUE(leader.OnKeepalive(3'000, KeepaliveFrom("n2", 2), true, "n1", 7, &ack));
  EXPECT_EQ(ack.node_id(), "n2");
  EXPECT_EQ(ack.leader_id(), "n1");
  EXPECT_EQ(ack.seq(), 2u);
  EXPECT_EQ(ack.required_index(), 7u);
}

TEST(LeaderLeasesTest, ReportsSilentNodesOnceAfterTtl) {
  LeaderLeases leader(Options());
  leader.BecomeLeader(1'000'000, {"n1", "n2", "n3"});
  pb::KeepaliveAck ack;
  leader.OnKeepalive(5'000'000, KeepaliveFrom("n2", 1), true, "n1", 1, &ack);
  leader.OnKeepalive(5'000'000, KeepaliveFrom("n1", 1), true, "n1", 1, &ack);
  EXPECT_EQ(leader.NextDeadline(), 11'000'000u);
  EXPECT_TRUE(leader.TakeExpired(10'999'999).empty());
  EXPECT_EQ(leader.TakeExpired(11'000'000), std::vector<std::string>{"n3"});
  EXPECT_TRUE(leader.TakeExpired(12'000'000).empty()) << "reported once";
  EXPECT_EQ(leader.TakeExpired(15'000'000), (std::vector<std::string>{"n1", "n2"}));
  // A keepalive re-arms a reported node.
  leader.OnKeepalive(16'000'000, KeepaliveFrom("n3", 9), false, "n1", 1, &ack);
  EXPECT_TRUE(leader.TakeExpired(25'999'999).empty());
  EXPECT_EQ(leader.TakeExpired(26'000'000), std::vector<std::string>{"n3"});
}

TEST(LeaderLeasesTest, NewLeadershipRestartsEveryClockAndStepDownForgets) {
  LeaderLeases leader(Options());
  leader.BecomeLeader(0, {"n1", "n2"});
  EXPECT_EQ(leader.TakeExpired(10'000'000).size(), 2u);
  leader.StepDown();
  EXPECT_FALSE(leader.is_leader());
  EXPECT_TRUE(leader.TakeExpired(50'000'000).empty());
  EXPECT_EQ(leader.NextDeadline(), UINT64_MAX);
  leader.BecomeLeader(60'000'000, {"n1", "n2"});
  EXPECT_TRUE(leader.TakeExpired(69'999'999).empty());
  leader.Track(65'000'000, "n4");
  leader.Track(66'000'000, "n4");  // already tracked: unchanged
  Time when = 0;
  ASSERT_TRUE(leader.LastHeard("n4", &when));
  EXPECT_EQ(when, 65'000'000u);
  leader.Forget("n4");
  EXPECT_FALSE(leader.LastHeard("n4", &when));
}

TEST(NodeLeaseTest, LeaseRunsFromSendTimeWithDriftAndMargin) {
  LeaseOptions o = Options();
  NodeLease lease(o);
  pb::Keepalive k = lease.MakeKeepalive(2'000'000, "n2");
  EXPECT_FALSE(lease.Valid(2'000'000));
  pb::KeepaliveAck ack;
  ack.set_seq(k.seq());
  ack.set_required_index(0);
  lease.OnAck(ack, 0);
  // 10 s * 0.99 = 9.9 s, less 100 ms of margin.
  const Time end = 2'000'000 + 9'900'000 - 100'000;
  EXPECT_EQ(lease.valid_until(), end);
  EXPECT_TRUE(lease.Valid(end - 1));
  EXPECT_FALSE(lease.Valid(end));
  EXPECT_FALSE(lease.Lapsed(end - 1));
  EXPECT_EQ(lease.NextDeadline(), end);
  EXPECT_TRUE(lease.Lapsed(end));
  EXPECT_FALSE(lease.Lapsed(end + 1)) << "one report per lapse";
  EXPECT_EQ(lease.NextDeadline(), UINT64_MAX);
}

// The argument of lease.h, checked numerically at the extremes of the drift bound: a node
// whose clock is slowest gives up (in real time) before a leader whose clock is fastest can
// expire it, even when the keepalive reached the leader instantly.
TEST(NodeLeaseTest, NodeGivesUpBeforeFastestLeaderExpiresAtWorstDrift) {
  for (double d : {0.0, 0.001, 0.01, 0.05, 0.1}) {
    for (Time ttl : {Time{1'000'000}, Time{10'000'000}, Time{60'000'000}}) {
      LeaseOptions o = Options();
      o.max_drift = 2 * d / (1 + d);  // clocks at rates within [1 - d, 1 + d]
      o.session_ttl = ttl;
      o.margin = 1;
      NodeLease lease(o);
      const Time s = 123;
      const Time end = lease.LeaseEnd(s);
      // Node clock at rate 1 - d: local elapsed (end - s) takes this much real time.
      const double node_gives_up = (end - s) / (1.0 - d);
      // Leader clock at rate 1 + d, keepalive received at real S: expiry after ttl local.
      const double leader_expires = ttl / (1.0 + d);
      EXPECT_LT(node_gives_up, leader_expires) << "d=" << d << " ttl=" << ttl;
    }
  }
}

TEST(NodeLeaseTest, AckWaitsForRequiredIndexAndOnlyExtends) {
  NodeLease lease(Options());
  pb::Keepalive k1 = lease.MakeKeepalive(1'000'000, "n2");
  pb::Keepalive k2 = lease.MakeKeepalive(2'000'000, "n2");
  pb::KeepaliveAck ack2;
  ack2.set_seq(k2.seq());
  ack2.set_required_index(50);
  lease.OnAck(ack2, 40);
  EXPECT_EQ(lease.valid_until(), 0u) << "not usable before index 50 is applied";
  lease.OnApplied(49);
  EXPECT_EQ(lease.valid_until(), 0u);
  lease.OnApplied(50);
  EXPECT_EQ(lease.valid_until(), lease.LeaseEnd(2'000'000));
  // The older keepalive's ack (delivered late) is ignored: k2's ack superseded it.
  pb::KeepaliveAck ack1;
  ack1.set_seq(k1.seq());
  lease.OnAck(ack1, 100);
  EXPECT_EQ(lease.valid_until(), lease.LeaseEnd(2'000'000));
  // Unknown sequence numbers (another incarnation) are ignored.
  pb::KeepaliveAck bogus;
  bogus.set_seq(999);
  lease.OnAck(bogus, 100);
  EXPECT_EQ(lease.valid_until(), lease.LeaseEnd(2'000'000));
}

TEST(NodeLeaseTest, PendingAcksOutOfIndexOrder) {
  NodeLease lease(Options());
  pb::Keepalive k1 = lease.MakeKeepalive(1'000'000, "n2");
  pb::KeepaliveAck a1;
  a1.set_seq(k1.seq());
  a1.set_required_index(30);
  lease.OnAck(a1, 0);
  pb::Keepalive k2 = lease.MakeKeepalive(2'000'000, "n2");
  pb::KeepaliveAck a2;
  a2.set_seq(k2.seq());
  a2.set_required_index(20);  // a different leader, with a shorter log
  lease.OnAck(a2, 0);
  lease.OnApplied(25);
  EXPECT_EQ(lease.valid_until(), lease.LeaseEnd(2'000'000));
  lease.OnApplied(30);
  EXPECT_EQ(lease.valid_until(), lease.LeaseEnd(2'000'000)) << "never shortened";
}

TEST(NodeLeaseTest, TooShortTtlGivesNoLease) {
  LeaseOptions o = Options();
  o.session_ttl = 100'000;
  o.margin = 100'000;
  NodeLease lease(o);
  pb::Keepalive k = lease.MakeKeepalive(5, "n1");
  pb::KeepaliveAck ack;
  ack.set_seq(k.seq());
  lease.OnAck(ack, 0);
  EXPECT_FALSE(lease.Valid(5));
}

TEST(LeaderLeasesTest, KeepalivesOfUnknownNodesAreIgnored) {
  // Under --security none or tofu a peer may send keepalives under any id it makes up. The
  // leader neither tracks nor acknowledges them, so they never cost an ExpireNode entry.
  LeaderLeases leader(Options());
  leader.BecomeLeader(0, {"n1", "n2"});
  pb::KeepaliveAck ack;
  for (uint64_t i = 0; i < 1000; ++i) {
    EXPECT_FALSE(leader.OnKeepalive(1'000 + i, KeepaliveFrom("rogue-" + std::to_string(i), 1),
                                    /*known=*/false, true, "n1", 1, &ack));
  }
  EXPECT_EQ(leader.tracked_count(), 2u);
  Time when = 0;
  EXPECT_FALSE(leader.LastHeard("rogue-7", &when));
  EXPECT_EQ(leader.TakeExpired(20'000'000), (std::vector<std::string>{"n1", "n2"}));
  // A known node (a member, or a removed one that still has sessions) is acknowledged.
  EXPECT_TRUE(
      leader.OnKeepalive(20'000'000, KeepaliveFrom("n3", 1), /*known=*/true, true, "n1", 1, &ack));
  EXPECT_EQ(leader.tracked_count(), 3u);
  // Once it is neither (it left and its sessions ended), its next keepalive forgets it.
  EXPECT_FALSE(
      leader.OnKeepalive(21'000'000, KeepaliveFrom("n3", 2), /*known=*/false, true, "n1", 1, &ack));
  EXPECT_EQ(leader.tracked_count(), 2u);
  EXPECT_TRUE(leader.TakeExpired(40'000'000).empty()) << "n1, n2 reported already; n3 forgotten";
}

TEST(LeaderLeasesTest, MembersAndNodesWithSessionsMayHoldALease) {
  pb::ClusterConfig config;
  pb::Member* m = config.add_members();
  m->set_id("n1");
  LockTable table;
  pb::Command open;
  open.mutable_open_session()->mutable_session()->set_node_id("gone");
  open.mutable_open_session()->mutable_session()->set_client_id(5);
  ASSERT_EQ(table.Apply(1, open).result.code(), pb::GRANTED);
  EXPECT_TRUE(MayHoldLease(&config, table, "n1"));      // a member
  EXPECT_TRUE(MayHoldLease(&config, table, "gone"));    // removed, sessions still open
  EXPECT_FALSE(MayHoldLease(&config, table, "rogue"));  // neither
  EXPECT_FALSE(MayHoldLease(nullptr, table, "n1"));
  EXPECT_FALSE(MayHoldLease(&config, table, "gon"));  // a prefix of a node with sessions
  pb::Command close;
  *close.mutable_close_session()->mutable_session() = open.open_session().session();
  ASSERT_EQ(table.Apply(2, close).result.code(), pb::RELEASED);
  EXPECT_FALSE(MayHoldLease(&config, table, "gone"));
}

}  // namespace
}  // namespace mesh::core::lease
