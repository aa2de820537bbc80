// The node's UNIX socket is not usable by another uid.
//
// The test runs as root, starts a node as root, and runs `lockmesh lock` as `nobody`
// (65534:65534, supplementary groups dropped) with setgid/setuid between fork and exec:
//  * as the node leaves things (socket dir 0700, socket 0600): the client cannot even
//    connect, and says so (permission) instead of pretending no node runs;
//  * with the directory and socket loosened (0777 / 0666) so that connect() succeeds: the
//    node checks the peer's credentials (SO_PEERCRED) and refuses, with a clear error on the
//    client and a reason in the node's log.
// Either way nothing is granted to the intruder and the node keeps serving its owner.
//
// And the other direction (docs/mesh.md "The local boundary"):
//  * a socket directory that another user created first (0777, or 0755 owned by them) is
//    refused by our node and by the CLI's auto-start, with its owner and mode;
//  * a client refuses a node that runs as another uid (SO_PEERCRED, before the hello):
//    node as `nobody`, client as `daemon`, neither root.
#include <errno.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <regex>
#include <string>
#include <vector>

#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;
constexpr uid_t kDaemon = 1;  // Debian's `daemon` user
constexpr gid_t kDaemonGroup = 1;

class SocketPermissionTest : public ProcessTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "!!! SKIPPED: this test must run as root (it runs a client as uid "
                   << kNobody << " via setuid); the uid check is NOT verified by this run !!!";
    }
    ProcessTest::SetUp();
    if (HasFatalFailure()) return;
    node_ = StartTestNode();
    ASSERT_NE(node_, nullptr);
    // A place `nobody` may write to: its HOME and the marker of a command that must not run.
    nobody_dir_ = std::make_unique<TempDir>("lmt-nb");
    ASSERT_EQ(chmod(nobody_dir_->path().c_str(), 0755), 0);
    ASSERT_EQ(chown(nobody_dir_->path().c_str(), kNobody, kNogroup), 0);
  }

  void TearDown() override {
    ProcessTest::TearDown();
    nobody_dir_.reset();
  }

  // `lockmesh lock --socket S perm -- touch <marker>` as nobody, autostart left at its
  // default (as a real user would run it).
  RunResult RunAsNobody(const std::string& name) {
    ProcessOptions o;
    o.argv = {LockmeshBinary(), "lock", "--socket", paths_.socket, "-w", "5", "perm", "--",
              "touch", Marker()};
    o.env = Env({{"HOME", nobody_dir_->path()}, {"LOCKMESH_DATA_DIR", nobody_dir_->Join("data")}});
    o.stdout_path = Path("logs/" + name + ".out");
    o.stderr_path = Path("logs/" + name + ".err");
    o.cwd = "/";
    o.uid = kNobody;
    o.gid = kNogroup;
    processes_.push_back(std::make_unique<Process>(o));
    Process* p = processes_.back().get();
    EXPECT_TRUE(p->ok()) << p->error();
    return Finish(p, Millis(30000));
  }

  std::string Marker() const { return nobody_dir_->Join("ran"); }

  // Nothing granted or queued on "perm", by the node's own account (CLI and public API).
  void ExpectNothingGranted() {
    RunResult locks = RunLockmesh("locks", {"locks", "--json", "--socket", paths_.socket});
    EXPECT_EQ(locks.code(), 0) << locks.Describe();
    EXPECT_EQ(locks.out.find("perm"), std::string::npos)
        << "`lockmesh locks --json` shows the intruder's lock:\n" << locks.out;
    std::vector<mesh::LockInfo> listing;
    std::string error;
    ASSERT_TRUE(ListLocks(paths_.socket, &listing, &error)) << error;
    EXPECT_EQ(CountLocks(listing, "perm", true), 0u);
    EXPECT_EQ(CountLocks(listing, "perm", false), 0u);
    EXPECT_FALSE(FileExists(Marker())) << "the intruder's command ran";
    EXPECT_EQ(NodePidsServing(paths_.socket).size(), 1u)
        << "the refused client started another node on the socket";
  }

  // The owner can still lock.
  void ExpectOwnerStillServed() {
    RunResult r = RunLockmesh("owner", LockArgs("perm", {"true"}, {"-n"}));
    EXPECT_EQ(r.code(), 0) << r.Describe();
  }

  Process* node_ = nullptr;
  std::unique_ptr<TempDir> nobody_dir_;
};

std::regex Icase(const std::string& re) { return std::regex(re, std::regex::icase); }

