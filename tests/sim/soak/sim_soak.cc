// sim_soak: runs many random fault schedules of the cluster simulator (docs/simulation.md).
//
//   sim_soak --seeds N [--first S]   run seeds S .. S+N-1 (default S = 1), print a summary
//   sim_soak --seed S [--verbose]    replay one seed; --verbose prints every event
//   --faults LIST                    the extra fault kinds to inject (comma-separated
//                                    freeze,jump,wall,rogue,disk; all; none); default: all
//
// A soak prints a progress line every 100 schedules; SIGINT or SIGTERM stops it after the
// schedule in progress, with the summary of what ran.
//
// Exit status: 0 if every schedule passed and was rich, 1 if any violated an invariant or
// was not rich enough, 2 for bad arguments.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sim/support/sim_schedule.h"

namespace {

volatile std::sig_atomic_t stop_requested = 0;
void RequestStop(int) { stop_requested = 1; }

void Usage() {
  std::fprintf(stderr,
               "usage: sim_soak --seeds N [--first S] [--max-failures K] [--faults LIST]\n"
               "       sim_soak --seed S [--verbose] [--faults LIST]\n"
               "       LIST: comma-separated freeze,jump,wall,rogue,disk; all; none\n");
}

bool ParseU64(const char* text, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t seeds = 0, first = 1, single = 0, max_failures = 10;
  bool have_single = false, verbose = false;
  uint32_t fault_kinds = mesh::sim::kDefaultFaults;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](uint64_t* out) {
      if (i + 1 >= argc || !ParseU64(argv[i + 1], out)) {
        std::fprintf(stderr, "sim_soak: %s needs a non-negative integer\n", arg.c_str());
        std::exit(2);
      }
      ++i;
    };
    if (arg == "--seeds") value(&seeds);
    else if (arg == "--first") value(&first);
    else if (arg == "--max-failures") value(&max_failures);
    else if (arg == "--seed") { value(&single); have_single = true; }
    else if (arg == "--verbose") verbose = true;
    else if (arg == "--faults") {
      if (i + 1 >= argc || !mesh::sim::ParseFaultKinds(argv[i + 1], &fault_kinds)) {
        std::fprintf(stderr, "sim_soak: --faults needs freeze,jump,wall,rogue,disk, all or none\n");
        return 2;
      }
      ++i;
    } else if (arg == "--help" || arg == "-h") {
      Usage();
      return 0;
    } else {
      std::fprintf(stderr, "sim_soak: unknown argument %s\n", arg.c_str());
      Usage();
      return 2;
    }
  }
  if (have_single) {
    mesh::sim::ScheduleResult r = mesh::sim::RunSchedule(single, verbose, fault_kinds);
    std::printf("seed %llu: %s, %s; voters=%d virtual=%.1fs ops=%llu grants=%llu lost=%llu "
                "faults=%llu crashes=%llu snapshots=%llu leaders=%llu applied=%llu events=%llu\n"
                "  persistence: syncs=%llu batches_behind_a_sync=%llu applied_before_own_copy=%llu "
                "crashes_mid_sync=%llu\n"
                "  full disks: fills=%llu full_periods=%llu held_batches=%llu refused_locks=%llu\n",
                static_cast<unsigned long long>(single), r.ok ? "ok" : "VIOLATION",
                r.rich ? "rich" : "NOT RICH", r.voters, r.virtual_time / 1e6,
                static_cast<unsigned long long>(r.stats.client_ops),
                static_cast<unsigned long long>(r.stats.grants),
                static_cast<unsigned long long>(r.stats.lost),
                static_cast<unsigned long long>(r.stats.faults),
                static_cast<unsigned long long>(r.stats.crashes),
                static_cast<unsigned long long>(r.stats.snapshots_installed),
                static_cast<unsigned long long>(r.leader_terms),
                static_cast<unsigned long long>(r.max_applied),
                static_cast<unsigned long long>(r.stats.events),
                static_cast<unsigned long long>(r.stats.syncs),
                static_cast<unsigned long long>(r.stats.behind_sync),
                static_cast<unsigned long long>(r.stats.applied_unsynced),
                static_cast<unsigned long long>(r.stats.mid_sync_crashes),
                static_cast<unsigned long long>(r.stats.disk_fills),
                static_cast<unsigned long long>(r.stats.disk_full_periods),
                static_cast<unsigned long long>(r.stats.disk_held_batches),
                static_cast<unsigned long long>(r.stats.disk_refused));
    if (!r.report.empty()) std::printf("%s", r.report.c_str());
    return r.ok && r.rich ? 0 : 1;
  }
  if (seeds == 0) { Usage(); return 2; }
  std::signal(SIGINT, RequestStop);
  std::signal(SIGTERM, RequestStop);
  const auto start = std::chrono::steady_clock::now();
  uint64_t failures = 0, poor = 0, ops = 0, faults = 0;
  double virtual_s = 0;
  uint64_t done = 0;
  for (uint64_t s = first; s < first + seeds && !stop_requested; ++s) {
    mesh::sim::ScheduleResult r = mesh::sim::RunSchedule(s, false, fault_kinds);
    ++done;
    virtual_s += r.virtual_time / 1e6;
    ops += r.stats.client_ops;
    faults += r.stats.faults;
    if (!r.ok) ++failures;
    else if (!r.rich) ++poor;
    if (!r.ok || !r.rich) {
      std::printf("FAIL %s", r.report.c_str());
      std::fflush(stdout);
      if (failures + poor >= max_failures) break;
    }
    if (done % 100 == 0) {
      const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("progress: %llu schedules, %llu violations, %llu not rich, %.0f s wall\n",
                  static_cast<unsigned long long>(done), static_cast<unsigned long long>(failures),
                  static_cast<unsigned long long>(poor), wall);
      std::fflush(stdout);
    }
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (stop_requested) std::printf("stopped by a signal\n");
  std::printf("schedules=%llu (seeds %llu..%llu) violations=%llu not_rich=%llu virtual=%.0fs "
              "client_ops=%llu faults=%llu wall=%.1fs (%.1f ms/schedule)\n",
              static_cast<unsigned long long>(done), static_cast<unsigned long long>(first),
              static_cast<unsigned long long>(first + done - 1),
              static_cast<unsigned long long>(failures), static_cast<unsigned long long>(poor),
              virtual_s, static_cast<unsigned long long>(ops),
              static_cast<unsigned long long>(faults), wall, 1000 * wall / std::max<uint64_t>(done, 1));
  return failures == 0 && poor == 0 ? 0 : 1;
}
