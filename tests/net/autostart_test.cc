// Auto-start of a node by `lockmesh lock` when none answers: ten clients
// started at once with no node running start exactly one node, and all
// ten commands run, one at a time.
//
// The clients find the socket and data dir through LOCKMESH_SOCKET / LOCKMESH_DATA_DIR (the
// fixture's environment), so the auto-started node lives in the test's temp dir. Node
// processes are counted from /proc/*/cmdline (argv has "node" and "--socket <our socket>"),
// sampled continuously by a thread while the clients run, and once more afterwards.
#include <atomic>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

class AutostartTest : public ProcessTest {};

struct Interval {
  long long start_ns = 0;
  long long end_ns = 0;
  unsigned long long token = 0;
};

TEST_F(AutostartTest, TenConcurrentClientsStartOneNodeAndRunOneAtATime) {
  ASSERT_FALSE(SocketAccepts(paths_.socket));
  ASSERT_TRUE(NodePidsServing(paths_.socket).empty());

  // Sampler: every node pid ever seen serving our socket.
  std::atomic<bool> stop{false};
  std::set<pid_t> seen;
  size_t max_at_once = 0;
  std::thread sampler([&] {
    while (!stop.load()) {
      std::vector<pid_t> now = NodePidsServing(paths_.socket);
      seen.insert(now.begin(), now.end());
      max_at_once = std::max(max_at_once, now.size());
      std::this_thread::sleep_for(Millis(2));
    }
  });

  const std::string times = Path("times");
  // Start and end on one clock (CLOCK_REALTIME via date, same host), plus the token.
  const std::string script =
      "s=$(date +%s%N); sleep 0.05; e=$(date +%s%N); "
      "echo \"$s $e $LOCKMESH_TOKEN\" >> \"$TIMES\"";
  std::vector<Process*> clients;
  for (int i = 0; i < 10; ++i) {
    // No --socket and no --no-autostart: the defaults, from the environment.
    clients.push_back(Lockmesh("client", {"lock", "serial", "--", "sh", "-c", script},
                               {{"TIMES", times}}));
  }
  std::vector<RunResult> results;
  for (Process* p : clients) results.push_back(Finish(p, Millis(60000)));
  stop = true;
  sampler.join();
  std::vector<pid_t> after = NodePidsServing(paths_.socket);

  for (const RunResult& r : results) EXPECT_EQ(r.code(), 0) << r.Describe();

  std::ostringstream procs;
  for (pid_t p : seen) {
    procs << "  pid " << p << ":";
    for (const auto& a : Cmdline(p)) procs << " " << a;
    procs << "\n";
  }
  EXPECT_EQ(seen.size(), 1u) << "node processes seen serving " << paths_.socket << ":\n"
                             << procs.str() << Tail(paths_.data_dir + "/node.log");
  EXPECT_EQ(max_at_once, 1u);
  EXPECT_EQ(after.size(), 1u) << "the auto-started node should still be serving";
  if (after.size() == 1 && seen.size() == 1) {
    EXPECT_EQ(after[0], *seen.begin());
  }
  for (pid_t p : after) {
    std::vector<std::string> args = Cmdline(p);
    EXPECT_NE(std::find(args.begin(), args.end(), "--auto-started"), args.end())
        << "the node serving the socket was not auto-started";
  }

  // Ten critical sections, none overlapping another.
  std::vector<Interval> runs;
  for (const std::string& line : SplitLines(ReadFile(times))) {
    Interval iv;
    std::istringstream is(line);
    is >> iv.start_ns >> iv.end_ns >> iv.token;
    EXPECT_FALSE(is.fail()) << "bad line: " << line;
    runs.push_back(iv);
  }
  ASSERT_EQ(runs.size(), 10u) << ReadFile(times);
  std::sort(runs.begin(), runs.end(),
            [](const Interval& a, const Interval& b) { return a.start_ns < b.start_ns; });
  std::ostringstream table;
  for (const Interval& iv : runs) {
    table << "  start " << iv.start_ns << " end " << iv.end_ns << " token " << iv.token << "\n";
  }
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_LT(runs[i].start_ns, runs[i].end_ns) << table.str();
    EXPECT_GT(runs[i].token, 0u) << table.str();
    if (i == 0) continue;
    EXPECT_GE(runs[i].start_ns, runs[i - 1].end_ns)
        << "critical sections " << i - 1 << " and " << i << " overlap:\n" << table.str();
    EXPECT_GT(runs[i].token, runs[i - 1].token)
        << "fencing tokens must rise in grant order:\n" << table.str();
  }
  // TearDown kills the auto-started node (found by its socket in /proc/*/cmdline).
}

}  // namespace
}  // namespace lockmesh::testing
