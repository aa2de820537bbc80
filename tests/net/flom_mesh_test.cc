// The `flom` front end's network options (docs/flom.md "Network options"): with FLoM's
// -a ADDRESS -p PORT or -A GROUP -P PORT, the node that flom auto-starts joins a mesh, and
// two such nodes (two "hosts": two sockets, two data dirs, two node ids) hand out the locks
// of one lock table — what FLoM's clients of one daemon get.
//
// Real processes: every `flom` auto-starts its node as FLoM's daemon would be; the test
// checks the node's command line and log name the address, group and ports given, and that
// a lock held through one node makes the other answer busy (exit 98). The -a test runs on
// 127.0.0.1 (ports from LoopbackPortBlock). The -A test needs multicast, which loopback
// carries only in a network namespace of its own (lo with MULTICAST and a route to
// 224.0.0.0/4 with source 127.0.0.1): the test process enters a new one first (root only;
// skipped otherwise), so nothing it sends leaves the host.
#include <sched.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

class FlomMeshTest : public ProcessTest {
 protected:
  void SetUp() override {
    ProcessTest::SetUp();
    if (HasFatalFailure()) return;
    flom_ = FlomBinary();
    struct stat st;
    ASSERT_EQ(lstat(flom_.c_str(), &st), 0) << flom_ << " is missing (CMake creates it)";
    sockets_ = {paths_.socket, Path("s2/flom.sock")};
  }

  void TearDown() override {
    for (size_t i = 1; i < sockets_.size(); ++i) KillNodesServing(sockets_[i]);
    if (HasFailure()) {
      for (size_t i = 0; i < sockets_.size(); ++i) {
        std::cerr << "---- node " << i + 1 << " log\n" << ReadFile(Log(i)) << "\n";
      }
    }
    ProcessTest::TearDown();
  }

  /// Host i (0 or 1): its socket, data dir and node id.
  std::string DataDir(size_t i) const { return Path("host" + std::to_string(i + 1)); }
  std::string Log(size_t i) const { return DataDir(i) + "/node.log"; }

  /// `flom -s SOCKET(i) ARGS...` as host i, to completion.
  RunResult RunFlomOn(size_t i, const std::vector<std::string>& args,
                      Millis timeout = Millis(60000)) {
    return Finish(FlomOn(i, args), timeout);
  }
  Process* FlomOn(size_t i, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {flom_, "-s", sockets_[i]};
    argv.insert(argv.end(), args.begin(), args.end());
    return Spawn(
        "flom" + std::to_string(i + 1), argv,
        {{"LOCKMESH_DATA_DIR", DataDir(i)}, {"LOCKMESH_NODE_ID", "host" + std::to_string(i + 1)}});
  }

  /// The command line of the node serving host i's socket, joined by spaces ("" if none).
  std::string NodeCommandLine(size_t i) const {
    std::vector<pid_t> pids = NodePidsServing(sockets_[i]);
    if (pids.size() != 1) return "";
    std::string text;
    for (const std::string& arg : Cmdline(pids[0])) text += arg + " ";
    return text;
  }

  bool LogHas(size_t i, const std::string& text, Millis timeout = Millis(30000)) const {
    return WaitFor([&] { return ReadFile(Log(i)).find(text) != std::string::npos; }, timeout);
  }

