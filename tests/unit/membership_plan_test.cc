// Unit tests of core/membership_plan: the leader's membership rules M1-M5 and the
// CatchUpTracker that tells a stuck follower from a slow one.
#include "core/membership_plan.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace mesh::core {
namespace {

using Kind = MembershipStep::Kind;
constexpr uint64_t kSecond = 1'000'000;
constexpr uint64_t kDeadAfter = 30 * kSecond;

pb::ClusterConfig Config(const std::vector<std::pair<std::string, bool>>& members) {
  pb::ClusterConfig c;
  for (const auto& [id, voter] : members) {
    pb::Member* m = c.add_members();
    m->set_id(id);
    m->set_voter(voter);
  }
  return c;
}

FollowerView Follower(const std::string& id, bool voter, uint64_t match, uint64_t now) {
  FollowerView f;
  f.id = id;
  f.voter = voter;
  f.match = match;
  f.last_heard_us = now;
  f.connected = true;
  return f;
}

// A leader n1 in office for a minute, voters n1-n3, commit 100, everyone caught up.
struct Fixture {
  Fixture() : config(Config({{"n1", true}, {"n2", true}, {"n3", true}})) {
    view.now_us = 100 * kSecond;
    view.leader_since_us = 40 * kSecond;
    view.dead_after_us = kDeadAfter;
    view.voters_target = 3;
    view.commit_index = 100;
    view.config = &config;
    view.joins = &joins;
    view.followers = {Follower("n2", true, 100, view.now_us),
                      Follower("n3", true, 100, view.now_us)};
  }
  void AddLearner(const std::string& id, uint64_t match) {
    pb::Member* m = config.add_members();
    m->set_id(id);
    view.followers.push_back(Follower(id, false, match, view.now_us));
  }
  FollowerView& follower(const std::string& id) {
    return *std::find_if(view.followers.begin(), view.followers.end(),
                         [&](const FollowerView& f) { return f.id == id; });
  }
  pb::ClusterConfig config;
  std::map<std::string, JoinAsk> joins;
  MembershipView view;
};

bool Drops(const MembershipStep& s, const std::string& id) {
  return std::count(s.drop_joins.begin(), s.drop_joins.end(), id) > 0;
}

TEST(MembershipPlanTest, HealthyClusterChangesNothing) {
  Fixture f;
  EXPECT_EQ(PlanMembership(f.view).kind, Kind::kNone);
}

TEST(MembershipPlanTest, JoinFromANonMemberAddsALearner) {
  Fixture f;
  f.joins["n4"] = JoinAsk{"10.0.0.4:7946", 0};
  MembershipStep s = PlanMembership(f.view);
  EXPECT_EQ(s.kind, Kind::kAddLearner);
  EXPECT_EQ(s.id, "n4");
  EXPECT_EQ(s.address, "10.0.0.4:7946");
  EXPECT_TRUE(Drops(s, "n4"));
}

TEST(MembershipPlanTest, MemberThatLostItsLogIsRemovedAndItsJoinKept) {
  Fixture f;
  f.joins["n3"] = JoinAsk{"10.0.0.3:7946", 0};  // wiped: empty log, though it acked 100
  MembershipStep s = PlanMembership(f.view);
  EXPECT_EQ(s.kind, Kind::kRemove);
  EXPECT_EQ(s.id, "n3");
  EXPECT_NE(s.why.find("lost its data"), std::string::npos) << s.why;
  EXPECT_FALSE(Drops(s, "n3"));  // it joins again (M2) once removed
  // A log restored from an old backup is the same story.
  f.joins["n3"] = JoinAsk{"10.0.0.3:7946", 60};
  EXPECT_EQ(PlanMembership(f.view).kind, Kind::kRemove);
}

TEST(MembershipPlanTest, MemberAskingAgainWithItsWholeLogIsNotRemoved) {
  Fixture f;
  f.joins["n3"] = JoinAsk{"10.0.0.3:7946", 100};  // e.g. added, config not yet received
  MembershipStep s = PlanMembership(f.view);
  EXPECT_EQ(s.kind, Kind::kNone);
  EXPECT_TRUE(Drops(s, "n3"));
  // A new learner that never acknowledged anything asks again: nothing to void.
  Fixture g;
  g.AddLearner("n4", 0);
  g.joins["n4"] = JoinAsk{"10.0.0.4:7946", 0};
  EXPECT_TRUE(Drops(PlanMembership(g.view), "n4"));
  EXPECT_NE(PlanMembership(g.view).kind, Kind::kRemove);
}

TEST(MembershipPlanTest, UnreachableVoterIsReplacedOnlyByACaughtUpLearner) {
  Fixture f;
  f.follower("n3").last_heard_us = f.view.now_us - kDeadAfter;
  EXPECT_EQ(PlanMembership(f.view).kind, Kind::kNone);  // no one to take its place
  f.AddLearner("n4", 90);
  EXPECT_EQ(PlanMembership(f.view).kind, Kind::kNone);  // not caught up
  f.follower("n4").match = 100;
  MembershipStep s = PlanMembership(f.view);
  EXPECT_EQ(s.kind, Kind::kRemove);
  EXPECT_EQ(s.id, "n3");
  EXPECT_NE(s.why.find("unreachable"), std::string::npos) << s.why;
  EXPECT_NE(s.why.find("n4 will take its place"), std::string::npos) << s.why;
}

TEST(MembershipPlanTest, ConnectedVoterStuckBehindIsReplaced) {
  Fixture f;
  f.AddLearner("n4", 100);
  FollowerView& n3 = f.follower("n3");
  n3.match = 20;
  n3.behind_for_us = kDeadAfter - 1;  // slow, not yet stuck
  EXPECT_EQ(PlanMembership(f.view).kind, Kind::kNone);
  n3.behind_for_us = kDeadAfter;
  MembershipStep s = PlanMembership(f.view);
  EXPECT_EQ(s.kind, Kind::kRemove);
  EXPECT_EQ(s.id, "n3");
  EXPECT_NE(s.why.find("connected but no progress"), std::string::npos) << s.why;
}

TEST(MembershipPlanTest, NothingFailsBeforeTheLeaderHasLedForDeadAfter) {
  Fixture f;
  f.AddLearner("n4", 100);
  f.view.leader_since_us = f.view.now_us - kDeadAfter + 1;
  f.follower("n3").last_heard_us = 0;
  f.follower("n2").behind_for_us = 10 * kDeadAfter;
  EXPECT_NE(PlanMembership(f.view).kind, Kind::kRemove);
}

TEST(MembershipPlanTest, LearnersArePromotedUpToTheTargetWhenConnectedAndCaughtUp) {
  Fixture f;
  f.view.voters_target = 5;
  f.AddLearner("n4", 100);
  f.follower("n4").connected = false;
  EXPECT_EQ(PlanMembership(f.view).kind, Kind::kNone);
  f.follower("n4").connected = true;
  MembershipStep s = PlanMembership(f.view);
  EXPECT_EQ(s.kind, Kind::kPromote);
  EXPECT_EQ(s.id, "n4");
  f.view.voters_target = 3;
  EXPECT_EQ(PlanMembership(f.view).kind, Kind::kNone);
}

TEST(MembershipPlanTest, FailedLearnerIsRemoved) {
  Fixture f;
  f.AddLearner("n4", 10);
  f.follower("n4").behind_for_us = kDeadAfter;
  MembershipStep s = PlanMembership(f.view);
  EXPECT_EQ(s.kind, Kind::kRemove);
  EXPECT_EQ(s.id, "n4");
}

TEST(CatchUpTrackerTest, SlowFollowerIsNotStuckButAStalledOneIs) {
  CatchUpTracker t;
  // A follower that always trails the commit index by a little, but reaches each target.
  uint64_t now = 0;
  for (int i = 0; i < 100; ++i) {
    now += kSecond;
    t.Observe("slow", now, /*match=*/i * 10, 0, /*commit=*/i * 10 + 5);
    EXPECT_LE(t.BehindFor("slow", now), 2 * kSecond);
  }
  // A follower whose match stops.
  t.Observe("stalled", now, 50, 0, 1000);
  const uint64_t start = now;
  for (int i = 0; i < 40; ++i) {
    now += kSecond;
    t.Observe("stalled", now, 50, 0, 1000 + i);
  }
  EXPECT_EQ(t.BehindFor("stalled", now), now - start);
  // A snapshot transfer that advances is progress.
  t.Observe("stalled", now + 1, 50, 4096, 2000);
  EXPECT_EQ(t.BehindFor("stalled", now + 1), 0u);
  t.Retain({"slow"});
  EXPECT_EQ(t.BehindFor("stalled", now + 2), 0u);  // forgotten
  t.Forget();
  EXPECT_EQ(t.BehindFor("slow", now + 2), 0u);
}

}  // namespace
}  // namespace mesh::core
