// Random fault schedules: kShards x kSeedsPerShard seeds, each a
// rich schedule (>= 60 virtual seconds, >= 100 client operations, >= 5 faults, 3 or 5
// voters) with every invariant of sim_checker.h checked after every step. Split into many
// test cases so that `ctest -L sim -j2` runs them in parallel. A failure prints the seed,
// the violation, the last events and the command that replays it (docs/simulation.md).
#include <gtest/gtest.h>

#include "sim/support/sim_schedule.h"

namespace mesh::sim {
namespace {

constexpr int kShards = 50;
constexpr uint64_t kSeedsPerShard = 40;  // 2,000 schedules in all

class RandomSchedules : public ::testing::TestWithParam<int> {};

TEST_P(RandomSchedules, NoViolation) {
  const uint64_t first = 1 + static_cast<uint64_t>(GetParam()) * kSeedsPerShard;
  uint64_t ops = 0, faults = 0;
  double virtual_s = 0;
  for (uint64_t seed = first; seed < first + kSeedsPerShard; ++seed) {
    ScheduleResult r = RunSchedule(seed);
    ASSERT_TRUE(r.ok) << r.report;
    ASSERT_TRUE(r.rich) << r.report;
    ops += r.stats.client_ops;
    faults += r.stats.faults;
    virtual_s += r.virtual_time / 1e6;
  }
  RecordProperty("schedules", static_cast<int>(kSeedsPerShard));
  RecordProperty("virtual_seconds", static_cast<int>(virtual_s));
  std::printf("seeds %llu..%llu: %llu schedules, %.0f virtual s, %llu client ops, %llu faults\n",
              static_cast<unsigned long long>(first),
              static_cast<unsigned long long>(first + kSeedsPerShard - 1),
              static_cast<unsigned long long>(kSeedsPerShard), virtual_s,
              static_cast<unsigned long long>(ops), static_cast<unsigned long long>(faults));
}

INSTANTIATE_TEST_SUITE_P(Seeds, RandomSchedules, ::testing::Range(0, kShards));

// A seed is a replay: the same seed gives the same run, event for event.
TEST(RandomScheduleReplay, SameSeedSameRun) {
  for (uint64_t seed : {7u, 8u}) {
    ScheduleResult a = RunSchedule(seed);
    ScheduleResult b = RunSchedule(seed);
    EXPECT_EQ(a.stats.events, b.stats.events) << seed;
    EXPECT_EQ(a.stats.messages, b.stats.messages) << seed;
    EXPECT_EQ(a.stats.client_ops, b.stats.client_ops) << seed;
    EXPECT_EQ(a.stats.grants, b.stats.grants) << seed;
    EXPECT_EQ(a.max_applied, b.max_applied) << seed;
    EXPECT_EQ(a.leader_terms, b.leader_terms) << seed;
  }
}

// The schedules run the ordering of core/raft/raft.h as net/ does: syncs that complete
// later, batches taken, sent and applied while one is in flight, entries applied before the
// node's own copy is written, crashes in the middle of a sync.
TEST(RandomSchedulePersistence, PipelinedOrderingRuns) {
  SimStats total;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    ScheduleResult r = RunSchedule(seed);
    ASSERT_TRUE(r.ok) << r.report;
    total.syncs += r.stats.syncs;
    total.behind_sync += r.stats.behind_sync;
    total.applied_unsynced += r.stats.applied_unsynced;
    total.mid_sync_crashes += r.stats.mid_sync_crashes;
  }
  std::printf("seeds 1..10: %llu syncs, %llu batches behind a sync, %llu entries applied before "
              "the own copy was written, %llu crashes mid-sync\n",
              static_cast<unsigned long long>(total.syncs),
              static_cast<unsigned long long>(total.behind_sync),
              static_cast<unsigned long long>(total.applied_unsynced),
              static_cast<unsigned long long>(total.mid_sync_crashes));
  EXPECT_GT(total.syncs, 0u);
  EXPECT_GT(total.behind_sync, 0u);
  EXPECT_GT(total.applied_unsynced, 0u);
  EXPECT_GT(total.mid_sync_crashes, 0u);
}

}  // namespace
}  // namespace mesh::sim
