// Unit tests of core/join_choice (a fresh node is not captured by a peer that claims to
// lead): rules C1-C3 of the header, the normal ways a cluster forms, and the lies
// a peer that may connect can tell.
#include "core/join_choice.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace mesh::core {
namespace {

using Peers = std::map<std::string, JoinGossip>;

JoinGossip Says(const std::string& cluster, const std::string& leader, uint64_t term = 3) {
  return JoinGossip{cluster, leader, term};
}

TEST(JoinChoice, NoClusterInViewLeavesTheChoiceEmpty) {
  JoinChoice c = ChooseJoin("f", {{"a", Says("", "")}, {"b", Says("", "")}}, "");
  EXPECT_EQ(c.cluster_id, "");
  EXPECT_EQ(c.target, "");
}

TEST(JoinChoice, ALonePeerOfAClusterIsTheTarget) {
  // The normal formation: the lowest id bootstrapped alone; the others see it, and each
  // other still fresh.
  JoinChoice c = ChooseJoin("n2", {{"n1", Says("C", "n1")}, {"n3", Says("", "")}}, "");
  EXPECT_EQ(c.cluster_id, "C");
  EXPECT_EQ(c.target, "n1");
  EXPECT_EQ(c.leader, "");
  // Also when the lone peer names no leader (an election) or another one.
  EXPECT_EQ(ChooseJoin("n2", {{"n1", Says("C", "")}}, "").target, "n1");
}

TEST(JoinChoice, TheLeaderNamedByOthersIsTheTargetAndItsOwnClaimCountsForNothing) {
  // n1 leads; n2 and n3 follow it. The rogue r claims to lead in a far higher term, and its
  // id sorts after every member's.
  Peers peers = {{"n1", Says("C", "n1", 4)},
                 {"n2", Says("C", "n1", 4)},
                 {"n3", Says("C", "n1", 4)},
                 {"r", Says("C", "r", 1000)}};
  JoinChoice c = ChooseJoin("f", peers, "");
  EXPECT_EQ(c.cluster_id, "C");
  EXPECT_EQ(c.target, "n1");
  EXPECT_EQ(c.leader, "n1");
  EXPECT_NE(c.reason.find("by 2 of the 2 other peer(s)"), std::string::npos) << c.reason;
}

TEST(JoinChoice, ALeaderOutOfViewIsAskedThroughThePeerThatNamesIt) {
  Peers peers = {{"n3", Says("C", "n1")}, {"n2", Says("C", "n1")}, {"r", Says("C", "r")}};
  JoinChoice c = ChooseJoin("f", peers, "");
  EXPECT_EQ(c.leader, "n1");
  EXPECT_EQ(c.target, "n2") << "the lowest id of those that name it";
}

TEST(JoinChoice, TwoSelfClaimsWithNobodyToConfirmEitherWait) {
  // A cluster of one (n1) and a rogue claiming to lead it: nobody can tell them apart, so
  // the node joins neither (a wrong guess would hand it a forged log).
  Peers peers = {{"n1", Says("C", "n1")}, {"r", Says("C", "r", 50)}};
  JoinChoice c = ChooseJoin("f", peers, "");
  EXPECT_EQ(c.cluster_id, "C");
  EXPECT_EQ(c.target, "");
  EXPECT_NE(c.reason.find("none is named leader by another"), std::string::npos) << c.reason;
  // Also during the real cluster's election (its peers name nobody) with the rogue claiming.
  peers = {{"n1", Says("C", "")}, {"n2", Says("C", "")}, {"r", Says("C", "r")}};
  EXPECT_EQ(ChooseJoin("f", peers, "").target, "");
}

TEST(JoinChoice, ALeaderNamedByHalfTheOtherPeersOrFewerWaits) {
  // The real cluster holds an election (its peers name nobody); the rogue r names its
  // accomplice rb, which claims to lead: rb is named by 1 of the 3 others. Counting only
  // namings, rb would win 1 to 0 and feed this node its log.
  Peers peers = {{"n1", Says("C", "")},
                 {"n2", Says("C", "")},
                 {"r", Says("C", "rb", 90)},
                 {"rb", Says("C", "rb", 90)}};
  JoinChoice c = ChooseJoin("f", peers, "");
  EXPECT_EQ(c.target, "");
  EXPECT_NE(c.reason.find("by 1 of the 3 other peer(s)"), std::string::npos) << c.reason;
  // n2 is elected: named by n1 against r (rb's claim about itself is weighed neither way),
  // 1 of 2, then by n3 too, 2 of 3.
  peers["n1"] = Says("C", "n2", 5);
  peers["n2"] = Says("C", "n2", 5);
  EXPECT_EQ(ChooseJoin("f", peers, "").target, "");
  peers["n3"] = Says("C", "n2", 5);
  c = ChooseJoin("f", peers, "");
  EXPECT_EQ(c.target, "n2") << c.reason;
  EXPECT_NE(c.reason.find("by 2 of the 3 other peer(s)"), std::string::npos) << c.reason;
  // Two peers naming each other, nobody else in view: each passes; neither is chosen.
  EXPECT_EQ(ChooseJoin("f", {{"a", Says("C", "b")}, {"b", Says("C", "a")}}, "").target, "");
}

TEST(JoinChoice, ALeadershipThatJustMovedIsFollowedThroughAPeerThatNamesIt) {
  // The leadership moved from n1 to n2 (out of view): n1 names n2, n3 still names n1. n1
  // is named by 1 of its 1 other peer: asked, it forwards the request to n2, and its
  // gossip vouches for n2 (R3a). One gossip round later n3 names n2 as well.
  Peers peers = {{"n1", Says("C", "n2", 5)}, {"n3", Says("C", "n1", 4)}};
  JoinChoice c = ChooseJoin("f", peers, "");
  EXPECT_EQ(c.leader, "n1");
  EXPECT_EQ(c.target, "n1");
  peers["n3"] = Says("C", "n2", 5);
  c = ChooseJoin("f", peers, "");
  EXPECT_EQ(c.leader, "n2");
  EXPECT_EQ(c.target, "n1") << "n2 is not in view: the lowest id of those that name it";
}

TEST(JoinChoice, APeerNamingThisNodeOrAnotherClustersPeersAreIgnored) {
  // A peer naming the fresh node itself as leader is talking nonsense; peers of another
  // cluster do not vouch for this one's leader.
  Peers peers = {{"n1", Says("C", "n1")},
                 {"r", Says("C", "f")},
                 {"x1", Says("D", "n1")},
                 {"x2", Says("D", "x1")}};
  // C and D have two peers each: a tie, no choice.
  EXPECT_EQ(ChooseJoin("f", peers, "").target, "");
  // Chosen before, C is kept; in C nobody names anyone but f: two peers, so wait.
  JoinChoice c = ChooseJoin("f", peers, "C");
  EXPECT_EQ(c.cluster_id, "C");
  EXPECT_EQ(c.target, "");
}

TEST(JoinChoice, TheClusterWithMostPeersInViewIsChosenAndThenKept) {
  Peers peers = {{"n1", Says("C", "n1")}, {"n2", Says("C", "n1")}, {"r", Says("D", "r")}};
  JoinChoice c = ChooseJoin("f", peers, "");
  EXPECT_EQ(c.cluster_id, "C");
  EXPECT_EQ(c.target, "n1");
  // Two more of D come into view: the choice made stays while C is in view.
  peers["r2"] = Says("D", "r");
  peers["r3"] = Says("D", "r");
  EXPECT_EQ(ChooseJoin("f", peers, "C").cluster_id, "C");
  // Without the earlier choice, D has the most peers.
  EXPECT_EQ(ChooseJoin("f", peers, "").cluster_id, "D");
  // C out of view: D.
  peers.erase("n1");
  peers.erase("n2");
  EXPECT_EQ(ChooseJoin("f", peers, "C").cluster_id, "D");
}

TEST(JoinChoice, ATieBetweenClustersWaitsAndSaysWhy) {
  Peers peers = {{"n1", Says("C", "n1")}, {"r", Says("D", "r")}};
  JoinChoice c = ChooseJoin("f", peers, "");
  EXPECT_EQ(c.cluster_id, "");
  EXPECT_EQ(c.target, "");
  EXPECT_NE(c.reason.find("2 clusters of this name"), std::string::npos) << c.reason;
}

TEST(JoinChoice, ThisNodesOwnEntryIsIgnored) {
  Peers peers = {{"f", Says("C", "f")}, {"n1", Says("C", "n1")}};
  JoinChoice c = ChooseJoin("f", peers, "");
  EXPECT_EQ(c.target, "n1");
}

}  // namespace
}  // namespace mesh::core
