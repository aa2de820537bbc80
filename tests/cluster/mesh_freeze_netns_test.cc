// A frozen node across hosts: the node of a lock holder's host
// is frozen (SIGSTOP, as a GC pause, swap storm or VM steal would) for 8 s at --session-ttl 3,
// while `lockmesh lock` and its command keep running. The client's own lease
// (core/lease/client_lease.h) must stop the command at least 100 ms before the lock is
// granted on another host. Once with the holder's node a follower, once the leader.
// The loopback version is tests/net/mesh_freeze_test.cc.
//
// Times are CLOCK_MONOTONIC, the one clock every namespace of the machine shares: the test
// reads it (MonotonicNs) and the commands run under the locks write it (the tool mode of this
// binary: `stamp`, `hold`).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "cluster/support/mesh_cluster.h"

namespace lockmesh::testing {
namespace {

constexpr int kSessionTtlS = 3;
constexpr int64_t kFreezeNs = 8'000'000'000;
constexpr int64_t kRequiredLeadNs = 100'000'000;

double Seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

class MeshFreezeNetnsTest : public MeshTest {
 protected:
  void TearDown() override {
    // A node left stopped by a failed assertion: let it run, so that it dies like the rest.
    if (frozen_) frozen_->Signal(SIGCONT);
    MeshTest::TearDown();
  }

  void Form() {
    MeshOptions options;
    options.net.hosts = 3;
    options.expect = 3;
    options.voters = 3;
    options.session_ttl_s = kSessionTtlS;
    options.election_timeout_ms = 1000;
    ASSERT_NO_FATAL_FAILURE(Make(options));
    mesh_->StartAll();
    std::string why;
    ASSERT_TRUE(mesh_->WaitFormed(mesh_->HostsExcept(), 3, 3, Millis(30000), &why))
        << why << mesh_->Describe();
    // Every node holds its lease (so the holder's client has one to renew from).
    ASSERT_TRUE(WaitFor(
        [&] {
          for (size_t i = 0; i < 3; ++i) {
            if (mesh_->Status(i).lease_ms <= 0) return false;
          }
          return true;
        },
        Millis(20000), Millis(100)))
        << mesh_->Describe();
  }

  std::string ClientLog(const std::string& name) {
    return ReadFile(mesh_->net().log_dir() + "/" + name + ".err");
  }

  void FreezeHolderNode(bool holder_is_leader) {
    ASSERT_NO_FATAL_FAILURE(Form());
    std::optional<size_t> leader = mesh_->WaitLeader(mesh_->HostsExcept(), Millis(10000));
    ASSERT_TRUE(leader.has_value()) << mesh_->Describe();
    const size_t holder_host = holder_is_leader ? *leader : (*leader + 1) % 3;
    const size_t waiter_host =
        (holder_host + 1) % 3 == *leader ? (holder_host + 2) % 3 : (holder_host + 1) % 3;
    ASSERT_NE(waiter_host, holder_host);

    // The holder: its command writes holder.start, then holder.stop on SIGTERM.
    Process* holder = mesh_->StartLock(
        holder_host, "holder", "frozen", {"-x", "-w", "20", "--grace", "2"},
        ToolArgv({"hold", mesh_->Path("holder.start"), mesh_->Path("holder.stop"), "600"}));
    ASSERT_TRUE(WaitFor([&] { return ReadStamp(mesh_->Path("holder.start")) > 0; }, Millis(30000)))
        << ClientLog("holder") << mesh_->Describe();
    // The waiter, queued on another host before the freeze.
    Process* waiter = mesh_->StartLock(waiter_host, "waiter", "frozen", {"-x", "-w", "60"},
                                       ToolArgv({"stamp", mesh_->Path("waiter.granted")}));
    ASSERT_TRUE(WaitFor([&] { return mesh_->Status(waiter_host).locks_waiting >= 1; },
                        Millis(20000), Millis(50)))
        << ClientLog("waiter") << mesh_->Describe();

    // Freeze the holder's node (the process itself: `ip netns exec` execs it).
    Process* node = mesh_->node(holder_host);
    ASSERT_NE(node, nullptr);
    std::vector<std::string> argv = Cmdline(node->pid());
    ASSERT_FALSE(argv.empty());
    ASSERT_NE(argv[0].find("lockmesh"), std::string::npos) << argv[0];
    const int64_t frozen_ns = MonotonicNs();
    node->Signal(SIGSTOP);
    frozen_ = node;
    const bool granted = WaitFor([&] { return ReadStamp(mesh_->Path("waiter.granted")) > 0; },
                                 Millis(kFreezeNs / 1'000'000), Millis(20));
    while (MonotonicNs() - frozen_ns < kFreezeNs) usleep(20 * 1000);
    node->Signal(SIGCONT);
    frozen_ = nullptr;
    ASSERT_TRUE(granted) << "the waiter was not granted the lock during the freeze\n"
                         << ClientLog("waiter") << mesh_->Describe();

    std::optional<ExitStatus> holder_exit = holder->Wait(Millis(20000));
    ASSERT_TRUE(holder_exit.has_value()) << "the frozen node's lockmesh lock still runs";
    EXPECT_EQ(holder_exit->code, 95) << *holder_exit << "\n" << ClientLog("holder");
    EXPECT_NE(ClientLog("holder").find("did not renew this client's lease"), std::string::npos)
        << ClientLog("holder");
    const int64_t stop_ns = ReadStamp(mesh_->Path("holder.stop"));
    const int64_t grant_ns = ReadStamp(mesh_->Path("waiter.granted"));
    ASSERT_GT(stop_ns, 0) << "the holder's command never got SIGTERM:\n" << ClientLog("holder");
    printf(
        "node of %s (%s) frozen: its client's command stopped %.3f s later, the waiter on %s "
        "was granted %.3f s later (%.3f s after the stop)\n",
        MeshCluster::NodeId(holder_host).c_str(), holder_is_leader ? "leader" : "follower",
        Seconds(stop_ns - frozen_ns), MeshCluster::NodeId(waiter_host).c_str(),
        Seconds(grant_ns - frozen_ns), Seconds(grant_ns - stop_ns));
    EXPECT_LE(stop_ns + kRequiredLeadNs, grant_ns)
        << "the frozen node's command was not stopped 100 ms before the other grant\n"
        << ClientLog("holder") << mesh_->Describe();
    std::optional<ExitStatus> waiter_exit = waiter->Wait(Millis(20000));
    ASSERT_TRUE(waiter_exit.has_value());
    EXPECT_EQ(waiter_exit->code, 0) << *waiter_exit << "\n" << ClientLog("waiter");

    // Thawed, the node finds its sessions expired and serves new ones.
    std::string why;
    EXPECT_TRUE(mesh_->WaitFormed(mesh_->HostsExcept(), 3, 3, Millis(30000), &why)) << why;
    CommandResult r;
    EXPECT_GT(mesh_->LockToken(holder_host, "frozen", &r, {"-x", "-w", "20"}), 0u) << r.output;
  }

  Process* frozen_ = nullptr;
};

TEST_F(MeshFreezeNetnsTest, FrozenFollowerNodesCommandStopsBeforeTheLockMoves) {
  LOCKMESH_REQUIRE_NETNS();
  FreezeHolderNode(/*holder_is_leader=*/false);
}

TEST_F(MeshFreezeNetnsTest, FrozenLeaderNodesCommandStopsBeforeTheLockMoves) {
  LOCKMESH_REQUIRE_NETNS();
  FreezeHolderNode(/*holder_is_leader=*/true);
}

}  // namespace
}  // namespace lockmesh::testing
