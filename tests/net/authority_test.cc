// One authority per host, and the local boundary (docs/mesh.md "One authority per host",
// "The local boundary").
//
// Real processes only. A one-node MESH node (`lockmesh node --no-multicast --listen
// 127.0.0.1:<port> --expect 1`) serves the test's socket and data dir and is killed with -9;
// then `lockmesh lock` (auto-start on), `lockmesh bench` and `flom` on that socket must each
// exit 99 naming the mesh node, its cluster and how to start it, with no node left serving
// the socket and nothing granted; `lockmesh node --local` and an auto-started node refuse
// the claimed socket or data dir; `lockmesh node --release-mesh-claim` gives them back.
// Also: a damaged, truncated or symlinked claim refuses a local start; a group/other-writable
// socket directory and a planted symlink at <socket>.lock are refused; a connection without
// a hello is closed. `lockmesh status` and `lockmesh locks` name the dead mesh node. (Tests
// needing a second uid are in socket_permission_test.cc.)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "core/mesh_claim.h"
#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

bool Has(const std::string& text, const std::string& re) {
  return std::regex_search(text, std::regex(re, std::regex::icase));
}

class AuthorityTest : public ProcessTest {
 protected:
  void SetUp() override {
    ProcessTest::SetUp();
    port_ = LoopbackPortBlock(1);
    flom_ = FlomBinary();
  }

  std::vector<std::string> MeshArgs() const {
    return {"node",
            "--node-id",
            "m1",
            "--socket",
            paths_.socket,
            "--data-dir",
            paths_.data_dir,
            "--no-multicast",
            "--listen",
            "127.0.0.1:" + std::to_string(port_),
            "--expect",
            "1"};
  }

  // Starts the mesh node and waits until a lock goes through it; returns its token.
  Process* StartMesh(uint64_t* token) {
    Process* p = Lockmesh("mesh", MeshArgs());
    uint64_t got = 0;
    bool ok = WaitFor(
        [&] {
          RunResult r = RunLockmesh("first", LockArgs("X", {"sh", "-c", "echo $LOCKMESH_TOKEN"}),
                                    Millis(10000));
          if (r.code() != 0) return false;
          got = std::stoull(r.out);
          return true;
        },
        Millis(30000), Millis(200));
    EXPECT_TRUE(ok) << "the mesh node does not serve locks:\n" << p->Stderr();
    if (token) *token = got;
    return ok ? p : nullptr;
  }

  void KillMesh(Process* p) {
    p->Kill();
    ASSERT_TRUE(WaitFor([&] { return NodePidsServing(paths_.socket).empty(); }, Millis(10000)));
  }

  // The refusal names the node, its cluster, how to start it and how to release it. `lock`
  // exits 94 (no node, as `status` and `locks`), the others 99.
  void ExpectClaimRefusal(const RunResult& r, const std::string& what, int code = 99) {
    EXPECT_EQ(r.code(), code) << what << ": " << r.Describe();
    EXPECT_TRUE(Has(r.err, "mesh node m1")) << what << ": " << r.Describe();
    EXPECT_TRUE(Has(r.err, "cluster 'lockmesh'")) << what << ": " << r.Describe();
    EXPECT_TRUE(Has(r.err, "start the mesh node: \\S*lockmesh node --node-id m1"))
        << what << ": " << r.Describe();
    EXPECT_TRUE(Has(r.err, "--release-mesh-claim")) << what << ": " << r.Describe();
  }

  // No node serves the socket, none answers it, and the marker command never ran.
  void ExpectNoLocalNode(const std::string& marker) {
    // (A refusing node may still be exiting after it reported its refusal.)
    EXPECT_TRUE(WaitFor([&] { return NodePidsServing(paths_.socket).empty(); }, Millis(10000)))
        << "a node serves the claimed socket";
    EXPECT_FALSE(SocketAccepts(paths_.socket)) << "something answers on the claimed socket";
    EXPECT_FALSE(FileExists(marker)) << "a command ran under a lock granted beside the mesh";
  }

  int port_ = 0;
  std::string flom_;
};