  /// The two nodes hand out one lock table: held through host 1, busy through host 2;
  /// released, free through host 2.
  void ExpectOneLockTable() {
    Process* holder = FlomOn(0, {"-r", "shared", "--", "sh", "-c",
                                 "touch \"$D/held\"; while [ ! -e \"$D/release\" ]; do sleep "
                                 "0.02; done"});
    ASSERT_TRUE(
        WaitFor([&] { return FileExists(Path("held")) || !holder->Running(); }, Millis(60000)))
        << "the holder did not get its lock";
    ASSERT_TRUE(FileExists(Path("held"))) << Finish(holder, Millis(1)).Describe();
    RunResult busy = RunFlomOn(1, {"-r", "shared", "-o", "0", "--", "true"});
    EXPECT_EQ(busy.code(), 98) << "a lock held through host 1 must be busy through host 2: "
                               << busy.Describe();
    WriteFile(Path("release"), "");
    RunResult held = Finish(holder, Millis(60000));
    EXPECT_EQ(held.code(), 0) << held.Describe();
    RunResult free_now = RunFlomOn(1, {"-r", "shared", "-o", "0", "--", "echo", "granted"});
    EXPECT_EQ(free_now.code(), 0) << free_now.Describe();
    EXPECT_EQ(free_now.out, "granted\n");
    RunResult status =
        RunLockmesh("status", {"status", "--json", "--socket", sockets_[1]}, Millis(30000));
    EXPECT_EQ(status.code(), 0) << status.Describe();
    EXPECT_NE(status.out.find("\"host1\""), std::string::npos) << status.out;
    EXPECT_NE(status.out.find("\"host2\""), std::string::npos) << status.out;
  }

  std::string flom_;
  std::vector<std::string> sockets_;
};

// FLoM: every client names the daemon's address; the host that has it runs the daemon.
// lockmesh: the node of the host that has ADDRESS listens on ADDRESS:PORT; a node that
// cannot (another host's address, or taken by a node of this host) joins it there.
TEST_F(FlomMeshTest, UnicastAddressAndPortMakeOneMesh) {
  const std::string port = std::to_string(LoopbackPortBlock(1));
  const std::string target = "127.0.0.1:" + port;
  RunResult first = RunFlomOn(0, {"-a", "127.0.0.1", "-p", port, "--", "true"});
  ASSERT_EQ(first.code(), 0) << first.Describe();
  std::string node1 = NodeCommandLine(0);
  EXPECT_NE(node1.find("--auto-mesh"), std::string::npos) << node1;
  RunResult verbose = RunFlomOn(0, {"-V", "-a", "127.0.0.1", "-p", port, "--", "true"});
  EXPECT_EQ(verbose.code(), 0) << verbose.Describe();
  EXPECT_NE(verbose.out.find("[Daemon]/UnicastAddress='127.0.0.1'"), std::string::npos)
      << verbose.out;
  EXPECT_NE(verbose.err.find("note: -a/-A: a node started here joins a mesh"), std::string::npos)
      << verbose.err;
  EXPECT_NE(node1.find("--listen " + target + " "), std::string::npos) << node1;
  EXPECT_NE(node1.find("--no-multicast"), std::string::npos) << node1;
  EXPECT_EQ(node1.rfind("flom --lockmesh node", 0), 0u) << "still FLoM's process name: " << node1;
  EXPECT_TRUE(LogHas(0, "listening on " + target)) << ReadFile(Log(0));

  RunResult second = RunFlomOn(1, {"-a", "127.0.0.1", "-p", port, "--", "true"});
  ASSERT_EQ(second.code(), 0) << second.Describe();
  std::string node2 = NodeCommandLine(1);
  EXPECT_NE(node2.find("--join " + target + " "), std::string::npos) << node2;
  EXPECT_NE(node2.find("--expect 2"), std::string::npos) << node2;
  EXPECT_TRUE(LogHas(1, "peer host1 up")) << ReadFile(Log(1));
  ExpectOneLockTable();

  // -d 0 clients use the running nodes; -X stops them as FLoM's daemon.
  RunResult client = RunFlomOn(1, {"-d", "0", "-a", "127.0.0.1", "-p", port, "--", "true"});
  EXPECT_EQ(client.code(), 0) << client.Describe();
  for (size_t i : {1, 0}) {
    RunResult stop = RunFlomOn(i, {"-X"});
    EXPECT_EQ(stop.code(), 0) << stop.Describe();
  }
}

