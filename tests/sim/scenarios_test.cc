// Scripted scenarios of the cluster simulator (docs/simulation.md). Each runs a
// deterministic cluster (fixed seed, no random loss unless said) through one situation and
// checks what must happen, on top of every invariant of sim_checker.h.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "sim/support/sim_cluster.h"

namespace mesh::sim {
namespace {

using core::raft::Role;
constexpr Time kSecond = 1'000'000;

SimOptions Quiet(uint64_t seed, int voters, int spares) {
  SimOptions o;
  o.seed = seed;
  o.voters = voters;
  o.spares = spares;
  o.drop = 0;
  o.duplicate = 0;
  return o;
}

int WaitForLeader(Cluster& c, Time limit = 10 * kSecond) {
  c.RunUntil([&] { return c.Leader() >= 0; }, limit);
  return c.Leader();
}

#define EXPECT_NO_VIOLATION(c) EXPECT_FALSE((c).failed()) << (c).Report()

// An isolated leader loses its lease and steps down (check-quorum) within the election
// timeout, and the others elect a new leader within the election timeout of noticing
// (randomized in [T, 2T) after the last heartbeat). The old leader never holds a lease
// while the new one exists.
TEST(Scenarios, IsolatedLeaderStepsDownAndNewLeaderIsElected) {
  SimOptions o = Quiet(11, 3, 0);
  Cluster c(o);
  c.Start();
  const int old = WaitForLeader(c);
  ASSERT_GE(old, 0) << c.Report();
  c.RunFor(2 * kSecond);
  ASSERT_EQ(c.Leader(), old);
  const uint64_t old_term = c.raft(old)->term();
  const Time isolated_at = c.now();
  c.Partition({{old}});
  Time stepped_down = 0, elected = 0;
  bool lease_overlap = false;
  c.RunUntil(
      [&] {
        if (stepped_down == 0 && c.raft(old)->role() != Role::kLeader) stepped_down = c.now();
        for (int i = 0; i < c.size(); ++i) {
          if (i == old || c.raft(i)->role() != Role::kLeader) continue;
          if (elected == 0) elected = c.now();
          if (c.raft(old)->HasLeaderLease(c.LocalNow(old))) lease_overlap = true;
        }
        return stepped_down != 0 && elected != 0;
      },
      10 * kSecond);
  ASSERT_NE(stepped_down, 0u) << c.Report();
  ASSERT_NE(elected, 0u) << c.Report();
  EXPECT_FALSE(lease_overlap) << "the isolated leader still held a lease when another was elected";
  // Check-quorum: no quorum heard within the election timeout (plus one heartbeat to notice).
  EXPECT_LE(stepped_down - isolated_at, o.election_timeout + 2 * o.heartbeat_interval);
  // The followers' election timers run [T, 2T) from the last heartbeat; then one pre-vote and
  // one vote round trip. "Within the election timeout" of the timer firing.
  EXPECT_LE(elected - isolated_at, 2 * o.election_timeout + o.election_timeout / 2);
  const int now_leader = c.Leader();
  ASSERT_GE(now_leader, 0);
  EXPECT_NE(now_leader, old);
  EXPECT_GT(c.raft(now_leader)->term(), old_term);
  c.Heal();
  c.RunFor(3 * kSecond);
  EXPECT_NO_VIOLATION(c);
}

// A follower cut off for many election timeouts keeps campaigning in pre-vote only: its term
// does not grow, and when it rejoins the leader and term are unchanged.
TEST(Scenarios, RejoiningFollowerDoesNotDisturbLeader) {
  SimOptions o = Quiet(12, 3, 0);
  Cluster c(o);
  c.Start();
  const int leader = WaitForLeader(c);
  ASSERT_GE(leader, 0) << c.Report();
  c.RunFor(2 * kSecond);
  const uint64_t term = c.raft(leader)->term();
  const int follower = (leader + 1) % c.size();
  c.Partition({{follower}});
  c.RunFor(8 * o.election_timeout);
  EXPECT_EQ(c.raft(follower)->term(), term) << "pre-vote must not bump the term";
  EXPECT_EQ(c.Leader(), leader);
  c.Heal();
  c.RunFor(5 * o.election_timeout);
  EXPECT_EQ(c.Leader(), leader);
  EXPECT_EQ(c.raft(leader)->term(), term);
  EXPECT_EQ(c.raft(follower)->term(), term);
  EXPECT_EQ(c.raft(follower)->leader(), c.id(leader));
  EXPECT_NO_VIOLATION(c);
}

// A follower that was down while the others compacted their logs past its last entry
// catches up by snapshot install, then by appends, and applies the same entries.
TEST(Scenarios, NodeBehindCompactionCatchesUpBySnapshot) {
  SimOptions o = Quiet(13, 3, 0);
  o.compact_every = 16;
  Cluster c(o);
  c.Start();
  const int leader = WaitForLeader(c);
  ASSERT_GE(leader, 0) << c.Report();
  const int follower = (leader + 1) % c.size();
  c.RunFor(2 * kSecond);
  c.Crash(follower, core::FaultFileSystem::TearMode::kDropUnsynced);
  const uint64_t installed_before = c.stats().snapshots_installed;
  // Clients on the other nodes keep the log growing well past the follower's.
  c.RunFor(10 * kSecond);
  const int l = c.Leader();
  ASSERT_GE(l, 0);
  ASSERT_GT(c.raft(l)->snapshot_meta().index(), 16u);
  c.Restart(follower);
  const uint64_t target = c.raft(l)->commit_index();
  ASSERT_TRUE(c.RunUntil([&] { return c.raft(follower)->applied_index() >= target; },
                         5 * kSecond))
      << c.Report();
  EXPECT_GT(c.stats().snapshots_installed, installed_before) << "caught up without a snapshot";
  EXPECT_GE(c.raft(follower)->snapshot_meta().index(), 16u);
  c.RunFor(2 * kSecond);
  EXPECT_NO_VIOLATION(c);
}

// The leader crashes right after proposing a membership change (before it can commit), and
// again right after a promotion is proposed; the cluster recovers, every node ends with the
// same configuration, and a later change goes through.
TEST(Scenarios, CrashInTheMiddleOfMembershipChange) {
  SimOptions o = Quiet(14, 3, 1);
  Cluster c(o);
  c.Start();
  int leader = WaitForLeader(c);
  ASSERT_GE(leader, 0) << c.Report();
  c.RunFor(kSecond);
  const int spare = 3;
  ASSERT_TRUE(c.AddLearner(spare).ok());
  c.Crash(leader, core::FaultFileSystem::TearMode::kTearLastWrite);  // before any append lands
  c.RunFor(kSecond);
  c.Restart(leader);
  leader = WaitForLeader(c);
  ASSERT_GE(leader, 0) << c.Report();
  c.RunFor(2 * kSecond);
  if (!c.IsMember(spare)) {
    // The change died with the leader's unsynced log: propose it again.
    ASSERT_TRUE(c.RunUntil([&] { return c.AddLearner(spare).ok(); }, 5 * kSecond)) << c.Report();
  }
  ASSERT_TRUE(c.RunUntil([&] { return c.Promote(spare).ok(); }, 10 * kSecond)) << c.Report();
  const int promoter = c.Leader();
  c.Crash(promoter, core::FaultFileSystem::TearMode::kDropUnsynced);
  c.RunFor(3 * kSecond);
  c.Restart(promoter);
  c.RunFor(5 * kSecond);
  ASSERT_GE(c.Leader(), 0) << c.Report();
  // Every node converges on one configuration.
  const std::string config = c.raft(c.Leader())->config().SerializeAsString();
  ASSERT_TRUE(c.RunUntil(
      [&] {
        for (int i = 0; i < c.size(); ++i) {
          if (c.raft(i)->config().SerializeAsString() != config) return false;
        }
        return true;
      },
      5 * kSecond))
      << c.Report();
  // And the cluster still changes membership: remove a voter other than the leader.
  const int victim = (c.Leader() + 1) % c.size();
  ASSERT_TRUE(c.RunUntil([&] { return c.Remove(victim).ok(); }, 5 * kSecond)) << c.Report();
  c.RunFor(5 * kSecond);
  EXPECT_FALSE(c.IsMember(victim));
  EXPECT_NO_VIOLATION(c);
}

// A learner that cannot receive the log is not promoted; once it has caught up it is, and at
// that moment its replicated index has reached the leader's commit index.
TEST(Scenarios, LearnerPromotedOnlyAfterCatchingUp) {
  SimOptions o = Quiet(15, 3, 1);
  Cluster c(o);
  c.Start();
  const int leader = WaitForLeader(c);
  ASSERT_GE(leader, 0) << c.Report();
  c.RunFor(3 * kSecond);  // some log to catch up with
  const int spare = 3;
  c.Partition({{spare}});
  ASSERT_TRUE(c.AddLearner(spare).ok()) << c.Report();
  c.RunFor(2 * kSecond);
  ASSERT_TRUE(c.IsMember(spare));
  ASSERT_FALSE(c.IsVoter(spare));
  EXPECT_FALSE(c.Promote(spare).ok()) << "promoted a learner that has nothing";
  c.RunFor(kSecond);
  EXPECT_FALSE(c.Promote(spare).ok());
  c.Heal();
  uint64_t match_at_promotion = 0, commit_at_promotion = 0;
  ASSERT_TRUE(c.RunUntil(
      [&] {
        const int l = c.Leader();
        if (l < 0) return false;
        uint64_t match = 0;
        for (const core::raft::PeerProgress& p : c.raft(l)->progress()) {
          if (p.id == c.id(spare)) match = p.match;
        }
        const uint64_t commit = c.raft(l)->commit_index();
        if (!c.Promote(spare).ok()) return false;
        match_at_promotion = match;
        commit_at_promotion = commit;
        return true;
      },
      10 * kSecond))
      << c.Report();
  EXPECT_GE(match_at_promotion, commit_at_promotion);
  c.RunFor(3 * kSecond);
  EXPECT_TRUE(c.IsVoter(spare));
  EXPECT_NO_VIOLATION(c);
}

// A node whose keepalives stop tells its clients their locks are lost before the leader can
// grant them to anyone else — with the worst allowed drift: the node's clock is the slowest
// (rate 1 - d) and the leader's the fastest (1 + d).
TEST(Scenarios, SilentNodeLosesLocksBeforeTheyAreGrantedElsewhereAtWorstDrift) {
  SimOptions o = Quiet(16, 3, 0);
  o.clock_drift = 0.01;
  o.extreme_drift = true;  // even nodes run at 1.01, odd ones at 0.99
  o.clients_per_node = 1;
  Cluster c(o);
  c.Start();
  int leader = WaitForLeader(c);
  ASSERT_GE(leader, 0) << c.Report();
  if (leader % 2 == 1) {  // make a fast node the leader
    ASSERT_TRUE(c.TransferLeadership(0).ok());
    ASSERT_TRUE(c.RunUntil([&] { return c.Leader() == 0; }, 5 * kSecond)) << c.Report();
    leader = 0;
  }
  const int victim = 1;  // the slow node
  ASSERT_NE(victim, leader);
  // Only the victim asks first; the others queue behind it once it holds.
  for (int i = 0; i < c.size(); ++i) c.PauseClients(i, i != victim);
  c.ForceHold(victim, "r-contended", 120 * kSecond);
  for (int i = 0; i < c.size(); ++i) {
    if (i != victim) c.ForceHold(i, "r-contended", kSecond);
  }
  ASSERT_TRUE(c.RunUntil([&] { return c.HeldBy(victim) > 0; }, 10 * kSecond)) << c.Report();
  for (int i = 0; i < c.size(); ++i) c.PauseClients(i, false);
  c.RunFor(2 * kSecond);
  ASSERT_EQ(c.HeldBy(victim), 1) << c.Report();
  // The victim goes silent: every link from it is cut (it still hears the others).
  const Time silent_at = c.now();
  for (int i = 0; i < c.size(); ++i) {
    if (i != victim) c.SetLink(victim, i, false);
  }
  ASSERT_TRUE(c.RunUntil([&] { return c.FirstGrantElsewhere(victim, "r-contended", silent_at) != 0; },
                         20 * kSecond))
      << c.Report();
  const Time granted = c.FirstGrantElsewhere(victim, "r-contended", silent_at);
  const Time lost = c.LastLostAt(victim);
  EXPECT_GT(lost, silent_at) << c.Report();
  EXPECT_LT(lost, granted) << c.Report();
  EXPECT_EQ(c.HeldBy(victim), 0);
  std::printf("silent at %.3f s, locks lost at %.3f s, granted elsewhere at %.3f s (%.1f ms later)\n",
              silent_at / 1e6, lost / 1e6, granted / 1e6, (granted - lost) / 1e3);
  EXPECT_NO_VIOLATION(c);
}

// ---- faults of real deployments: frozen nodes, rogue peers, clock jumps and steps

// One client of node `holder` holds "r-contended" (for two minutes); every other node's
// client queues for it. Returns false (with a failure recorded) if that does not happen.
bool HoldContended(Cluster& c, int holder) {
  for (int i = 0; i < c.size(); ++i) c.PauseClients(i, i != holder);
  c.ForceHold(holder, "r-contended", 120 * kSecond);
  for (int i = 0; i < c.size(); ++i) {
    if (i != holder) c.ForceHold(i, "r-contended", kSecond);
  }
  if (!c.RunUntil([&] { return c.HeldBy(holder) > 0; }, 10 * kSecond)) return false;
  for (int i = 0; i < c.size(); ++i) c.PauseClients(i, false);
  c.RunFor(2 * kSecond);
  return c.HeldBy(holder) == 1;
}

// The holder's node is frozen (SIGSTOP) for 8 s with a session ttl of
// 3 s, while its client keeps running. The leader expires the node and grants the lock
// elsewhere after about the ttl; the client, counting its own lease, declares the lock lost
// before that grant. Both with a follower and with the leader frozen.
class FrozenHolder : public ::testing::TestWithParam<bool> {};

TEST_P(FrozenHolder, ClientDeclaresLockLostBeforeAnyOtherGrant) {
  const bool freeze_leader = GetParam();
  SimOptions o = Quiet(17, 3, 0);
  o.clients_per_node = 1;
  o.session_ttl = 3 * kSecond;
  Cluster c(o);
  c.Start();
  const int leader = WaitForLeader(c);
  ASSERT_GE(leader, 0) << c.Report();
  const int victim = freeze_leader ? leader : (leader + 1) % c.size();
  ASSERT_TRUE(HoldContended(c, victim)) << c.Report();
  const Time frozen_at = c.now();
  c.Freeze(victim, 8 * kSecond);
  ASSERT_TRUE(c.RunUntil(
      [&] { return c.FirstGrantElsewhere(victim, "r-contended", frozen_at) != 0; }, 20 * kSecond))
      << c.Report();
  const Time granted = c.FirstGrantElsewhere(victim, "r-contended", frozen_at);
  const Time lost = c.LastLostAt(victim);
  EXPECT_TRUE(c.frozen(victim)) << "the other grant came after the thaw";
  EXPECT_GT(lost, frozen_at) << c.Report();
  EXPECT_LT(lost, granted) << c.Report();
  EXPECT_EQ(c.HeldBy(victim), 0);
  std::printf(
      "frozen at %.3f s, lock declared lost by the client at %.3f s, granted elsewhere "
      "at %.3f s (%.1f ms later)\n",
      frozen_at / 1e6, lost / 1e6, granted / 1e6, (granted - lost) / 1e3);
  c.RunFor(10 * kSecond);  // the thaw, and the cluster settles
  EXPECT_NO_VIOLATION(c);
}

// The same without the client lease (the client's view is its node's lease, as before issue
// 13): the frozen node never tells its client, and the checker must see the overlap.
TEST_P(FrozenHolder, WithoutClientLeaseTheCheckerSeesTheOverlap) {
  const bool freeze_leader = GetParam();
  SimOptions o = Quiet(17, 3, 0);
  o.clients_per_node = 1;
  o.session_ttl = 3 * kSecond;
  o.client_lease = false;
  Cluster c(o);
  c.Start();
  const int leader = WaitForLeader(c);
  ASSERT_GE(leader, 0) << c.Report();
  const int victim = freeze_leader ? leader : (leader + 1) % c.size();
  ASSERT_TRUE(HoldContended(c, victim)) << c.Report();
  c.Freeze(victim, 8 * kSecond);
  c.RunFor(10 * kSecond);
  ASSERT_TRUE(c.failed()) << "the checker did not see the frozen holder's overlap";
  std::printf("%s\n", c.checker().violation().c_str());
  EXPECT_NE(c.checker().violation().find("mutual exclusion"), std::string::npos)
      << c.checker().violation();
}

INSTANTIATE_TEST_SUITE_P(Holder, FrozenHolder, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? std::string("LeaderFrozen")
                                          : std::string("FollowerFrozen");
                         });

// What every node's state machine and Raft say, for comparing before and after.
struct NodeState {
  uint64_t term = 0;
  uint64_t commit = 0;
  std::string leader;
  std::string locks;  // every row of the lock table
};

std::vector<NodeState> Observe(const Cluster& c) {
  std::vector<NodeState> out;
  for (int i = 0; i < c.size(); ++i) {
    NodeState s;
    s.term = c.raft(i)->term();
    s.commit = c.raft(i)->commit_index();
    s.leader = c.raft(i)->leader();
    for (const core::LockRow& row : c.table(i)->List()) {
      s.locks += row.resource + " " + row.session.node_id() + "/" +
                 std::to_string(row.session.client_id()) + " " + std::to_string(row.lock_id) +
                 (row.held ? " held " : " queued ") + std::to_string(row.token) + "\n";
    }
    out.push_back(s);
  }
  return out;
}

// Has every client of `c` hold a lock of its own for 10 minutes; true once all of them hold
// theirs (the leader's own may take longer and are not waited for, nor a spare's).
::testing::AssertionResult HoldEverywhere(Cluster& c, int leader, int clients_per_node) {
  for (int i = 0; i < c.size(); ++i) c.ForceHold(i, "r" + std::to_string(i), 600 * kSecond);
  const bool held = c.RunUntil(
      [&] {
        for (int i = 0; i < c.size(); ++i) {
          if (c.HeldBy(i) != clients_per_node && i != leader && c.IsMember(i)) return false;
        }
        return true;
      },
      20 * kSecond);
  if (held) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "not every client holds its lock within 20 s";
}

// Expects every node's term, commit index, leader and lock table to be the same in `after`
// as in `before`.
void ExpectSameState(const Cluster& c, const std::vector<NodeState>& before,
                     const std::vector<NodeState>& after) {
  for (int i = 0; i < c.size(); ++i) {
    EXPECT_EQ(after[i].term, before[i].term) << c.id(i);
    EXPECT_EQ(after[i].commit, before[i].commit) << c.id(i);
    EXPECT_EQ(after[i].leader, before[i].leader) << c.id(i);
    EXPECT_EQ(after[i].locks, before[i].locks) << c.id(i);
  }
}

// A rogue process (a non-member, and claiming members' ids on its own
// link) sends forged PROPOSE (ExpireNode of a member, releases and closes of other nodes'
// sessions), HEARTBEAT/APPEND/VOTE/PRE_VOTE/TIMEOUT_NOW with high terms and forged entries,
// and KeepaliveAcks and Keepalives for members. Nothing changes: terms, leader, commit
// indexes and lock tables are the same on every node, and every forgery is refused.
TEST(Scenarios, RogueForgeriesChangeNoTermCommitOrLock) {
  SimOptions o = Quiet(18, 3, 0);
  o.clients_per_node = 1;
  Cluster c(o);
  c.Start();
  const int leader = WaitForLeader(c);
  ASSERT_GE(leader, 0) << c.Report();
  // Every client holds a lock for a long time, then nobody asks for anything more.
  ASSERT_TRUE(HoldEverywhere(c, leader, o.clients_per_node)) << c.Report();
  for (int i = 0; i < c.size(); ++i) c.PauseClients(i, true);
  c.RunFor(3 * kSecond);  // quiet: every proposal applied everywhere
  const std::vector<NodeState> before = Observe(c);
  const uint64_t refused_before = c.stats().refused;
  for (int round = 0; round < 20; ++round) {
    c.RogueBurst(50, /*as_member=*/round % 2 == 0);
    c.RunFor(200'000);
  }
  c.RunFor(2 * kSecond);
  const std::vector<NodeState> after = Observe(c);
  ExpectSameState(c, before, after);
  EXPECT_EQ(c.Leader(), leader);
  EXPECT_GE(c.stats().refused - refused_before, 1000u) << "forgeries were not refused";
  for (int i = 0; i < c.size(); ++i) EXPECT_EQ(c.HeldBy(i), o.clients_per_node) << c.id(i);
  EXPECT_NO_VIOLATION(c);
}

// The rogue asks to join and is added as a learner (membership is automatic), then
// forges as a member: PROPOSE of ExpireNode for each node and of Acquire/Release/
// CloseSession in the other nodes' sessions it saw in the log, leader traffic and votes in
// high terms, and acks for voters claiming their ids. R4, R1 and the learner rules (R2)
// refuse it all: terms, leader, commit indexes and lock tables are unchanged, every lock
// is still held.
TEST(Scenarios, RogueLearnerForgeriesChangeNoTermCommitOrLock) {
  SimOptions o = Quiet(20, 3, 0);
  o.clients_per_node = 1;
  Cluster c(o);
  c.Start();
  const int leader = WaitForLeader(c);
  ASSERT_GE(leader, 0) << c.Report();
  // Every client holds a lock for a long time, then nobody asks for anything more.
  ASSERT_TRUE(HoldEverywhere(c, leader, o.clients_per_node)) << c.Report();
  ASSERT_TRUE(c.RogueJoin().ok()) << c.Report();
  ASSERT_TRUE(c.RunUntil([&] { return c.RogueIsMember(); }, 5 * kSecond)) << c.Report();
  for (int i = 0; i < c.size(); ++i) c.PauseClients(i, true);
  c.RunFor(3 * kSecond);  // quiet: every proposal applied everywhere
  const std::vector<NodeState> before = Observe(c);
  const uint64_t refused_before = c.stats().refused;
  for (int round = 0; round < 20; ++round) {
    // Claiming other members' ids (R1): every one of these is refused. As itself, a
    // learner's answers to its leader are taken (and change nothing).
    const bool as_member = round % 2 == 0;
    const uint64_t sent = c.stats().rogue_messages, refused = c.stats().refused;
    c.RogueBurst(50, as_member);
    c.RunFor(200'000);
    if (as_member) {
      EXPECT_EQ(c.stats().refused - refused, c.stats().rogue_messages - sent)
          << "round " << round << ": a forgery claiming another member's id was taken";
    }
  }
  c.RunFor(2 * kSecond);
  const std::vector<NodeState> after = Observe(c);
  ExpectSameState(c, before, after);
  EXPECT_EQ(c.Leader(), leader);
  EXPECT_TRUE(c.RogueIsMember());
  for (const pb::Member& m : c.raft(leader)->config().members()) {
    if (m.id() == "rogue") EXPECT_FALSE(m.voter()) << "the rogue became a voter";
  }
  EXPECT_GE(c.stats().refused - refused_before, 700u) << "forgeries were not refused";
  for (int i = 0; i < c.size(); ++i) EXPECT_EQ(c.HeldBy(i), o.clients_per_node) << c.id(i);
  EXPECT_NO_VIOLATION(c);
}

// Two colluding rogue processes, each with a link of its own. The rogue joins as
// a learner (membership is automatic); its accomplice never joins. The rogue gossips that
// the accomplice leads a high term, and the accomplice sends HEARTBEATs and APPENDs of a
// forged ExpireNode committed at once. R3b takes a non-member's leader traffic only when a
// voter vouches for it, so every message is refused and nothing changes (with a learner's
// word enough, nodes follow the accomplice and apply its entry).
TEST(Scenarios, RogueLearnerCannotVouchForItsAccomplice) {
  SimOptions o = Quiet(21, 3, 0);
  o.clients_per_node = 1;
  Cluster c(o);
  c.Start();
  const int leader = WaitForLeader(c);
  ASSERT_GE(leader, 0) << c.Report();
  // Every client holds a lock for a long time, then nobody asks for anything more.
  ASSERT_TRUE(HoldEverywhere(c, leader, o.clients_per_node)) << c.Report();
  ASSERT_TRUE(c.RogueJoin().ok()) << c.Report();
  ASSERT_TRUE(c.RunUntil(
      [&] {
        for (int i = 0; i < c.size(); ++i) {
          if (!core::IsMemberOf(&c.raft(i)->config(), "rogue")) return false;
        }
        return true;
      },
      5 * kSecond))
      << c.Report();
  for (int i = 0; i < c.size(); ++i) c.PauseClients(i, true);
  c.RunFor(3 * kSecond);  // quiet: every proposal applied everywhere
  const std::vector<NodeState> before = Observe(c);
  for (int round = 0; round < 20; ++round) {
    const uint64_t sent = c.stats().rogue_messages, refused = c.stats().refused;
    c.RogueVouch(50);
    c.RunFor(200'000);
    EXPECT_EQ(c.stats().refused - refused, c.stats().rogue_messages - sent)
        << "round " << round << ": the accomplice's leader traffic was taken";
  }
  c.RunFor(2 * kSecond);
  const std::vector<NodeState> after = Observe(c);
  ExpectSameState(c, before, after);
  EXPECT_EQ(c.Leader(), leader);
  for (int i = 0; i < c.size(); ++i) EXPECT_EQ(c.HeldBy(i), o.clients_per_node) << c.id(i);
  EXPECT_NO_VIOLATION(c);
}

// What a spare's join target was while the rogue worked on it.
struct JoinWatch {
  bool rogue = false;   // the rogue, at some point
  bool waited = false;  // none (the spare waited), at some point
};

// The rogue's attack on a fresh node (core/join_choice.h): its gossip tells the spare it leads
// the cluster in a term 50 above every node's, and every 200 ms it sends 50 forged messages
// as itself to the up nodes (a quarter of them to the spare, among them HEARTBEATs and
// APPENDs of a forged entry at index 1, committed at once, in that term). `rounds` rounds,
// or until `done` holds after one; `watch` records the spare's join target meanwhile.
// With `vouch`, RogueVouch's rounds instead: the rogue names its accomplice `rogue-b` as
// leader, and the accomplice, claiming to lead, sends the forgeries.
void RogueClaimsToLeadAtSpare(
    Cluster& c, int spare, int rounds, JoinWatch* watch,
    const std::function<bool()>& done = [] { return false; }, bool vouch = false) {
  for (int round = 0; round < rounds && !c.failed(); ++round) {
    if (vouch) {
      c.RogueVouch(50);
    } else {
      c.RogueBurst(50, /*as_member=*/false);
    }
    c.RunUntil(
        [&] {
          const std::string target = c.JoinTarget(spare);
          watch->rogue |= target == "rogue" || target == "rogue-b";
          watch->waited |= target.empty();
          return false;
        },
        200'000);
    if (done()) return;
  }
}

// Starts `c`, has every member's client hold a lock (HoldEverywhere), then pauses every
// client: the members' state stays still. The leader, or -1 (with the failure recorded).
int StartHoldingStill(Cluster& c, int clients_per_node) {
  c.Start();
  const int leader = WaitForLeader(c);
  if (leader < 0) return -1;
  const ::testing::AssertionResult held = HoldEverywhere(c, leader, clients_per_node);
  EXPECT_TRUE(held);
  for (int i = 0; i < c.size(); ++i) c.PauseClients(i, true);
  return held ? leader : -1;
}

// The current leader adds the spare as a learner while the rogue keeps at it; once the spare
// has caught up, its term, commit index, leader and lock table are the members' (every
// node's state is the leader's), and it asked the leader itself.
void ExpectSpareJoinsTheCluster(Cluster& c, int spare, JoinWatch* watch) {
  ASSERT_TRUE(c.RunUntil([&] { return c.AddLearner(spare).ok(); }, 5 * kSecond)) << c.Report();
  RogueClaimsToLeadAtSpare(c, spare, 10, watch);
  const int leader = c.Leader();
  ASSERT_GE(leader, 0) << c.Report();
  ASSERT_TRUE(c.RunUntil(
      [&] {
        return c.raft(spare)->config().members_size() > 0 &&
               c.raft(spare)->commit_index() == c.raft(leader)->commit_index();
      },
      10 * kSecond))
      << c.Report();
  c.RunFor(2 * kSecond);
  EXPECT_EQ(c.JoinTarget(spare), c.id(leader));
  const std::vector<NodeState> now = Observe(c);
  ExpectSameState(c, std::vector<NodeState>(c.size(), now[leader]), now);
}

// A spare joins while the rogue (a non-member with a link of its own) tells it in
// gossip that it leads the cluster in a much higher term, and bursts forged leader traffic at
// it. A peer's claim to lead itself counts for nothing (core::ChooseJoin, C2): the spare asks
// the real leader, whom the other members name, never the rogue, and ends with the members'
// state. (Trusting a peer that claims to lead, as net/ did, it takes the rogue's forged log:
// state machine safety fails.)
TEST(Scenarios, SpareJoinsTheRealLeaderNotTheRogueClaimingToLead) {
  SimOptions o = Quiet(22, 3, 1);
  o.clients_per_node = 1;
  Cluster c(o);
  const int leader = StartHoldingStill(c, o.clients_per_node);
  ASSERT_GE(leader, 0) << c.Report();
  const int spare = 3;
  const uint64_t refused_before = c.stats().refused;
  JoinWatch watch;
  RogueClaimsToLeadAtSpare(c, spare, 10, &watch);  // before, then while it joins
  ExpectSpareJoinsTheCluster(c, spare, &watch);
  EXPECT_FALSE(watch.rogue) << "the spare's join target was the rogue";
  EXPECT_EQ(c.Leader(), leader);
  EXPECT_GE(c.stats().refused - refused_before, 500u) << "forgeries were not refused";
  EXPECT_NO_VIOLATION(c);
}

// The same while the real cluster has no leader: the leader crashed and the two
// others, cut from each other for 3 s, both campaign and name no leader. The rogue is the
// only peer claiming to lead (`vouch` false), or names its accomplice, which claims to lead
// (true; one naming peer against the real peers that name nobody, C2). The spare waits, never
// trusts the rogue or its accomplice, and once the link is back and a new leader is elected,
// joins it as soon as the other voter names it.
void SpareWaitsThroughAnElection(uint64_t seed, bool vouch) {
  SimOptions o = Quiet(seed, 3, 1);
  o.clients_per_node = 1;
  Cluster c(o);
  const int old = StartHoldingStill(c, o.clients_per_node);
  ASSERT_GE(old, 0) << c.Report();
  c.RunFor(kSecond);
  const int spare = 3;
  const int a = (old + 1) % 3, b = (old + 2) % 3;
  c.Crash(old, core::FaultFileSystem::TearMode::kDropUnsynced);
  c.SetLink(a, b, false);
  c.SetLink(b, a, false);
  JoinWatch watch;
  RogueClaimsToLeadAtSpare(c, spare, 15, &watch, [] { return false; }, vouch);
  ASSERT_LT(c.Leader(), 0) << c.Report();
  EXPECT_TRUE(watch.waited) << "the spare did not wait while nobody led\n" << c.Report();
  EXPECT_EQ(c.JoinTarget(spare), "");
  c.Heal();
  const auto joins_leader = [&] {
    const int l = c.Leader();
    return l >= 0 && c.JoinTarget(spare) == c.id(l);
  };
  if (vouch) {
    // Two real peers in view against two of the attacker's: the new leader is named by one
    // of its two judges (the other peer and the rogue), not more than half. The spare waits
    // until the old leader is back (a liveness cost of the attacker's second identity).
    RogueClaimsToLeadAtSpare(c, spare, 10, &watch, [] { return false; }, vouch);
    ASSERT_GE(c.Leader(), 0) << c.Report();
    EXPECT_EQ(c.JoinTarget(spare), "") << c.Report();
    c.Restart(old);
  }
  RogueClaimsToLeadAtSpare(c, spare, 50, &watch, joins_leader, vouch);
  const int leader = c.Leader();
  ASSERT_GE(leader, 0) << c.Report();
  EXPECT_EQ(c.JoinTarget(spare), c.id(leader)) << c.Report();
  if (!vouch) c.Restart(old);
  ExpectSpareJoinsTheCluster(c, spare, &watch);
  EXPECT_FALSE(watch.rogue) << "the spare's join target was the rogue or its accomplice";
  EXPECT_NO_VIOLATION(c);
}

TEST(Scenarios, SpareWaitsThroughAnElectionThenJoinsTheNewLeaderNotTheRogue) {
  SpareWaitsThroughAnElection(23, /*vouch=*/false);
}

TEST(Scenarios, SpareWaitsThroughAnElectionWhileTheRogueNamesItsAccomplice) {
  SpareWaitsThroughAnElection(23, /*vouch=*/true);
}

// The leader's monotonic clock jumps 10 s forward (real time does not).
// It must treat that as its own pause, not as everybody's silence: nobody is expired, no
// lock is lost (without core/lease's clock-jump rule it expires every other node).
TEST(Scenarios, LeaderMonotonicJumpExpiresNobody) {
  SimOptions o = Quiet(19, 3, 0);
  o.clients_per_node = 1;
  Cluster c(o);
  c.Start();
  const int leader = WaitForLeader(c);
  ASSERT_GE(leader, 0) << c.Report();
  // Every client holds a lock for a long time, then nobody asks for anything more.
  ASSERT_TRUE(HoldEverywhere(c, leader, o.clients_per_node)) << c.Report();
  c.RunFor(2 * kSecond);
  const uint64_t expirations = c.stats().expirations;
  const uint64_t lost = c.stats().lost;
  c.JumpClock(leader, 10 * kSecond);
  c.RunFor(10 * kSecond);
  EXPECT_EQ(c.stats().expirations, expirations) << c.Report();
  for (int i = 0; i < c.size(); ++i) {
    if (i != leader) EXPECT_EQ(c.HeldBy(i), o.clients_per_node) << c.id(i) << "\n" << c.Report();
  }
  std::printf("locks lost after the jump: %llu (the leader's own clients may lose theirs)\n",
              static_cast<unsigned long long>(c.stats().lost - lost));
  EXPECT_NO_VIOLATION(c);
}

// A node restarted after its wall clock stepped back 1 h. Its client ids
// come from the log, so the restart ends the previous run's sessions (its lock goes to a
// client of another node) and its new clients open sessions and are granted locks.
TEST(Scenarios, RestartAfterWallClockStepBackEndsOldSessionsAndGrantsNewLocks) {
  SimOptions o = Quiet(20, 3, 0);
  o.clients_per_node = 1;
  Cluster c(o);
  c.Start();
  const int leader = WaitForLeader(c);
  ASSERT_GE(leader, 0) << c.Report();
  const int victim = (leader + 1) % c.size();
  ASSERT_TRUE(HoldContended(c, victim)) << c.Report();
  c.StepWall(victim, -3600 * static_cast<int64_t>(kSecond));
  c.Crash(victim, core::FaultFileSystem::TearMode::kDropUnsynced);
  const Time crashed_at = c.now();
  c.RunFor(500'000);
  c.Restart(victim);
  c.ForceHold(victim, "r-after", kSecond);
  // The old run's lock is granted elsewhere once the restart's claim ends its session.
  ASSERT_TRUE(c.RunUntil(
      [&] { return c.FirstGrantElsewhere(victim, "r-contended", crashed_at) != 0; }, 10 * kSecond))
      << c.Report();
  // And the restarted node's client gets a lock of its own.
  ASSERT_TRUE(c.RunUntil([&] { return c.HeldBy(victim) > 0; }, 10 * kSecond)) << c.Report();
  std::string why;
  EXPECT_TRUE(c.AllMembersServe(&why)) << why;
  EXPECT_NO_VIOLATION(c);
}

}  // namespace
}  // namespace mesh::sim