TEST_F(AuthorityTest, NoGrantBesideADeadMeshNode) {
  uint64_t first = 0;
  Process* mesh = StartMesh(&first);
  ASSERT_NE(mesh, nullptr);
  EXPECT_TRUE(FileExists(paths_.socket + ".mesh-claim"));
  EXPECT_TRUE(FileExists(paths_.data_dir + "/mesh-claim"));
  KillMesh(mesh);
  // The claim outlives a kill -9.
  EXPECT_TRUE(FileExists(paths_.socket + ".mesh-claim"));

  const std::string marker = Path("granted");
  // `lockmesh lock` with auto-start on (the default), as a FLoM-style script runs it.
  RunResult lock = RunLockmesh(
      "lock", {"lock", "--socket", paths_.socket, "X", "--", "touch", marker}, Millis(30000));
  ExpectClaimRefusal(lock, "lockmesh lock", 94);
  ExpectNoLocalNode(marker);

  RunResult bench =
      RunLockmesh("bench", {"bench", "--socket", paths_.socket, "--seconds", "1", "--runs", "1"},
                  Millis(30000));
  ExpectClaimRefusal(bench, "lockmesh bench");
  ExpectNoLocalNode(marker);

  Process* flom = Spawn("flom", {flom_, "-s", paths_.socket, "-r", "X", "--", "touch", marker});
  RunResult f = Finish(flom, Millis(30000));
  ExpectClaimRefusal(f, "flom");
  ExpectNoLocalNode(marker);

  // The mesh node comes back and grants again, above every earlier token.
  uint64_t again = 0;
  ASSERT_NE(StartMesh(&again), nullptr);
  EXPECT_GT(again, first);
}

// `lockmesh status` and `lockmesh locks` on the socket of a mesh node that is down say what
// `lockmesh lock` says (which node, which cluster, how to start it), still with exit 94 (no
// node), and with --json as {"error": MESSAGE} on stdout. They start nothing.
TEST_F(AuthorityTest, StatusAndLocksNameTheDeadMeshNode) {
  Process* mesh = StartMesh(nullptr);
  ASSERT_NE(mesh, nullptr);
  KillMesh(mesh);
  for (const char* command : {"status", "locks"}) {
    for (bool json : {false, true}) {
      std::vector<std::string> args = {command, "--socket", paths_.socket};
      if (json) args.push_back("--json");
      const std::string what = std::string("lockmesh ") + command + (json ? " --json" : "");
      RunResult r = RunLockmesh(command, args, Millis(30000));
      EXPECT_EQ(r.code(), 94) << what << ": " << r.Describe();
      EXPECT_TRUE(Has(r.err, "belongs to mesh node m1 of cluster 'lockmesh'.*which is not running"))
          << what << ": " << r.Describe();
      EXPECT_TRUE(Has(r.err, "start the mesh node: \\S*lockmesh node --node-id m1"))
          << what << ": " << r.Describe();
      EXPECT_TRUE(Has(r.err, "--release-mesh-claim")) << what << ": " << r.Describe();
      if (json) {
        nlohmann::json out = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
        ASSERT_TRUE(out.is_object() && out.contains("error") && out["error"].is_string())
            << what << ": " << r.Describe();
        const std::string error = out["error"];
        EXPECT_TRUE(Has(error, "mesh node m1 of cluster 'lockmesh'")) << what << ": " << error;
        EXPECT_NE(r.err.find(error), std::string::npos) << what << ": " << r.Describe();
      } else {
        EXPECT_EQ(r.out, "") << what << ": " << r.Describe();
      }
    }
  }
  EXPECT_TRUE(NodePidsServing(paths_.socket).empty());
  EXPECT_FALSE(SocketAccepts(paths_.socket));
}

TEST_F(AuthorityTest, EveryNonMeshNodeRefusesAClaimedSocketOrDataDir) {
  Process* mesh = StartMesh(nullptr);
  ASSERT_NE(mesh, nullptr);
  KillMesh(mesh);
  const std::string marker = Path("granted");
  // Started by hand, the node's own rule (no CLI pre-check in front of it).
  RunResult local = RunLockmesh(
      "local", {"node", "--local", "--socket", paths_.socket, "--data-dir", paths_.data_dir});
  ExpectClaimRefusal(local, "node --local");
  // As auto-started (what `lockmesh lock` spawns), with another data dir: the socket's claim.
  RunResult autostarted = RunLockmesh(
      "auto", {"node", "--auto-started", "--socket", paths_.socket, "--data-dir", Path("other")});
  EXPECT_EQ(autostarted.code(), 99) << autostarted.Describe();
  EXPECT_TRUE(Has(ReadFile(Path("other/node.log")), "refusing to start: .*mesh node m1"))
      << ReadFile(Path("other/node.log"));
  // On another socket with the mesh's data dir: the data dir's claim.
  RunResult other_socket = RunLockmesh(
      "other",
      {"node", "--local", "--socket", Path("s2/node.sock"), "--data-dir", paths_.data_dir});
  ExpectClaimRefusal(other_socket, "node --local on the mesh's data dir");
  EXPECT_FALSE(SocketAccepts(Path("s2/node.sock")));
  ExpectNoLocalNode(marker);
}

