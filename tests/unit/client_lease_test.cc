// Unit tests of core/lease/client_lease.h: the client's own lease (docs/design.md §4), based on
// the client's send time and the node's remaining lease, with the drift bound and margin.
#include "core/lease/client_lease.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace mesh::core::lease {
namespace {

ClientLeaseOptions Options() {
  ClientLeaseOptions o;
  o.max_drift = 0.01;
  o.margin = 100'000;
  return o;
}

TEST(ClientLeaseTest, NoLeaseBeforeTheFirstReply) {
  ClientLease lease(Options());
  EXPECT_FALSE(lease.Valid(0));
  EXPECT_FALSE(lease.Valid(1'000'000));
  EXPECT_EQ(lease.valid_until(), 0u);
  EXPECT_EQ(lease.NextDeadline(), UINT64_MAX);
  EXPECT_FALSE(lease.Lapsed(100'000'000)) << "a lease never held never lapses";
  lease.MakeRequest(1'000'000);
  EXPECT_FALSE(lease.Valid(1'000'000)) << "a request alone gives nothing";
}

TEST(ClientLeaseTest, LeaseEndsAtSendTimePlusRemainingLessDriftAndMargin) {
  ClientLease lease(Options());
  uint64_t seq = lease.MakeRequest(5'000'000);
  lease.OnReply(seq, 2'000'000);
  // 5 s + 2 s * 0.99 - 0.1 s
  EXPECT_EQ(lease.valid_until(), 5'000'000u + 1'980'000u - 100'000u);
  EXPECT_TRUE(lease.Valid(6'879'999));
  EXPECT_FALSE(lease.Valid(6'880'000));
  EXPECT_EQ(lease.NextDeadline(), 6'880'000u);
  EXPECT_EQ(lease.LeaseEnd(5'000'000, 2'000'000), 6'880'000u);
}

TEST(ClientLeaseTest, ALateReplyGivesAShortLeaseNeverLongerThanSendPlusRemaining) {
  ClientLease lease(Options());
  // Sent at 1 s; the node (frozen meanwhile) answers 2.5 s later with 2.87 s remaining.
  uint64_t seq = lease.MakeRequest(1'000'000);
  lease.OnReply(seq, 2'870'000);
  const Time end = lease.valid_until();
  EXPECT_LE(end, 1'000'000u + 2'870'000u);
  EXPECT_EQ(end, 1'000'000u + 2'841'300u - 100'000u);
  // Processed at 3.5 s: only what is left of the lease counts, not 2.87 s from now.
  EXPECT_TRUE(lease.Valid(3'500'000));
  EXPECT_FALSE(lease.Valid(3'500'000 + 2'870'000 - 100'000));
  // A reply that comes after its whole lease has gone gives nothing usable.
  ClientLease late(Options());
  uint64_t s2 = late.MakeRequest(1'000'000);
  late.OnReply(s2, 500'000);
  EXPECT_FALSE(late.Valid(1'500'000));
  EXPECT_LT(late.valid_until(), 1'500'000u);
}

TEST(ClientLeaseTest, ZeroOrTinyRemainingGivesNoLease) {
  ClientLease lease(Options());
  uint64_t seq = lease.MakeRequest(1'000'000);
  lease.OnReply(seq, 0);
  EXPECT_FALSE(lease.Valid(1'000'000));
  EXPECT_EQ(lease.valid_until(), 1'000'000u) << "no lease: ends at the send time";
  // 101 ms * 0.99 = 99.99 ms <= margin: no lease either.
  seq = lease.MakeRequest(2'000'000);
  lease.OnReply(seq, 101'000);
  EXPECT_FALSE(lease.Valid(2'000'000));
  // Just above the margin: a 1 us lease.
  seq = lease.MakeRequest(3'000'000);
  lease.OnReply(seq, 101'011);  // floor(101011 * 0.99) = 100000 (not above): none
  EXPECT_FALSE(lease.Valid(3'000'000));
  seq = lease.MakeRequest(4'000'000);
  lease.OnReply(seq, 101'020);  // floor(101020 * 0.99) = 100009: 9 us
  EXPECT_TRUE(lease.Valid(4'000'008));
  EXPECT_FALSE(lease.Valid(4'000'009));
}

TEST(ClientLeaseTest, UnknownDuplicateAndStaleRepliesAreIgnored) {
  ClientLease lease(Options());
  lease.OnReply(7, 5'000'000);  // never sent
  EXPECT_FALSE(lease.Valid(0));
  EXPECT_EQ(lease.valid_until(), 0u);
  uint64_t a = lease.MakeRequest(1'000'000);
  uint64_t b = lease.MakeRequest(2'000'000);
  EXPECT_NE(a, b);
  EXPECT_EQ(lease.outstanding(), 2u);
  lease.OnReply(b, 1'000'000);
  const Time end = lease.valid_until();
  EXPECT_EQ(end, 2'000'000u + 990'000u - 100'000u);
  EXPECT_EQ(lease.outstanding(), 0u) << "the older request is forgotten with the newer reply";
  // The older request's reply, late, would have given a later end; it is stale.
  lease.OnReply(a, 10'000'000);
  EXPECT_EQ(lease.valid_until(), end);
  // A duplicate of an answered reply is ignored as well.
  lease.OnReply(b, 10'000'000);
  EXPECT_EQ(lease.valid_until(), end);
}

TEST(ClientLeaseTest, OnlyTheLatestRequestsAreRemembered) {
  ClientLease lease(Options());
  std::vector<uint64_t> seqs;
  for (size_t i = 0; i < ClientLease::kMaxOutstanding + 1; ++i) {
    seqs.push_back(lease.MakeRequest(1'000'000 + i));
  }
  EXPECT_EQ(lease.outstanding(), ClientLease::kMaxOutstanding);
  lease.OnReply(seqs[0], 5'000'000);  // forgotten
  EXPECT_EQ(lease.valid_until(), 0u);
  lease.OnReply(seqs[1], 5'000'000);  // still remembered
  EXPECT_EQ(lease.valid_until(), lease.LeaseEnd(1'000'001, 5'000'000));
}

TEST(ClientLeaseTest, LeaseNeverShrinks) {
  ClientLease lease(Options());
  uint64_t a = lease.MakeRequest(1'000'000);
  lease.OnReply(a, 3'000'000);
  const Time end = lease.valid_until();
  // A later renewal with less remaining (the node's lease is older than it was) does not
  // shorten what the earlier reply proved.
  uint64_t b = lease.MakeRequest(1'500'000);
  lease.OnReply(b, 1'000'000);
  EXPECT_EQ(lease.valid_until(), end);
  uint64_t c = lease.MakeRequest(2'000'000);
  lease.OnReply(c, 0);
  EXPECT_EQ(lease.valid_until(), end);
}

TEST(ClientLeaseTest, LapsesOncePerLeaseEnd) {
  ClientLease lease(Options());
  uint64_t a = lease.MakeRequest(0);
  lease.OnReply(a, 1'100'000);  // ends at 0.989 s
  const Time end = lease.valid_until();
  EXPECT_EQ(end, 989'000u);
  EXPECT_FALSE(lease.Lapsed(end - 1));
  EXPECT_TRUE(lease.Lapsed(end));
  EXPECT_FALSE(lease.Lapsed(end + 1)) << "reported once";
  EXPECT_EQ(lease.NextDeadline(), UINT64_MAX);
  // A renewal sets a new end, which lapses once too.
  uint64_t b = lease.MakeRequest(2'000'000);
  lease.OnReply(b, 1'100'000);
  EXPECT_EQ(lease.NextDeadline(), 2'989'000u);
  EXPECT_TRUE(lease.Valid(2'000'000));
  EXPECT_FALSE(lease.Lapsed(2'988'999));
  EXPECT_TRUE(lease.Lapsed(3'000'000));
  EXPECT_FALSE(lease.Lapsed(3'000'001));
  // A reply whose lease has already ended reports one more lapse (nothing can be held).
  uint64_t c = lease.MakeRequest(3'100'000);
  lease.OnReply(c, 1'100'000);
  EXPECT_TRUE(lease.Lapsed(10'000'000));
  EXPECT_FALSE(lease.Lapsed(10'000'001));
}

TEST(ClientLeaseTest, DegenerateDriftIsClampedToTheSafeSide) {
  ClientLeaseOptions o = Options();
  o.max_drift = -0.5;  // would lengthen the lease past the node's
  ClientLease lease(o);
  EXPECT_LE(lease.LeaseEnd(1'000'000, 2'000'000), 1'000'000u + 2'000'000u - 100'000u);
  o.max_drift = std::nan("");
  ClientLease nan_lease(o);
  EXPECT_LE(nan_lease.LeaseEnd(1'000'000, 2'000'000), 1'000'000u + 2'000'000u - 100'000u);
  o.max_drift = 2.0;
  ClientLease huge(o);
  EXPECT_EQ(huge.LeaseEnd(1'000'000, 2'000'000), 1'000'000u) << "no lease at all";
  EXPECT_LE(lease.LeaseEnd(5, UINT64_MAX - 10), UINT64_MAX);
}

// The argument of client_lease.h, checked on random schedules: clocks whose rates lie within
// [1 - d, 1 + d] of real time (drift bound 2d / (1 + d) <= 1%), a request delayed on its way
// to the node, the node's reply delayed back. The client's lease always ends (in real time)
// strictly before the node's lease does.
TEST(ClientLeaseTest, ClientLeaseEndsBeforeTheNodeLeaseOnRandomSchedules) {
  std::mt19937_64 rng(1234);
  const double d = 0.00499;
  std::uniform_real_distribution<double> rate(1.0 - d, 1.0 + d);
  std::uniform_real_distribution<double> delay(0.0, 3.0);      // seconds
  std::uniform_real_distribution<double> remaining(0.0, 3.0);  // seconds
  std::uniform_real_distribution<double> offset(0.0, 1000.0);
  for (int i = 0; i < 100000; ++i) {
    const double client_rate = rate(rng), node_rate = rate(rng);
    const double client_offset = offset(rng);
    const double send_real = delay(rng);              // C
    const double node_real = send_real + delay(rng);  // P >= C
    const double node_remaining = remaining(rng);     // node-clock seconds left at P
    const double node_end_real = node_real + node_remaining / node_rate;  // G
    ClientLeaseOptions o = Options();
    o.margin = 1;  // the drift bound alone must keep the client inside the node's lease
    ClientLease lease(o);
    auto client_clock = [&](double real) {
      return static_cast<Time>(std::floor((client_offset + real * client_rate) * 1e6));
    };
    uint64_t seq = lease.MakeRequest(client_clock(send_real));
    lease.OnReply(seq, static_cast<Time>(std::floor(node_remaining * 1e6)));
    if (lease.valid_until() <= client_clock(send_real)) continue;  // no lease given
    // Real time at which the client's clock reaches valid_until.
    const double client_end_real =
        (static_cast<double>(lease.valid_until()) / 1e6 - client_offset) / client_rate;
    ASSERT_LT(client_end_real, node_end_real)
        << "schedule " << i << ": the client's lease outlived its node's";
  }
}

}  // namespace
}  // namespace mesh::core::lease