// rm -rf PATH; its exit code.
int RunCommandRemoveTree(const std::string& path) {
  pid_t pid = fork();
  if (pid == 0) {
    execlp("rm", "rm", "-rf", "--", path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int ws = 0;
  if (pid < 0 || waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws)) return -1;
  return WEXITSTATUS(ws);
}

TEST_F(SocketPermissionTest, OtherUidCannotUseTheSocket) {
  RunResult r = RunAsNobody("nobody");
  EXPECT_NE(r.code(), 0) << r.Describe();
  EXPECT_TRUE(r.status && r.status->exited()) << r.Describe();
  EXPECT_TRUE(std::regex_search(r.err, Icase("permission"))) << "no clear error: " << r.Describe();
  ExpectNothingGranted();
  ExpectOwnerStillServed();
}

TEST_F(SocketPermissionTest, NodeRefusesOtherUidEvenWhenTheSocketIsOpen) {
  // Loosen every directory on the way and the socket itself.
  ASSERT_EQ(chmod(root().c_str(), 0777), 0);
  ASSERT_EQ(chmod(Path("s").c_str(), 0777), 0);
  ASSERT_EQ(chmod(paths_.socket.c_str(), 0666), 0);

  // Prove that connect() itself now succeeds for nobody, so what follows tests the node's
  // SO_PEERCRED check and not file permissions.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(kNogroup) != 0 || setuid(kNobody) != 0) _exit(100);
    int fd = ConnectUnix(paths_.socket);
    _exit(fd >= 0 ? 0 : (-fd & 0x7f));
  }
  int ws = 0;
  ASSERT_EQ(waitpid(pid, &ws, 0), pid);
  ASSERT_TRUE(WIFEXITED(ws));
  ASSERT_EQ(WEXITSTATUS(ws), 0) << "connect() as nobody failed even with open permissions: "
                                << strerror(WEXITSTATUS(ws));

  size_t log_before = FileSize(paths_.log);
  RunResult r = RunAsNobody("nobody-open");
  EXPECT_NE(r.code(), 0) << r.Describe();
  EXPECT_TRUE(r.status && r.status->exited()) << r.Describe();
  EXPECT_TRUE(std::regex_search(r.err, Icase("permission|not allowed|refused")))
      << "no clear error: " << r.Describe();
  // The node says why it refused, and names the uid it refused.
  EXPECT_TRUE(WaitFor(
      [&] {
        std::string log = ReadFileFrom(paths_.log, log_before);
        return std::regex_search(log, Icase("(refus|permission|denied).*65534|65534.*(refus|permission|denied)"));
      },
      Millis(5000)))
      << "the node's log has no refusal line naming uid 65534:\n"
      << ReadFileFrom(paths_.log, log_before);
  ExpectNothingGranted();
  ExpectOwnerStillServed();
}

// Another user creates our default socket directory first.
TEST_F(SocketPermissionTest, NodeRefusesASocketDirectoryAnotherUserCreated) {
  const std::string dir = "/tmp/lockmesh-" + std::to_string(kDaemon);
  struct stat st;
  if (lstat(dir.c_str(), &st) == 0) GTEST_SKIP() << dir << " exists already; not touching it";
  struct RemoveAtExit {
    std::string path;
    ~RemoveAtExit() { RunCommandRemoveTree(path); }
  } remove_at_exit{dir};
  TempDir daemon_home("lmt-dm");
  ASSERT_EQ(chown(daemon_home.path().c_str(), kDaemon, kDaemonGroup), 0);
  for (mode_t mode : {0777, 0755}) {
    ASSERT_EQ(mkdir(dir.c_str(), 0700), 0) << strerror(errno);
    ASSERT_EQ(chown(dir.c_str(), kNobody, kNogroup), 0);
    ASSERT_EQ(chmod(dir.c_str(), mode), 0);
    const std::string marker = daemon_home.Join("ran");
    // `daemon` runs `lockmesh lock` with everything at its default: XDG_RUNTIME_DIR unset,
    // so the socket is /tmp/lockmesh-1/node.sock.
    ProcessOptions o;
    o.argv = {LockmeshBinary(), "lock", "X", "--", "touch", marker};
    o.env = Env({{"HOME", daemon_home.path()},
                 {"LOCKMESH_SOCKET", std::nullopt},
                 {"LOCKMESH_DATA_DIR", daemon_home.Join("data")},
                 {"XDG_RUNTIME_DIR", std::nullopt}});
    o.stdout_path = Path("logs/daemon.out");
    o.stderr_path = Path("logs/daemon.err");
    o.cwd = "/";
    o.uid = kDaemon;
    o.gid = kDaemonGroup;
    processes_.push_back(std::make_unique<Process>(o));
    RunResult r = Finish(processes_.back().get(), Millis(30000));
    char mode_text[8];
    snprintf(mode_text, sizeof mode_text, "%04o", mode);
    EXPECT_EQ(r.code(), 99) << r.Describe();
    EXPECT_TRUE(std::regex_search(
        r.err, std::regex("refusing the socket directory " + dir +
                          ": it is owned by uid 65534 \\(nobody\\) \\(mode " + mode_text + "\\)")))
        << r.Describe();
    EXPECT_FALSE(FileExists(marker));
    EXPECT_TRUE(NodePidsServing(dir + "/node.sock").empty());
    EXPECT_FALSE(FileExists(dir + "/node.sock"));
    // The node itself, started by hand, refuses it the same way.
    o.argv = {LockmeshBinary(), "node", "--local"};
    processes_.push_back(std::make_unique<Process>(o));
    RunResult n = Finish(processes_.back().get(), Millis(30000));
    EXPECT_EQ(n.code(), 99) << n.Describe();
    EXPECT_TRUE(
        std::regex_search(n.err, Icase("refusing the socket directory .*owned by uid 65534")))
        << n.Describe();
    EXPECT_EQ(RunCommandRemoveTree(dir), 0);
  }
}

