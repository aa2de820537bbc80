// Intruders. A node with a certificate from another CA, and one whose
// certificate's CN is not the id it claims, never join and are named in the logs of the nodes
// they tried; a node of another cluster name is ignored; 10,000 garbage datagrams on the
// discovery port do not disturb the cluster.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cluster/support/mesh_cluster.h"

namespace lockmesh::testing {
namespace {

class MeshIntruderTest : public MeshTest {
 protected:
  // Hosts 0-2 run the cluster (mutual TLS, CA of the run); the others are left to the test.
  void FormThree(int hosts) {
    MeshOptions options;
    options.net.hosts = hosts;
    options.security = "mutual";
    options.expect = 3;
    options.voters = 3;
    ASSERT_NO_FATAL_FAILURE(Make(options));
    for (size_t i = 0; i < 3; ++i) mesh_->StartNode(i);
    std::string why;
    ASSERT_TRUE(mesh_->WaitFormed({0, 1, 2}, 3, 3, Millis(30000), &why))
        << why << mesh_->Describe();
    cluster_id_ = mesh_->Status(0).cluster_id;
  }

  // `lockmesh node` on host i with its own identity and TLS files.
  Process* StartIntruder(size_t i, const std::string& node_id, const std::string& cluster,
                         const std::string& security, const std::string& cert_dir,
                         const std::string& ca_file, bool join_cluster) {
    std::vector<std::string> argv = {LockmeshBinary(), "node",
                                     "--node-id",      node_id,
                                     "--cluster",      cluster,
                                     "--socket",       mesh_->Socket(i),
                                     "--data-dir",     mesh_->DataDir(i),
                                     "--security",     security,
                                     "--tls-cert",     cert_dir + "/cert.pem",
                                     "--tls-key",      cert_dir + "/key.pem",
                                     "--tls-ca",       ca_file};
    if (join_cluster) {
      argv.push_back("--join");
      argv.push_back(mesh_->PeerAddress(0) + "," + mesh_->PeerAddress(1) + "," +
                     mesh_->PeerAddress(2));
    }
    Process* p = mesh_->net().Run(i, "intruder-" + node_id, argv);
    EXPECT_TRUE(p->ok()) << p->error();
    return p;
  }

  std::string IntruderLog(const std::string& node_id) {
    return ReadFile(mesh_->net().log_dir() + "/intruder-" + node_id + ".err");
  }

  // Lines of host i's node log that contain "refused" and one of `names`.
  std::vector<std::string> RefusalsNaming(size_t i, const std::vector<std::string>& names) {
    std::vector<std::string> out;
    for (const std::string& line : SplitLines(mesh_->NodeLog(i))) {
      if (line.find("refused") == std::string::npos) continue;
      for (const std::string& n : names) {
        if (line.find(n) != std::string::npos) {
          out.push_back(line);
          break;
        }
      }
    }
    return out;
  }

  // The cluster as hosts 0-2 see it: the same id, voters h0-h2, no other member.
  void ExpectClusterUntouched(const std::string& when) {
    for (size_t i = 0; i < 3; ++i) {
      NodeView v = mesh_->Status(i);
      ASSERT_TRUE(v.ok) << when << ": " << v.error;
      EXPECT_EQ(v.cluster_id, cluster_id_) << when << ": " << v.Summary();
      EXPECT_EQ(v.members.size(), 3u) << when << ": " << v.Summary();
      EXPECT_EQ(v.VoterIds(), (std::set<std::string>{"h0", "h1", "h2"}))
          << when << ": " << v.Summary();
    }
  }

