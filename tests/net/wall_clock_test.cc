// A node restarted with its wall clock stepped back one hour (docs/mesh.md
// "Ids and time"): the previous run's lock must be freed and new locks granted. Client
// ids used to come from the wall clock, so the restarted node's ids fell below its earlier
// run's: the old session (and its lock) survived the restart's expiry, and every new session
// was refused as a late retry. They now come from an epoch claimed through the log.
//
// The wall clock is moved with libfaketime (Debian `faketime`, in .ci/packages) on the
// restarted node only, through LD_PRELOAD: the lockmesh binary links libc dynamically. The
// monotonic clock is left alone (FAKETIME_DONT_FAKE_MONOTONIC): only the wall clock steps.
// Each test checks, from the timestamps of the node's own log, that the restarted node did
// run an hour behind, so it cannot pass without the step.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

using Json = nlohmann::json;

constexpr const char* kFaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

class WallClockTest : public ProcessTest {
 protected:
  void SetUp() override {
    ProcessTest::SetUp();
    ASSERT_TRUE(FileExists(kFaketime))
        << kFaketime << " is missing: install Debian's faketime package (.ci/packages)";
  }

  // The environment of a process whose wall clock runs one hour behind.
  // Under AddressSanitizer (.ci/sanitize) the ASan runtime must come first in the library
  // list, which a preloaded libfaketime breaks: verify_asan_link_order=0 lets it run (ASan's
  // interceptors still load; libfaketime only wraps the clock calls).
  static std::map<std::string, std::optional<std::string>> HourBack() {
    const char* asan = std::getenv("ASAN_OPTIONS");
    std::string asan_options = asan && *asan ? std::string(asan) + ":" : std::string();
    asan_options += "verify_asan_link_order=0";
    return {{"LD_PRELOAD", kFaketime},
            {"FAKETIME", "-1h"},
            {"FAKETIME_DONT_FAKE_MONOTONIC", "1"},
            {"ASAN_OPTIONS", asan_options}};
  }

  // Expects the node whose log `read_log` returns to have started last with its wall clock
  // about an hour behind ours (the timestamp of its last "serving" line): else the step did
  // not happen (LD_PRELOAD ignored) and the test would prove nothing. The log holds `starts`
  // runs' lines; the node accepts connections just before it logs that line, so this waits
  // (20 s at most) until the last run's is there.
  static void ExpectRunningAnHourBehind(const std::function<std::string()>& read_log,
                                        size_t starts) {
    std::string log;
    auto serving_lines = [&] {
      log = read_log();
      size_t n = 0;
      for (const std::string& l : SplitLines(log)) n += l.find(" serving ") != std::string::npos;
      return n;
    };
    EXPECT_TRUE(WaitFor([&] { return serving_lines() >= starts; }, Millis(20000)))
        << "the node's log has fewer than " << starts << " start lines:\n"
        << log;
    std::string line;
    for (const std::string& l : SplitLines(log)) {
      if (l.find(" serving ") != std::string::npos) line = l;
    }
    tm t{};
    ASSERT_TRUE(line.size() >= 19 &&
                strptime(line.substr(0, 19).c_str(), "%Y-%m-%dT%H:%M:%S", &t) != nullptr)
        << "no start line in the node's log:\n"
        << log;
    const double behind = static_cast<double>(time(nullptr) - timegm(&t));
    EXPECT_GT(behind, 3000) << "the restarted node did not run an hour back:\n" << line;
    EXPECT_LT(behind, 4200) << line;
  }

