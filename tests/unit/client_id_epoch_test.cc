// Unit tests of ClaimClientIds in core/lock_table: client ids from the log, never the wall
// clock (docs/design.md §11).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "core/admission.h"
#include "core/lock_table.h"

namespace mesh::core {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t Id(uint64_t epoch, uint64_t k) { return (epoch << kClientIdEpochBits) | k; }

pb::SessionKey Key(const std::string& node, uint64_t client) {
  pb::SessionKey k;
  k.set_node_id(node);
  k.set_client_id(client);
  return k;
}

pb::Command Claim(const std::string& node, bool expire_older, uint64_t nonce) {
  pb::Command c;
  pb::ClaimClientIds* claim = c.mutable_claim_client_ids();
  claim->set_node_id(node);
  claim->set_expire_older(expire_older);
  claim->set_nonce(nonce);
  return c;
}

pb::Command Open(const pb::SessionKey& k) {
  pb::Command c;
  *c.mutable_open_session()->mutable_session() = k;
  return c;
}

pb::Command Lock(const pb::SessionKey& k, uint64_t seq, const std::string& resource) {
  pb::Command c;
  pb::Acquire* a = c.mutable_acquire();
  *a->mutable_session() = k;
  a->set_seq(seq);
  a->set_resource(resource);
  a->set_mode(pb::EX);
  a->set_wait(true);
  return c;
}

std::string SnapshotBytes(const LockTable& t) {
  pb::LockTableSnapshot snap;
  t.Snapshot(&snap);
  return snap.SerializeAsString();
}

class ClientIdEpochTest : public ::testing::Test {
 protected:
  ApplyResult Apply(const pb::Command& c) { return table_.Apply(next_index_++, c); }
  // Applies a claim and returns its epoch (0 if it was not granted).
  uint64_t ClaimEpoch(const std::string& node, bool expire_older, uint64_t nonce) {
    const ApplyResult r = Apply(Claim(node, expire_older, nonce));
    return r.result.code() == pb::GRANTED ? r.result.client_id_epoch() : 0;
  }