// The mesh node restarting while clients with auto-start and hand-started local nodes race
// for the socket: the mesh node ends up serving it alone, every client either got its lock
// from the mesh node or exited 99, and no local node ever served.
TEST_F(AuthorityTest, RacingStartersNeverServeBesideTheMesh) {
  uint64_t first = 0;
  Process* mesh = StartMesh(&first);
  ASSERT_NE(mesh, nullptr);
  KillMesh(mesh);
  std::vector<Process*> clients, locals;
  for (int i = 0; i < 3; ++i) {
    locals.push_back(Lockmesh("local", {"node", "--local", "--socket", paths_.socket}));
  }
  Process* restarted = Lockmesh("mesh", MeshArgs());
  for (int i = 0; i < 6; ++i) {
    clients.push_back(Lockmesh("client", {"lock", "--socket", paths_.socket, "-w", "20", "X", "--",
                                          "sh", "-c", "echo $LOCKMESH_TOKEN"}));
  }
  for (Process* p : locals) {
    RunResult r = Finish(p, Millis(30000));
    EXPECT_EQ(r.code(), 99) << r.Describe();
    EXPECT_TRUE(Has(r.err, "mesh node m1|another node already serves")) << r.Describe();
  }
  int granted = 0;
  for (Process* p : clients) {
    RunResult r = Finish(p, Millis(60000));
    if (r.code() == 0) {
      ++granted;
      EXPECT_GT(std::stoull(r.out), first) << r.Describe();
    } else {
      EXPECT_EQ(r.code(), 94) << r.Describe();  // the mesh node is down: no node
      EXPECT_TRUE(Has(r.err, "mesh node m1")) << r.Describe();
    }
  }
  ASSERT_TRUE(WaitFor([&] { return SocketAccepts(paths_.socket); }, Millis(20000)))
      << restarted->Stderr();
  std::vector<pid_t> serving = NodePidsServing(paths_.socket);
  ASSERT_EQ(serving.size(), 1u);
  EXPECT_EQ(serving[0], restarted->pid());
  EXPECT_FALSE(Has(ReadFile(paths_.data_dir + "/node.log"), " serving "))
      << "a local node served the mesh's data dir:\n"
      << ReadFile(paths_.data_dir + "/node.log");
  RunResult after = RunLockmesh("after", LockArgs("X", {"sh", "-c", "echo $LOCKMESH_TOKEN"}));
  EXPECT_EQ(after.code(), 0) << after.Describe();
  printf("racing starters: %d of %zu clients were granted by the restarted mesh node\n", granted,
         clients.size());
}

TEST_F(AuthorityTest, ReleaseMeshClaimHandsTheSocketBack) {
  Process* mesh = StartMesh(nullptr);
  ASSERT_NE(mesh, nullptr);
  std::vector<std::string> release = {"node",        "--release-mesh-claim", "--socket",
                                      paths_.socket, "--data-dir",           paths_.data_dir};
  RunResult busy = RunLockmesh("release-busy", release);
  EXPECT_EQ(busy.code(), 99) << busy.Describe();
  EXPECT_TRUE(Has(busy.err, "a node is serving")) << busy.Describe();
  EXPECT_TRUE(FileExists(paths_.socket + ".mesh-claim"));
  // Named through another socket, the data dir in use is still refused (<data_dir>/node.lock).
  RunResult busy_dir =
      RunLockmesh("release-busy-dir", {"node", "--release-mesh-claim", "--socket",
                                       Path("other.sock"), "--data-dir", paths_.data_dir});
  EXPECT_EQ(busy_dir.code(), 99) << busy_dir.Describe();
  EXPECT_TRUE(Has(busy_dir.err, "uses the data dir")) << busy_dir.Describe();
  EXPECT_TRUE(FileExists(paths_.data_dir + "/mesh-claim"));
  KillMesh(mesh);
  RunResult released = RunLockmesh("release", release);
  EXPECT_EQ(released.code(), 0) << released.Describe();
  EXPECT_TRUE(Has(released.out, "removed .*mesh node m1")) << released.Describe();
  EXPECT_FALSE(FileExists(paths_.socket + ".mesh-claim"));
  EXPECT_FALSE(FileExists(paths_.data_dir + "/mesh-claim"));
  // A local node may serve the socket again (with a fresh data dir: the old one holds the
  // mesh's log).
  RunResult lock = RunLockmesh("lock", {"lock", "--socket", paths_.socket, "X", "--", "true"},
                               Millis(30000), {{"LOCKMESH_DATA_DIR", Path("fresh")}});
  EXPECT_EQ(lock.code(), 0) << lock.Describe();
}

