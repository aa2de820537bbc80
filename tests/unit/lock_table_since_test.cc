// core/lock_table: since when a lock is held or awaited (LockRow::since_unix_s). A request
// is dated by its Acquire's stamp, a grant by the stamp of the command that granted it (or,
// for a session's end, which carries none, the last stamp applied); the same on every
// replica, kept in snapshots, and a proposer clock that jumps changes only the time shown.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/lock_table.h"

namespace mesh::core {
namespace {

constexpr int64_t kSecond = 1000000000;
constexpr int64_t kT0 = 1700000000LL;  // Unix seconds

/// Commands as a log: every replica applies the same entries.
class SinceTest : public ::testing::Test {
 protected:
  void Log(const pb::Command& c) { log_.push_back(c); }

  pb::SessionKey Open(uint64_t client) {
    pb::SessionKey k;
    k.set_node_id("n1");
    k.set_client_id(client);
    pb::Command c;
    *c.mutable_open_session()->mutable_session() = k;
    Log(c);
    return k;
  }
  uint64_t NextSeq(const pb::SessionKey& k) { return ++seqs_[k.client_id()]; }
  /// Logs an Acquire stamped `stamp_s` (seconds); returns its lock id (its log index).
  uint64_t Acquire(const pb::SessionKey& k, const std::string& resource, int64_t stamp_s,
                   int64_t extra_ns = 0) {
    pb::Command c;
    pb::Acquire* a = c.mutable_acquire();
    *a->mutable_session() = k;
    a->set_seq(NextSeq(k));
    a->set_resource(resource);
    a->set_mode(pb::EX);
    a->set_wait(true);
    a->set_stamp_unix_ns(stamp_s * kSecond + extra_ns);
    Log(c);
    return log_.size();
  }
  void Release(const pb::SessionKey& k, uint64_t lock_id, int64_t stamp_s) {
    pb::Command c;
    pb::Release* r = c.mutable_release();
    *r->mutable_session() = k;
    r->set_seq(NextSeq(k));
    r->set_lock_id(lock_id);
    r->set_stamp_unix_ns(stamp_s * kSecond);
    Log(c);
  }
  void Close(const pb::SessionKey& k) {
    pb::Command c;
    *c.mutable_close_session()->mutable_session() = k;
    Log(c);
  }

  /// Applies log entries [from, to) (1-based indexes) to `table`.
  void ApplyRange(LockTable* table, size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) table->Apply(i, log_[i - 1]);
  }
  /// A replica that applied the whole log.
  std::unique_ptr<LockTable> Replay() {
    auto t = std::make_unique<LockTable>();
    ApplyRange(t.get(), 1, log_.size() + 1);
    return t;
  }
  static std::map<uint64_t, uint32_t> SinceById(const LockTable& t) {
    std::map<uint64_t, uint32_t> out;
    for (const LockRow& row : t.List()) out[row.lock_id] = row.since_unix_s;
    return out;
  }
  static uint32_t SinceOf(const LockTable& t, uint64_t lock_id) {
    for (const LockRow& row : t.List()) {
      if (row.lock_id == lock_id) return row.since_unix_s;
    }
    ADD_FAILURE() << "no lock " << lock_id;
    return 0;
  }