  std::string cluster_id_;
};

TEST_F(MeshIntruderTest, ForeignCaWrongCnAndOtherClusterNeverJoin) {
  LOCKMESH_REQUIRE_NETNS();
  ASSERT_NO_FATAL_FAILURE(FormThree(6));
  const std::string ip3 = mesh_->net().host(3).ipv4, ip4 = mesh_->net().host(4).ipv4;
  // h3: a certificate (CN h3 = its id) from another CA.
  ASSERT_TRUE(MeshCluster::MakeCa(mesh_->Path("ca2")).ok());
  ASSERT_TRUE(MeshCluster::MakeNodeCert(mesh_->Path("ca2"), "h3", mesh_->Path("h3-ca2")).ok());
  StartIntruder(3, "h3", "lockmesh", "mutual", mesh_->Path("h3-ca2"), mesh_->Path("ca2/cert.pem"),
                /*join_cluster=*/true);
  // h4: a certificate of the right CA whose CN ("mallory") is not the id it claims (h4). A
  // node refuses to run like that with --security mutual, so it runs with encrypt (where all
  // nodes may share one certificate) and claims h4 in its hello.
  ASSERT_TRUE(MeshCluster::MakeNodeCert(mesh_->CaDir(), "mallory", mesh_->Path("mallory")).ok());
  StartIntruder(4, "h4", "lockmesh", "encrypt", mesh_->Path("mallory"),
                mesh_->CaDir() + "/cert.pem", /*join_cluster=*/true);
  // h5: a good certificate of the right CA, another cluster name, found by multicast only.
  StartIntruder(5, "h5", "othercluster", "mutual", mesh_->CertDir(5), mesh_->CaDir() + "/cert.pem",
                /*join_cluster=*/false);

  // Each node the intruders tried (all three: --join) names them in a "refused" line.
  bool named = WaitFor(
      [&] {
        for (size_t i = 0; i < 3; ++i) {
          if (RefusalsNaming(i, {ip3 + ":", "(node h3)", "id h3"}).empty()) return false;
          if (RefusalsNaming(i, {ip4 + ":", "(node h4)", "id h4"}).empty()) return false;
        }
        return true;
      },
      Millis(30000), Millis(200));
  EXPECT_TRUE(named) << "not every node names both intruders in a 'refused' line\n"
                     << mesh_->Describe(60) << "=== intruder h3:\n"
                     << IntruderLog("h3") << "=== intruder h4:\n"
                     << IntruderLog("h4");
  for (size_t i = 0; i < 3; ++i) {
    std::vector<std::string> r3 = RefusalsNaming(i, {ip3 + ":", "(node h3)", "id h3"});
    std::vector<std::string> r4 = RefusalsNaming(i, {ip4 + ":", "(node h4)", "id h4"});
    if (!r3.empty()) printf("h%zu on the foreign CA: %s\n", i, r3.front().c_str());
    if (!r4.empty()) printf("h%zu on the wrong CN: %s\n", i, r4.front().c_str());
    // The wrong CN is said as such (the chain itself verifies).
    bool cn_named = false;
    for (const std::string& line : r4) cn_named |= line.find("mallory") != std::string::npos;
    EXPECT_TRUE(cn_named) << "h" << i << " does not say the CN is 'mallory':\n"
                          << (r4.empty() ? std::string("(no line)") : r4.front());
  }

  // For a while (intruders keep redialling, beacons keep coming): never a member, anywhere.
  for (int k = 0; k < 20; ++k) {
    ASSERT_NO_FATAL_FAILURE(ExpectClusterUntouched("after " + std::to_string(k) + " rounds"));
    usleep(250 * 1000);
  }
  // The node of the other cluster lives its own life: its own cluster, alone.
  NodeView other = mesh_->Status(5);
  ASSERT_TRUE(other.ok) << other.error << IntruderLog("h5");
  EXPECT_EQ(other.cluster, "othercluster");
  EXPECT_NE(other.cluster_id, cluster_id_) << other.Summary();
  EXPECT_FALSE(other.HasMember("h0") || other.HasMember("h1") || other.HasMember("h2"))
      << other.Summary();
  // The refused intruders never got the cluster's id either.
  for (size_t i : {3, 4}) {
    NodeView v = mesh_->Status(i);
    if (v.ok) {
      EXPECT_NE(v.cluster_id, cluster_id_) << v.Summary();
    }
  }
  for (size_t i = 0; i < 3; ++i) {
    CommandResult r;
    EXPECT_GT(mesh_->LockToken(i, "still-mine", &r, {"-x", "-w", "20"}), 0u) << r.output;
  }
}

TEST_F(MeshIntruderTest, TenThousandGarbageDatagramsOnTheDiscoveryPortDoNotDisturb) {
  LOCKMESH_REQUIRE_NETNS();
  ASSERT_NO_FATAL_FAILURE(FormThree(4));
  std::optional<size_t> leader = mesh_->WaitLeader({0, 1, 2}, Millis(10000));
  ASSERT_TRUE(leader.has_value());
  const uint64_t term = mesh_->Status(*leader).term;
  CommandResult before;
  ASSERT_GT(mesh_->LockToken(0, "before", &before), 0u) << before.output;

  std::vector<size_t> log_lines;
  for (size_t i = 0; i < 3; ++i) log_lines.push_back(SplitLines(mesh_->NodeLog(i)).size());
  // From host 3 (no node): 10,000 datagrams to the leader's discovery port, then 2,000 more to
  // the IPv4 group on that port (every node hears those).
  auto start = Clock::now();
  CommandResult flood = mesh_->net().Exec(
      3, ToolArgv({"udp-garbage", mesh_->net().host(*leader).ipv4, "28017", "10000", "1"}),
      Millis(120000));
  EXPECT_EQ(flood.code, 0) << flood.output;
  CommandResult group = mesh_->net().Exec(
      3, ToolArgv({"udp-garbage", "239.255.28.17", "28017", "2000", "2"}), Millis(60000));
  EXPECT_EQ(group.code, 0) << group.output;
  printf("garbage to %s:28017: %s; to the group: %s; %.1f s\n",
         MeshCluster::NodeId(*leader).c_str(), flood.output.c_str(), group.output.c_str(),
         SecondsSince(start));

  // Undisturbed: every node still runs, the same leader in the same term, locks everywhere,
  // and the logs were not flooded (garbage may be counted or logged a few times, not 10,000).
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(mesh_->node(i)->Running()) << mesh_->NodeLog(i);
    size_t grown = SplitLines(mesh_->NodeLog(i)).size() - log_lines[i];
    EXPECT_LT(grown, 50u) << "h" << i << "'s log grew by " << grown << " lines:\n"
                          << Tail(mesh_->net().log_dir() + "/node-h" + std::to_string(i) + ".err",
                                  20);
  }
  std::string why;
  EXPECT_TRUE(mesh_->WaitFormed({0, 1, 2}, 3, 3, Millis(10000), &why)) << why;
  std::optional<size_t> after = mesh_->AgreedLeader({0, 1, 2});
  EXPECT_EQ(after, leader) << mesh_->Describe();
  EXPECT_EQ(mesh_->Status(*leader).term, term) << "an election happened during the flood\n"
                                               << mesh_->Describe();
  for (size_t i = 0; i < 3; ++i) {
    CommandResult r;
    EXPECT_GT(mesh_->LockToken(i, "after", &r, {"-x", "-w", "20"}), 0u) << r.output;
  }
}

}  // namespace
}  // namespace lockmesh::testing