TEST_F(AuthorityTest, DamagedTruncatedOrSymlinkedClaimRefusesALocalStart) {
  mkdir(Path("s").c_str(), 0700);
  const std::string claim_path = paths_.socket + ".mesh-claim";
  mesh::core::MeshClaim claim;
  claim.cluster = "lockmesh";
  claim.node_id = "m1";
  claim.socket = paths_.socket;
  claim.data_dir = paths_.data_dir;
  std::string text = mesh::core::EncodeMeshClaim(claim);
  struct Case {
    std::string name;
    std::string why;
  };
  for (const Case& c :
       {Case{"garbage", "checksum|truncated|format"}, Case{"truncated", "truncated"},
        Case{"flipped", "checksum"}, Case{"symlink", "symbolic link"}}) {
    unlink(claim_path.c_str());
    if (c.name == "garbage") WriteFile(claim_path, "\x01\x02 not a claim");
    if (c.name == "truncated") WriteFile(claim_path, text.substr(0, text.size() / 2));
    if (c.name == "flipped") {
      std::string bad = text;
      bad[bad.find("m1")] = 'x';
      WriteFile(claim_path, bad);
    }
    if (c.name == "symlink") {
      WriteFile(Path("real-claim"), text);
      ASSERT_EQ(symlink(Path("real-claim").c_str(), claim_path.c_str()), 0);
    }
    const std::string marker = Path("granted-" + c.name);
    RunResult r = RunLockmesh(
        c.name, {"lock", "--socket", paths_.socket, "X", "--", "touch", marker}, Millis(30000));
    EXPECT_EQ(r.code(), 94) << c.name << ": " << r.Describe();  // no node, as `status` says
    EXPECT_TRUE(Has(r.err, "unreadable")) << c.name << ": " << r.Describe();
    EXPECT_TRUE(Has(r.err, c.why)) << c.name << ": " << r.Describe();
    EXPECT_TRUE(Has(r.err, "--release-mesh-claim")) << c.name << ": " << r.Describe();
    RunResult local = RunLockmesh(c.name + "-node", {"node", "--local", "--socket", paths_.socket});
    EXPECT_EQ(local.code(), 99) << c.name << ": " << local.Describe();
    EXPECT_TRUE(Has(local.err, "unreadable")) << c.name << ": " << local.Describe();
    ExpectNoLocalNode(marker);
  }
  // A mesh node rewrites a damaged claim of its own socket (it is the authority there).
  unlink(claim_path.c_str());
  WriteFile(claim_path, text.substr(0, 10));
  ASSERT_NE(StartMesh(nullptr), nullptr);
  EXPECT_TRUE(Has(ReadFile(claim_path), "node-id=m1\n")) << ReadFile(claim_path);
  EXPECT_TRUE(Has(ReadFile(claim_path), "\ncrc32c=[0-9a-f]{8}\n$")) << ReadFile(claim_path);
}

TEST_F(AuthorityTest, MeshNodeOfAnotherClusterDoesNotTakeOverAClaim) {
  Process* mesh = StartMesh(nullptr);
  ASSERT_NE(mesh, nullptr);
  KillMesh(mesh);
  std::vector<std::string> args = MeshArgs();
  args.insert(args.end(), {"--cluster", "other"});
  RunResult r = RunLockmesh("other-cluster", args);
  EXPECT_EQ(r.code(), 99) << r.Describe();
  EXPECT_TRUE(Has(r.err, "belong to mesh node m1 of cluster 'lockmesh'")) << r.Describe();
}

TEST_F(AuthorityTest, TwoNodesNeverShareADataDir) {
  ASSERT_NE(StartTestNode(), nullptr);
  RunResult second = RunLockmesh("second", {"node", "--local", "--socket", Path("s2/node.sock"),
                                            "--data-dir", paths_.data_dir});
  EXPECT_EQ(second.code(), 99) << second.Describe();
  EXPECT_TRUE(Has(second.err, "another node already uses the data dir " + paths_.data_dir))
      << second.Describe();
  EXPECT_FALSE(SocketAccepts(Path("s2/node.sock")));
}