  LockTable table_;
  uint64_t next_index_ = 1;
};

TEST_F(ClientIdEpochTest, EpochsRisePerNodeAndDependOnNoClock) {
  EXPECT_EQ(ClaimEpoch("n1", true, 11), 1u);
  EXPECT_EQ(ClaimEpoch("n2", true, 21), 1u);  // per node
  EXPECT_EQ(ClaimEpoch("n1", true, 12), 2u);
  EXPECT_EQ(ClaimEpoch("n1", false, 13), 3u);
  EXPECT_EQ(table_.ClientIdEpoch("n1"), 3u);
  uint64_t nonce = 0;
  EXPECT_EQ(table_.ClientIdEpoch("n2", &nonce), 1u);
  EXPECT_EQ(nonce, 21u);
  EXPECT_EQ(table_.ClientIdEpoch("nobody", &nonce), 0u);
  EXPECT_EQ(nonce, 0u);
}

TEST_F(ClientIdEpochTest, ExpireOlderEndsTheEarlierRunsSessionsAndGrantsTheirWaiters) {
  ASSERT_EQ(ClaimEpoch("n1", true, 1), 1u);
  const pb::SessionKey old_run = Key("n1", Id(1, 1));
  const pb::SessionKey other = Key("n2", 7);
  ASSERT_EQ(Apply(Open(old_run)).result.code(), pb::GRANTED);
  ASSERT_EQ(Apply(Open(other)).result.code(), pb::GRANTED);
  ASSERT_EQ(Apply(Lock(old_run, 1, "X")).result.code(), pb::GRANTED);
  const ApplyResult waiting = Apply(Lock(other, 1, "X"));
  ASSERT_EQ(waiting.result.code(), pb::QUEUED);

  // The node restarts (its wall clock may have stepped anywhere): it claims again.
  const ApplyResult claimed = Apply(Claim("n1", true, 2));
  ASSERT_EQ(claimed.result.code(), pb::GRANTED);
  EXPECT_EQ(claimed.result.client_id_epoch(), 2u);
  EXPECT_THAT(claimed.result.message(), HasSubstr("1 older session(s) ended"));
  EXPECT_FALSE(table_.HasSession(old_run));
  ASSERT_EQ(claimed.released.size(), 1u);
  EXPECT_EQ(claimed.released[0].resource, "X");
  ASSERT_EQ(claimed.grants.size(), 1u);
  EXPECT_EQ(claimed.grants[0].lock_id, waiting.result.lock_id());
  EXPECT_TRUE(table_.HasSession(other));
}

TEST_F(ClientIdEpochTest, SessionsBelowTheEpochCannotBeOpenedAfterAnExpiringClaim) {
  ASSERT_EQ(ClaimEpoch("n1", true, 1), 1u);
  ASSERT_EQ(ClaimEpoch("n1", true, 2), 2u);
  // A late (retried) OpenSession of the earlier run: refused, it would never be closed.
  EXPECT_EQ(Apply(Open(Key("n1", Id(1, 5)))).result.code(), pb::NO_SESSION);
  EXPECT_EQ(Apply(Open(Key("n1", Id(2, 0) - 1))).result.code(), pb::NO_SESSION);
  EXPECT_EQ(table_.MaxClientId("n1"), Id(2, 0) - 1);
  EXPECT_EQ(Apply(Open(Key("n1", Id(2, 1)))).result.code(), pb::GRANTED);
  EXPECT_EQ(Apply(Open(Key("n2", 3))).result.code(), pb::GRANTED);  // other nodes unaffected
}

TEST_F(ClientIdEpochTest, AClaimWithoutExpireOlderKeepsTheSessions) {
  // A node whose k would overflow claims the next epoch and keeps its clients.
  ASSERT_EQ(ClaimEpoch("n1", true, 1), 1u);
  const pb::SessionKey last = Key("n1", Id(1, kMaxClientIdInEpoch));
  ASSERT_EQ(Apply(Open(last)).result.code(), pb::GRANTED);
  ASSERT_EQ(Apply(Lock(last, 1, "X")).result.code(), pb::GRANTED);
  const ApplyResult claimed = Apply(Claim("n1", false, 2));
  ASSERT_EQ(claimed.result.code(), pb::GRANTED);
  EXPECT_EQ(claimed.result.client_id_epoch(), 2u);
  EXPECT_TRUE(claimed.released.empty());
  EXPECT_TRUE(table_.HasSession(last));
  EXPECT_EQ(table_.held_count(), 1u);
  EXPECT_EQ(Apply(Open(Key("n1", Id(2, 1)))).result.code(), pb::GRANTED);
}

TEST_F(ClientIdEpochTest, ARetryOfTheLatestClaimIsAppliedOnce) {
  ASSERT_EQ(ClaimEpoch("n1", true, 42), 1u);
  const pb::SessionKey s = Key("n1", Id(1, 1));
  ASSERT_EQ(Apply(Open(s)).result.code(), pb::GRANTED);
  ASSERT_EQ(Apply(Lock(s, 1, "X")).result.code(), pb::GRANTED);
  const std::string before = SnapshotBytes(table_);
  const ApplyResult retry = Apply(Claim("n1", true, 42));
  EXPECT_EQ(retry.result.code(), pb::GRANTED);
  EXPECT_EQ(retry.result.client_id_epoch(), 1u);
  EXPECT_TRUE(retry.released.empty());
  EXPECT_TRUE(table_.HasSession(s));
  // Nothing but the applied index moved.
  pb::LockTableSnapshot a, b;
  ASSERT_TRUE(a.ParseFromString(before));
  table_.Snapshot(&b);
  a.set_applied_index(b.applied_index());
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString());
}

