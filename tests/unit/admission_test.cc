// Unit tests of core/admission (members-only Raft): every rule R1-R7 of the
// header, the liveness cases (a fresh joiner, a lagging follower, a new leader, a node
// removed and re-added, a leader that removed us) and the refusal rate limit.
#include "core/admission.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

namespace mesh::core {
namespace {

pb::ClusterConfig Config(std::initializer_list<const char*> ids) {
  pb::ClusterConfig c;
  c.set_cluster_id("c0ffee");
  for (const char* id : ids) {
    pb::Member* m = c.add_members();
    m->set_id(id);
    m->set_voter(true);
  }
  return c;
}

pb::RaftMessage Msg(pb::RaftMessageType type, const std::string& from, uint64_t term,
                    const std::string& to = "n1") {
  pb::RaftMessage m;
  m.set_type(type);
  m.set_from(from);
  m.set_to(to);
  m.set_term(term);
  return m;
}

std::string Encode(const pb::Command& c) {
  std::string s;
  c.SerializeToString(&s);
  return s;
}

pb::RaftMessage Propose(const std::string& from, const pb::Command& c) {
  pb::RaftMessage m = Msg(pb::PROPOSE, from, 0);
  pb::Entry* e = m.add_entries();
  e->set_type(pb::ENTRY_COMMAND);
  e->set_data(Encode(c));
  return m;
}

pb::Command Acquire(const std::string& node) {
  pb::Command c;
  c.mutable_acquire()->mutable_session()->set_node_id(node);
  c.mutable_acquire()->mutable_session()->set_client_id(7);
  c.mutable_acquire()->set_resource("X");
  return c;
}

pb::Command Expire(const std::string& node) {
  pb::Command c;
  c.mutable_expire_node()->set_node_id(node);
  return c;
}

class AdmissionTest : public ::testing::Test {
 protected:
  AdmissionView View() {
    AdmissionView v;
    v.self_id = "n1";
    v.config = &config_;
    v.leader = leader_;
    v.leader_id = leader_id_;
    v.join_targets = &join_targets_;
    v.gossip = &gossip_;
    v.term = term_;
    return v;
  }

