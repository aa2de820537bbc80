// Unit tests of the token floor of core/lock_table (`lockmesh node --token-floor N`): a
// ClaimClientIds carrying token_floor F makes every later fencing token above F, the offset
// only rises, and it is part of the replicated state (snapshots, both encodings).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>

#include "core/lock_table.h"

namespace mesh::core {
namespace {

using ::testing::HasSubstr;

pb::Command Claim(const std::string& node, uint64_t nonce, uint64_t floor) {
  pb::Command c;
  pb::ClaimClientIds* claim = c.mutable_claim_client_ids();
  claim->set_node_id(node);
  claim->set_expire_older(true);
  claim->set_nonce(nonce);
  claim->set_token_floor(floor);
  return c;
}

class TokenFloorTest : public ::testing::Test {
 protected:
  ApplyResult Apply(const pb::Command& c) { return table_.Apply(next_index_++, c); }

  // Opens session (node, client) if needed, takes `resource`, releases it; returns the token.
  uint64_t LockAndRelease(LockTable* table, uint64_t* index, const std::string& node,
                          uint64_t client, const std::string& resource) {
    pb::SessionKey key;
    key.set_node_id(node);
    key.set_client_id(client);
    if (!table->HasSession(key)) {
      pb::Command open;
      *open.mutable_open_session()->mutable_session() = key;
      EXPECT_EQ(table->Apply((*index)++, open).result.code(), pb::GRANTED);
    }
    uint64_t& seq = seqs_[node + "/" + std::to_string(client)];
    pb::Command lock;
    pb::Acquire* a = lock.mutable_acquire();
    *a->mutable_session() = key;
    a->set_seq(++seq);
    a->set_resource(resource);
    a->set_mode(pb::EX);
    a->set_wait(true);
    const ApplyResult granted = table->Apply((*index)++, lock);
    EXPECT_EQ(granted.result.code(), pb::GRANTED);
    pb::Command release;
    pb::Release* r = release.mutable_release();
    *r->mutable_session() = key;
    r->set_seq(++seq);
    r->set_lock_id(granted.result.lock_id());
    EXPECT_EQ(table->Apply((*index)++, release).result.code(), pb::RELEASED);
    return granted.result.token();
  }
  uint64_t Lock(const std::string& resource) {
    return LockAndRelease(&table_, &next_index_, "a", uint64_t{1} << kClientIdEpochBits | 1,
                          resource);
  }

