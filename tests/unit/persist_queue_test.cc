// core::raft::PersistQueue: the order batches are persisted in, how far Raft is advanced
// after a failed persist, when a full disk is retried, and which failure is fatal
// (core/raft/persist_queue.h).
#include "core/raft/persist_queue.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/storage/file_system.h"

namespace mesh::core::raft {
namespace {

using Outcome = PersistQueue::Outcome;

Batch MakeBatch(uint64_t seq, bool must_sync = true) {
  Batch b;
  b.seq = seq;
  b.must_sync = must_sync;
  return b;
}

std::vector<uint64_t> Seqs(const std::vector<Batch>& batches) {
  std::vector<uint64_t> seqs;
  for (const Batch& b : batches) seqs.push_back(b.seq);
  return seqs;
}

// Settles `batches` and returns the seqs Raft was advanced to (in call order).
struct Settler {
  PersistQueue* queue;
  std::vector<uint64_t> advanced;
  Outcome operator()(std::vector<Batch> batches, size_t persisted, const Status& error,
                     uint64_t now_us) {
    return queue->Settle(std::move(batches), persisted, error, now_us,
                         [this](const Batch& b) { advanced.push_back(b.seq); });
  }
};

DiskFullOptions Timing() {
  DiskFullOptions o;
  o.first_retry_us = 100;
  o.max_retry_us = 400;
  return o;
}

const Status kNoSpace = NoSpaceError("/d/wal/1.wal: pwrite");

TEST(PersistQueueTest, PersistsInTheOrderTakenAndAdvancesThroughTheLast) {
  PersistQueue q;
  Settler settle{&q, {}};
  EXPECT_TRUE(q.empty());
  for (uint64_t s = 1; s <= 3; ++s) q.Push(MakeBatch(s));
  EXPECT_EQ(q.size(), 3u);
  EXPECT_TRUE(q.MayPersist(0));
  std::vector<Batch> taken = q.Take();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(Seqs(taken), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(settle(std::move(taken), 3, Status::OK(), 0), Outcome::kPersisted);
  EXPECT_EQ(settle.advanced, std::vector<uint64_t>{3});  // covers 1 and 2
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.next_retry_us(), PersistQueue::kNoRetry);
}

TEST(PersistQueueTest, HeldBatchesGoBeforeThoseTakenSinceAndRaftIsNotAdvancedPastThem) {
  PersistQueue q(Timing());
  Settler settle{&q, {}};
  for (uint64_t s = 1; s <= 4; ++s) q.Push(MakeBatch(s));
  std::vector<Batch> taken = q.Take();
  q.Push(MakeBatch(5));  // taken while the persist ran
  // 1 persisted, 2 refused for want of space: Raft hears of 1 only.
  EXPECT_EQ(settle(std::move(taken), 1, kNoSpace, 1000), Outcome::kBecameFull);
  EXPECT_EQ(settle.advanced, std::vector<uint64_t>{1});
  EXPECT_TRUE(q.retrying());
  EXPECT_EQ(q.size(), 4u);
  q.Push(MakeBatch(6));
  EXPECT_EQ(Seqs(q.Take()), (std::vector<uint64_t>{2, 3, 4, 5, 6}));
}

TEST(PersistQueueTest, AWholeFailureAdvancesNothing) {
  PersistQueue q(Timing());
  Settler settle{&q, {}};
  q.Push(MakeBatch(1));
  q.Push(MakeBatch(2));
  EXPECT_EQ(settle(q.Take(), 0, kNoSpace, 0), Outcome::kBecameFull);
  EXPECT_TRUE(settle.advanced.empty());
  EXPECT_EQ(q.size(), 2u);
}

TEST(PersistQueueTest, RetriesAreDueWithBackoffAndTheFirstSuccessEndsTheFullState) {
  PersistQueue q(Timing());
  Settler settle{&q, {}};
  q.Push(MakeBatch(1));
  EXPECT_EQ(settle(q.Take(), 0, kNoSpace, 1000), Outcome::kBecameFull);
  EXPECT_TRUE(q.disk().full());
  EXPECT_FALSE(q.disk()
                   .Admit([] {
                     pb::Command c;
                     c.mutable_acquire()->set_resource("r");
                     return c;
                   }())
                   .ok());
  EXPECT_EQ(q.next_retry_us(), 1100u);
  EXPECT_FALSE(q.MayPersist(1099));
  EXPECT_TRUE(q.MayPersist(1100));
  // The retry fails again: held still, reported once, and the next one is later.
  EXPECT_EQ(settle(q.Take(), 0, kNoSpace, 1100), Outcome::kStillFull);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.next_retry_us(), 1300u);
  EXPECT_FALSE(q.MayPersist(1299));
  // A retry persists part: advanced that far, still full.
  q.Push(MakeBatch(2));
  EXPECT_EQ(settle(q.Take(), 1, kNoSpace, 1300), Outcome::kStillFull);
  EXPECT_EQ(settle.advanced, std::vector<uint64_t>{1});
  EXPECT_EQ(q.next_retry_us(), 1700u);
  EXPECT_TRUE(q.MayPersist(1700));
  EXPECT_EQ(settle(q.Take(), 1, Status::OK(), 1700), Outcome::kSpaceReturned);
  EXPECT_EQ(settle.advanced, (std::vector<uint64_t>{1, 2}));
  EXPECT_FALSE(q.retrying());
  EXPECT_TRUE(q.MayPersist(0));
  EXPECT_EQ(q.next_retry_us(), PersistQueue::kNoRetry);
  EXPECT_EQ(q.disk().Describe(), "");
  q.Push(MakeBatch(3));
  EXPECT_EQ(settle(q.Take(), 1, Status::OK(), 1800), Outcome::kPersisted);  // reported once
}

TEST(PersistQueueTest, OnlyAWriteEndsTheFullState) {
  PersistQueue q(Timing());
  Settler settle{&q, {}};
  q.Push(MakeBatch(1, /*must_sync=*/false));
  EXPECT_EQ(settle(q.Take(), 0, kNoSpace, 0), Outcome::kBecameFull);
  // Buffered only (a commit hint): it proves no room on the disk.
  EXPECT_EQ(settle(q.Take(), 1, Status::OK(), 100), Outcome::kPersisted);
  EXPECT_TRUE(q.retrying());
  q.Push(MakeBatch(2));
  EXPECT_EQ(settle(q.Take(), 1, Status::OK(), 100), Outcome::kSpaceReturned);
}

TEST(PersistQueueTest, OtherFailuresAreFatalAndHoldNothing) {
  PersistQueue q(Timing());
  Settler settle{&q, {}};
  q.Push(MakeBatch(1));
  q.Push(MakeBatch(2));
  EXPECT_EQ(settle(q.Take(), 1, Status::IOError("wal: fdatasync: Input/output error"), 0),
            Outcome::kFatal);
  EXPECT_EQ(settle.advanced, std::vector<uint64_t>{1});  // durable all the same
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.retrying());
  // Fatal while full, too.
  q.Push(MakeBatch(3));
  EXPECT_EQ(settle(q.Take(), 0, kNoSpace, 0), Outcome::kBecameFull);
  EXPECT_EQ(settle(q.Take(), 0, Status::Corruption("No space left on device"), 100),
            Outcome::kFatal);
}

}  // namespace
}  // namespace mesh::core::raft