TEST_F(ClientIdEpochTest, ARetryOfAnEarlierClaimAppliedAfterANewerOneEndsNothing) {
  // A duplicate proposal of the previous run's claim (nonce 1), delayed in the log, is
  // applied after the current run's claim (nonce 2). The current run's lease still holds
  // and its clients believe they hold their locks: the retry must not end them.
  ASSERT_EQ(ClaimEpoch("n1", true, 1), 1u);
  ASSERT_EQ(ClaimEpoch("n1", true, 2), 2u);
  const pb::SessionKey mine = Key("n1", Id(2, 1));
  ASSERT_EQ(Apply(Open(mine)).result.code(), pb::GRANTED);
  ASSERT_EQ(Apply(Lock(mine, 1, "X")).result.code(), pb::GRANTED);
  const std::string before = SnapshotBytes(table_);
  const ApplyResult retry = Apply(Claim("n1", true, 1));
  ASSERT_EQ(retry.result.code(), pb::GRANTED);
  EXPECT_EQ(retry.result.client_id_epoch(), 1u);  // the epoch that claim got
  EXPECT_TRUE(retry.released.empty());
  EXPECT_TRUE(retry.grants.empty());
  EXPECT_TRUE(table_.HasSession(mine));
  EXPECT_EQ(table_.held_count(), 1u);
  uint64_t nonce = 0;
  EXPECT_EQ(table_.ClientIdEpoch("n1", &nonce), 2u);
  EXPECT_EQ(nonce, 2u);
  pb::LockTableSnapshot a, b;
  ASSERT_TRUE(a.ParseFromString(before));
  table_.Snapshot(&b);
  a.set_applied_index(b.applied_index());
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString());
  EXPECT_EQ(Apply(Open(Key("n1", Id(2, 2)))).result.code(), pb::GRANTED);
}

TEST_F(ClientIdEpochTest, EarlierClaimsAreRememberedInSnapshots) {
  ASSERT_EQ(ClaimEpoch("n1", true, 1), 1u);
  ASSERT_EQ(ClaimEpoch("n1", true, 2), 2u);
  const pb::SessionKey mine = Key("n1", Id(2, 1));
  ASSERT_EQ(Apply(Open(mine)).result.code(), pb::GRANTED);
  ASSERT_EQ(Apply(Lock(mine, 1, "X")).result.code(), pb::GRANTED);
  pb::LockTableSnapshot snap;
  table_.Snapshot(&snap);
  LockTable copy;
  ASSERT_TRUE(copy.Restore(snap).ok());
  EXPECT_EQ(SnapshotBytes(copy), SnapshotBytes(table_));
  uint64_t index = table_.applied_index();
  const ApplyResult retry = copy.Apply(++index, Claim("n1", true, 1));
  EXPECT_EQ(retry.result.client_id_epoch(), 1u);
  EXPECT_TRUE(copy.HasSession(mine));
  EXPECT_EQ(copy.held_count(), 1u);
  // A snapshot claiming an earlier claim at or above the latest epoch is refused.
  pb::LockTableSnapshot bad = snap;
  ASSERT_EQ(bad.watermarks_size(), 1);
  ASSERT_EQ(bad.watermarks(0).earlier_claims_size(), 1);
  bad.mutable_watermarks(0)->mutable_earlier_claims(0)->set_epoch(2);
  LockTable refused;
  EXPECT_TRUE(refused.Restore(bad).IsCorruption());
}

TEST_F(ClientIdEpochTest, OnlyTheLastClaimsAreRemembered) {
  // Claims with nonces 1..kRememberedClaims+1: the first is forgotten, the others are not.
  for (uint64_t n = 1; n <= kRememberedClaims + 1; ++n) ASSERT_EQ(ClaimEpoch("n1", false, n), n);
  pb::LockTableSnapshot snap;
  table_.Snapshot(&snap);
  ASSERT_EQ(snap.watermarks_size(), 1);
  EXPECT_EQ(snap.watermarks(0).earlier_claims_size(), static_cast<int>(kRememberedClaims) - 1);
  EXPECT_EQ(ClaimEpoch("n1", false, 2), 2u);  // remembered: a retry
  // Forgotten: a new claim, with the next epoch. The node sees the epoch rise past its own
  // and claims again (net/node/session_router.cc).
  const uint64_t next = kRememberedClaims + 2;
  EXPECT_EQ(ClaimEpoch("n1", false, 1), next);
  uint64_t nonce = 0;
  EXPECT_EQ(table_.ClientIdEpoch("n1", &nonce), next);
  EXPECT_EQ(nonce, 1u);
}

TEST_F(ClientIdEpochTest, TheEpochStartsAboveIdsTheNodeTookElsewhere) {
  // Data of a version that took client ids from the wall clock (microseconds).
  const uint64_t wall_id = 1'780'000'000'000'000;
  const pb::SessionKey old_run = Key("n1", wall_id);
  ASSERT_EQ(Apply(Open(old_run)).result.code(), pb::GRANTED);
  ASSERT_EQ(Apply(Lock(old_run, 1, "X")).result.code(), pb::GRANTED);
  const uint64_t epoch = ClaimEpoch("n1", true, 9);
  ASSERT_NE(epoch, 0u);
  EXPECT_GT(Id(epoch, 1), wall_id);
  EXPECT_FALSE(table_.HasSession(old_run));
  EXPECT_EQ(table_.held_count(), 0u);
  EXPECT_EQ(Apply(Open(Key("n1", Id(epoch, 1)))).result.code(), pb::GRANTED);
}

