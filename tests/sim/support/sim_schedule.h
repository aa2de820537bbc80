// tests/sim/support/sim_schedule: one random fault schedule, entirely determined by a seed
// (docs/simulation.md). A schedule counts only if it is rich (docs/design.md §10): at least 60
// virtual seconds, 100 client operations and 5 injected faults, on 3 or 5 voters.
#ifndef LOCKMESH_TESTS_SIM_SUPPORT_SIM_SCHEDULE_H_
#define LOCKMESH_TESTS_SIM_SUPPORT_SIM_SCHEDULE_H_

#include <cstdint>
#include <string>

#include "sim/support/sim_cluster.h"

namespace mesh::sim {

struct ScheduleResult {
  bool ok = false;          // no violation
  bool rich = false;        // met the bar of docs/design.md §10
  int voters = 0;
  Time virtual_time = 0;
  SimStats stats;
  uint64_t leader_terms = 0;
  uint64_t max_applied = 0;
  std::string report;       // violation, trace and replay command (when !ok or !rich)
};

/// The extra fault kinds, each a bit of RunSchedule's `faults` (the basic faults —
/// partitions, link cuts, crashes, loss bursts, membership — are always on).
enum FaultKind : uint32_t {
  kFreeze = 1,     // a node's process stops (past the session ttl half of the time)
  kClockJump = 2,  // a node's monotonic clock jumps forward past the election timeout
  kWallStep = 4,   // a node's wall clock steps back or forward (and it may restart)
  kRogue = 8,      // a burst of forged messages from a non-member process
  kDiskFull = 16,  // a node's disk fills for a while (the leader's a third of the time)
};
/// The kinds random schedules run by default (CTest, sim_soak).
inline constexpr uint32_t kDefaultFaults = kFreeze | kClockJump | kWallStep | kRogue | kDiskFull;
/// Parses "freeze,jump,wall,rogue,disk" (or "all", "none") into FaultKind bits; false if bad.
bool ParseFaultKinds(const std::string& text, uint32_t* out);

/// Runs the schedule of `seed`. `verbose` prints every event to stderr as it happens.
/// `faults` selects the extra fault kinds (the same seed with other kinds is another
/// schedule).
ScheduleResult RunSchedule(uint64_t seed, bool verbose = false, uint32_t faults = kDefaultFaults);

/// The shell command that replays `seed` (for failure messages).
std::string ReplayCommand(uint64_t seed);

}  // namespace mesh::sim

#endif  // LOCKMESH_TESTS_SIM_SUPPORT_SIM_SCHEDULE_H_
