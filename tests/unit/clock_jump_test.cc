// Unit tests of the monotonic-clock rule (docs/mesh.md "Ids and time"): a leader whose own
// clock jumps (or whose process is paused) past the election timeout treats itself as
// paused — it steps down and expires nobody for the gap — and a node whose lease ran out
// in the gap is simply lapsed until a fresh acknowledgement.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/lease/lease.h"
#include "core/raft/raft.h"
#include "support/raft_network.h"

namespace mesh::core {
namespace {

constexpr lease::Time kElectionTimeout = 1'000'000;
constexpr lease::Time kTtl = 3'000'000;

lease::LeaseOptions Options() {
  lease::LeaseOptions o;
  o.session_ttl = kTtl;
  o.max_drift = 0.01;
  o.margin = 100'000;
  o.keepalive_interval = kTtl / 10;
  o.election_timeout = kElectionTimeout;
  return o;
}

pb::Keepalive KeepaliveFrom(const std::string& node, uint64_t seq) {
  pb::Keepalive k;
  k.set_node_id(node);
  k.set_seq(seq);
  return k;
}

// ---------------------------------------------------------------- LeaderLeases

// A leader that runs every 50 ms from `from` to `to`, hearing keepalives from `heard` only.
void RunLeader(lease::LeaderLeases* leader, lease::Time from, lease::Time to,
               const std::vector<std::string>& heard, std::vector<std::string>* expired) {
  pb::KeepaliveAck ack;
  uint64_t seq = 1;
  for (lease::Time t = from; t <= to; t += 50'000) {
    for (const std::string& n : heard)
      leader->OnKeepalive(t, KeepaliveFrom(n, seq++), true, "n1", 1, &ack);
    for (const std::string& n : leader->TakeExpired(t)) expired->push_back(n);
  }
}

TEST(ClockJumpTest, ALeaderWhoseClockJumpsExpiresNobodyForTheGap) {
  lease::LeaderLeases leader(Options());
  leader.BecomeLeader(1'000'000, {"n1", "n2", "n3"});
  std::vector<std::string> expired;
  // n2 and n3 keep sending; the leader hears them until its clock jumps 10 s forward.
  RunLeader(&leader, 1'000'000, 2'000'000, {"n1", "n2", "n3"}, &expired);
  const lease::Time jumped = 12'000'000;
  EXPECT_TRUE(leader.TakeExpired(jumped).empty()) << "the jump is not the others' silence";
  EXPECT_EQ(leader.pauses(), 1u);
  lease::Time when = 0;
  ASSERT_TRUE(leader.LastHeard("n2", &when));
  EXPECT_EQ(when, jumped);
  // After the gap, silence counts again: n3 (now really silent) is expired a ttl later.
  RunLeader(&leader, jumped + 50'000, jumped + kTtl + 100'000, {"n1", "n2"}, &expired);
  EXPECT_EQ(expired, std::vector<std::string>{"n3"});
  EXPECT_EQ(leader.pauses(), 1u);
}

TEST(ClockJumpTest, AKeepaliveReadAfterAPauseCountsEveryNodeAsHeard) {
  lease::LeaderLeases leader(Options());
  leader.BecomeLeader(0, {"n1", "n2", "n3"});
  pb::KeepaliveAck ack;
  leader.OnKeepalive(500'000, KeepaliveFrom("n2", 1), true, "n1", 1, &ack);
  // Frozen 8 s; the first thing read after it is n2's queued keepalive.
  leader.OnKeepalive(8'500'000, KeepaliveFrom("n2", 2), false, "n1", 1, &ack);
  EXPECT_TRUE(leader.TakeExpired(8'500'000).empty());
  EXPECT_EQ(leader.NextDeadline(), 8'500'000 + kTtl);
}

TEST(ClockJumpTest, ShortGapsDoNotHideRealSilence) {
  lease::LeaderLeases leader(Options());
  leader.BecomeLeader(0, {"n1", "n2"});
  std::vector<std::string> expired;
  // Calls 0.9 s apart (below the election timeout): n2's silence adds up to the ttl.
  pb::KeepaliveAck ack;
  for (lease::Time t = 0; t <= kTtl + 900'000; t += 900'000) {
    leader.OnKeepalive(t, KeepaliveFrom("n1", t + 1), true, "n1", 1, &ack);
    for (const std::string& n : leader.TakeExpired(t)) expired.push_back(n);
  }
  EXPECT_EQ(expired, std::vector<std::string>{"n2"});
  EXPECT_EQ(leader.pauses(), 0u);
}

TEST(ClockJumpTest, WithoutTheElectionTimeoutTheRuleIsOff) {
  lease::LeaseOptions o = Options();
  o.election_timeout = 0;
  lease::LeaderLeases leader(o);
  leader.BecomeLeader(1'000'000, {"n1", "n2"});
  EXPECT_EQ(leader.TakeExpired(12'000'000).size(), 2u);
  EXPECT_EQ(leader.pauses(), 0u);
}

TEST(ClockJumpTest, AFollowerOrANewLeaderIsNotPausedByTheTimeBeforeItsLeadership) {
  lease::LeaderLeases leader(Options());
  std::vector<std::string> expired;
  EXPECT_TRUE(leader.TakeExpired(5'000'000).empty());  // not leader: nothing tracked
  leader.BecomeLeader(20'000'000, {"n1", "n2"});
  RunLeader(&leader, 20'000'000, 20'000'000 + kTtl, {"n1"}, &expired);
  EXPECT_EQ(expired, std::vector<std::string>{"n2"});
  EXPECT_EQ(leader.pauses(), 0u);
  leader.StepDown();
  leader.BecomeLeader(40'000'000, {"n1", "n2"});
  EXPECT_EQ(leader.pauses(), 0u);
}

// ---------------------------------------------------------------- NodeLease

TEST(ClockJumpTest, ANodeWhoseClockJumpsIsLapsedUntilAFreshAcknowledgement) {
  lease::NodeLease lease(Options());
  pb::KeepaliveAck ack;
  pb::Keepalive k = lease.MakeKeepalive(1'000'000, "n2");
  ack.set_node_id("n2");
  ack.set_seq(k.seq());
  lease.OnAck(ack, 0);
  ASSERT_TRUE(lease.Valid(1'500'000));
  const lease::Time jumped = 11'000'000;
  EXPECT_FALSE(lease.Valid(jumped));
  EXPECT_TRUE(lease.Lapsed(jumped));
  EXPECT_FALSE(lease.Lapsed(jumped + 1));
  // A keepalive sent before the jump but acknowledged after it gives only its old lease.
  pb::Keepalive before = lease.MakeKeepalive(1'200'000, "n2");
  pb::Keepalive after = lease.MakeKeepalive(jumped, "n2");
  ack.set_seq(before.seq());
  lease.OnAck(ack, 0);
  EXPECT_FALSE(lease.Valid(jumped));
  // The fresh one counts from its own send time.
  ack.set_seq(after.seq());
  lease.OnAck(ack, 0);
  EXPECT_TRUE(lease.Valid(jumped + 1));
  EXPECT_EQ(lease.valid_until(), lease.LeaseEnd(jumped));
}

// ---------------------------------------------------------------- Raft

using raft::Role;
using raft::testing::Network;

const std::vector<std::string> kThree = {"n1", "n2", "n3"};

TEST(ClockJumpTest, ALeaderWhoseTickComesAfterAGapStepsDownAndHoldsNoLease) {
  Network net(kThree);
  net.BootstrapAll(kThree);
  const std::string leader = net.WaitForLeader();
  ASSERT_FALSE(leader.empty());
  net.Run(500'000);
  ASSERT_EQ(net.raft(leader).role(), Role::kLeader);
  ASSERT_TRUE(net.raft(leader).HasLeaderLease(net.now()));
  // Only the leader's clock jumps 10 s; the first thing it does after the jump is a Tick.
  const raft::Time jumped = net.now() + 10'000'000;
  EXPECT_FALSE(net.raft(leader).HasLeaderLease(jumped));
  net.raft(leader).Tick(jumped);
  EXPECT_NE(net.raft(leader).role(), Role::kLeader) << "check-quorum steps it down";
  EXPECT_FALSE(net.raft(leader).HasLeaderLease(jumped));
}

TEST(ClockJumpTest, AnswersSentBeforeTheGapGiveNoLeaseAfterIt) {
  // The leader's clock jumps while its heartbeats are out; their answers are read after
  // the jump (before any Tick). It may stay leader (it hears a quorum), but holds no lease
  // until a quorum answers a message sent after the jump.
  Network net(kThree);
  net.BootstrapAll(kThree);
  const std::string leader = net.WaitForLeader();
  ASSERT_FALSE(leader.empty());
  net.Run(500'000);
  const raft::Time t = net.now() + 100'000;
  net.raft(leader).Tick(t);  // heartbeats sent at t
  net.Process(leader);
  const raft::Time jumped = t + 10'000'000;
  auto deliver = [&](raft::Time leader_time) {
    while (!net.queue().empty()) {
      pb::RaftMessage m = std::move(net.queue().front());
      net.queue().pop_front();
      const std::string to = m.to();
      net.raft(to).Step(to == leader ? leader_time : t, m);
      net.Process(to);
    }
  };
  deliver(jumped);
  ASSERT_EQ(net.raft(leader).role(), Role::kLeader);
  EXPECT_FALSE(net.raft(leader).HasLeaderLease(jumped));
  // A fresh round, sent after the jump, restores it.
  net.raft(leader).Tick(jumped + 100'000);
  net.Process(leader);
  deliver(jumped + 110'000);
  EXPECT_TRUE(net.raft(leader).HasLeaderLease(jumped + 110'000));
}

}  // namespace
}  // namespace mesh::core
