// Hosts started with no addresses given form one cluster.
// Real `lockmesh node` processes, one per network namespace, found by multicast only.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cluster/support/mesh_cluster.h"

namespace lockmesh::testing {
namespace {

class MeshFormationTest : public MeshTest {
 protected:
  // Every host runs `lockmesh lock` once (in its own namespace, through its own node):
  // each succeeds, and the fencing tokens of one resource rise across hosts.
  void LockOnEveryHost(const std::string& resource) {
    uint64_t last = 0;
    for (size_t i = 0; i < mesh_->size(); ++i) {
      CommandResult r;
      uint64_t token = mesh_->LockToken(i, resource, &r, {"-x", "-w", "20"}, Millis(40000));
      EXPECT_EQ(r.code, 0) << "lock on " << MeshCluster::NodeId(i) << ": " << r.output << "\n"
                           << mesh_->Describe();
      EXPECT_GT(token, last) << "tokens must rise across hosts; host " << i << ": " << r.output;
      last = token;
    }
  }

  // Roles, security and peer fingerprints as every host reports them.
  void CheckMembers(int voters, int learners, bool ipv6_only) {
    for (size_t i = 0; i < mesh_->size(); ++i) {
      NodeView v = mesh_->Status(i);
      ASSERT_TRUE(v.ok) << v.error;
      EXPECT_EQ(v.Voters(), voters) << v.Summary();
      EXPECT_EQ(v.Learners(), learners) << v.Summary();
      EXPECT_EQ(v.raw.value("security", ""), "mutual") << v.raw.dump();
      EXPECT_EQ(v.role == "learner", v.VoterIds().count(v.node_id) == 0) << v.Summary();
      for (const nlohmann::json& m : v.raw["members"]) {
        std::string id = m.value("node_id", "");
        auto host = mesh_->HostOf(id);
        ASSERT_TRUE(host.has_value()) << "a member that is no host of ours: " << m.dump();
        EXPECT_TRUE(m.value("connected", false)) << v.node_id << " sees " << m.dump();
        if (id != v.node_id) {
          // Every peer link is mutual TLS: the member shows its certificate's fingerprint.
          EXPECT_EQ(m.value("fingerprint", "").rfind("sha256$", 0), 0u)
              << v.node_id << " sees " << m.dump();
        }
        std::string address = m.value("address", "");
        if (ipv6_only) {
          EXPECT_EQ(address.rfind('[', 0), 0u) << "not an IPv6 address: " << m.dump();
        } else {
          EXPECT_NE(address.find(mesh_->net().host(*host).ipv4), std::string::npos)
              << "member " << id << " advertised as " << address;
        }
      }
    }
  }
};

// Five hosts, --security mutual with `lockmesh cert` certificates, --expect 3
// --voters 3, no addresses given: one cluster within 5 s (3 voters, 2 learners), and
// `lockmesh lock` works on every host.
TEST_F(MeshFormationTest, FiveHostsWithMutualTlsFormOneClusterWithinFiveSeconds) {
  LOCKMESH_REQUIRE_NETNS();
  MeshOptions options;
  options.net.hosts = 5;
  options.security = "mutual";
  options.expect = 3;
  options.voters = 3;
  ASSERT_NO_FATAL_FAILURE(Make(options));
  auto start = Clock::now();
  mesh_->StartAll();
  std::string why;
  // Waited for longer than 5 s, so that a slow formation is measured and told apart from no
  // formation at all.
  bool formed = mesh_->WaitFormed(mesh_->HostsExcept(), 3, 5, Millis(30000), &why);
  double seconds = SecondsSince(start);
  ASSERT_TRUE(formed) << "no single cluster after " << seconds << " s:\n"
                      << why << mesh_->Describe();
  printf("5 hosts (mutual TLS, expect 3, voters 3): one cluster, 3 voters + 2 learners, "
         "observed %.2f s after the first node started\n",
         seconds);
  EXPECT_LE(seconds, 5.0) << "formed, but later than 5 s:\n" << why;
  ASSERT_NO_FATAL_FAILURE(CheckMembers(3, 2, /*ipv6_only=*/false));
  LockOnEveryHost("formation");
  // Still one cluster after the locks (nobody left, nobody was replaced).
  EXPECT_TRUE(mesh_->WaitFormed(mesh_->HostsExcept(), 3, 5, Millis(10000), &why)) << why;
}

// IPv6-only hosts discover each other and form a cluster.
TEST_F(MeshFormationTest, Ipv6OnlyHostsFormOneCluster) {
  LOCKMESH_REQUIRE_NETNS();
  MeshOptions options;
  options.net = {.hosts = 3, .ipv4 = false, .ipv6 = true};
  options.security = "mutual";
  options.expect = 3;
  options.voters = 3;
  ASSERT_NO_FATAL_FAILURE(Make(options));
  auto start = Clock::now();
  mesh_->StartAll();
  std::string why;
  bool formed = mesh_->WaitFormed(mesh_->HostsExcept(), 3, 3, Millis(30000), &why);
  double seconds = SecondsSince(start);
  ASSERT_TRUE(formed) << "no single cluster after " << seconds << " s:\n"
                      << why << mesh_->Describe();
  printf("3 IPv6-only hosts: one cluster of 3 voters observed %.2f s after the first start\n",
         seconds);
  ASSERT_NO_FATAL_FAILURE(CheckMembers(3, 0, /*ipv6_only=*/true));
  LockOnEveryHost("formation-v6");
}

}  // namespace
}  // namespace lockmesh::testing
