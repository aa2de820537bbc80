// A lock holder's node frozen (SIGSTOP) past the session ttl while `lockmesh lock` and its
// command keep running (issue 13, reproduction 2): the client's own lease
// (core/lease/client_lease.h) must stop the command before the cluster grants the lock to
// another client. Three real `lockmesh node` processes on loopback (--join, no multicast),
// --session-ttl 3, the holder's node stopped for 8 s: once a follower, once the leader.
// The same in network namespaces: tests/cluster/mesh_freeze_netns_test.cc.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

using Json = nlohmann::json;

constexpr const char* kTtl = "3";
constexpr Millis kFreeze{8000};
// How much earlier than the other grant the frozen holder's command must have been stopped.
constexpr int64_t kRequiredLeadNs = 100'000'000;

class MeshFreezeTest : public ProcessTest {
 protected:
  void SetUp() override {
    ProcessTest::SetUp();
    // Ports of this test process only; CTest may run other tests in parallel.
    base_port_ = 30000 + static_cast<int>(getpid() % 5000) * 6;
  }

  void TearDown() override {
    // A node left stopped by a failed assertion: let it run so that it can be killed and
    // reaped like the others.
    for (auto& [i, p] : nodes_) {
      if (p) p->Signal(SIGCONT);
    }
    ProcessTest::TearDown();
  }

  std::string Address(int i) const { return "127.0.0.1:" + std::to_string(base_port_ + i); }
  std::string Socket(int i) const { return Path("n" + std::to_string(i) + ".sock"); }
  std::string Id(int i) const { return "n" + std::to_string(i); }

  void StartMeshNode(int i, int n) {
    std::string join;
    for (int j = 1; j <= n; ++j) join += (join.empty() ? "" : ",") + Address(j);
    nodes_[i] = Lockmesh(Id(i), {"node", "--node-id", Id(i), "--socket", Socket(i), "--data-dir",
                                 Path("d" + std::to_string(i)), "--listen", Address(i), "--join",
                                 join, "--no-multicast", "--expect", std::to_string(n),
                                 "--session-ttl", kTtl, "--election-timeout", "1000"});
  }

  Json Status(int i) {
    RunResult r = RunLockmesh("status", {"status", "--socket", Socket(i), "--json"}, Millis(10000));
    if (r.code() != 0) return Json();
    Json j = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    return j.is_discarded() ? Json() : j;
  }

  // Nodes 1-3 agree on one cluster id and leader, with 3 voters, and each holds its lease.
  bool WaitFormed(Millis timeout) {
    return WaitFor(
        [&] {
          std::string cluster_id, leader;
          for (int i = 1; i <= 3; ++i) {
            Json s = Status(i);
            if (s.is_null() || s["cluster_id"].get<std::string>().empty()) return false;
            int voters = 0;
            for (const Json& m : s["members"]) voters += m["voter"].get<bool>() ? 1 : 0;
            if (voters != 3 || s["leader_id"].get<std::string>().empty()) return false;
            if (s.value("lease_ms", int64_t{-1}) <= 0) return false;
            if (cluster_id.empty()) {
              cluster_id = s["cluster_id"];
              leader = s["leader_id"];
            } else if (s["cluster_id"] != cluster_id || s["leader_id"] != leader) {
              return false;
            }
          }
          return true;
        },
        timeout, Millis(200));
  }

  int LeaderIndex() {
    std::string leader = Status(1).value("leader_id", "");
    for (int i = 1; i <= 3; ++i) {
      if (Id(i) == leader) return i;
    }
    return 0;
  }

  // Nanoseconds (date +%s%N) written by a command, or 0.
  int64_t ReadNs(const std::string& file) {
    std::string text = ReadFile(file);
    if (text.empty()) return 0;
    return std::stoll(text);
  }

  std::string Logs() {
    std::string all;
    for (auto& [i, p] : nodes_) {
      std::vector<std::string> lines = SplitLines(p->Stderr());
      all += "---- " + Id(i) + "\n";
      for (size_t k = lines.size() > 30 ? lines.size() - 30 : 0; k < lines.size(); ++k) {
        all += lines[k] + "\n";
      }
    }
    return all;
  }

