// Unit tests of core/formation_plan: a fresh node listens before it decides (F1), never
// bootstraps beside a cluster in view and paces its join requests (F2), bootstraps only with
// --expect fresh nodes in view and the lowest id (F3); a removed node asks the leader or a
// member again (F4); a leaving leader hands over to the most up-to-date connected voter (F5)
// and is done when F6 says.
#include "core/formation_plan.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace mesh::core {
namespace {

using Gossip = std::map<std::string, JoinGossip>;

JoinGossip Fresh() { return JoinGossip{"", "", 0}; }
JoinGossip Of(const std::string& cluster, const std::string& leader) {
  return JoinGossip{cluster, leader, 2};
}

// A view 5 s after a start at 1 s, the wait over, no join sent yet.
FormationView ViewOf(const std::string& self, int expect, const Gossip* peers) {
  FormationView v;
  v.self_id = self;
  v.expect = expect;
  v.start_ms = 1000;
  v.now_ms = 6000;
  v.formation_wait_ms = 1000;
  v.peers = peers;
  return v;
}

TEST(FormationPlan, NothingIsDecidedDuringTheFormationWait) {
  Gossip peers = {{"b", Fresh()}};
  FormationView v = ViewOf("a", 1, &peers);
  v.now_ms = v.start_ms + v.formation_wait_ms - 1;
  EXPECT_EQ(PlanFormation(v).kind, FormationStep::Kind::kListen);
  // Not even with a cluster in view.
  Gossip cluster = {{"b", Of("C", "b")}};
  v.peers = &cluster;
  EXPECT_EQ(PlanFormation(v).kind, FormationStep::Kind::kListen);
  v.now_ms = v.start_ms + v.formation_wait_ms;
  EXPECT_EQ(PlanFormation(v).kind, FormationStep::Kind::kJoin);
}

TEST(FormationPlan, ALoneNodeExpectingOneBootstraps) {
  Gossip none;
  FormationStep s = PlanFormation(ViewOf("a", 1, &none));
  EXPECT_EQ(s.kind, FormationStep::Kind::kBootstrap);
  EXPECT_EQ(s.fresh_peers, 0u);
  // A null peer map is an empty one.
  EXPECT_EQ(PlanFormation(ViewOf("a", 1, nullptr)).kind, FormationStep::Kind::kBootstrap);
}

TEST(FormationPlan, BootstrapWaitsForExpectMinusOneFreshPeers) {
  Gossip one = {{"b", Fresh()}};
  FormationStep s = PlanFormation(ViewOf("a", 3, &one));
  EXPECT_EQ(s.kind, FormationStep::Kind::kWait);
  EXPECT_EQ(s.fresh_peers, 1u);
  EXPECT_NE(s.why.find("2 of the 3"), std::string::npos) << s.why;
  Gossip two = {{"b", Fresh()}, {"c", Fresh()}};
  s = PlanFormation(ViewOf("a", 3, &two));
  EXPECT_EQ(s.kind, FormationStep::Kind::kBootstrap);
  EXPECT_EQ(s.fresh_peers, 2u);
}

TEST(FormationPlan, OnlyTheLowestIdBootstraps) {
  Gossip peers = {{"a", Fresh()}, {"c", Fresh()}};
  FormationStep s = PlanFormation(ViewOf("b", 3, &peers));
  EXPECT_EQ(s.kind, FormationStep::Kind::kWait);
  EXPECT_NE(s.why.find("'a' has a lower id"), std::string::npos) << s.why;
  Gossip others = {{"b", Fresh()}, {"c", Fresh()}};
  EXPECT_EQ(PlanFormation(ViewOf("a", 3, &others)).kind, FormationStep::Kind::kBootstrap);
  // A lower id waits even when it alone is enough for --expect.
  Gossip lower = {{"a", Fresh()}};
  EXPECT_EQ(PlanFormation(ViewOf("b", 1, &lower)).kind, FormationStep::Kind::kWait);
}

TEST(FormationPlan, ThisNodesOwnEntryCountsForNothing) {
  Gossip peers = {{"a", Fresh()}};
  FormationStep s = PlanFormation(ViewOf("a", 2, &peers));
  EXPECT_EQ(s.kind, FormationStep::Kind::kWait);
  EXPECT_EQ(s.fresh_peers, 0u);
}

TEST(FormationPlan, NeverBootstrapsBesideAClusterInView) {
  // Lowest id, --expect met by fresh peers, but one peer belongs to a cluster: join it.
  Gossip peers = {{"b", Fresh()}, {"c", Of("C", "c")}};
  FormationStep s = PlanFormation(ViewOf("a", 2, &peers));
  EXPECT_EQ(s.kind, FormationStep::Kind::kJoin);
  EXPECT_EQ(s.choice.cluster_id, "C");
  EXPECT_EQ(s.choice.target, "c");
  EXPECT_TRUE(s.send_join);
}

TEST(FormationPlan, ATieBetweenClustersWaitsWithoutBootstrapping) {
  Gossip peers = {{"b", Of("C1", "b")}, {"c", Of("C2", "c")}};
  FormationStep s = PlanFormation(ViewOf("a", 1, &peers));
  EXPECT_EQ(s.kind, FormationStep::Kind::kJoin);
  EXPECT_EQ(s.choice.cluster_id, "");
  EXPECT_EQ(s.choice.target, "");
  EXPECT_FALSE(s.send_join);
  EXPECT_FALSE(s.choice.reason.empty());
}

TEST(FormationPlan, NoTargetMeansNoJoinRequest) {
  // Two peers of C and nobody named leader by another (C3): wait.
  Gossip peers = {{"b", Of("C", "")}, {"c", Of("C", "")}};
  FormationStep s = PlanFormation(ViewOf("a", 1, &peers));
  EXPECT_EQ(s.kind, FormationStep::Kind::kJoin);
  EXPECT_EQ(s.choice.cluster_id, "C");
  EXPECT_EQ(s.choice.target, "");
  EXPECT_FALSE(s.send_join);
}

TEST(FormationPlan, JoinRequestsArePacedByTheJoinInterval) {
  Gossip peers = {{"b", Of("C", "b")}};
  FormationView v = ViewOf("a", 1, &peers);
  v.last_join_ms = v.now_ms - kJoinIntervalMs + 1;
  FormationStep s = PlanFormation(v);
  EXPECT_EQ(s.kind, FormationStep::Kind::kJoin);
  EXPECT_EQ(s.choice.target, "b") << "the target is still trusted between requests";
  EXPECT_FALSE(s.send_join);
  v.last_join_ms = v.now_ms - kJoinIntervalMs;
  EXPECT_TRUE(PlanFormation(v).send_join);
}

TEST(FormationPlan, TheClusterChosenBeforeIsKept) {
  // C2 has more peers in view, but C1 was chosen at the last tick and is still in view.
  Gossip peers = {{"b", Of("C1", "b")}, {"c", Of("C2", "d")}, {"d", Of("C2", "d")}};
  FormationView v = ViewOf("a", 1, &peers);
  v.joining_cluster_id = "C1";
  EXPECT_EQ(PlanFormation(v).choice.cluster_id, "C1");
  v.joining_cluster_id = "";
  EXPECT_EQ(PlanFormation(v).choice.cluster_id, "C2");
}

TEST(FormationPlan, JoinDueCountsFromTheLastRequest) {
  EXPECT_TRUE(JoinDue(kJoinIntervalMs, 0));
  EXPECT_FALSE(JoinDue(5000, 5000 - kJoinIntervalMs + 1));
  EXPECT_TRUE(JoinDue(5000, 5000 - kJoinIntervalMs));
}

TEST(FormationPlan, ARemovedNodeAsksTheConnectedLeader) {
  std::map<std::string, RejoinPeer> peers = {{"b", {"C", true}}, {"c", {"C", true}}};
  EXPECT_EQ(RejoinTarget("b", true, peers, "C"), "b");
}

TEST(FormationPlan, WithoutAConnectedLeaderTheHighestIdMemberOfOurClusterIsAsked) {
  std::map<std::string, RejoinPeer> peers = {{"b", {"C", true}},
                                             {"c", {"C", true}},
                                             {"d", {"C", false}},
                                             {"e", {"X", true}},
                                             {"f", {"", false}}};
  EXPECT_EQ(RejoinTarget("b", false, peers, "C"), "c");
  EXPECT_EQ(RejoinTarget("", true, peers, "C"), "c") << "no leader known";
  EXPECT_EQ(RejoinTarget("", false, {{"d", {"C", false}}, {"e", {"X", true}}}, "C"), "");
}

TEST(FormationPlan, TheLeaderHandsOverToTheMostUpToDateConnectedVoter) {
  std::vector<HandOverCandidate> f = {{"b", true, true, 10},
                                      {"c", true, true, 12},
                                      {"d", true, false, 20},   // not connected
                                      {"e", false, true, 30}};  // a learner
  EXPECT_EQ(ChooseHandOver(f), "c");
  // A tie: the first in Raft's order.
  EXPECT_EQ(ChooseHandOver({{"c", true, true, 7}, {"b", true, true, 7}}), "c");
  EXPECT_EQ(ChooseHandOver({{"d", true, false, 20}, {"e", false, true, 30}}), "");
  // A connected voter at match 0 is still a target.
  EXPECT_EQ(ChooseHandOver({{"b", true, true, 0}}), "b");
}

TEST(FormationPlan, LeavingIsDoneWhenAppliedAndHandedOverOrAtTheDeadline) {
  EXPECT_TRUE(LeaveComplete(false, 3, 0, 100, 200));
  EXPECT_FALSE(LeaveComplete(false, 3, 1, 100, 200)) << "a proposal not applied yet";
  EXPECT_FALSE(LeaveComplete(true, 3, 0, 100, 200)) << "still the leader";
  EXPECT_TRUE(LeaveComplete(true, 1, 0, 100, 200)) << "a leader alone has nobody to hand to";
  EXPECT_TRUE(LeaveComplete(true, 3, 5, 200, 200)) << "the deadline";
}

}  // namespace
}  // namespace mesh::core
