// core::DiskFullPolicy: which failures a node survives, the retry backoff, and what it
// refuses while its disk is full (core/storage/disk_full_policy.h).
#include "core/storage/disk_full_policy.h"

#include <gtest/gtest.h>

#include "core/storage/file_system.h"

namespace mesh::core {
namespace {

using Verdict = DiskFullPolicy::Verdict;

pb::Command Acquire() {
  pb::Command c;
  c.mutable_acquire()->set_resource("r");
  return c;
}

TEST(DiskFullPolicyTest, OnlyNoSpaceIsSurvivedAndOtherFailuresAreFatal) {
  DiskFullPolicy p;
  EXPECT_EQ(p.OnPersistFailed(Status::IOError("wal: fdatasync: Input/output error"), 0),
            Verdict::kFatal);
  EXPECT_EQ(p.OnPersistFailed(Status::Corruption("No space left on device"), 0), Verdict::kFatal);
  EXPECT_FALSE(p.full());
  Status enospc = NoSpaceError("/d/wal/1.wal: pwrite").Annotate("cannot write the log");
  EXPECT_EQ(p.OnPersistFailed(enospc, 0), Verdict::kBecameFull);
  EXPECT_TRUE(p.full());
  EXPECT_EQ(p.OnPersistFailed(enospc, 1), Verdict::kStillFull);  // reported once
  EXPECT_EQ(p.OnPersistFailed(NoSpaceError("x (disk quota exceeded)"), 2), Verdict::kStillFull);
  EXPECT_TRUE(p.OnPersisted());
  EXPECT_FALSE(p.full());
  EXPECT_FALSE(p.OnPersisted());  // nothing to report twice
  EXPECT_EQ(p.OnPersistFailed(enospc, 3), Verdict::kBecameFull);
}

TEST(DiskFullPolicyTest, RetriesBackOffExponentiallyToTheCap) {
  DiskFullOptions o;
  o.first_retry_us = 50;
  o.max_retry_us = 300;
  DiskFullPolicy p(o);
  const Status full = NoSpaceError("f: pwrite");
  EXPECT_FALSE(p.RetryDue(1000000));  // not full: nothing to retry
  p.OnPersistFailed(full, 1000);
  EXPECT_EQ(p.next_retry_us(), 1050u);
  EXPECT_FALSE(p.RetryDue(1049));
  EXPECT_TRUE(p.RetryDue(1050));
  p.OnPersistFailed(full, 1050);
  EXPECT_EQ(p.next_retry_us(), 1150u);
  p.OnPersistFailed(full, 1150);
  EXPECT_EQ(p.next_retry_us(), 1350u);
  p.OnPersistFailed(full, 1350);
  EXPECT_EQ(p.next_retry_us(), 1650u);  // capped at 300
  EXPECT_EQ(p.retries(), 3u);
  p.OnPersisted();
  p.OnPersistFailed(full, 5000);
  EXPECT_EQ(p.next_retry_us(), 5050u);  // a new full period starts over
}

TEST(DiskFullPolicyTest, RefusesNewLocksOnlyWhileFullWithTheReason) {
  DiskFullPolicy p;
  EXPECT_TRUE(p.Admit(Acquire()).ok());
  EXPECT_EQ(p.Describe(), "");
  p.OnPersistFailed(NoSpaceError("/d/wal/1.wal: pwrite"), 0);
  Status refused = p.Admit(Acquire());
  EXPECT_TRUE(refused.IsUnavailable());
  EXPECT_EQ(refused.message(),
            "disk full: /d/wal/1.wal: pwrite: No space left on device; new locks are refused "
            "until space returns (retrying)");
  EXPECT_EQ(p.Describe(), refused.message());
  // What frees something, or lets a client be served at all, is taken.
  for (auto set :
       {+[](pb::Command* c) { c->mutable_release(); }, +[](pb::Command* c) { c->mutable_cancel(); },
        +[](pb::Command* c) { c->mutable_close_session(); },
        +[](pb::Command* c) { c->mutable_expire_node(); },
        +[](pb::Command* c) { c->mutable_open_session(); },
        +[](pb::Command* c) { c->mutable_claim_client_ids(); }}) {
    pb::Command c;
    set(&c);
    EXPECT_TRUE(p.Admit(c).ok()) << c.ShortDebugString();
  }
  p.OnPersisted();
  EXPECT_TRUE(p.Admit(Acquire()).ok());
}

}  // namespace
}  // namespace mesh::core
