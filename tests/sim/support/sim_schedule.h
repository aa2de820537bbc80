// tests/sim/support/sim_schedule: one random fault schedule, entirely determined by a seed
// (docs/simulation.md). A schedule counts only if it is rich (DESIGN.md §10): at least 60
// virtual seconds, 100 client operations and 5 injected faults, on 3 or 5 voters.
#ifndef LOCKMESH_TESTS_SIM_SUPPORT_SIM_SCHEDULE_H_
#define LOCKMESH_TESTS_SIM_SUPPORT_SIM_SCHEDULE_H_

#include <cstdint>
#include <string>

#include "sim/support/sim_cluster.h"

namespace mesh::sim {

struct ScheduleResult {
  bool ok = false;          // no violation
  bool rich = false;        // met the bar of DESIGN.md §10
  int voters = 0;
  Time virtual_time = 0;
  SimStats stats;
  uint64_t leader_terms = 0;
  uint64_t max_applied = 0;
  std::string report;       // violation, trace and replay command (when !ok or !rich)
};

/// Runs the schedule of `seed`. `verbose` prints every event to stderr as it happens.
ScheduleResult RunSchedule(uint64_t seed, bool verbose = false);

/// The shell command that replays `seed` (for failure messages).
std::string ReplayCommand(uint64_t seed);

}  // namespace mesh::sim

#endif  // LOCKMESH_TESTS_SIM_SUPPORT_SIM_SCHEDULE_H_