// FLoM: the daemon is found by multicast to -A GROUP on -P PORT. lockmesh: the nodes find
// each other by their beacons to GROUP on PORT, and listen for peers on -p.
TEST_F(FlomMeshTest, MulticastGroupAndPortMakeOneMesh) {
  if (unshare(CLONE_NEWNET) != 0) {
    GTEST_SKIP() << "needs a network namespace of its own (root): " << strerror(errno);
  }
  ASSERT_EQ(system("ip link set lo up multicast on && "
                   "ip route add 224.0.0.0/4 dev lo src 127.0.0.1"),
            0);
  const std::vector<std::string> flags = {"-A",    "239.255.41.7",    "-P", "28115", "-p",
                                          "28116", "--discovery-ttl", "1",  "-n",    "lo"};
  std::vector<std::string> args = flags;
  for (const char* a : {"--", "true"}) args.push_back(a);
  RunResult first = RunFlomOn(0, args);
  ASSERT_EQ(first.code(), 0) << first.Describe();
  std::string node1 = NodeCommandLine(0);
  EXPECT_NE(node1.find("--discovery-group4 239.255.41.7 "), std::string::npos) << node1;
  EXPECT_NE(node1.find("--discovery-port 28115 "), std::string::npos) << node1;
  EXPECT_NE(node1.find("--listen [::]:28116 "), std::string::npos) << node1;
  EXPECT_NE(node1.find("--discovery-interface lo "), std::string::npos) << node1;
  EXPECT_TRUE(LogHas(0, "as node host1: 239.255.41.7 ")) << ReadFile(Log(0));
  EXPECT_TRUE(LogHas(0, "port 28115 on lo, TTL 1")) << ReadFile(Log(0));
  EXPECT_TRUE(LogHas(0, "listening on [::]:28116")) << ReadFile(Log(0));

  // The second "host" finds the first by its beacons alone (no --join), on the peer port
  // the first listens on; its own -p 28116 is taken there, so it listens on a free one.
  RunResult second = RunFlomOn(1, args);
  ASSERT_EQ(second.code(), 0) << second.Describe();
  std::string node2 = NodeCommandLine(1);
  EXPECT_EQ(node2.find("--join"), std::string::npos) << node2;
  EXPECT_NE(node2.find("--discovery-group4 239.255.41.7 "), std::string::npos) << node2;
  EXPECT_TRUE(LogHas(1, "peer host1 up")) << ReadFile(Log(1));
  ExpectOneLockTable();

  // Another group is another mesh: a third socket's node on 239.255.41.8 stays apart.
  sockets_.push_back(Path("s3/flom.sock"));
  std::vector<std::string> other = {"-A",    "239.255.41.8", "-P",     "28115", "-p",
                                    "28117", "-r",           "shared", "--",    "true"};
  RunResult apart = RunFlomOn(2, other);
  EXPECT_EQ(apart.code(), 0) << apart.Describe();
  EXPECT_FALSE(LogHas(2, "peer host", Millis(3000))) << ReadFile(Log(2));
}

// What cannot be used is refused with the reason (FLoM's 99), and starts nothing.
TEST_F(FlomMeshTest, UnusableAddressesAreRefused) {
  RunResult not_group = RunFlomOn(0, {"-A", "10.1.2.3", "--", "true"});
  EXPECT_EQ(not_group.code(), 99) << not_group.Describe();
  EXPECT_NE(not_group.err.find("-A/--multicast-address 10.1.2.3 is not a multicast group"),
            std::string::npos)
      << not_group.err;
  RunResult vfs = RunFlomOn(0, {"-m", "/tmp/vfs", "--", "true"});
  EXPECT_EQ(vfs.code(), 99) << vfs.Describe();
  EXPECT_NE(vfs.err.find("no FUSE status file system"), std::string::npos) << vfs.err;
  EXPECT_TRUE(NodePidsServing(sockets_[0]).empty());
}

}  // namespace
}  // namespace lockmesh::testing
