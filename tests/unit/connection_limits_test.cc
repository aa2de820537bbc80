// Unit tests of core/connection_limits: L1 (per source) and L2 (in
// total) for connections before their handshake, the release of a slot, and the source key
// (IPv4, IPv4-mapped IPv6, an IPv6 /64).
#include "core/connection_limits.h"

#include <gtest/gtest.h>

#include <string>

namespace mesh::core {
namespace {

ConnectionLimitsOptions Limits(size_t per_source, size_t total) {
  ConnectionLimitsOptions o;
  o.max_pending_per_source = per_source;
  o.max_pending_total = total;
  return o;
}

TEST(ConnectionLimits, OneSourceGetsAtMostItsShare) {
  ConnectionLimits limits(Limits(3, 100));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limits.Admit("10.0.0.1"), ConnectionVerdict::kAdmit);
  EXPECT_EQ(limits.Admit("10.0.0.1"), ConnectionVerdict::kSourceFull);
  EXPECT_EQ(limits.Admit("10.0.0.1"), ConnectionVerdict::kSourceFull);
  // Refusals count nothing; another source is not affected.
  EXPECT_EQ(limits.pending(), 3u);
  EXPECT_EQ(limits.pending_from("10.0.0.1"), 3u);
  EXPECT_EQ(limits.Admit("10.0.0.2"), ConnectionVerdict::kAdmit);
  EXPECT_EQ(limits.pending(), 4u);
}

TEST(ConnectionLimits, ManySourcesTogetherGetAtMostTheTotal) {
  ConnectionLimits limits(Limits(2, 5));
  int admitted = 0;
  for (int i = 0; i < 20; ++i) {
    ConnectionVerdict v = limits.Admit("10.0.0." + std::to_string(i));
    if (v == ConnectionVerdict::kAdmit) {
      admitted++;
    } else {
      EXPECT_EQ(v, ConnectionVerdict::kTotalFull) << i;
    }
  }
  EXPECT_EQ(admitted, 5);
  EXPECT_EQ(limits.pending(), 5u);
  EXPECT_EQ(limits.sources(), 5u);
}

TEST(ConnectionLimits, ASourceOverItsShareIsToldSoEvenWhenTheTotalIsFullToo) {
  ConnectionLimits limits(Limits(2, 2));
  EXPECT_EQ(limits.Admit("a"), ConnectionVerdict::kAdmit);
  EXPECT_EQ(limits.Admit("a"), ConnectionVerdict::kAdmit);
  EXPECT_EQ(limits.Admit("a"), ConnectionVerdict::kSourceFull);
  EXPECT_EQ(limits.Admit("b"), ConnectionVerdict::kTotalFull);
}

TEST(ConnectionLimits, AReleasedSlotIsFreeAgainAndAnIdleSourceIsForgotten) {
  ConnectionLimits limits(Limits(2, 3));
  ASSERT_EQ(limits.Admit("a"), ConnectionVerdict::kAdmit);
  ASSERT_EQ(limits.Admit("a"), ConnectionVerdict::kAdmit);
  ASSERT_EQ(limits.Admit("b"), ConnectionVerdict::kAdmit);
  EXPECT_EQ(limits.Admit("c"), ConnectionVerdict::kTotalFull);
  limits.Release("a");
  EXPECT_EQ(limits.pending_from("a"), 1u);
  EXPECT_EQ(limits.Admit("c"), ConnectionVerdict::kAdmit);
  limits.Release("b");
  limits.Release("c");
  limits.Release("a");
  EXPECT_EQ(limits.pending(), 0u);
  EXPECT_EQ(limits.sources(), 0u);  // memory: nothing kept for sources with nothing pending
  // Releasing what is not counted changes nothing (no underflow).
  limits.Release("a");
  limits.Release("never");
  EXPECT_EQ(limits.pending(), 0u);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(limits.Admit("a"), ConnectionVerdict::kAdmit);
  EXPECT_EQ(limits.Admit("a"), ConnectionVerdict::kSourceFull);
}

TEST(ConnectionLimits, TheDefaultsAreThoseDocumented) {
  ConnectionLimits limits;
  EXPECT_EQ(limits.options().max_pending_per_source, 32u);
  EXPECT_EQ(limits.options().max_pending_total, 512u);
  for (int i = 0; i < 32; ++i) ASSERT_EQ(limits.Admit("h"), ConnectionVerdict::kAdmit);
  EXPECT_EQ(limits.Admit("h"), ConnectionVerdict::kSourceFull);
}

TEST(ConnectionLimits, VerdictsAreDescribedWithTheirLimit) {
  ConnectionLimitsOptions o = Limits(7, 99);
  EXPECT_EQ(DescribeVerdict(ConnectionVerdict::kAdmit, o), "");
  EXPECT_NE(DescribeVerdict(ConnectionVerdict::kSourceFull, o).find("one address"),
            std::string::npos);
  EXPECT_NE(DescribeVerdict(ConnectionVerdict::kSourceFull, o).find("limit 7"), std::string::npos);
  EXPECT_NE(DescribeVerdict(ConnectionVerdict::kTotalFull, o).find("limit 99 in total"),
            std::string::npos);
}

TEST(ConnectionSourceKey, IPv4AndMappedIPv4AreOneSource) {
  const uint8_t v4[4] = {192, 168, 1, 20};
  EXPECT_EQ(ConnectionSourceKey(v4, 4), "192.168.1.20");
  const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 20};
  EXPECT_EQ(ConnectionSourceKey(mapped, 16), "192.168.1.20");
}

TEST(ConnectionSourceKey, AnIPv6SourceIsItsSlash64) {
  const uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0xab, 0xcd, 1, 2, 3, 4, 5, 6, 7, 8};
  const uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0xab, 0xcd, 9, 9, 9, 9, 9, 9, 9, 9};
  const uint8_t c[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0xab, 0xce, 1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_EQ(ConnectionSourceKey(a, 16), "2001:db8:1:abcd::/64");
  EXPECT_EQ(ConnectionSourceKey(a, 16), ConnectionSourceKey(b, 16));
  EXPECT_NE(ConnectionSourceKey(a, 16), ConnectionSourceKey(c, 16));
  const uint8_t loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_EQ(ConnectionSourceKey(loopback, 16), "0:0:0:0::/64");
  EXPECT_EQ(ConnectionSourceKey(a, 5), "?");
}

}  // namespace
}  // namespace mesh::core
