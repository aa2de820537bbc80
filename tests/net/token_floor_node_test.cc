// `lockmesh node --token-floor N` on a real node (real process, socket, files): its first
// fencing token is above N, and neither a restart with a lower floor (or none), nor one that
// starts from a snapshot, lowers tokens (core/lock_table.h, "Token floor").
#include <signal.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/lock_table.h"
#include "mesh/node.h"
#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

static_assert(mesh::kMaxTokenFloor == mesh::core::kMaxTokenFloor,
              "the CLI's bound of --token-floor is the lock table's");

class TokenFloorNodeTest : public ProcessTest {
 protected:
  // `lockmesh lock fenced`: its LOCKMESH_TOKEN (0 with a test failure).
  unsigned long long Token() {
    RunResult r = RunLockmesh("lock", LockArgs("fenced", {"sh", "-c", "echo \"$LOCKMESH_TOKEN\""}));
    EXPECT_EQ(r.code(), 0) << r.Describe();
    return std::strtoull(r.out.c_str(), nullptr, 10);
  }
  // Stops the node gracefully (SIGTERM) and waits for exit 0.
  void Stop(Process* node) {
    node->Signal(SIGTERM);
    auto st = node->Wait(Millis(20000));
    ASSERT_TRUE(st.has_value()) << "the node did not stop on SIGTERM";
    EXPECT_TRUE(st->exited() && st->code == 0) << Tail(paths_.log, 20);
  }
};

TEST_F(TokenFloorNodeTest, TokensStayAboveTheFloorAcrossRestarts) {
  Process* node = StartTestNode({"--token-floor", "5000"});
  ASSERT_NE(node, nullptr);
  const unsigned long long first = Token();
  EXPECT_GT(first, 5000u) << "the first token of a node started with --token-floor 5000";
  Stop(node);

  // A lower floor, and a snapshot every 10 entries: the next start restores a snapshot.
  node = StartTestNode({"--token-floor", "10", "--snapshot-every", "10"});
  ASSERT_NE(node, nullptr);
  unsigned long long last = first;
  for (int i = 0; i < 8; ++i) {
    const unsigned long long t = Token();
    EXPECT_GT(t, last) << "a restart with a lower floor lowered the token";
    last = t;
  }
  Stop(node);

  // No floor at all: still above.
  node = StartTestNode({"--snapshot-every", "10"});
  ASSERT_NE(node, nullptr);
  EXPECT_GT(Token(), last) << "a restart from a snapshot without a floor lowered the token";
  Stop(node);
}

TEST_F(TokenFloorNodeTest, FloorFromTheEnvironmentAndBadValuesRefused) {
  RunResult bad = RunLockmesh("bad", {"node", "--socket", paths_.socket, "--data-dir",
                                      paths_.data_dir, "--token-floor", "-1"});
  EXPECT_NE(bad.code(), 0) << bad.Describe();
  EXPECT_NE(bad.err.find("token"), std::string::npos) << bad.Describe();
  RunResult huge = RunLockmesh("huge", {"node", "--socket", paths_.socket, "--data-dir",
                                        paths_.data_dir, "--token-floor", "4611686018427387905"});
  EXPECT_NE(huge.code(), 0) << huge.Describe();

  auto node = StartNode(paths_.socket, paths_.data_dir, paths_.log,
                        Env({{"LOCKMESH_TOKEN_FLOOR", "777777"}}));
  ASSERT_NE(node, nullptr);
  EXPECT_GT(Token(), 777777u);
}

}  // namespace
}  // namespace lockmesh::testing
