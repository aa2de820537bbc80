// A full disk in the simulator: the node runs core::DiskFullPolicy as net/node/command_log does
// (tests/sim/support/sim_disk_full.cc). Each scenario checks what the policy promises, on
// top of every invariant of sim_checker.h (an entry is applied only once durable on a
// quorum, recovery keeps what was durable, one holder per exclusive lock).
#include <gtest/gtest.h>

#include "sim/support/sim_cluster.h"

namespace mesh::sim {
namespace {

using core::raft::Role;
constexpr Time kSecond = 1'000'000;

SimOptions Quiet(uint64_t seed) {
  SimOptions o;
  o.seed = seed;
  o.voters = 3;
  o.spares = 0;
  o.drop = 0;
  o.duplicate = 0;
  o.compact_every = 16;  // snapshots are frequent: each one is a write that needs new space
  return o;
}

int WaitForLeader(Cluster& c) {
  c.RunUntil([&] { return c.Leader() >= 0; }, 10 * kSecond);
  return c.Leader();
}

#define EXPECT_NO_VIOLATION(c) EXPECT_FALSE((c).failed()) << (c).Report()

// A follower whose disk is full acknowledges nothing it could not persist (the checker's
// durable-quorum rule fails the run otherwise), while the other two commit on; it refuses
// its clients' new locks, and once space returns it persists what it held and catches up.
TEST(SimDiskFull, FullFollowerHoldsItsBatchesAndCatchesUpWhenSpaceReturns) {
  Cluster c(Quiet(41));
  c.Start();
  const int leader = WaitForLeader(c);
  ASSERT_GE(leader, 0) << c.Report();
  c.RunFor(2 * kSecond);
  const int follower = (leader + 1) % c.size();
  c.FillDisk(follower, 0);
  ASSERT_TRUE(c.RunUntil([&] { return c.DiskFull(follower); }, 10 * kSecond))
      << "the follower never ran out of space\n"
      << c.Report();
  const uint64_t commit_when_full = c.raft(c.Leader())->commit_index();
  const uint64_t refused_before = c.stats().disk_refused;
  c.RunFor(6 * kSecond);
  ASSERT_GE(c.Leader(), 0) << c.Report();
  EXPECT_GT(c.raft(c.Leader())->commit_index(), commit_when_full + 10)
      << "the two nodes with room stopped committing";
  EXPECT_TRUE(c.DiskFull(follower)) << "a retry succeeded although the disk is still full";
  EXPECT_GT(c.stats().disk_refused, refused_before) << "the full node took new lock requests";
  EXPECT_GT(c.stats().disk_held_batches, 0u);

  c.FreeDisk(follower);
  ASSERT_TRUE(c.RunUntil([&] { return !c.DiskFull(follower); }, 5 * kSecond)) << c.Report();
  const Time freed = c.now();
  ASSERT_TRUE(c.RunUntil(
      [&] {
        const int l = c.Leader();
        return l >= 0 && c.raft(follower)->applied_index() >= c.raft(l)->commit_index() &&
               c.GrantsTo(follower, freed) > 0;
      },
      10 * kSecond))
      << "the follower did not catch up and serve after space returned\n"
      << c.Report();
  c.RunFor(2 * kSecond);
  EXPECT_NO_VIOLATION(c);
}

// The leader's disk fills: it refuses new locks at once, the cluster goes on committing with
// the followers' copies (the leader's own unsynced copy never counts), and nothing unsafe
// happens whether it keeps leading or loses leadership; after space returns its clients are
// granted locks again.
TEST(SimDiskFull, FullLeaderRefusesNewLocksAndResumesWhenSpaceReturns) {
  Cluster c(Quiet(42));
  c.Start();
  const int leader = WaitForLeader(c);
  ASSERT_GE(leader, 0) << c.Report();
  c.RunFor(2 * kSecond);
  c.FillDisk(leader, 0);
  ASSERT_TRUE(c.RunUntil([&] { return c.DiskFull(leader); }, 10 * kSecond)) << c.Report();
  const Time full_at = c.now();
  c.RunFor(5 * kSecond);
  EXPECT_GT(c.stats().disk_refused, 0u);
  int granted_elsewhere = 0;
  for (int i = 0; i < c.size(); ++i) {
    if (i != leader) granted_elsewhere += c.GrantsTo(i, full_at);
  }
  EXPECT_GT(granted_elsewhere, 0) << "no lock was granted while one node's disk was full";
  c.FreeDisk(leader);
  const Time freed = c.now();
  ASSERT_TRUE(c.RunUntil([&] { return !c.DiskFull(leader) && c.GrantsTo(leader, freed) > 0; },
                         10 * kSecond))
      << c.Report();
  c.RunFor(2 * kSecond);
  EXPECT_NO_VIOLATION(c);
}

// Two of three disks full: no quorum can persist, so nothing more commits (an entry counted
// on an unsynced copy would be caught by the checker); the cluster keeps its leader or
// elects one, and both nodes resume by themselves when space returns.
TEST(SimDiskFull, MajorityFullStopsCommitsUntilSpaceReturns) {
  Cluster c(Quiet(43));
  c.Start();
  const int leader = WaitForLeader(c);
  ASSERT_GE(leader, 0) << c.Report();
  c.RunFor(2 * kSecond);
  const int a = (leader + 1) % c.size();
  const int b = (leader + 2) % c.size();
  c.FillDisk(a, 0);
  c.FillDisk(b, 0);
  ASSERT_TRUE(c.RunUntil([&] { return c.DiskFull(a) && c.DiskFull(b); }, 15 * kSecond))
      << c.Report();
  c.RunFor(kSecond);  // what was durable on a quorum before they filled commits
  uint64_t highest_commit = 0;
  for (int i = 0; i < c.size(); ++i) highest_commit = std::max(highest_commit, c.raft(i)->commit_index());
  c.RunFor(5 * kSecond);
  for (int i = 0; i < c.size(); ++i) {
    EXPECT_EQ(c.raft(i)->commit_index(), highest_commit)
        << c.id(i) << " saw a commit that no quorum persisted";
  }
  c.FreeDisk(a);
  c.FreeDisk(b);
  std::string why;
  ASSERT_TRUE(c.RunUntil(
      [&] {
        const int l = c.Leader();
        return !c.DiskFull(a) && !c.DiskFull(b) && l >= 0 &&
               c.raft(l)->commit_index() > highest_commit + 5 && c.AllMembersServe(&why);
      },
      15 * kSecond))
      << why << "\n"
      << c.Report();
  EXPECT_NO_VIOLATION(c);
}

// A node restarted on a disk with no room left: it either cannot open its store (then it
// stays down, and starts when space returns) or starts and becomes full at its first
// write; either way it serves again once space returns and nothing it held durably is lost.
TEST(SimDiskFull, RestartOnAFullDiskServesOnceSpaceReturns) {
  Cluster c(Quiet(44));
  c.Start();
  const int leader = WaitForLeader(c);
  ASSERT_GE(leader, 0) << c.Report();
  c.RunFor(3 * kSecond);
  const int victim = (leader + 1) % c.size();
  c.Crash(victim, core::FaultFileSystem::TearMode::kTearLastWrite);
  c.FillDisk(victim, 0);
  c.RunFor(2 * kSecond);
  c.Restart(victim);
  c.RunFor(3 * kSecond);
  c.FreeDisk(victim);
  const Time freed = c.now();
  ASSERT_TRUE(c.RunUntil(
      [&] {
        const int l = c.Leader();
        return c.up(victim) && !c.DiskFull(victim) && l >= 0 &&
               c.raft(victim)->applied_index() >= c.raft(l)->commit_index() &&
               c.GrantsTo(victim, freed) > 0;
      },
      15 * kSecond))
      << c.Report();
  EXPECT_NO_VIOLATION(c);
}

}  // namespace
}  // namespace mesh::sim
