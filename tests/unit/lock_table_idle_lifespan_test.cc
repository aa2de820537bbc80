// core/lock_table: FLoM's resource idle lifespan (`flom -i MS`, Acquire.idle_lifespan_ms).
// A queue created with a lifespan still exists, for no_create requests (`flom -e no`), for
// that long after the Release or Cancel that emptied it, by the commands' stamps; the
// lifespan is the creating request's; a session's end (no stamp) does not linger; and a
// lingering queue survives a snapshot.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>

#include "core/lock_table.h"

namespace mesh::core {
namespace {

constexpr int64_t kMs = 1000000;
constexpr int64_t kT0 = 1700000000LL * 1000 * kMs;  // a wall-clock stamp, ns

class IdleLifespanTest : public ::testing::Test {
 protected:
  ApplyResult Apply(const pb::Command& c) { return table_->Apply(next_index_++, c); }

  pb::SessionKey Open(uint64_t client) {
    pb::SessionKey k;
    k.set_node_id("n1");
    k.set_client_id(client);
    pb::Command c;
    *c.mutable_open_session()->mutable_session() = k;
    EXPECT_EQ(Apply(c).result.code(), pb::GRANTED);
    return k;
  }
  uint64_t NextSeq(const pb::SessionKey& k) { return ++seqs_[k.client_id()]; }

  /// Acquire at `stamp` (ns); `lifespan_ms` is -i, `no_create` is -e no, `wait` false is -o 0.
  pb::CommandResult Acquire(const pb::SessionKey& k, const std::string& resource, int64_t stamp,
                            int64_t lifespan_ms = 0, bool no_create = false, bool wait = true) {
    pb::Command c;
    pb::Acquire* a = c.mutable_acquire();
    *a->mutable_session() = k;
    a->set_seq(NextSeq(k));
    a->set_resource(resource);
    a->set_mode(pb::EX);
    a->set_wait(wait);
    a->set_no_create(no_create);
    a->set_stamp_unix_ns(stamp);
    a->set_idle_lifespan_ms(lifespan_ms);
    return Apply(c).result;
  }
  /// `flom -e no -o 0` at `stamp`: GRANTED (and held), BUSY or CANT_WAIT.
  pb::ResultCode TryNoCreate(const pb::SessionKey& k, const std::string& resource, int64_t stamp) {
    pb::CommandResult r = Acquire(k, resource, stamp, 0, /*no_create=*/true, /*wait=*/false);
    return r.code();
  }
  pb::CommandResult Release(const pb::SessionKey& k, uint64_t lock_id, int64_t stamp) {
    pb::Command c;
    pb::Release* r = c.mutable_release();
    *r->mutable_session() = k;
    r->set_seq(NextSeq(k));
    r->set_lock_id(lock_id);
    r->set_stamp_unix_ns(stamp);
    return Apply(c).result;
  }
  pb::CommandResult Cancel(const pb::SessionKey& k, uint64_t lock_id, int64_t stamp) {
    pb::Command c;
    pb::Cancel* r = c.mutable_cancel();
    *r->mutable_session() = k;
    r->set_seq(NextSeq(k));
    r->set_lock_id(lock_id);
    r->set_stamp_unix_ns(stamp);
    return Apply(c).result;
  }