  // The reproduction: X held through `holder` (its command records its start and, on
  // SIGTERM, its end), a second `lockmesh lock X` waiting through `waiter`; `holder`'s node
  // is stopped for kFreeze. The first command must end >= 100 ms before the second grant.
  void FreezeHolderNode(int holder, int waiter) {
    const std::string start = Path("holder.start"), end = Path("holder.end");
    const std::string granted = Path("waiter.granted");
    const std::string script = "trap 'date +%s%N > " + end + "; exit 0' TERM; date +%s%N > " +
                               start + "; while :; do sleep 0.02; done";
    Process* first = Lockmesh("holder", {"lock", "--socket", Socket(holder), "--no-autostart",
                                         "--grace", "5", "X", "--", "sh", "-c", script});
    ASSERT_TRUE(WaitFor([&] { return FileExists(start) || !first->Running(); }, Millis(30000)))
        << first->Stderr();
    ASSERT_TRUE(FileExists(start)) << first->Stderr() << Logs();
    Process* second =
        Lockmesh("waiter", {"lock", "--socket", Socket(waiter), "--no-autostart", "-w", "60", "X",
                            "--", "sh", "-c", "date +%s%N > " + granted});
    // The second request is queued behind the first before the freeze.
    ASSERT_TRUE(WaitFor(
        [&] {
          std::vector<mesh::LockInfo> locks;
          return ListLocks(Socket(waiter), &locks) && CountLocks(locks, "X", false) == 1;
        },
        Millis(20000), Millis(50)))
        << second->Stderr() << Logs();

    nodes_[holder]->Signal(SIGSTOP);
    const auto frozen = Clock::now();
    // The cluster grants X to the waiter while the holder's node is still frozen.
    bool got = WaitFor([&] { return FileExists(granted) && !ReadFile(granted).empty(); }, kFreeze,
                       Millis(20));
    // Keep it frozen for the whole kFreeze, as in the reproduction.
    while (Clock::now() - frozen < kFreeze) usleep(20 * 1000);
    nodes_[holder]->Signal(SIGCONT);
    const double frozen_for = SecondsSince(frozen);
    ASSERT_TRUE(got) << "no grant to the waiter within the freeze\n" << second->Stderr() << Logs();

    auto first_status = first->Wait(Millis(20000));
    ASSERT_TRUE(first_status.has_value()) << "the holder did not exit\n" << first->Stderr();
    EXPECT_EQ(first_status->code, 95) << first->Stderr();
    EXPECT_NE(first->Stderr().find("did not renew this client's lease"), std::string::npos)
        << first->Stderr();
    auto second_status = second->Wait(Millis(20000));
    ASSERT_TRUE(second_status.has_value());
    EXPECT_EQ(second_status->code, 0) << second->Stderr();

    const int64_t started_ns = ReadNs(start), ended_ns = ReadNs(end), granted_ns = ReadNs(granted);
    ASSERT_GT(ended_ns, 0) << "the holder's command never recorded its end\n" << first->Stderr();
    EXPECT_GT(ended_ns, started_ns);
    EXPECT_LE(ended_ns + kRequiredLeadNs, granted_ns)
        << "the frozen holder's command ran until " << (granted_ns - ended_ns) / 1e6
        << " ms before the other grant (negative: after it)\n"
        << first->Stderr() << "\n"
        << Logs();
    RecordProperty("lead_ms", std::to_string((granted_ns - ended_ns) / 1000000));
    std::cerr << "holder's command stopped " << (granted_ns - ended_ns) / 1e6
              << " ms before the other grant (node frozen " << frozen_for << " s)\n";
  }

  int base_port_ = 0;
  std::map<int, Process*> nodes_;
};

TEST_F(MeshFreezeTest, FrozenFollowerNodesCommandStopsBeforeTheLockMoves) {
  for (int i = 1; i <= 3; ++i) StartMeshNode(i, 3);
  ASSERT_TRUE(WaitFormed(Millis(40000))) << Logs();
  const int leader = LeaderIndex();
  ASSERT_NE(leader, 0);
  const int holder = leader == 3 ? 2 : 3;
  const int waiter = 6 - leader - holder;
  FreezeHolderNode(holder, waiter);
}

TEST_F(MeshFreezeTest, FrozenLeaderNodesCommandStopsBeforeTheLockMoves) {
  for (int i = 1; i <= 3; ++i) StartMeshNode(i, 3);
  ASSERT_TRUE(WaitFormed(Millis(40000))) << Logs();
  const int leader = LeaderIndex();
  ASSERT_NE(leader, 0);
  const int waiter = leader == 1 ? 2 : 1;
  FreezeHolderNode(leader, waiter);
}

}  // namespace
}  // namespace lockmesh::testing