  LockTable table_;
  uint64_t next_index_ = 2;  // entry 1: the cluster's first configuration
  std::map<std::string, uint64_t> seqs_;
};

TEST_F(TokenFloorTest, EveryTokenAfterTheClaimIsAboveTheFloor) {
  EXPECT_EQ(Apply(Claim("a", 7, 5000)).result.code(), pb::GRANTED);
  const uint64_t first = Lock("r");
  EXPECT_GT(first, 5000u);
  EXPECT_LE(first, 5000u + 3) << "the floor is not a jump beyond it";
  EXPECT_GT(Lock("other"), first) << "tokens still rise with the log";
  EXPECT_GT(table_.token_watermark(), 5000u);
}

TEST_F(TokenFloorTest, NoFloorKeepsTokensAtTheLogIndex) {
  EXPECT_EQ(Apply(Claim("a", 7, 0)).result.code(), pb::GRANTED);
  EXPECT_EQ(Lock("r"), 4u) << "claim 2, open 3, acquire 4";
  EXPECT_EQ(table_.token_watermark(), table_.applied_index());
}

TEST_F(TokenFloorTest, ALowerFloorLaterNeverLowersTokens) {
  EXPECT_EQ(Apply(Claim("a", 7, 5000)).result.code(), pb::GRANTED);
  const uint64_t before = Lock("r");
  // Node b started (or restarted) with --token-floor 10, then with none.
  EXPECT_EQ(Apply(Claim("b", 8, 10)).result.code(), pb::GRANTED);
  EXPECT_EQ(Apply(Claim("b", 9, 0)).result.code(), pb::GRANTED);
  EXPECT_GT(Lock("r"), before);
  // A higher floor later raises them again.
  EXPECT_EQ(Apply(Claim("b", 10, 90000)).result.code(), pb::GRANTED);
  EXPECT_GT(Lock("r"), 90000u);
}

TEST_F(TokenFloorTest, AFloorBelowTheLogIndexChangesNothing) {
  for (int i = 0; i < 20; ++i) Lock("r");
  const uint64_t before = Lock("r");
  EXPECT_EQ(Apply(Claim("b", 9, 5)).result.code(), pb::GRANTED);
  EXPECT_EQ(Lock("r"), before + 3) << "release, claim, acquire: the index alone";
}

TEST_F(TokenFloorTest, AFloorAboveTheMaximumIsRefusedWithoutEffect) {
  const ApplyResult r = Apply(Claim("a", 7, kMaxTokenFloor + 1));
  EXPECT_EQ(r.result.code(), pb::ERROR);
  EXPECT_THAT(r.result.message(), HasSubstr("token floor"));
  EXPECT_EQ(table_.ClientIdEpoch("a"), 0u) << "nothing claimed";
  EXPECT_EQ(table_.token_watermark(), table_.applied_index());
  EXPECT_EQ(Apply(Claim("a", 8, kMaxTokenFloor)).result.code(), pb::GRANTED);
  EXPECT_GT(Lock("r"), kMaxTokenFloor);
}

// The offset is state: a table restored from a snapshot (either encoding) goes on above
// the floor exactly as the table that took it, and a forged offset is refused.
TEST_F(TokenFloorTest, TheFloorSurvivesSnapshots) {
  EXPECT_EQ(Apply(Claim("a", 7, 5000)).result.code(), pb::GRANTED);
  const uint64_t before = Lock("r");
  pb::LockTableSnapshot snap;
  table_.Snapshot(&snap);
  EXPECT_GT(snap.token_offset(), 0u);
  std::string encoded;
  table_.EncodeSnapshot(&encoded);
  EXPECT_EQ(encoded, snap.SerializeAsString());

  LockTable restored;
  pb::LockTableSnapshot parsed;
  ASSERT_TRUE(parsed.ParseFromString(encoded));
  ASSERT_TRUE(restored.Restore(parsed).ok());
  uint64_t index = next_index_;
  const uint64_t twin = Lock("r");
  const uint64_t copy = LockAndRelease(&restored, &index, "a", uint64_t{1} << kClientIdEpochBits | 1,
                                       "r");
  EXPECT_EQ(copy, twin);
  EXPECT_GT(copy, before);

  parsed.set_token_offset(kMaxTokenFloor + 1);
  LockTable forged;
  Status st = forged.Restore(parsed);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.ToString(), HasSubstr("token offset"));
}

// A held lock whose token is above the applied index is consistent only with an offset.
TEST_F(TokenFloorTest, SnapshotOfAHeldLockNeedsItsOffset) {
  EXPECT_EQ(Apply(Claim("a", 7, 5000)).result.code(), pb::GRANTED);
  pb::SessionKey key;
  key.set_node_id("a");
  key.set_client_id(uint64_t{1} << kClientIdEpochBits | 1);
  pb::Command open;
  *open.mutable_open_session()->mutable_session() = key;
  ASSERT_EQ(Apply(open).result.code(), pb::GRANTED);
  pb::Command lock;
  pb::Acquire* a = lock.mutable_acquire();
  *a->mutable_session() = key;
  a->set_seq(1);
  a->set_resource("held");
  a->set_mode(pb::EX);
  ASSERT_EQ(Apply(lock).result.code(), pb::GRANTED);
  pb::LockTableSnapshot snap;
  table_.Snapshot(&snap);
  LockTable good;
  EXPECT_TRUE(good.Restore(snap).ok());
  snap.set_token_offset(0);
  LockTable bad;
  Status st = bad.Restore(snap);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.ToString(), HasSubstr("bad token"));
}

}  // namespace
}  // namespace mesh::core
