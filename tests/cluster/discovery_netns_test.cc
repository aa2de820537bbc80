// Multicast discovery across "hosts" (network namespaces on a bridge), each running the real
// `lockmesh discover` program, which prints what it is suggested as JSON lines.
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "cluster/support/netns_harness.h"

namespace lockmesh::testing {
namespace {

using Json = nlohmann::json;

// What one `lockmesh discover` has printed so far: node id -> last address, for peers that
// are currently suggested (not expired).
struct View {
  std::map<std::string, std::string> peers;
  std::map<std::string, int> suggested;  // node id -> times suggested (first or after expiry)
  std::map<std::string, int> expired;
  bool stats = false;
  Json last_stats;
};

View ReadView(const Process* p) {
  View v;
  for (const std::string& line : SplitLines(p->Stdout())) {
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("event")) continue;
    std::string event = j["event"];
    if (event == "stats") {
      v.stats = true;
      v.last_stats = j;
      continue;
    }
    if (!j.contains("node_id") || j.contains("join")) continue;
    std::string id = j["node_id"];
    if (event == "suggested") {
      v.peers[id] = j["address"];
      ++v.suggested[id];
    } else if (event == "changed") {
      v.peers[id] = j["address"];
    } else if (event == "expired") {
      v.peers.erase(id);
      ++v.expired[id];
    }
  }
  return v;
}

std::string NodeId(size_t i) { return "host-" + std::to_string(i); }

class DiscoveryNetnsTest : public ::testing::Test {
 protected:
  void Make(NetnsOptions options) {
    mesh::Status st = NetnsCluster::Create(options, &cluster_);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  // `lockmesh discover` on host i, node id host-i.
  Process* Discover(size_t i, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {LockmeshBinary(), "discover", "--cluster",   "netns",
                                     "--node-id",      NodeId(i),  "--peer-port", "28017"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Process* p = cluster_->Run(i, NodeId(i) + "-discover", argv);
    EXPECT_TRUE(p->ok()) << p->error();
    return p;
  }

  // Everyone in `procs` (index = host) sees exactly the others among `expected`.
  static bool AllSeeAll(const std::vector<Process*>& procs, const std::set<size_t>& expected) {
    for (size_t i : expected) {
      View v = ReadView(procs[i]);
      for (size_t j : expected) {
        if (j != i && v.peers.count(NodeId(j)) == 0) return false;
      }
    }
    return true;
  }

  std::string Describe(const std::vector<Process*>& procs) {
    std::string s;
    for (size_t i = 0; i < procs.size(); ++i) {
      if (!procs[i]) continue;
      s += "--- host " + std::to_string(i) + " stdout:\n" + procs[i]->Stdout() + "stderr:\n" +
           procs[i]->Stderr();
    }
    return s;
  }

  // Host i's fe80:: address on eth0 ("" if none yet).
  std::string LinkLocal(size_t i) {
    CommandResult r =
        cluster_->Exec(i, {"ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"});
    size_t at = r.output.find("inet6 ");
    if (at == std::string::npos) return "";
    at += 6;
    return r.output.substr(at, r.output.find('/', at) - at);
  }

  void StopAll(const std::vector<Process*>& procs) {
    for (Process* p : procs) {
      if (!p) continue;
      p->Signal(SIGTERM);
      std::optional<ExitStatus> st = p->Wait(Millis(10000));
      ASSERT_TRUE(st.has_value()) << "discover did not stop on SIGTERM";
      EXPECT_TRUE(st->exited() && st->code == 0) << *st << "\n" << p->Stderr();
      EXPECT_TRUE(ReadView(p).stats) << p->Stdout();
    }
  }

  void TearDown() override {
    if (!cluster_) return;
    std::string tag = cluster_->tag();
    cluster_.reset();
    // The harness leaves nothing behind.
    EXPECT_TRUE(NetnsCluster::NamespacesWithPrefix(tag).empty());
    EXPECT_TRUE(NetnsCluster::LinksWithPrefix(tag).empty());
  }

  std::unique_ptr<NetnsCluster> cluster_;
};

TEST_F(DiscoveryNetnsTest, FiveHostsSeeEachOtherWithinFiveSeconds) {
  LOCKMESH_REQUIRE_NETNS();
  Make({.hosts = 5, .ipv4 = true, .ipv6 = true});
  std::vector<Process*> procs;
  auto start = Clock::now();
  // Defaults (no interface named); --debug logs the ignored stranger's beacons.
  for (size_t i = 0; i < 5; ++i) procs.push_back(Discover(i, {"--debug"}));
  // A node of another cluster on host 0 is heard by everyone and suggested to no one.
  Process* stranger = cluster_->Run(
      0, "stranger",
      {LockmeshBinary(), "discover", "--cluster", "other", "--node-id", "stranger", "--debug"});
  std::set<size_t> all = {0, 1, 2, 3, 4};
  bool ok = WaitFor([&] { return AllSeeAll(procs, all); }, Millis(5000), Millis(50));
  double seconds = SecondsSince(start);
  ASSERT_TRUE(ok) << Describe(procs);
  printf("5 hosts: every host saw every other %.2f s after the first start\n", seconds);
  // Every host heard the stranger, and ignored it.
  ASSERT_TRUE(WaitFor(
      [&] {
        for (Process* p : procs) {
          if (p->Stderr().find("ignoring the beacon of node stranger") == std::string::npos) {
            return false;
          }
        }
        return true;
      },
      Millis(5000), Millis(50)))
      << Describe(procs);
  std::vector<std::string> link_local;
  for (size_t j = 0; j < 5; ++j) link_local.push_back(LinkLocal(j));
  for (size_t i = 0; i < 5; ++i) {
    View v = ReadView(procs[i]);
    EXPECT_EQ(v.peers.size(), 4u) << "host " << i << " sees a stranger or itself:\n"
                                  << procs[i]->Stdout();
    for (size_t j = 0; j < 5; ++j) {
      if (j == i) continue;
      const std::string& address = v.peers[NodeId(j)];
      // IPv4, the ULA, or (IPv6 multicast to a link-local group prefers a link-local source
      // once the kernel has one) host j's fe80:: address with its interface.
      EXPECT_TRUE(address == cluster_->host(j).ipv4 + ":28017" ||
                  address == "[" + cluster_->host(j).ipv6 + "]:28017" ||
                  address == "[" + link_local[j] + "%eth0]:28017")
          << "host " << i << " has " << address << " for host " << j;
    }
  }
  View stranger_view = ReadView(stranger);
  EXPECT_NE(stranger->Stderr().find("cluster 'netns'"), std::string::npos) << stranger->Stderr();
  EXPECT_TRUE(stranger_view.peers.empty()) << stranger->Stdout();
  std::vector<Process*> everyone = procs;
  everyone.push_back(stranger);
  StopAll(everyone);
  Json stats = ReadView(procs[1]).last_stats;
  EXPECT_GT(stats["other_cluster"].get<int>(), 0) << stats.dump();
}

TEST_F(DiscoveryNetnsTest, Ipv6OnlyHostsDiscoverEachOther) {
  LOCKMESH_REQUIRE_NETNS();
  Make({.hosts = 3, .ipv4 = false, .ipv6 = true});
  std::vector<Process*> procs;
  auto start = Clock::now();
  // No interface named: IPv4 has no route to its group here, so only IPv6 comes up.
  for (size_t i = 0; i < 3; ++i) procs.push_back(Discover(i));
  ASSERT_TRUE(WaitFor(
      [&] {
        return AllSeeAll(procs, {0, 1, 2});
      },
      Millis(5000), Millis(50)))
      << Describe(procs);
  printf("IPv6-only: every host saw every other after %.2f s\n", SecondsSince(start));
  for (size_t i = 0; i < 3; ++i) {
    View v = ReadView(procs[i]);
    for (const auto& [id, address] : v.peers) {
      bool ula = address.rfind("[fd00:77::", 0) == 0;
      bool link_local =
          address.rfind("[fe80::", 0) == 0 && address.find("%eth0]:28017") != std::string::npos;
      EXPECT_TRUE(ula || link_local) << address;
    }
    // IPv4 could not be set up (no address, no route): said once, and IPv6 carried on.
    EXPECT_NE(procs[i]->Stderr().find("IPv4"), std::string::npos) << procs[i]->Stderr();
    EXPECT_NE(procs[i]->Stdout().find("\"ipv4\":false"), std::string::npos) << procs[i]->Stdout();
  }
  StopAll(procs);
}

// A host whose link goes down expires from the others' views, and nobody else does; its own
// process keeps running; once the link is back, everyone sees everyone again. Then the same
// with isolation, loss and kill -9 / restart, through the harness's other faults.
TEST_F(DiscoveryNetnsTest, FaultsExpireOnlyTheAffectedHost) {
  LOCKMESH_REQUIRE_NETNS();
  Make({.hosts = 3});
  // The interface named this time (the other tests let the kernel's routes choose).
  const std::vector<std::string> fast = {"--interface", "eth0",        "--burst-interval-ms",
                                         "100",         "--period-ms", "300"};
  std::vector<Process*> procs;
  for (size_t i = 0; i < 3; ++i) procs.push_back(Discover(i, fast));
  ASSERT_TRUE(WaitFor(
      [&] {
        return AllSeeAll(procs, {0, 1, 2});
      },
      Millis(5000), Millis(50)))
      << Describe(procs);

  auto two_gone_and_back = [&](const char* fault, auto down, auto up) {
    SCOPED_TRACE(fault);
    mesh::Status st = down();
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_TRUE(WaitFor(
        [&] {
          return ReadView(procs[0]).peers.count(NodeId(2)) == 0 &&
                 ReadView(procs[1]).peers.count(NodeId(2)) == 0;
        },
        Millis(10000), Millis(50)))
        << Describe(procs);
    // Hosts 0 and 1 still see each other and never expired each other.
    EXPECT_TRUE(AllSeeAll(procs, {0, 1}));
    EXPECT_EQ(ReadView(procs[0]).expired.count(NodeId(1)), 0u) << procs[0]->Stdout();
    EXPECT_EQ(ReadView(procs[1]).expired.count(NodeId(0)), 0u) << procs[1]->Stdout();
    EXPECT_TRUE(procs[2]->Running()) << procs[2]->Stderr();
    st = up();
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_TRUE(WaitFor(
        [&] {
          return AllSeeAll(procs, {0, 1, 2});
        },
        Millis(10000), Millis(50)))
        << Describe(procs);
  };
  two_gone_and_back(
      "link down", [&] { return cluster_->LinkDown(2); }, [&] { return cluster_->LinkUp(2); });
  two_gone_and_back(
      "isolated", [&] { return cluster_->Isolate(2); }, [&] { return cluster_->Rejoin(2); });
  mesh::Status loss = cluster_->SetLoss(2, 100);
  if (loss.IsUnavailable()) {
    ADD_FAILURE() << "loss injection unavailable: " << loss.ToString();
  } else {
    two_gone_and_back(
        "100% loss", [&] { return loss; }, [&] { return cluster_->ClearImpairment(2); });
  }
  if (NetnsCluster::NetemAvailable()) {
    ASSERT_TRUE(cluster_->SetDelay(2, 50, 10).ok());
    ASSERT_TRUE(cluster_->ClearImpairment(2).ok());
  } else {
    EXPECT_TRUE(cluster_->SetDelay(2, 50).IsUnavailable());
    printf("NOTE: this kernel has no tc netem: delay injection is unavailable here\n");
  }

  // kill -9 and restart: the others expire host 2, then hear it again as a new instance.
  cluster_->Kill(procs[2]);
  ASSERT_TRUE(WaitFor([&] { return ReadView(procs[0]).peers.count(NodeId(2)) == 0; }, Millis(10000),
                      Millis(50)));
  procs[2] = cluster_->Restart(procs[2]);
  ASSERT_TRUE(WaitFor(
      [&] {
        return AllSeeAll(procs, {0, 1, 2});
      },
      Millis(10000), Millis(50)))
      << Describe(procs);
  EXPECT_GE(ReadView(procs[0]).suggested[NodeId(2)], 4);  // first + after each fault
  StopAll(procs);
}

TEST_F(DiscoveryNetnsTest, LeftoversOfACrashedRunAreRemoved) {
  LOCKMESH_REQUIRE_NETNS();
  // A namespace and a link named as a run of a process that no longer exists (pid 1 is
  // init, always alive; a pid above pid_max never exists: "zzzzz" in base 36).
  const std::string dead = "lmnzzzzz00";
  ASSERT_EQ(RunCommand({"ip", "netns", "add", dead + "-h0"}).code, 0);
  ASSERT_EQ(RunCommand({"ip", "link", "add", dead + "br", "type", "bridge"}).code, 0);
  EXPECT_GE(NetnsCluster::CleanupLeftovers(), 2);
  EXPECT_TRUE(NetnsCluster::NamespacesWithPrefix(dead).empty());
  EXPECT_TRUE(NetnsCluster::LinksWithPrefix(dead).empty());
}

}  // namespace
}  // namespace lockmesh::testing