  std::unique_ptr<LockTable> table_ = std::make_unique<LockTable>();
  uint64_t next_index_ = 1;
  std::map<uint64_t, uint64_t> seqs_;
};

TEST_F(IdleLifespanTest, NoCreateFindsTheResourceWithinItsIdleLifespan) {
  pb::SessionKey a = Open(1);
  pb::SessionKey b = Open(2);
  pb::CommandResult held = Acquire(a, "R", kT0, /*lifespan_ms=*/1000);
  ASSERT_EQ(held.code(), pb::GRANTED);
  ASSERT_EQ(Release(a, held.lock_id(), kT0 + 10 * kMs).code(), pb::RELEASED);
  // 500 ms after the release: it exists; granted, and released again at +600 ms.
  pb::CommandResult again = Acquire(b, "R", kT0 + 510 * kMs, 0, /*no_create=*/true, false);
  ASSERT_EQ(again.code(), pb::GRANTED) << again.message();
  ASSERT_EQ(Release(b, again.lock_id(), kT0 + 600 * kMs).code(), pb::RELEASED);
  // The lifespan restarts at that release (it is the queue's, from its creator): +1500 ms
  // is within 1000 ms of +600 ms.
  pb::CommandResult third = Acquire(b, "R", kT0 + 1500 * kMs, 0, /*no_create=*/true, false);
  ASSERT_EQ(third.code(), pb::GRANTED) << third.message();
  ASSERT_EQ(Release(b, third.lock_id(), kT0 + 1500 * kMs).code(), pb::RELEASED);
  // Gone 1000 ms after the last release.
  EXPECT_EQ(TryNoCreate(b, "R", kT0 + 2500 * kMs), pb::CANT_WAIT);
}

TEST_F(IdleLifespanTest, GoneOnceTheLifespanHasPassed) {
  pb::SessionKey a = Open(1);
  pb::SessionKey b = Open(2);
  pb::CommandResult held = Acquire(a, "R", kT0, 1000);
  ASSERT_EQ(Release(a, held.lock_id(), kT0).code(), pb::RELEASED);
  EXPECT_EQ(TryNoCreate(b, "R", kT0 + 1000 * kMs), pb::CANT_WAIT);
  // Without a lifespan it is gone at once (lockmesh's and FLoM's default).
  pb::CommandResult plain = Acquire(a, "S", kT0);
  ASSERT_EQ(Release(a, plain.lock_id(), kT0).code(), pb::RELEASED);
  EXPECT_EQ(TryNoCreate(b, "S", kT0 + 1), pb::CANT_WAIT);
  // After the lifespan, a waiting -e no request waits for a new creator again.
  pb::CommandResult waits = Acquire(b, "R", kT0 + 2000 * kMs, 0, /*no_create=*/true, true);
  EXPECT_EQ(waits.code(), pb::QUEUED);
  EXPECT_EQ(Acquire(a, "R", kT0 + 2001 * kMs).code(), pb::GRANTED);
}

TEST_F(IdleLifespanTest, TheLifespanIsTheCreatorsAndWorksForEveryType) {
  pb::SessionKey a = Open(1);
  pb::SessionKey b = Open(2);
  // Created without a lifespan: a later holder's -i does not change it.
  pb::CommandResult first = Acquire(a, "pool[2]", kT0, 0);
  pb::CommandResult second = Acquire(b, "pool[2]", kT0, 5000);
  ASSERT_EQ(second.code(), pb::GRANTED);
  Release(a, first.lock_id(), kT0);
  Release(b, second.lock_id(), kT0);
  EXPECT_EQ(TryNoCreate(b, "pool[2]", kT0 + kMs), pb::CANT_WAIT);
  // Created with one: a numeric, a set and a hierarchical queue linger.
  for (const char* name : {"pool[2]", "red.green", "/a/b"}) {
    pb::CommandResult h = Acquire(a, name, kT0, 100);
    ASSERT_EQ(h.code(), pb::GRANTED) << name;
    Release(a, h.lock_id(), kT0);
    EXPECT_EQ(TryNoCreate(b, name, kT0 + 50 * kMs), pb::GRANTED) << name;
  }
}

TEST_F(IdleLifespanTest, ASessionEndDoesNotStartItAReleaseAfterOneDoes) {
  pb::SessionKey a = Open(1);
  pb::SessionKey b = Open(2);
  pb::SessionKey c = Open(3);
  pb::CommandResult held = Acquire(a, "R", kT0, 1000);
  pb::CommandResult waiting = Acquire(b, "R", kT0);
  ASSERT_EQ(waiting.code(), pb::QUEUED);
  Release(a, held.lock_id(), kT0);  // b is granted
  ASSERT_EQ(Release(b, waiting.lock_id(), kT0 + 100 * kMs).code(), pb::RELEASED);
  EXPECT_EQ(TryNoCreate(c, "R", kT0 + 900 * kMs), pb::GRANTED);

  // A session that ends while holding: its node proposes no stamp, nothing lingers.
  pb::CommandResult other = Acquire(a, "T", kT0, 1000);
  ASSERT_EQ(other.code(), pb::GRANTED);
  pb::Command close;
  *close.mutable_close_session()->mutable_session() = a;
  Apply(close);
  EXPECT_EQ(TryNoCreate(c, "T", kT0 + 1), pb::CANT_WAIT);

  // A session end that leaves a holder behind, then that holder's stamped release: lingers.
  pb::SessionKey d = Open(4);
  pb::CommandResult u = Acquire(b, "U", kT0, 1000);
  pb::CommandResult w = Acquire(d, "U", kT0);
  ASSERT_EQ(w.code(), pb::QUEUED);
  pb::Command close_b;
  *close_b.mutable_close_session()->mutable_session() = b;  // u released, w granted
  Apply(close_b);
  ASSERT_EQ(Release(d, w.lock_id(), kT0 + 5 * kMs).code(), pb::RELEASED);
  EXPECT_EQ(TryNoCreate(c, "U", kT0 + 500 * kMs), pb::GRANTED);
  (void)u;
}

TEST_F(IdleLifespanTest, CancelOfTheLastWaiterIsStamped) {
  pb::SessionKey a = Open(1);
  pb::SessionKey b = Open(2);
  pb::CommandResult parked = Acquire(b, "R", kT0, 0, /*no_create=*/true, true);
  ASSERT_EQ(parked.code(), pb::QUEUED);
  pb::CommandResult h = Acquire(a, "R", kT0, 1000);  // creates it; b joins behind
  ASSERT_EQ(h.code(), pb::GRANTED);
  pb::CommandResult w = Acquire(a, "R", kT0);
  ASSERT_EQ(w.code(), pb::QUEUED);
  ASSERT_EQ(Cancel(a, w.lock_id(), kT0).code(), pb::CANCELLED);
  ASSERT_EQ(Release(a, h.lock_id(), kT0).code(), pb::RELEASED);  // b granted
  ASSERT_EQ(Release(b, parked.lock_id(), kT0 + 10 * kMs).code(), pb::RELEASED);
  EXPECT_EQ(TryNoCreate(b, "R", kT0 + 999 * kMs), pb::GRANTED);
}

TEST_F(IdleLifespanTest, ALingeringQueueSurvivesASnapshot) {
  pb::SessionKey a = Open(1);
  pb::CommandResult h = Acquire(a, "R", kT0, 1000);
  Release(a, h.lock_id(), kT0);
  pb::LockTableSnapshot snap;
  table_->Snapshot(&snap);
  std::string encoded;
  table_->EncodeSnapshot(&encoded);
  EXPECT_EQ(encoded, snap.SerializeAsString()) << "the two encodings must agree";
  for (int round = 0; round < 2; ++round) {
    pb::LockTableSnapshot parsed;
    ASSERT_TRUE(parsed.ParseFromString(encoded));
    auto copy = std::make_unique<LockTable>();
    ASSERT_TRUE(copy->Restore(parsed).ok());
    table_ = std::move(copy);
    pb::SessionKey b = Open(10 + static_cast<uint64_t>(round));
    if (round == 0) {
      EXPECT_EQ(TryNoCreate(b, "R", kT0 + 999 * kMs), pb::GRANTED);
      table_->EncodeSnapshot(&encoded);  // R is held now; snapshot again, then expire it
    } else {
      EXPECT_EQ(TryNoCreate(b, "R", kT0 + 999 * kMs), pb::BUSY) << "held by round 0";
    }
  }
}

}  // namespace
}  // namespace mesh::core