TEST_F(ClientIdEpochTest, ClaimsThatCannotTakeEffectChangeNothing) {
  const ApplyResult no_node = Apply(Claim("", true, 1));
  EXPECT_EQ(no_node.result.code(), pb::ERROR);
  EXPECT_EQ(table_.ClientIdEpoch(""), 0u);
  // Epochs used up: an id in the last epoch leaves no epoch above it.
  ASSERT_EQ(Apply(Open(Key("n1", Id(kMaxClientIdEpoch, 1)))).result.code(), pb::GRANTED);
  const ApplyResult exhausted = Apply(Claim("n1", true, 2));
  EXPECT_EQ(exhausted.result.code(), pb::ERROR);
  EXPECT_THAT(exhausted.result.message(), HasSubstr("used up"));
  EXPECT_TRUE(table_.HasSession(Key("n1", Id(kMaxClientIdEpoch, 1))));
  EXPECT_EQ(table_.ClientIdEpoch("n1"), 0u);
}

TEST_F(ClientIdEpochTest, SnapshotsKeepEpochsNoncesAndTheFloor) {
  ASSERT_EQ(ClaimEpoch("n1", true, 5), 1u);
  ASSERT_EQ(ClaimEpoch("n1", true, 6), 2u);
  ASSERT_EQ(ClaimEpoch("n2", false, 7), 1u);
  ASSERT_EQ(Apply(Open(Key("n1", Id(2, 1)))).result.code(), pb::GRANTED);
  pb::LockTableSnapshot snap;
  table_.Snapshot(&snap);
  LockTable copy;
  ASSERT_TRUE(copy.Restore(snap).ok());
  EXPECT_EQ(SnapshotBytes(copy), SnapshotBytes(table_));
  uint64_t nonce = 0;
  EXPECT_EQ(copy.ClientIdEpoch("n1", &nonce), 2u);
  EXPECT_EQ(nonce, 6u);
  EXPECT_EQ(copy.ClientIdEpoch("n2", &nonce), 1u);
  EXPECT_EQ(nonce, 7u);
  uint64_t index = table_.applied_index();
  // The floor holds on the copy, a retry of the latest claim is still applied once, and
  // the next claim continues the sequence.
  EXPECT_EQ(copy.Apply(++index, Open(Key("n1", Id(1, 9)))).result.code(), pb::NO_SESSION);
  const ApplyResult retry = copy.Apply(++index, Claim("n1", true, 6));
  EXPECT_EQ(retry.result.client_id_epoch(), 2u);
  EXPECT_TRUE(copy.HasSession(Key("n1", Id(2, 1))));
  EXPECT_EQ(copy.Apply(++index, Claim("n1", true, 8)).result.client_id_epoch(), 3u);
  EXPECT_FALSE(copy.HasSession(Key("n1", Id(2, 1))));
}

TEST_F(ClientIdEpochTest, ASnapshotWithAnEpochOutOfRangeIsRefused) {
  ASSERT_EQ(ClaimEpoch("n1", true, 5), 1u);
  pb::LockTableSnapshot snap;
  table_.Snapshot(&snap);
  ASSERT_EQ(snap.watermarks_size(), 1);
  snap.mutable_watermarks(0)->set_epoch(kMaxClientIdEpoch + 1);
  LockTable copy;
  const Status st = copy.Restore(snap);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_EQ(copy.applied_index(), 0u);
}

TEST(ClientIdClaimAdmissionTest, APeerMayClaimIdsOnlyForItself) {
  // A leader takes a forwarded claim only from the node it names: another's claim with
  // expire_older would end that node's sessions (core/admission.h, R4).
  EXPECT_TRUE(AdmitCommand("n2", Claim("n2", true, 1)).accepted);
  const Admission refused = AdmitCommand("evil", Claim("n2", true, 1));
  EXPECT_FALSE(refused.accepted);
  EXPECT_EQ(refused.rule, "propose-claim-client-ids");
}

}  // namespace
}  // namespace mesh::core
