// `lockmesh status --check` (apps/lockmesh/health_check.h, rules H1-H4): the judgement on
// every shape of status reply, the disk-full words it relies on, and real nodes: none, a
// local one, a mesh node that never forms, a formed mesh of three, and its last node once the
// other two are killed (no quorum: the check turns unhealthy, and says why).
#include "health_check.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <string>
#include <vector>

#include "core/storage/disk_full_policy.h"
#include "core/storage/file_system.h"
#include "net/support/loopback_mesh.h"

namespace lockmesh::testing {
namespace {

using lockmesh::cli::JudgeHealth;

mesh::NodeStatus MeshStatus() {
  mesh::NodeStatus s;
  s.node_id = "n1";
  s.role = "follower";
  s.mesh = true;
  s.cluster_id = "c0ffee";
  s.leader_id = "n2";
  s.lease_ms = 4000;
  return s;
}

TEST(JudgeHealthTest, EachRule) {
  mesh::NodeStatus local;
  local.node_id = "h";
  local.role = "leader";
  local.mesh = false;
  EXPECT_TRUE(JudgeHealth(local).healthy) << JudgeHealth(local).line;  // H2

  EXPECT_TRUE(JudgeHealth(MeshStatus()).healthy) << JudgeHealth(MeshStatus()).line;
  EXPECT_NE(JudgeHealth(MeshStatus()).line.find("leader n2"), std::string::npos);

  struct Case {
    void (*change)(mesh::NodeStatus*);
    const char* says;
  };
  const std::vector<Case> unhealthy = {
      {[](mesh::NodeStatus* s) { s->cluster_id.clear(); }, "not in a cluster yet"},   // H3
      {[](mesh::NodeStatus* s) { s->role = "joining"; }, "still joining"},           // H3
      {[](mesh::NodeStatus* s) { s->leader_id.clear(); }, "no leader known"},        // H3
      {[](mesh::NodeStatus* s) { s->lease_ms = -1; }, "no valid session lease"},     // H4
      {[](mesh::NodeStatus* s) { s->lease_ms = 0; }, "no valid session lease"},      // H4
      {[](mesh::NodeStatus* s) { s->warnings = {"disk full: ENOSPC; new locks are refused"}; },
       "disk full"},
  };
  for (const Case& c : unhealthy) {
    mesh::NodeStatus s = MeshStatus();
    c.change(&s);
    const auto v = JudgeHealth(s);
    EXPECT_FALSE(v.healthy) << c.says << ": " << v.line;
    EXPECT_NE(v.line.find(c.says), std::string::npos) << v.line;
  }
  // Other warnings do not fail the check.
  mesh::NodeStatus warned = MeshStatus();
  warned.warnings = {"this node's certificate expires in 10 days"};
  EXPECT_TRUE(JudgeHealth(warned).healthy);
  // A full local node is unhealthy too.
  local.warnings = {"disk full: no space; new locks are refused until space returns"};
  EXPECT_FALSE(JudgeHealth(local).healthy);
}

// The node's status carries core::DiskFullPolicy::Describe() as a warning while the disk is
// full: the check recognises exactly those words.
TEST(JudgeHealthTest, RecognisesTheNodesDiskFullWarning) {
  mesh::core::DiskFullPolicy policy;
  policy.OnPersistFailed(mesh::core::NoSpaceError("write wal"), 1000000);
  ASSERT_FALSE(policy.Describe().empty());
  mesh::NodeStatus s = MeshStatus();
  s.warnings = {policy.Describe()};
  EXPECT_FALSE(JudgeHealth(s).healthy) << policy.Describe();
}

class HealthCheckTest : public LoopbackMeshTest {
 protected:
  RunResult Check(const std::string& socket, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"status", "--check", "--socket", socket};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunLockmesh("check", args, Millis(20000));
  }
};

TEST_F(HealthCheckTest, NoNodeLocalNodeAndUnformedMeshNode) {
  RunResult none = Check(Path("nobody.sock"));
  EXPECT_EQ(none.code(), 94) << none.Describe();  // H1: no node, none started

  ASSERT_NE(StartTestNode(), nullptr);
  RunResult local = Check(paths_.socket);
  EXPECT_EQ(local.code(), 0) << local.Describe();
  EXPECT_EQ(local.out.rfind("healthy: ", 0), 0u) << local.out;
  EXPECT_NE(local.out.find("local node"), std::string::npos) << local.out;
  RunResult json = Check(paths_.socket, {"--json"});
  EXPECT_EQ(json.code(), 0) << json.Describe();
  Json doc = Json::parse(json.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << json.out;
  EXPECT_EQ(doc.value("healthy", false), true) << json.out;

  // One node of an expected three: it never forms a cluster.
  StartMeshNode(1, 3);
  ASSERT_TRUE(WaitFor([&] { return SocketAccepts(Socket(1)); }, Millis(30000), Millis(100)))
      << NodeLog(1);
  RunResult alone = Check(Socket(1));
  EXPECT_EQ(alone.code(), 1) << alone.Describe();
  EXPECT_EQ(alone.out.rfind("unhealthy: ", 0), 0u) << alone.out;
  EXPECT_NE(alone.out.find("not in a cluster yet"), std::string::npos) << alone.out;
  RunResult alone_json = Check(Socket(1), {"--json"});
  EXPECT_EQ(alone_json.code(), 1) << alone_json.Describe();
  Json d = Json::parse(alone_json.out, nullptr, false);
  ASSERT_FALSE(d.is_discarded()) << alone_json.out;
  EXPECT_EQ(d.value("healthy", true), false);
  EXPECT_NE(d.value("health", std::string()).find("not in a cluster"), std::string::npos);
}

TEST_F(HealthCheckTest, FormedMeshIsHealthyAndALoneSurvivorIsNot) {
  for (int i = 1; i <= 3; ++i) StartMeshNode(i, 3);
  ASSERT_TRUE(WaitFormed({1, 2, 3}, 3, Millis(30000))) << MeshLogs();
  // Every member is healthy once it holds a lease (granted within a heartbeat or two).
  for (int i = 1; i <= 3; ++i) {
    RunResult last;
    EXPECT_TRUE(WaitFor(
        [&] {
          last = Check(Socket(i));
          return last.code() == 0;
        },
        Millis(30000), Millis(200)))
        << "n" << i << ": " << last.Describe();
    EXPECT_NE(last.out.find("leader n"), std::string::npos) << last.out;
  }
  // Kill two: the third has no quorum; its lease lapses (session ttl 2 s) and no leader
  // remains, so it turns unhealthy and says why.
  const int survivor = 3;
  nodes_[1]->Kill();
  nodes_[2]->Kill();
  RunResult last;
  ASSERT_TRUE(WaitFor(
      [&] {
        last = Check(Socket(survivor));
        return last.code() == 1;
      },
      Millis(30000), Millis(200)))
      << last.Describe() << "\n" << NodeLog(survivor);
  EXPECT_EQ(last.out.rfind("unhealthy: ", 0), 0u) << last.out;
  EXPECT_TRUE(last.out.find("no leader known") != std::string::npos ||
              last.out.find("no valid session lease") != std::string::npos)
      << last.out;
}

}  // namespace
}  // namespace lockmesh::testing
