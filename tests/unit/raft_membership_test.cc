// Unit tests of core/raft: learners, membership changes, leadership transfer, compaction and
// snapshot install, on the in-memory network of support/raft_network.h.
#include <gtest/gtest.h>

#include "core/raft/raft.h"
#include "support/raft_network.h"

namespace mesh::core::raft {
namespace {

using testing::Network;

using Kind = MembershipChange::Kind;
const std::vector<std::string> kThree = {"n1", "n2", "n3"};

MembershipChange Change(Kind kind, const std::string& id) {
  MembershipChange c;
  c.kind = kind;
  c.id = id;
  c.address = id + ":28017";
  return c;
}

bool IsVoterIn(const pb::ClusterConfig& config, const std::string& id) {
  for (const auto& m : config.members()) {
    if (m.id() == id) return m.voter();
  }
  return false;
}

bool IsMemberOf(const pb::ClusterConfig& config, const std::string& id) {
  for (const auto& m : config.members()) {
    if (m.id() == id) return true;
  }
  return false;
}

TEST(RaftMembershipTest, LearnerReplicatesButNeverCountsOrCampaigns) {
  Network net({"n1", "n2", "n3", "l1"});
  net.BootstrapAll(kThree);  // l1 starts empty and joins
  std::string leader = net.WaitForLeader();
  ASSERT_TRUE(net.raft(leader).ProposeMembership(net.now(), Change(Kind::kAddLearner, "l1")).ok());
  net.Process(leader);
  net.Run(500'000);
  EXPECT_EQ(net.raft("l1").role(), Role::kLearner);
  ASSERT_TRUE(net.Propose(leader, "x").ok());
  net.Run(300'000);
  EXPECT_EQ(net.node("l1").commands, (std::vector<std::string>{"x"}));
  // Two voters cut off: the learner's acknowledgements must not make a quorum.
  for (const auto& id : kThree) {
    if (id != leader) net.Isolate(id);
  }
  uint64_t commit = net.raft(leader).commit_index();
  ASSERT_TRUE(net.raft(leader).Propose(net.now(), "y").ok());
  net.Process(leader);
  net.Run(300'000);
  EXPECT_EQ(net.raft(leader).commit_index(), commit);
  EXPECT_EQ(net.raft("l1").last_index(), commit + 1);  // replicated, not committed
  // The learner never campaigns, however long it hears nothing.
  net.Heal();
  net.Run(300'000);
  net.Isolate("l1");
  uint64_t term = net.raft("l1").term();
  net.Run(10'000'000);
  EXPECT_EQ(net.raft("l1").term(), term);
  EXPECT_EQ(net.raft("l1").role(), Role::kLearner);
}

TEST(RaftMembershipTest, AddPromoteRemoveOneAtATime) {
  Network net({"n1", "n2", "n3", "n4"});
  net.BootstrapAll(kThree);
  std::string leader = net.WaitForLeader();
  Raft& l = net.raft(leader);
  EXPECT_TRUE(l.ProposeMembership(net.now(), Change(Kind::kPromote, "n4")).IsInvalidArgument());
  EXPECT_TRUE(l.ProposeMembership(net.now(), Change(Kind::kRemove, "n9")).IsInvalidArgument());
  EXPECT_TRUE(l.ProposeMembership(net.now(), Change(Kind::kAddLearner, "n2")).IsInvalidArgument());
  // Cut n4 off so that it cannot catch up, then add it.
  net.Isolate("n4");
  ASSERT_TRUE(l.ProposeMembership(net.now(), Change(Kind::kAddLearner, "n4")).ok());
  EXPECT_TRUE(IsMemberOf(l.config(), "n4"));  // in effect once appended
  // One change at a time.
  EXPECT_TRUE(l.ProposeMembership(net.now(), Change(Kind::kRemove, "n3")).IsUnavailable());
  net.Process(leader);
  net.Run(300'000);
  // Not caught up: promotion refused.
  EXPECT_TRUE(l.ProposeMembership(net.now(), Change(Kind::kPromote, "n4")).IsUnavailable());
  net.Heal();
  net.Run(500'000);
  ASSERT_TRUE(l.ProposeMembership(net.now(), Change(Kind::kPromote, "n4")).ok());
  net.Process(leader);
  net.Run(500'000);
  for (const auto& id : {"n1", "n2", "n3", "n4"}) {
    EXPECT_TRUE(IsVoterIn(net.raft(id).config(), "n4")) << id;
  }
  EXPECT_EQ(net.raft("n4").role(), leader == "n4" ? Role::kLeader : Role::kFollower);
  // Four voters: quorum 3. Remove a follower; the others agree.
  std::string victim = leader == "n3" ? "n2" : "n3";
  ASSERT_TRUE(l.ProposeMembership(net.now(), Change(Kind::kRemove, victim)).ok());
  net.Process(leader);
  net.Run(500'000);
  for (const auto& id : {"n1", "n2", "n3", "n4"}) {
    if (id == victim) continue;
    EXPECT_FALSE(IsMemberOf(net.raft(id).config(), victim)) << id;
  }
  // The removed node never received its removal; its pre-votes disturb nobody.
  net.Run(10'000'000);
  EXPECT_NE(net.raft(victim).role(), Role::kCandidate);
  EXPECT_EQ(net.Leader(), leader);
  ASSERT_TRUE(net.Propose(leader, "after").ok());
  net.Run(300'000);
  for (const auto& id : {"n1", "n2", "n3", "n4"}) {
    if (id == victim) continue;
    EXPECT_EQ(net.node(id).commands.back(), "after") << id;
  }
}

TEST(RaftMembershipTest, RemovedLeaderStepsDownAfterCommittingAndHandsOver) {
  Network net(kThree);
  net.BootstrapAll(kThree);
  std::string leader = net.WaitForLeader();
  ASSERT_TRUE(net.raft(leader).ProposeMembership(net.now(), Change(Kind::kRemove, leader)).ok());
  net.Process(leader);
  Time removed_at = net.now();
  ASSERT_TRUE(net.RunUntil([&] {
    std::string l = net.Leader();
    return !l.empty() && l != leader;
  }));
  // TIMEOUT_NOW to the most up-to-date voter: no election timeout to wait for.
  EXPECT_LT(net.now() - removed_at, 200'000u);
  EXPECT_NE(net.raft(leader).role(), Role::kLeader);
  std::string next = net.Leader();
  EXPECT_FALSE(IsMemberOf(net.raft(next).config(), leader));
  EXPECT_EQ(net.raft(next).config().members_size(), 2);
  ASSERT_TRUE(net.Propose(next, "x").ok());
  net.Run(300'000);
  EXPECT_EQ(net.node(next).commands.back(), "x");
}

// The self-removal deadlock the simulator found (docs/simulation.md, seed 22489): voters
// {a, b}; a leads and appends C_new = {b} while b is cut off, so C_new (in effect at a once
// appended) cannot commit and check-quorum steps a down. b comes back without C_new: its
// campaign needs a's vote, which a refuses (a's log is longer). Unless a, absent from its
// own latest but uncommitted configuration, may campaign to C_new's voters, nobody can
// ever lead again.
TEST(RaftMembershipTest, LeaderThatRemovedItselfAndLostQuorumFinishesTheRemoval) {
  const std::vector<std::string> two = {"n1", "n2"};
  Network net(two);
  net.BootstrapAll(two);
  const std::string a = net.WaitForLeader();
  const std::string b = a == "n1" ? "n2" : "n1";
  net.Run(300'000);  // a commits its NOOP: it may now change the configuration
  net.Isolate(b);
  ASSERT_TRUE(net.raft(a).ProposeMembership(net.now(), Change(Kind::kRemove, a)).ok());
  net.Process(a);
  const uint64_t removal = net.raft(a).last_index();
  EXPECT_FALSE(IsMemberOf(net.raft(a).config(), a));  // in effect at a once appended
  ASSERT_TRUE(net.RunUntil([&] { return net.raft(a).role() != Role::kLeader; }, 3'000'000));
  EXPECT_LT(net.raft(a).commit_index(), removal);
  EXPECT_LT(net.raft(b).last_index(), removal);  // b never appended C_new
  EXPECT_TRUE(IsVoterIn(net.raft(b).config(), a));
  // b campaigns in vain meanwhile; a campaigns too but, not counting its own vote, cannot
  // win without b.
  EXPECT_FALSE(net.RunUntil([&] { return net.raft(a).role() == Role::kLeader; }, 3'000'000));
  net.Heal();
  const Time healed = net.now();
  // a is elected by b's vote alone (C_new's quorum), commits C_new with its NOOP and hands
  // over to b, the only voter left.
  ASSERT_TRUE(net.RunUntil([&] { return net.Leader() == b; }, 10'000'000))
      << "no leader for 10 s after the heal; a is " << RoleName(net.raft(a).role());
  EXPECT_LT(net.now() - healed, 5'000'000u);  // a few election timeouts, not forever
  EXPECT_FALSE(IsMemberOf(net.raft(b).config(), a));
  EXPECT_GE(net.raft(b).commit_index(), removal);
  EXPECT_NE(net.raft(a).role(), Role::kLeader);
  ASSERT_TRUE(net.Propose(b, "after").ok());
  net.Run(300'000);
  EXPECT_EQ(net.node(b).commands.back(), "after");
  // a knows its removal is committed: however long it hears nothing (b, leading a cluster
  // without a, sends it nothing), it never campaigns again.
  size_t campaigns = 0;
  net.filter = [&](const pb::RaftMessage& m) {
    if (m.from() == a && (m.type() == pb::PRE_VOTE || m.type() == pb::VOTE)) ++campaigns;
    return true;
  };
  const uint64_t term = net.raft(a).term();
  net.Run(10'000'000);
  EXPECT_EQ(campaigns, 0u);
  EXPECT_EQ(net.raft(a).term(), term);
  EXPECT_EQ(net.Leader(), b);
}

// The other side of the rule above. Only a leader that removes itself can hold its removal
// uncommitted (a leader drops a removed follower's progress when it appends the change, so
// that follower never receives it). Here the removal commits without it knowing: voters
// {a, b, c}, a appends C_new = {b, c}, b and c append it but their answers to a are lost,
// check-quorum steps a down and b or c is elected and commits C_new. a still sees its removal
// pending and campaigns forever (pre-votes only); the new leader and the voter that hears
// from it ignore them, so a disturbs nobody.
TEST(RaftMembershipTest, RemovedLeaderThatMissedTheCommitDisturbsNobody) {
  Network net(kThree);
  net.BootstrapAll(kThree);
  const std::string a = net.WaitForLeader();
  net.Run(300'000);
  size_t pre_votes = 0;
  bool to_a = false;  // deliver messages to a
  net.filter = [&](const pb::RaftMessage& m) {
    if (m.from() == a && m.type() == pb::PRE_VOTE) ++pre_votes;
    return to_a || m.to() != a;
  };
  ASSERT_TRUE(net.raft(a).ProposeMembership(net.now(), Change(Kind::kRemove, a)).ok());
  net.Process(a);
  const uint64_t removal = net.raft(a).last_index();
  ASSERT_TRUE(net.RunUntil([&] {
    std::string l = net.Leader();
    return !l.empty() && l != a && net.raft(l).commit_index() > removal;
  }));
  const std::string leader = net.Leader();
  EXPECT_FALSE(IsMemberOf(net.raft(leader).config(), a));
  EXPECT_LT(net.raft(a).commit_index(), removal);  // a never learns the commit
  EXPECT_NE(net.raft(a).role(), Role::kLeader);
  to_a = true;
  const uint64_t term = net.raft(leader).term();
  pre_votes = 0;
  net.Run(10'000'000);
  EXPECT_GT(pre_votes, 0u);  // the rule applies: the removal is pending in a's view
  EXPECT_EQ(net.Leader(), leader);
  for (const auto& id : kThree) EXPECT_LE(net.raft(id).term(), term) << id;
  EXPECT_EQ(net.raft(leader).term(), term);
  ASSERT_TRUE(net.Propose(leader, "after").ok());
  net.Run(300'000);
  EXPECT_EQ(net.node(leader).commands.back(), "after");
}

// Only a voter being removed campaigns outside its latest configuration: a learner added by
// an entry not yet committed (a non-voter of the configuration it replaced) never does.
TEST(RaftMembershipTest, LearnerOfAnUncommittedConfigNeverCampaigns) {
  Network net({"n1", "n2", "n3", "l1"});
  net.BootstrapAll(kThree);
  const std::string leader = net.WaitForLeader();
  net.Run(300'000);
  // The other voters are cut off: the change cannot commit, and check-quorum steps the
  // leader down, which then grants any up-to-date pre-vote.
  for (const auto& id : kThree) {
    if (id == leader) continue;
    net.Cut(leader, id);
    net.Cut(id, leader);
    net.Cut("l1", id);
    net.Cut(id, "l1");
  }
  ASSERT_TRUE(net.raft(leader).ProposeMembership(net.now(), Change(Kind::kAddLearner, "l1")).ok());
  net.Process(leader);
  const uint64_t added = net.raft(leader).last_index();
  size_t campaigns = 0;
  net.filter = [&](const pb::RaftMessage& m) {
    if (m.from() == "l1" && (m.type() == pb::PRE_VOTE || m.type() == pb::VOTE)) ++campaigns;
    return true;
  };
  ASSERT_TRUE(net.RunUntil([&] { return net.raft("l1").last_index() == added; }, 1'000'000));
  EXPECT_LT(net.raft("l1").commit_index(), added);
  EXPECT_EQ(net.raft("l1").role(), Role::kLearner);
  net.Run(10'000'000);
  EXPECT_NE(net.raft(leader).role(), Role::kLeader);
  EXPECT_EQ(campaigns, 0u);
  EXPECT_EQ(net.raft("l1").role(), Role::kLearner);
}

TEST(RaftMembershipTest, UncommittedConfigIsUndoneWhenTruncated) {
  Network net(kThree);
  net.BootstrapAll(kThree);
  std::string leader = net.WaitForLeader();
  net.Isolate(leader);
  ASSERT_TRUE(net.raft(leader).ProposeMembership(net.now(), Change(Kind::kAddLearner, "n9")).ok());
  net.Process(leader);
  EXPECT_TRUE(IsMemberOf(net.raft(leader).config(), "n9"));
  ASSERT_TRUE(net.RunUntil([&] {
    std::string l = net.Leader();
    return !l.empty() && l != leader;
  }));
  ASSERT_TRUE(net.Propose(net.Leader(), "y").ok());
  net.Heal();
  net.Run(1'000'000);
  EXPECT_FALSE(IsMemberOf(net.raft(leader).config(), "n9"));  // its entry was replaced
}

TEST(RaftMembershipTest, LeadershipTransfer) {
  Network net(kThree);
  net.BootstrapAll(kThree);
  std::string leader = net.WaitForLeader();
  std::string target = leader == "n2" ? "n3" : "n2";
  net.Run(300'000);
  EXPECT_TRUE(net.raft(leader).TransferLeadership(net.now(), leader).IsInvalidArgument());
  EXPECT_TRUE(net.raft(target).TransferLeadership(net.now(), leader).IsUnavailable());
  // The target is behind: the leader catches it up first.
  net.Isolate(target);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(net.Propose(leader, "c").ok());
  net.Heal();
  ASSERT_TRUE(net.raft(leader).TransferLeadership(net.now(), target).ok());
  EXPECT_TRUE(net.raft(leader).Propose(net.now(), "no").IsUnavailable());  // during transfer
  net.Process(leader);
  Time start = net.now();
  ASSERT_TRUE(net.RunUntil([&] { return net.Leader() == target; }, 5'000'000, 1'000));
  // Far below an election timeout: the appends lost while it was cut off are noticed at the
  // next heartbeat answer, then TIMEOUT_NOW follows the catch-up at once.
  EXPECT_LT(net.now() - start, 300'000u);
  EXPECT_EQ(net.raft(leader).role(), Role::kFollower);
  EXPECT_EQ(net.node(target).commands.size(), 10u);
}

TEST(RaftMembershipTest, TransferThatTimesOutAfterTimeoutNowStepsDown) {
  Network net(kThree);
  net.BootstrapAll(kThree);
  std::string leader = net.WaitForLeader();
  std::string target = leader == "n2" ? "n3" : "n2";
  net.Run(300'000);
  // TIMEOUT_NOW is lost.
  net.filter = [](const pb::RaftMessage& m) { return m.type() != pb::TIMEOUT_NOW; };
  ASSERT_TRUE(net.raft(leader).TransferLeadership(net.now(), target).ok());
  net.Process(leader);
  net.Deliver();
  EXPECT_FALSE(net.raft(leader).HasLeaderLease(net.now()));  // TIMEOUT_NOW is out
  net.Run(1'100'000);
  EXPECT_NE(net.raft(leader).role(), Role::kLeader);
  net.filter = nullptr;
  EXPECT_FALSE(net.WaitForLeader().empty());
}

TEST(RaftMembershipTest, CompactionAndSnapshotInstallForALaggingNode) {
  Network net(kThree);
  net.BootstrapAll(kThree);
  std::string leader = net.WaitForLeader();
  std::string lagging = leader == "n3" ? "n2" : "n3";
  net.Isolate(lagging);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(net.Propose(leader, "c" + std::to_string(i)).ok());
  net.Run(300'000);
  Raft& l = net.raft(leader);
  uint64_t applied = l.applied_index();
  EXPECT_TRUE(l.Compact(applied + 1, "x").IsInvalidArgument());
  ASSERT_TRUE(l.Compact(applied, "state@" + std::to_string(applied)).ok());
  EXPECT_TRUE(l.Compact(applied, "again").IsInvalidArgument());
  EXPECT_EQ(l.snapshot_meta().index(), applied);
  Batch b = l.TakeBatch();
  ASSERT_NE(b.compacted, nullptr);
  EXPECT_EQ(b.compacted->meta.index(), applied);
  EXPECT_EQ(b.compacted->meta.config().members_size(), 3);
  testing::PersistBatch(b, &net.node(leader).stored);
  l.Advance(b);
  EXPECT_EQ(net.node(leader).stored.snapshot.index(), applied);
  EXPECT_EQ(net.node(leader).stored.entries.size(), l.last_index() - applied);
  // More entries after the snapshot, then the lagging node returns.
  ASSERT_TRUE(net.Propose(leader, "tail").ok());
  size_t snapshots = 0;
  net.filter = [&](const pb::RaftMessage& m) {
    if (m.type() == pb::SNAPSHOT) ++snapshots;
    return true;
  };
  net.Heal();
  net.Run(1'000'000);
  EXPECT_EQ(snapshots, 1u);
  testing::TestNode& n = net.node(lagging);
  EXPECT_EQ(n.stored.snapshot.index(), applied);
  EXPECT_EQ(n.stored.snapshot_data, "state@" + std::to_string(applied));
  EXPECT_EQ(n.commands, (std::vector<std::string>{"tail"}));  // applied after the snapshot
  EXPECT_EQ(net.raft(lagging).commit_index(), l.commit_index());
  EXPECT_EQ(net.raft(lagging).snapshot_meta().config().members_size(), 3);
  // Restart from a compacted store: the snapshot is the base, the tail re-applies.
  net.Crash(lagging);
  net.Restart(lagging);
  EXPECT_EQ(net.raft(lagging).snapshot_meta().index(), applied);
  net.Run(300'000);
  EXPECT_EQ(net.node(lagging).commands, (std::vector<std::string>{"tail"}));
}

TEST(RaftMembershipTest, NewLearnerCatchesUpFromASnapshot) {
  Network net({"n1", "n2", "n3", "n4"});
  net.BootstrapAll(kThree);
  std::string leader = net.WaitForLeader();
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(net.Propose(leader, "c").ok());
  net.Run(200'000);
  Raft& l = net.raft(leader);
  ASSERT_TRUE(l.Compact(l.applied_index(), "snap").ok());
  net.Process(leader);
  ASSERT_TRUE(l.ProposeMembership(net.now(), Change(Kind::kAddLearner, "n4")).ok());
  net.Process(leader);
  net.Run(1'000'000);
  EXPECT_EQ(net.node("n4").stored.snapshot_data, "snap");
  EXPECT_EQ(net.raft("n4").commit_index(), l.commit_index());
  EXPECT_EQ(net.raft("n4").role(), Role::kLearner);
  ASSERT_TRUE(l.ProposeMembership(net.now(), Change(Kind::kPromote, "n4")).ok());
  net.Process(leader);
  net.Run(300'000);
  EXPECT_EQ(net.raft("n4").role(), Role::kFollower);
}

TEST(RaftMembershipTest, LostSnapshotIsResent) {
  Network net(kThree);
  net.BootstrapAll(kThree);
  std::string leader = net.WaitForLeader();
  std::string lagging = leader == "n3" ? "n2" : "n3";
  net.Isolate(lagging);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(net.Propose(leader, "c").ok());
  net.Run(200'000);
  ASSERT_TRUE(net.raft(leader).Compact(net.raft(leader).applied_index(), "s").ok());
  net.Process(leader);
  int dropped = 0;
  net.filter = [&](const pb::RaftMessage& m) {
    if (m.type() == pb::SNAPSHOT && dropped < 2) {
      ++dropped;
      return false;
    }
    return true;
  };
  net.Heal();
  net.Run(5'000'000);
  EXPECT_EQ(dropped, 2);
  EXPECT_EQ(net.node(lagging).stored.snapshot_data, "s");
  EXPECT_EQ(net.raft(lagging).commit_index(), net.raft(leader).commit_index());
}

}  // namespace
}  // namespace mesh::core::raft