  // Starts a one-node mesh node `w1` on the test's socket, peer port `port` on loopback, no
  // multicast; its log is <root>/logs/<name>.err. Waits until it serves its socket.
  Process* StartMeshNode(const std::string& name, int port,
                         const std::map<std::string, std::optional<std::string>>& env) {
    return StartMeshNodeAt(name, "w1", paths_.socket, paths_.data_dir, port, {}, env);
  }
  Process* StartMeshNodeAt(const std::string& name, const std::string& id,
                           const std::string& socket, const std::string& data_dir, int port,
                           const std::vector<std::string>& extra,
                           const std::map<std::string, std::optional<std::string>>& env = {}) {
    std::vector<std::string> args = {"node",
                                     "--socket",
                                     socket,
                                     "--data-dir",
                                     data_dir,
                                     "--node-id",
                                     id,
                                     "--listen",
                                     "127.0.0.1:" + std::to_string(port),
                                     "--no-multicast"};
    if (std::find(extra.begin(), extra.end(), "--expect") == extra.end()) {
      args.insert(args.end(), {"--expect", "1"});
    }
    args.insert(args.end(), extra.begin(), extra.end());
    Process* p = Lockmesh(name, args, env);
    if (!WaitFor([&] { return !p->Running() || SocketAccepts(socket); }, Millis(30000)) ||
        !p->Running()) {
      ADD_FAILURE() << "mesh node " << name << " does not serve:\n" << p->Stderr();
      return nullptr;
    }
    return p;
  }

  // The client id of the session holding `resource`, or 0.
  uint64_t HolderOf(const std::string& resource) {
    std::vector<mesh::LockInfo> locks;
    std::string error;
    if (!ListLocks(paths_.socket, &locks, &error)) return 0;
    for (const mesh::LockInfo& l : locks) {
      if (l.resource == resource && l.held) return l.client_id;
    }
    return 0;
  }

  // `lockmesh locks --json`: rows of `resource` held by client `client_id`; -1 if the listing
  // fails.
  int HeldByClient(const std::string& resource, uint64_t client_id) {
    RunResult r =
        RunLockmesh("locks", {"locks", "--socket", paths_.socket, "--json"}, Millis(20000));
    if (r.code() != 0) return -1;
    Json j = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return -1;
    int n = 0;
    for (const Json& row : j["locks"]) {
      if (row.value("resource", "") == resource && row.value("state", "") == "held" &&
          row.value("client_id", uint64_t{0}) == client_id) {
        ++n;
      }
    }
    return n;
  }

  // Waits for a holder whose node was killed to end (it loses its lock), else kills it.
  static void AwaitHolderEnd(Process* holder) {
    if (!holder->Wait(Millis(30000))) holder->Kill();
  }

  // After the restart: the old client holds nothing and a new lock of `resource` is granted
  // (`log`: the restarted node's log, for failure messages).
  void ExpectOldSessionGoneAndNewLockGranted(const std::string& resource, uint64_t old_client,
                                             const std::string& log) {
    EXPECT_TRUE(WaitFor([&] { return HolderOf(resource) != old_client; }, Millis(30000)))
        << "the previous run's session still holds " << resource << "\n"
        << Tail(log);
    EXPECT_EQ(HeldByClient(resource, old_client), 0);
    RunResult r =
        RunLockmesh("relock", LockArgs(resource, {"true"}, {"--wait", "20"}), Millis(40000));
    EXPECT_EQ(r.code(), 0) << "a new lock of " << resource << " after the restart: " << r.Describe()
                           << "\n"
                           << Tail(log);
  }
};

TEST_F(WallClockTest, ALocalNodeRestartedAnHourBackExpiresItsOldSessionAndGrantsNewLocks) {
  // The first run: auto-started by `lockmesh lock` (a local node), the clock as it is.
  const std::string started = Path("h.started");
  Process* holder = Lockmesh("holder", {"lock", "X", "--", "sh", "-c",
                                        "touch '" + started + "'; while :; do sleep 0.05; done"});
  ASSERT_TRUE(WaitFor([&] { return FileExists(started) || !holder->Running(); }, Millis(30000)));
  ASSERT_TRUE(FileExists(started)) << holder->Stderr();
  const uint64_t old_client = HolderOf("X");
  ASSERT_NE(old_client, 0u);
  ASSERT_EQ(KillNodesServing(paths_.socket), 1);  // kill -9 while X is held
  AwaitHolderEnd(holder);

  // The second run: auto-started again, by a `lockmesh lock` whose wall clock (and so its
  // node's) is one hour behind.
  const std::string log = paths_.data_dir + "/node.log";  // where auto-started nodes log
  RunResult r = RunLockmesh("relock-back", {"lock", "--wait", "20", "X", "--", "true"},
                            Millis(40000), HourBack());
  EXPECT_EQ(r.code(), 0) << r.Describe() << "\n" << Tail(log);
  ExpectRunningAnHourBehind([&] { return ReadFile(log); }, 2);
  ExpectOldSessionGoneAndNewLockGranted("X", old_client, log);
}

