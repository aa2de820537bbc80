// Unit tests of core/lease/lease_tuning: a node's lease margin (T1), keepalive interval (T2)
// and pause threshold (T3) follow from --session-ttl and the election timeout.
#include "core/lease/lease_tuning.h"

#include <gtest/gtest.h>

namespace mesh::core::lease {
namespace {

TEST(LeaseTuning, TheDefaultTtlGivesA100MsMarginAndOneKeepaliveASecond) {
  LeaseOptions o = MeshLeaseOptions(10'000'000, 0.01, 1'000'000);
  EXPECT_EQ(o.session_ttl, 10'000'000u);
  EXPECT_DOUBLE_EQ(o.max_drift, 0.01);
  EXPECT_EQ(o.margin, 100'000u);
  EXPECT_EQ(o.keepalive_interval, 1'000'000u);
  EXPECT_EQ(o.election_timeout, 1'000'000u);
}

TEST(LeaseTuning, AShortTtlScalesTheMarginAndIntervalDownToTheirFloors) {
  LeaseOptions o = MeshLeaseOptions(1'000'000, 0.01, 200'000);
  EXPECT_EQ(o.margin, 50'000u) << "ttl / 20";
  EXPECT_EQ(o.keepalive_interval, 100'000u) << "ttl / 10";
  o = MeshLeaseOptions(100'000, 0.01, 20'000);
  EXPECT_EQ(o.margin, 10'000u) << "at least 10 ms";
  EXPECT_EQ(o.keepalive_interval, 50'000u) << "at least 50 ms";
}

TEST(LeaseTuning, ALongTtlKeepsTheMarginAt100Ms) {
  LeaseOptions o = MeshLeaseOptions(60'000'000, 0.02, 3'000'000);
  EXPECT_EQ(o.margin, 100'000u);
  EXPECT_EQ(o.keepalive_interval, 6'000'000u);
  EXPECT_EQ(o.election_timeout, 3'000'000u);
}

}  // namespace
}  // namespace mesh::core::lease