  std::vector<pb::Command> log_;
  std::map<uint64_t, uint64_t> seqs_;
};

TEST_F(SinceTest, ARequestIsDatedByItsStampAGrantByTheCommandThatGrantedIt) {
  pb::SessionKey a = Open(1);
  pb::SessionKey b = Open(2);
  uint64_t held = Acquire(a, "R", kT0, 999999999);  // fractions are cut, not rounded
  uint64_t waits = Acquire(b, "R", kT0 + 5);
  auto t = Replay();
  EXPECT_EQ(SinceOf(*t, held), kT0);
  EXPECT_EQ(SinceOf(*t, waits), kT0 + 5);  // awaited since its request
  Release(a, held, kT0 + 9);               // grants b's request
  t = Replay();
  EXPECT_EQ(SinceOf(*t, waits), kT0 + 9);  // held since its grant
  EXPECT_EQ(t->List().size(), 1u);
}

TEST_F(SinceTest, AGrantByASessionEndTakesTheLastStamp) {
  pb::SessionKey a = Open(1);
  pb::SessionKey b = Open(2);
  pb::SessionKey c = Open(3);
  Acquire(a, "R", kT0);
  uint64_t waits = Acquire(b, "R", kT0 + 1);
  uint64_t other = Acquire(c, "S", kT0 + 7);  // the last stamp before the session's end
  Close(a);                                   // no stamp: b is granted at kT0 + 7
  auto t = Replay();
  EXPECT_EQ(SinceOf(*t, waits), kT0 + 7);
  EXPECT_EQ(SinceOf(*t, other), kT0 + 7);
}

TEST_F(SinceTest, SurvivesSnapshotAndRestoreAndStaysAlikeOnReplicas) {
  pb::SessionKey a = Open(1);
  pb::SessionKey b = Open(2);
  pb::SessionKey c = Open(3);
  uint64_t held = Acquire(a, "R", kT0);
  Acquire(b, "R", kT0 + 2);
  Acquire(c, "/h/x", kT0 + 3);
  Acquire(c, "pool[70000]", kT0 + 4);
  const size_t cut = log_.size() + 1;
  Release(a, held, kT0 + 20);  // the table's clock, kept in the snapshot, is now kT0 + 20
  const size_t cut2 = log_.size() + 1;
  Close(c);  // a grant after restore would take the clock from the snapshot
  Acquire(a, "T", kT0 + 30);

  auto live = Replay();
  // A replica that restores from a snapshot taken at `cut2 - 1` (both encodings), then
  // applies the rest.
  LockTable before;
  ApplyRange(&before, 1, cut2);
  pb::LockTableSnapshot snap;
  before.Snapshot(&snap);
  std::string encoded;
  before.EncodeSnapshot(&encoded);
  EXPECT_EQ(encoded, snap.SerializeAsString());
  LockTable restored;
  ASSERT_TRUE(restored.Restore(snap).ok());
  EXPECT_EQ(SinceById(restored), SinceById(before));
  ApplyRange(&restored, cut2, log_.size() + 1);
  EXPECT_EQ(SinceById(restored), SinceById(*live));
  // And one restored earlier, before the release.
  LockTable early;
  ApplyRange(&early, 1, cut);
  pb::LockTableSnapshot snap_early;
  early.Snapshot(&snap_early);
  LockTable restored_early;
  ASSERT_TRUE(restored_early.Restore(snap_early).ok());
  ApplyRange(&restored_early, cut, log_.size() + 1);
  EXPECT_EQ(SinceById(restored_early), SinceById(*live));
}

TEST_F(SinceTest, AClockThatJumpsChangesTheTimeShownNotTheDecisions) {
  pb::SessionKey a = Open(1);
  pb::SessionKey b = Open(2);
  uint64_t held = Acquire(a, "R", kT0 + 1000);
  uint64_t waits = Acquire(b, "R", kT0);  // a proposer whose clock is 1000 s behind
  Release(a, held, kT0 - 5000);           // and one that jumped back further
  auto t = Replay();
  ASSERT_EQ(t->List().size(), 1u);
  const LockRow row = t->List()[0];
  EXPECT_EQ(row.lock_id, waits);
  EXPECT_TRUE(row.held);  // FIFO as ever
  EXPECT_EQ(row.since_unix_s, kT0 - 5000);
}

TEST_F(SinceTest, BigQuantitiesAreKept) {
  pb::SessionKey a = Open(1);
  pb::Command c;
  pb::Acquire* acq = c.mutable_acquire();
  *acq->mutable_session() = a;
  acq->set_seq(NextSeq(a));
  acq->set_resource("pool[5000000000]");
  acq->set_mode(pb::EX);
  acq->set_quantity(4000000000u);
  acq->set_stamp_unix_ns(kT0 * kSecond);
  Log(c);
  auto t = Replay();
  ASSERT_EQ(t->List().size(), 1u);
  EXPECT_EQ(t->List()[0].quantity, 4000000000u);
  EXPECT_EQ(t->List()[0].since_unix_s, kT0);
  pb::LockTableSnapshot snap;
  t->Snapshot(&snap);
  LockTable restored;
  ASSERT_TRUE(restored.Restore(snap).ok());
  EXPECT_EQ(restored.List()[0].quantity, 4000000000u);
}

}  // namespace
}  // namespace mesh::core