namespace lockmesh::testing {
namespace {

// A dialer learned from a beacon ends when the beacon expires. From
// host 3 (no node), 50 made-up nodes beacon for 3 s, each naming a port of host 3 where the
// forger accepts and closes every connection. Every node dials them while they beacon; once
// the beacons expire (6.2 s unheard), nothing dials them again: no connection reaches the
// forger between 9 s and 25 s after the last beacon (with the old dialers, each of the 150
// kept redialling with a backoff of at most 10 s).
TEST_F(MeshIntruderTest, ForgedBeaconsLeaveNoDialerBehind) {
  LOCKMESH_REQUIRE_NETNS();
  ASSERT_NO_FATAL_FAILURE(FormThree(4));
  CommandResult r = mesh_->net().Exec(3,
                                      ToolArgv({"beacon-dials", "lockmesh", "239.255.28.17", "50",
                                                "3000", "9000", "25000", "41000"}),
                                      Millis(90000));
  ASSERT_EQ(r.code, 0) << r.output;
  printf("forged beacons: %s\n", r.output.c_str());
  long during = -1, quiet = -1;
  ASSERT_EQ(sscanf(r.output.c_str(), "during=%ld quiet=%ld", &during, &quiet), 2) << r.output;
  EXPECT_GT(during, 0) << "no node dialled the beacons' addresses: the test shows nothing\n"
                       << mesh_->NodeLog(0);
  EXPECT_EQ(quiet, 0) << "dialled after the beacons expired\n" << mesh_->NodeLog(0);
  // The cluster is undisturbed.
  std::string why;
  EXPECT_TRUE(mesh_->WaitFormed({0, 1, 2}, 3, 3, Millis(10000), &why)) << why;
}

}  // namespace
}  // namespace lockmesh::testing