  pb::ClusterConfig config_ = Config({"n1", "n2", "n3"});
  bool leader_ = false;
  uint64_t term_ = 0;
  std::string leader_id_ = "n2";
  std::set<std::string> join_targets_;
  std::map<std::string, GossipClaim> gossip_;
};

// R1: `from` must be the link's authenticated id, member or not.
TEST_F(AdmissionTest, FromMustBeTheLink) {
  Admission a = AdmitRaft(View(), "n3", Msg(pb::APPEND, "n2", 5));
  EXPECT_FALSE(a.accepted);
  EXPECT_EQ(a.rule, "from-mismatch");
  EXPECT_NE(a.detail.find("n2"), std::string::npos);
  EXPECT_FALSE(AdmitRaft(View(), "evil", Msg(pb::HEARTBEAT, "n2", 50)).accepted);
  EXPECT_TRUE(AdmitRaft(View(), "n2", Msg(pb::APPEND, "n2", 5)).accepted);
}

// R2: every message type from a member is stepped.
TEST_F(AdmissionTest, MembersAreStepped) {
  for (int t = pb::APPEND; t <= pb::TIMEOUT_NOW; ++t) {
    if (t == pb::PROPOSE) continue;
    auto type = static_cast<pb::RaftMessageType>(t);
    EXPECT_TRUE(AdmitRaft(View(), "n3", Msg(type, "n3", 5)).accepted) << t;
  }
}

// R3: a non-member's Raft traffic is refused: a rogue's HEARTBEAT in term 50, a forged
// APPEND, votes, responses, proposals.
TEST_F(AdmissionTest, NonMembersAreRefused) {
  for (int t = pb::APPEND; t <= pb::TIMEOUT_NOW; ++t) {
    auto type = static_cast<pb::RaftMessageType>(t);
    Admission a = AdmitRaft(View(), "evil", Msg(type, "evil", 50));
    EXPECT_FALSE(a.accepted) << t;
    EXPECT_EQ(a.rule, "not-a-member") << t;
    EXPECT_FALSE(a.what.empty()) << t;
    EXPECT_NE(a.detail.find("evil"), std::string::npos);
  }
  EXPECT_FALSE(AdmitRaft(View(), "evil", Propose("evil", Acquire("evil"))).accepted);
}

// A learner is in the configuration, but membership is automatic (any peer that may get a
// link and asks is added as one, docs/mesh.md "Who may speak"): a rogue that sends a
// JoinRequest first must not then lead (HEARTBEAT in term 50, forged APPENDs), campaign,
// push the term up with responses, or vouch for another rogue. A learner that was promoted
// and elected since our configuration was appended is taken when a voter vouches for it.
TEST_F(AdmissionTest, LearnersNeitherLeadNorVouch) {
  pb::Member* m = config_.add_members();
  m->set_id("evil");
  m->set_voter(false);
  m = config_.add_members();
  m->set_id("evil2");
  m->set_voter(false);
  term_ = 5;
  for (auto type : {pb::APPEND, pb::HEARTBEAT, pb::SNAPSHOT, pb::VOTE, pb::PRE_VOTE,
                    pb::TIMEOUT_NOW, pb::VOTE_RESPONSE, pb::PRE_VOTE_RESPONSE}) {
    EXPECT_FALSE(AdmitRaft(View(), "evil", Msg(type, "evil", 50)).accepted) << type;
    EXPECT_FALSE(AdmitRaft(View(), "evil", Msg(type, "evil", 5)).accepted) << type;
  }
  // What a learner sends: answers to its leader (not in a term above ours), own proposals.
  EXPECT_TRUE(AdmitRaft(View(), "evil", Msg(pb::APPEND_RESPONSE, "evil", 5)).accepted);
  EXPECT_TRUE(AdmitRaft(View(), "evil", Msg(pb::HEARTBEAT_RESPONSE, "evil", 5)).accepted);
  EXPECT_FALSE(AdmitRaft(View(), "evil", Msg(pb::APPEND_RESPONSE, "evil", 50)).accepted);
  EXPECT_FALSE(AdmitRaft(View(), "evil", Msg(pb::HEARTBEAT_RESPONSE, "evil", 50)).accepted);
  EXPECT_TRUE(AdmitRaft(View(), "evil", Propose("evil", Acquire("evil"))).accepted);
  // One learner's gossip vouches for no other learner, nor for a non-member.
  gossip_["evil2"] = {"evil", 50};
  EXPECT_FALSE(AdmitRaft(View(), "evil", Msg(pb::HEARTBEAT, "evil", 50)).accepted);
  gossip_["evil2"] = {"evil3", 50};
  EXPECT_FALSE(AdmitRaft(View(), "evil3", Msg(pb::APPEND, "evil3", 50)).accepted);
  pb::KeepaliveAck ack;
  ack.set_node_id("n1");
  ack.set_leader_id("evil3");
  leader_id_ = "evil3";
  EXPECT_FALSE(AdmitKeepaliveAck(View(), "evil3", ack).accepted);
  // A voter's gossip does vouch: the learner was promoted and elected (we lag).
  gossip_["n3"] = {"evil", 6};
  EXPECT_TRUE(AdmitRaft(View(), "evil", Msg(pb::APPEND, "evil", 6)).accepted);
  EXPECT_TRUE(AdmitRaft(View(), "evil", Msg(pb::HEARTBEAT, "evil", 6)).accepted);
  EXPECT_FALSE(AdmitRaft(View(), "evil", Msg(pb::VOTE, "evil", 6)).accepted);
}

// The gossip of a non-member (a rogue naming itself leader) vouches for nothing, nor does
// the sender's own gossip.
TEST_F(AdmissionTest, NonMembersCannotVouch) {
  gossip_["evil"] = {"evil", 50};
  gossip_["evil2"] = {"evil", 50};
  EXPECT_FALSE(AdmitRaft(View(), "evil", Msg(pb::HEARTBEAT, "evil", 50)).accepted);
  EXPECT_FALSE(AdmitRaft(View(), "evil", Msg(pb::APPEND, "evil", 50)).accepted);
}

// R3b: a follower whose configuration lags accepts leader traffic from a new leader that a
// member vouches for, in a term >= the message's; not in a later term, not votes.
TEST_F(AdmissionTest, LaggingFollowerAcceptsAVouchedLeader) {
  gossip_["n2"] = {"n4", 7};  // n4 was added and elected after our last config entry
  for (auto type : {pb::APPEND, pb::HEARTBEAT, pb::SNAPSHOT}) {
    EXPECT_TRUE(AdmitRaft(View(), "n4", Msg(type, "n4", 7)).accepted) << type;
    EXPECT_TRUE(AdmitRaft(View(), "n4", Msg(type, "n4", 6)).accepted) << type;
    EXPECT_FALSE(AdmitRaft(View(), "n4", Msg(type, "n4", 8)).accepted) << type;
  }
  EXPECT_FALSE(AdmitRaft(View(), "n4", Msg(pb::VOTE, "n4", 7)).accepted);
  EXPECT_FALSE(AdmitRaft(View(), "n4", Msg(pb::PRE_VOTE, "n4", 8)).accepted);
  EXPECT_FALSE(AdmitRaft(View(), "n4", Msg(pb::APPEND_RESPONSE, "n4", 7)).accepted);
  EXPECT_FALSE(AdmitRaft(View(), "n4", Propose("n4", Acquire("n4"))).accepted);
  EXPECT_FALSE(AdmitRaft(View(), "n4", Msg(pb::TIMEOUT_NOW, "n4", 7)).accepted);
  // A member naming another leader vouches for nobody else.
  EXPECT_FALSE(AdmitRaft(View(), "n5", Msg(pb::APPEND, "n5", 7)).accepted);
}

// New voter elected leader, seen from a node that already has its configuration: R2.
TEST_F(AdmissionTest, NewVoterLeaderInOurConfiguration) {
  config_ = Config({"n1", "n2", "n3", "n4"});
  EXPECT_TRUE(AdmitRaft(View(), "n4", Msg(pb::APPEND, "n4", 9)).accepted);
  EXPECT_TRUE(AdmitRaft(View(), "n4", Msg(pb::VOTE, "n4", 9)).accepted);
}

// A node removed (its latest configuration no longer holds it) keeps hearing the leader
// that removed it — a member of that configuration — and is re-added through it.
TEST_F(AdmissionTest, RemovedNodeFollowsTheLeaderThatRemovedIt) {
  config_ = Config({"n2", "n3"});  // n1 (us) removed by n2
  leader_id_ = "n2";
  EXPECT_TRUE(AdmitRaft(View(), "n2", Msg(pb::APPEND, "n2", 4)).accepted);
  EXPECT_TRUE(AdmitRaft(View(), "n2", Msg(pb::HEARTBEAT, "n2", 4)).accepted);
  // Its JoinRequest to rejoin goes out; a forwarded one from a voter is taken.
  pb::JoinRequest j;
  j.set_node_id("n5");
  EXPECT_TRUE(AdmitJoinRequest(View(), "n2", j).accepted);
  // It still refuses a non-member.
  EXPECT_FALSE(AdmitRaft(View(), "evil", Msg(pb::APPEND, "evil", 4)).accepted);
}

// An uncommitted removal of L that L's election overwrites: the members that elected L vouch.
TEST_F(AdmissionTest, LeaderWhoseRemovalWasOverwritten) {
  config_ = Config({"n1", "n3"});  // appended "remove n2", never committed
  gossip_["n3"] = {"n2", 12};
  EXPECT_TRUE(AdmitRaft(View(), "n2", Msg(pb::APPEND, "n2", 12)).accepted);
}

// R3a: a fresh node accepts leader traffic from the peer it asked to join and from the
// leader that peer names; from nobody else, and nothing but leader traffic.
TEST_F(AdmissionTest, FreshNodeAcceptsOnlyTheClusterItJoins) {
  config_.Clear();
  join_targets_ = {"n2"};
  gossip_["n2"] = {"n3", 5};
  gossip_["evil"] = {"evil", 50};
  EXPECT_TRUE(AdmitRaft(View(), "n2", Msg(pb::APPEND, "n2", 5)).accepted);
  EXPECT_TRUE(AdmitRaft(View(), "n3", Msg(pb::APPEND, "n3", 5)).accepted);
  EXPECT_TRUE(AdmitRaft(View(), "n3", Msg(pb::SNAPSHOT, "n3", 5)).accepted);
  EXPECT_TRUE(AdmitRaft(View(), "n3", Msg(pb::HEARTBEAT, "n3", 4)).accepted);
  EXPECT_FALSE(AdmitRaft(View(), "n3", Msg(pb::HEARTBEAT, "n3", 6)).accepted);
  EXPECT_FALSE(AdmitRaft(View(), "n3", Msg(pb::VOTE, "n3", 5)).accepted);
  EXPECT_FALSE(AdmitRaft(View(), "n2", Msg(pb::VOTE, "n2", 5)).accepted);
  Admission a = AdmitRaft(View(), "evil", Msg(pb::HEARTBEAT, "evil", 50));
  EXPECT_FALSE(a.accepted);
  EXPECT_EQ(a.rule, "not-a-member");
  // Without a join target nothing is taken; a null view is a fresh node with no targets.
  join_targets_.clear();
  EXPECT_FALSE(AdmitRaft(View(), "n3", Msg(pb::APPEND, "n3", 5)).accepted);
  AdmissionView empty;
  empty.self_id = "n1";
  EXPECT_FALSE(AdmitRaft(empty, "n3", Msg(pb::APPEND, "n3", 5)).accepted);
}

// R4: PROPOSE from a member, only for its own sessions.
TEST_F(AdmissionTest, ProposalsOnlyForTheProposersOwnSessions) {
  EXPECT_TRUE(AdmitRaft(View(), "n2", Propose("n2", Acquire("n2"))).accepted);
  Admission a = AdmitRaft(View(), "n2", Propose("n2", Acquire("n3")));
  EXPECT_FALSE(a.accepted);
  EXPECT_EQ(a.rule, "propose-foreign-session");
  pb::Command c;
  c.mutable_open_session()->mutable_session()->set_node_id("n3");
  EXPECT_FALSE(AdmitCommand("n2", c).accepted);
  c.mutable_open_session()->mutable_session()->set_node_id("n2");
  EXPECT_TRUE(AdmitCommand("n2", c).accepted);
  c.Clear();
  c.mutable_release()->mutable_session()->set_node_id("n3");
  EXPECT_FALSE(AdmitCommand("n2", c).accepted);
  c.mutable_release()->mutable_session()->set_node_id("n2");
  EXPECT_TRUE(AdmitCommand("n2", c).accepted);
  c.Clear();
  c.mutable_cancel()->mutable_session()->set_node_id("n3");
  EXPECT_FALSE(AdmitCommand("n2", c).accepted);
  c.mutable_cancel()->mutable_session()->set_node_id("n2");
  EXPECT_TRUE(AdmitCommand("n2", c).accepted);
  c.Clear();
  c.mutable_close_session()->mutable_session()->set_node_id("n3");
  EXPECT_FALSE(AdmitCommand("n2", c).accepted);
  c.mutable_close_session()->mutable_session()->set_node_id("n2");
  EXPECT_TRUE(AdmitCommand("n2", c).accepted);
}

// R4: ExpireNode never comes from a peer (a rogue's PROPOSE of ExpireNode n2), not
// even of the proposer itself: a restarted node ends its earlier runs with ClaimClientIds.
TEST_F(AdmissionTest, ExpireNodeNeverFromAPeer) {
  Admission a = AdmitRaft(View(), "n3", Propose("n3", Expire("n2")));
  EXPECT_FALSE(a.accepted);
  EXPECT_EQ(a.rule, "propose-expire-node");
  EXPECT_FALSE(AdmitRaft(View(), "n3", Propose("n3", Expire("n3"))).accepted);
  EXPECT_FALSE(AdmitRaft(View(), "evil", Propose("evil", Expire("n2"))).accepted);
  EXPECT_FALSE(AdmitRaft(View(), "evil", Propose("evil", Expire("evil"))).accepted);
}

// R4: the allow-list refuses unknown kinds, empty bodies, garbage, non-command entries; one
// bad entry refuses the whole message.
TEST_F(AdmissionTest, ProposalAllowList) {
  pb::Command empty;
  EXPECT_EQ(AdmitCommand("n2", empty).rule, "propose-unknown-command");
  pb::RaftMessage m = Propose("n2", Acquire("n2"));
  m.add_entries()->set_type(pb::ENTRY_CONFIG);
  EXPECT_EQ(AdmitRaft(View(), "n2", m).rule, "propose-not-command");
  m = Propose("n2", Acquire("n2"));
  pb::Entry* e = m.add_entries();
  e->set_type(pb::ENTRY_COMMAND);
  e->set_data("\xff\xff\xff\xff");
  EXPECT_EQ(AdmitRaft(View(), "n2", m).rule, "propose-unparsable");
  m = Propose("n2", Acquire("n2"));
  e = m.add_entries();
  e->set_type(pb::ENTRY_COMMAND);
  e->set_data(Encode(Expire("n1")));
  EXPECT_EQ(AdmitRaft(View(), "n2", m).rule, "propose-expire-node");
  // An entry whose bytes carry a field number pb::Command does not know parses as an empty
  // body: refused.
  m = Propose("n2", Acquire("n2"));
  e = m.add_entries();
  e->set_type(pb::ENTRY_COMMAND);
  e->set_data(std::string("\xba\x06\x00", 3));  // field 103, length 0
  EXPECT_EQ(AdmitRaft(View(), "n2", m).rule, "propose-unknown-command");
}

// R5: a non-member may ask to join for itself only.
TEST_F(AdmissionTest, JoinRequests) {
  pb::JoinRequest j;
  j.set_node_id("evil");
  EXPECT_TRUE(AdmitJoinRequest(View(), "evil", j).accepted);
  j.set_node_id("n9");
  Admission a = AdmitJoinRequest(View(), "evil", j);
  EXPECT_FALSE(a.accepted);
  EXPECT_EQ(a.rule, "join-for-another");
  EXPECT_TRUE(AdmitJoinRequest(View(), "n3", j).accepted);  // forwarded by a voter
}

// R5: a learner (membership is automatic: anyone who asked) may not ask for other ids, or a
// rogue learner would fill the configuration with made-up learners. For itself it may.
TEST_F(AdmissionTest, LearnersDoNotForwardJoinRequests) {
  pb::Member* learner = config_.add_members();
  learner->set_id("rogue");
  learner->set_voter(false);
  pb::JoinRequest j;
  j.set_node_id("fake-1");
  Admission a = AdmitJoinRequest(View(), "rogue", j);
  EXPECT_FALSE(a.accepted);
  EXPECT_EQ(a.rule, "join-forward-from-learner");
  EXPECT_EQ(a.what, "JoinRequest");
  j.set_node_id("rogue");
  EXPECT_TRUE(AdmitJoinRequest(View(), "rogue", j).accepted);
  j.set_node_id("fake-2");
  EXPECT_TRUE(AdmitJoinRequest(View(), "n2", j).accepted);  // a voter forwards
  EXPECT_TRUE(IsVoterOf(&config_, "n2"));
  EXPECT_FALSE(IsVoterOf(&config_, "rogue"));
  EXPECT_FALSE(IsVoterOf(nullptr, "n2"));
}

// R6: keepalives only for the link's own id.
TEST_F(AdmissionTest, KeepalivesOnlyForTheSender) {
  pb::Keepalive k;
  k.set_node_id("n2");
  EXPECT_TRUE(AdmitKeepalive("n2", k).accepted);
  EXPECT_EQ(AdmitKeepalive("evil", k).rule, "keepalive-for-another");
  k.set_node_id("evil");
  EXPECT_TRUE(AdmitKeepalive("evil", k).accepted);
}

// R7: an ack extends our lease only from the current leader's own link.
TEST_F(AdmissionTest, AcksOnlyFromTheLeader) {
  pb::KeepaliveAck ack;
  ack.set_node_id("n1");
  ack.set_leader_id("n2");
  EXPECT_TRUE(AdmitKeepaliveAck(View(), "n2", ack).accepted);
  EXPECT_EQ(AdmitKeepaliveAck(View(), "n3", ack).rule, "ack-not-from-leader");
  EXPECT_EQ(AdmitKeepaliveAck(View(), "evil", ack).rule, "not-a-member");
  ack.set_leader_id("evil");
  EXPECT_EQ(AdmitKeepaliveAck(View(), "evil", ack).rule, "not-a-member");
  ack.set_leader_id("n3");
  EXPECT_EQ(AdmitKeepaliveAck(View(), "n2", ack).rule, "ack-leader-mismatch");
  ack.set_leader_id("n2");
  ack.set_node_id("n3");
  EXPECT_EQ(AdmitKeepaliveAck(View(), "n2", ack).rule, "ack-not-for-us");
  ack.set_node_id("n1");
  leader_id_ = "";
  EXPECT_EQ(AdmitKeepaliveAck(View(), "n2", ack).rule, "ack-not-from-leader");
  // A rogue that knows the leader's id still has not got its link.
  leader_id_ = "n2";
  EXPECT_FALSE(AdmitKeepaliveAck(View(), "n3", ack).accepted);
  leader_ = true;
  leader_id_ = "n1";
  ack.set_leader_id("n1");
  EXPECT_EQ(AdmitKeepaliveAck(View(), "n1", ack).rule, "ack-to-leader");
}

// R7 for a fresh node (its first acks come before its configuration) and a lagging one: the
// leader it follows is taken as R3 takes its APPENDs; a rogue naming itself is not.
TEST_F(AdmissionTest, AcksFromTheLeaderOfAJoinedOrLaggingNode) {
  pb::KeepaliveAck ack;
  ack.set_node_id("n1");
  ack.set_leader_id("n3");
  config_.Clear();
  join_targets_ = {"n2"};
  gossip_["n2"] = {"n3", 5};
  leader_id_ = "n3";
  EXPECT_TRUE(AdmitKeepaliveAck(View(), "n3", ack).accepted);
  join_targets_.clear();
  EXPECT_EQ(AdmitKeepaliveAck(View(), "n3", ack).rule, "not-a-member");
  config_ = Config({"n1", "n2"});  // lagging: n3 was added and elected since
  EXPECT_TRUE(AdmitKeepaliveAck(View(), "n3", ack).accepted);
  gossip_["evil"] = {"evil", 9};
  ack.set_leader_id("evil");
  leader_id_ = "evil";
  EXPECT_EQ(AdmitKeepaliveAck(View(), "evil", ack).rule, "not-a-member");
}

// A refusal's detail quotes what the peer sent (its `from`, the ids it names) and goes into
// the log: a newline in a forged id must not start a log line of its own, and a megabyte of
// id must not become a megabyte of log line.
TEST_F(AdmissionTest, RefusalDetailIsOneBoundedLogLine) {
  Admission a =
      AdmitRaft(View(), "evil",
                Msg(pb::HEARTBEAT, "x\n2026-12-06T21:00:00.000Z lockmesh[1] lease lapsed", 50));
  ASSERT_FALSE(a.accepted);
  EXPECT_EQ(a.detail.find('\n'), std::string::npos) << a.detail;
  EXPECT_NE(a.detail.find("x\\x0a2026"), std::string::npos) << a.detail;
  pb::KeepaliveAck ack;
  ack.set_node_id("n1");
  ack.set_leader_id(std::string(1 << 20, 'e') + "\r\x1b[2J");
  a = AdmitKeepaliveAck(View(), "n2", ack);
  ASSERT_FALSE(a.accepted);
  EXPECT_LE(a.detail.size(), Admission::kMaxDetail + 16);
  for (char c : a.detail) EXPECT_GE(static_cast<unsigned char>(c), 0x20);
}

TEST(RefusalLimiterTest, OneLinePerPeerAndRulePerInterval) {
  RefusalLimiter limiter(10'000'000, 8);
  uint64_t suppressed = 99;
  EXPECT_TRUE(limiter.ShouldLog(1'000, "evil", "not-a-member", &suppressed));
  EXPECT_EQ(suppressed, 0u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(limiter.ShouldLog(2'000 + i, "evil", "not-a-member", &suppressed));
  }
  // Another rule, another peer: their own lines.
  EXPECT_TRUE(limiter.ShouldLog(3'000, "evil", "from-mismatch", &suppressed));
  EXPECT_TRUE(limiter.ShouldLog(3'000, "n9", "not-a-member", &suppressed));
  EXPECT_FALSE(limiter.ShouldLog(10'000'999, "evil", "not-a-member", &suppressed));
  EXPECT_TRUE(limiter.ShouldLog(10'001'000, "evil", "not-a-member", &suppressed));
  EXPECT_EQ(suppressed, 6u);
  EXPECT_FALSE(limiter.ShouldLog(10'001'001, "evil", "not-a-member", &suppressed));
}

TEST(RefusalLimiterTest, BoundedMemory) {
  RefusalLimiter limiter(10'000'000, 4);
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(limiter.ShouldLog(1'000, "p" + std::to_string(i), "r", nullptr));
  }
  // p99 is remembered (recent); the map stayed small enough that old ids were forgotten.
  EXPECT_FALSE(limiter.ShouldLog(2'000, "p99", "r", nullptr));
  EXPECT_TRUE(limiter.ShouldLog(2'000, "p0", "r", nullptr));
}

}  // namespace
}  // namespace mesh::core