// ------------------------------------------------------------------ the local boundary

TEST_F(AuthorityTest, GroupOrOtherWritableSocketDirectoryIsRefused) {
  ASSERT_EQ(mkdir(Path("open").c_str(), 0700), 0);
  ASSERT_EQ(chmod(Path("open").c_str(), 0777), 0);
  const std::string socket = Path("open/node.sock");
  RunResult node = RunLockmesh("node", {"node", "--local", "--socket", socket});
  EXPECT_EQ(node.code(), 99) << node.Describe();
  EXPECT_TRUE(Has(node.err, "refusing the socket directory " + Path("open") +
                                ": it has mode 0777 .*group or others can write"))
      << node.Describe();
  // The CLI's auto-start says the same and starts nothing.
  RunResult lock = RunLockmesh("lock", {"lock", "--socket", socket, "X", "--", "true"});
  EXPECT_EQ(lock.code(), 99) << lock.Describe();
  EXPECT_TRUE(Has(lock.err, "refusing the socket directory")) << lock.Describe();
  EXPECT_TRUE(NodePidsServing(socket).empty());
  // A directory the node creates gets exactly 0700.
  const std::string made = Path("made/node.sock");
  std::unique_ptr<Process> made_node = StartNode(made, Path("made-data"), Path("made.log"), Env());
  ASSERT_NE(made_node, nullptr);
  struct stat st;
  ASSERT_EQ(stat(Path("made").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  // A symlink to a good directory is refused too.
  ASSERT_EQ(symlink(Path("made").c_str(), Path("link").c_str()), 0);
  RunResult linked = RunLockmesh("linked", {"node", "--local", "--socket", Path("link/x.sock")});
  EXPECT_EQ(linked.code(), 99) << linked.Describe();
  EXPECT_TRUE(Has(linked.err, "symbolic link")) << linked.Describe();
}

TEST_F(AuthorityTest, PlantedSymlinkAtTheLockFileIsNotFollowed) {
  ASSERT_EQ(mkdir(Path("s").c_str(), 0700), 0);
  const std::string victim = Path("victim");
  ASSERT_EQ(symlink(victim.c_str(), (paths_.socket + ".lock").c_str()), 0);
  RunResult node = RunLockmesh("node", {"node", "--local", "--socket", paths_.socket});
  EXPECT_EQ(node.code(), 99) << node.Describe();
  EXPECT_TRUE(Has(node.err, "\\.lock is a symbolic link")) << node.Describe();
  EXPECT_FALSE(FileExists(victim)) << "the node followed the planted symlink";
  // The CLI's start lock too.
  unlink((paths_.socket + ".lock").c_str());
  ASSERT_EQ(symlink(victim.c_str(), (paths_.socket + ".start.lock").c_str()), 0);
  RunResult lock = RunLockmesh("lock", {"lock", "--socket", paths_.socket, "X", "--", "true"});
  EXPECT_EQ(lock.code(), 99) << lock.Describe();
  EXPECT_TRUE(Has(lock.err, "start\\.lock is a symbolic link")) << lock.Describe();
  EXPECT_FALSE(FileExists(victim)) << "the CLI followed the planted symlink";
}

TEST_F(AuthorityTest, ConnectionWithoutHelloIsClosed) {
  ASSERT_NE(StartTestNode(), nullptr);
  int fd = ConnectUnix(paths_.socket);
  ASSERT_GE(fd, 0);
  Clock::time_point start = Clock::now();
  PeerClose how = ReadUntilClosed(fd, Millis(30000));
  double waited = SecondsSince(start);
  close(fd);
  EXPECT_TRUE(how == PeerClose::kEof || how == PeerClose::kReset) << PeerCloseName(how);
  EXPECT_GE(waited, 4.0);  // the default hello timeout is 5 s
  EXPECT_TRUE(
      WaitFor([&] { return Has(ReadFile(paths_.log), "no hello within 5000 ms"); }, Millis(5000)))
      << Tail(paths_.log);
  // The node keeps serving.
  EXPECT_EQ(RunLockmesh("lock", LockArgs("X", {"true"})).code(), 0);
}

}  // namespace
}  // namespace lockmesh::testing
