// Unit tests of core/snapshot_policy: never with every = 0 (P1), not before the floor of
// every + stagger entries (P2), not before the log since the last snapshot holds log_ratio
// times its size, or the table's size now if it shrank (P3), and a table that grows to a million
// locks is snapshotted a handful of times instead of once per `every` entries.
#include "core/snapshot_policy.h"

#include <gtest/gtest.h>

namespace mesh::core {
namespace {

TEST(SnapshotPolicy, EveryZeroNeverSnapshots) {
  EXPECT_FALSE(SnapshotDue({0, 0, 1.0}, {1'000'000'000, 1'000'000'000, 0}));
}

TEST(SnapshotPolicy, TheFloorIsEveryPlusTheStagger) {
  const SnapshotPolicyOptions o{100, 30, 1.0};
  EXPECT_FALSE(SnapshotDue(o, {129, 1'000'000, 10}));
  EXPECT_TRUE(SnapshotDue(o, {130, 1'000'000, 10}));
  EXPECT_TRUE(SnapshotDue(o, {130, 0, 0})) << "no snapshot yet: the floor alone";
}

TEST(SnapshotPolicy, TheLogMustOutweighTheLastSnapshot) {
  const SnapshotPolicyOptions o{100, 0, 1.0};
  EXPECT_FALSE(SnapshotDue(o, {5000, 9'999, 10'000}));
  EXPECT_TRUE(SnapshotDue(o, {5000, 10'000, 10'000}));
  EXPECT_FALSE(SnapshotDue({100, 0, 2.0}, {5000, 19'999, 10'000}));
  EXPECT_TRUE(SnapshotDue({100, 0, 2.0}, {5000, 20'000, 10'000}));
  EXPECT_TRUE(SnapshotDue({100, 0, 0.0}, {100, 1, 10'000})) << "ratio 0: the floor alone";
}

TEST(SnapshotPolicy, AShrunkTableIsMeasuredAtItsSizeNow) {
  const SnapshotPolicyOptions o{100, 0, 1.0};
  // The last snapshot held 1000 locks in 100,000 bytes; 100 are left: 10,000 bytes.
  EXPECT_FALSE(SnapshotDue(o, {5000, 9'999, 100'000, 1000, 100}));
  EXPECT_TRUE(SnapshotDue(o, {5000, 10'000, 100'000, 1000, 100}));
  EXPECT_TRUE(SnapshotDue(o, {100, 1, 100'000, 1000, 0})) << "emptied: the floor alone";
  EXPECT_FALSE(SnapshotDue(o, {99, 1, 100'000, 1000, 0}));
  EXPECT_FALSE(SnapshotDue(o, {5000, 99'999, 100'000, 1000, 2000})) << "grown: the last size";
}

TEST(SnapshotPolicy, AGrowingTableIsSnapshottedGeometricallyNotPerEvery) {
  // 1,000,000 locks taken one entry each: ~150 log bytes per entry, ~130 snapshot bytes per
  // held lock. Per `every` alone that is ten snapshots of 0.1 .. 1 M locks (5.5 M locks
  // encoded); by volume, each snapshot waits for a log as big as the last one.
  const SnapshotPolicyOptions o{100'000, 0, 1.0};
  SnapshotProgress p;
  uint64_t snapshots = 0, encoded = 0;
  for (uint64_t held = 1; held <= 1'000'000; ++held) {
    ++p.entries_since;
    p.log_bytes_since += 150;
    p.held_now = held;
    if (SnapshotDue(o, p)) {
      ++snapshots;
      encoded += held;
      p = {0, 0, held * 130, held, held};
    }
  }
  EXPECT_LE(snapshots, 5u);
  EXPECT_GE(snapshots, 3u);
  EXPECT_LT(encoded, 2'000'000u);
}

TEST(SnapshotPolicy, StaggerIsUpToHalfOfEveryAndZeroStandalone) {
  EXPECT_EQ(SnapshotStagger(100'000, "n1", true), 0u);
  for (const char* id : {"n1", "n2", "n3", "a-long-node-id"}) {
    EXPECT_LT(SnapshotStagger(100'000, id, false), 50'000u) << id;
  }
  EXPECT_NE(SnapshotStagger(100'000, "n1", false), SnapshotStagger(100'000, "n2", false));
}

}  // namespace
}  // namespace mesh::core