TEST_F(WallClockTest, AnExplicitLocalNodeRestartedAnHourBackExpiresItsOldSessionAndGrantsNewLocks) {
  auto first = StartNode(paths_.socket, paths_.data_dir, paths_.log, Env(), {});  // --local
  ASSERT_NE(first, nullptr);
  Process* holder = StartHolder("X", "h", {}, Millis(40000));
  ASSERT_NE(holder, nullptr) << Tail(paths_.log);
  const uint64_t old_client = HolderOf("X");
  ASSERT_NE(old_client, 0u);
  first->Kill();  // kill -9 while X is held
  AwaitHolderEnd(holder);

  auto second = StartNode(paths_.socket, paths_.data_dir, paths_.log, Env(HourBack()), {});
  ASSERT_NE(second, nullptr);
  ExpectRunningAnHourBehind([&] { return ReadFile(paths_.log); }, 2);
  ExpectOldSessionGoneAndNewLockGranted("X", old_client, paths_.log);
}

TEST_F(WallClockTest, AMeshNodeRestartedAnHourBackExpiresItsOldSessionAndGrantsNewLocks) {
  // A one-node mesh (its own cluster, on loopback): the restarted node is its leader, which
  // never expires its own node, so only the restart's claim can end the old session.
  const int port = LoopbackPortBlock(1);
  ASSERT_GT(port, 0);
  Process* first = StartMeshNode("mesh-1", port, {});
  ASSERT_NE(first, nullptr);
  Process* holder = StartHolder("X", "h", {}, Millis(40000));
  ASSERT_NE(holder, nullptr) << first->Stderr();
  const uint64_t old_client = HolderOf("X");
  ASSERT_NE(old_client, 0u);
  first->Kill();  // kill -9 while X is held
  AwaitHolderEnd(holder);

  Process* second = StartMeshNode("mesh-2", port, HourBack());
  ASSERT_NE(second, nullptr);
  ExpectRunningAnHourBehind([&] { return second->Stderr(); }, 1);
  EXPECT_NE(second->Stderr().find("cluster lockmesh, mesh"), std::string::npos)
      << "not a mesh node:\n"
      << second->Stderr();
  ExpectOldSessionGoneAndNewLockGranted("X", old_client, Path("logs/mesh-2.err"));
}

TEST_F(WallClockTest, ANodeStillClaimingItsIdsAnswersStatusAndGrantsOnceItHasThem) {
  // A mesh node waiting for its cluster (--expect 2, the other node not started yet) cannot
  // claim client ids: its clients' hellos are answered (status works), and a lock request
  // waits for the claim, then is granted once the cluster forms.
  const int port1 = LoopbackPortBlock(2), port2 = port1 + 1;
  ASSERT_GT(port1, 0);
  ASSERT_GT(port2, 0);
  ASSERT_NE(port1, port2);
  const std::string join =
      "127.0.0.1:" + std::to_string(port1) + ",127.0.0.1:" + std::to_string(port2);
  const std::vector<std::string> two = {"--expect", "2", "--join", join};
  Process* a = StartMeshNodeAt("a", "a1", paths_.socket, paths_.data_dir, port1, two);
  ASSERT_NE(a, nullptr);
  RunResult status =
      RunLockmesh("status", {"status", "--socket", paths_.socket, "--json"}, Millis(20000));
  EXPECT_EQ(status.code(), 0) << status.Describe() << "\n" << a->Stderr();
  Process* locker = Lockmesh("locker", LockArgs("X", {"true"}));
  // It waits: no cluster, no ids, no session yet.
  EXPECT_FALSE(locker->Wait(Millis(1500))) << locker->Stderr();
  Process* b = StartMeshNodeAt("b", "a2", Path("b.sock"), Path("b-data"), port2, two);
  ASSERT_NE(b, nullptr);
  RunResult r = Finish(locker, Millis(60000));
  EXPECT_EQ(r.code(), 0) << r.Describe() << "\n" << a->Stderr() << "\n---\n" << b->Stderr();
}

}  // namespace
}  // namespace lockmesh::testing
