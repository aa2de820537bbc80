// The clients of the real-process chaos test (tests/cluster/chaos_test.cc): one loop
// per host runs `lockmesh lock X -- <section>` with default flags (auto-start on, the host's
// default socket, wait forever, --on-lost term, --grace 5) inside that host's namespace and
// environment, and records every run; the section is a small command (the tool mode of the
// test binary) that writes its records for the history checker (support/history_checker.h).
//
// The section, run as {self, kSectionFlag, RECORD, COUNTER, HOLD_MS}, appends to RECORD (one
// write per line; times are CLOCK_MONOTONIC ns, which every namespace of the machine shares):
//   S <token> <start> <value read> <writer read>   first: reads the counter file
//   P <time>                                        every 20 ms while inside (HOLD_MS)
//   W <value written> <time>                        after writing the counter and fsync
//   E <time>                                        last step, then exit 0
//   T <time>                                        on SIGTERM (the lock was lost): exit 143
// COUNTER holds "<value> <token of its writer>", rewritten in place (pwrite + fsync).
#ifndef LOCKMESH_TESTS_CLUSTER_SUPPORT_CHAOS_CLIENTS_H_
#define LOCKMESH_TESTS_CLUSTER_SUPPORT_CHAOS_CLIENTS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster/support/history_checker.h"
#include "cluster/support/mesh_cluster.h"

namespace lockmesh::testing {

/// First argument that turns a cluster test binary into the chaos section (see above).
inline constexpr const char kSectionFlag[] = "--lockmesh-chaos-section";

/// {/proc/self/exe, kSectionFlag, record, counter, hold_ms}.
std::vector<std::string> SectionArgv(const std::string& record, const std::string& counter,
                                     int hold_ms);

/// One `lockmesh lock` run, as its loop saw it.
struct ChaosRun {
  history::Run run;         // id "h<i>-<k>", host, exit code, begin and exit times
  std::string record;       // the section's record file
  int hold_ms = 0;          // how long its section was asked to stay inside
  std::string stderr_head;  // first 300 bytes of its stderr when it did not exit 0
};

/// The client loops of every host. Start() starts one thread per host; Stop() (also the
/// destructor) lets each finish its current run and joins them. Thread-safe.
class ChaosClients {
 public:
  /// `dir`: where records, the counter and the runs' output go (created). Runs are killed
  /// (exit code -1) after `run_timeout`; each host makes at most `max_runs`.
  ChaosClients(MeshCluster* mesh, std::string resource, std::string dir, uint64_t seed,
               Millis run_timeout = Millis(60000), int max_runs = 4000);
  ~ChaosClients();
  ChaosClients(const ChaosClients&) = delete;
  ChaosClients& operator=(const ChaosClients&) = delete;

  void Start();
  /// Lets every loop finish its current run (abort: kills the runs still going, as hung),
  /// and joins them. Idempotent.
  void Stop(bool abort = false);

  /// Asks host i's loop to make its next section `hold_ms` long, and waits (at most
  /// `timeout`) until that section has started (its S record exists). False on timeout.
  bool RunLongSection(size_t i, int hold_ms, Millis timeout);
  /// Host i's loop starts no new run while paused; Pause waits (at most `timeout`) until its
  /// current run is over and returns whether it is.
  bool Pause(size_t i, Millis timeout);
  void Resume(size_t i);
  /// The record file of the last section RunLongSection asked host i for ("" if none).
  std::string LongRecord(size_t i) const;
  /// Runs whose lock exited 0 so far.
  int successes() const { return successes_.load(); }
  /// Every run so far (a copy).
  std::vector<ChaosRun> Runs() const;
  std::string CounterPath() const { return dir_ + "/counter"; }
  /// The history of all runs (after Stop): sections parsed from the records, runs, counter.
  history::History Collect() const;

 private:
  void Loop(size_t i);

  MeshCluster* mesh_;
  const std::string resource_;
  const std::string dir_;
  const uint64_t seed_;
  const Millis run_timeout_;
  const int max_runs_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> abort_{false};
  std::atomic<int> successes_{0};
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;
  std::vector<ChaosRun> runs_;                 // guarded by mu_
  std::map<size_t, int> long_request_;         // host -> hold ms asked for; guarded by mu_
  std::map<size_t, std::string> long_record_;  // host -> record of the long section; mu_
  std::set<size_t> paused_;                    // guarded by mu_
  std::set<size_t> busy_;                      // hosts whose loop is in a run; mu_
};

}  // namespace lockmesh::testing

#endif  // LOCKMESH_TESTS_CLUSTER_SUPPORT_CHAOS_CLIENTS_H_