// The client checks who runs the node before it sends anything.
TEST_F(SocketPermissionTest, ClientRefusesANodeOfAnotherUid) {
  // A node run by `nobody` in a directory it owns (0755: others may reach the socket)...
  const std::string sdir = nobody_dir_->Join("s");
  ASSERT_EQ(mkdir(sdir.c_str(), 0755), 0);
  ASSERT_EQ(chown(sdir.c_str(), kNobody, kNogroup), 0);
  ASSERT_EQ(chmod(sdir.c_str(), 0755), 0);
  const std::string socket = sdir + "/node.sock";
  Spawn("nobody-node",
        {LockmeshBinary(), "node", "--local", "--socket", socket, "--data-dir",
         nobody_dir_->Join("data")},
        {{"HOME", nobody_dir_->path()}}, kNobody, kNogroup);
  ASSERT_TRUE(WaitFor([&] { return SocketAccepts(socket); }, Millis(20000)));
  // ...with its socket opened to everyone, so that connect() succeeds for `daemon`.
  ASSERT_EQ(chmod(socket.c_str(), 0666), 0);
  TempDir daemon_home("lmt-dm");
  ASSERT_EQ(chown(daemon_home.path().c_str(), kDaemon, kDaemonGroup), 0);
  const std::string marker = daemon_home.Join("ran");
  auto run_as_daemon = [&](const std::string& name,
                           const std::map<std::string, std::optional<std::string>>& extra) {
    ProcessOptions o;
    o.argv = {LockmeshBinary(), "lock", "--socket", socket, "X", "--", "touch", marker};
    auto env = Env({{"HOME", daemon_home.path()}, {"LOCKMESH_DATA_DIR", daemon_home.Join("d")}});
    for (const auto& [k, v] : extra) env[k] = v;
    o.env = env;
    o.stdout_path = Path("logs/" + name + ".out");
    o.stderr_path = Path("logs/" + name + ".err");
    o.cwd = "/";
    o.uid = kDaemon;
    o.gid = kDaemonGroup;
    processes_.push_back(std::make_unique<Process>(o));
    return Finish(processes_.back().get(), Millis(30000));
  };
  RunResult r = run_as_daemon("daemon", {});
  EXPECT_EQ(r.code(), 99) << r.Describe();
  EXPECT_TRUE(std::regex_search(r.err, std::regex("the node on " + socket +
                                                  " runs as uid 65534 \\(nobody\\), not as you "
                                                  "\\(uid 1\\); refusing to send it anything")))
      << r.Describe();
  EXPECT_FALSE(FileExists(marker));
  // Trusting that uid on purpose gets past the client's check: the node then refuses
  // `daemon` itself (its own SO_PEERCRED check), which proves the first refusal was the
  // client's.
  RunResult trusted = run_as_daemon("daemon-trusting", {{"LOCKMESH_TRUSTED_NODE_UIDS", "nobody"}});
  EXPECT_EQ(trusted.code(), 99) << trusted.Describe();
  EXPECT_TRUE(std::regex_search(trusted.err, Icase("uid 1 may not use the node of uid 65534")))
      << trusted.Describe();
  EXPECT_FALSE(FileExists(marker));
}

}  // namespace
}  // namespace lockmesh::testing
