// The `flom` front end (docs/flom.md): shell scripts written for FLoM run
// unchanged — cron-style jobs, the nesting `flom -r A -- flom -r B -- cmd`, a permanent
// daemon (`flom -d -1`) with `-d 0` clients, `flom -x` / `flom -X` at the end — plus the
// command line's edges: -v, -V, --help, bad flags, refused options, --ignore-signal.
//
// The scripts are real /bin/sh files that call `flom` through PATH (the build dir, where
// the `flom` symlink is). HOME is the test's; ~/.flom names the test's socket, as a FLoM
// user would configure a non-default one. TearDown kills whatever node serves it.
#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

class FlomScriptTest : public ProcessTest {
 protected:
  void SetUp() override {
    ProcessTest::SetUp();
    if (HasFatalFailure()) return;
    std::string binary = LockmeshBinary();
    bin_dir_ = binary.substr(0, binary.rfind('/'));
    flom_ = bin_dir_ + "/flom";
    struct stat st;
    ASSERT_EQ(lstat(flom_.c_str(), &st), 0) << flom_ << " is missing (CMake creates it)";
    WriteFile(home_ + "/.flom", "[Daemon]\nSocketName=" + paths_.socket + "\n");
    const char* path = getenv("PATH");
    path_ = bin_dir_ + ":" + (path != nullptr ? path : "/usr/bin:/bin");
  }

  std::map<std::string, std::optional<std::string>> ScriptEnv() const {
    return {{"PATH", path_}};
  }

  /// Writes an executable script <root>/<name>.
  std::string Script(const std::string& name, const std::string& body) {
    std::string path = Path(name);
    WriteFile(path, "#!/bin/sh\n" + body);
    chmod(path.c_str(), 0755);
    return path;
  }

  Process* StartScript(const std::string& name, const std::string& path) {
    return Spawn(name, {path}, ScriptEnv());
  }

  RunResult RunScript(const std::string& name, const std::string& path,
                      Millis timeout = Millis(60000)) {
    return Finish(StartScript(name, path), timeout);
  }

  RunResult RunFlom(const std::string& name, const std::vector<std::string>& args,
                    Millis timeout = Millis(30000)) {
    std::vector<std::string> argv = {flom_};
    argv.insert(argv.end(), args.begin(), args.end());
    return Finish(Spawn(name, argv, ScriptEnv()), timeout);
  }

  /// Node processes serving the test's socket (found in /proc by their command line).
  std::vector<pid_t> Nodes() const { return NodePidsServing(paths_.socket); }

  bool WaitNoNode(Millis timeout = Millis(30000)) {
    return WaitFor([&] { return Nodes().empty() && !SocketAccepts(paths_.socket); }, timeout);
  }

  std::string bin_dir_;
  std::string flom_;
  std::string path_;
};

// Eight cron jobs fire at once; each runs the same script, which serializes its racy
// read-increment-write with flom and lets the last one stop the daemon with `flom -x`.
TEST_F(FlomScriptTest, CronStyleJobsRunUnchangedAndQuiesceExitStopsTheNode) {
  WriteFile(Path("count"), "0\n");
  std::string job = Script("job.sh", R"(# job.sh: run from cron every minute on every server
flom -r nightly -- sh -c 'n=$(cat "$D/count"); sleep 0.02; echo $((n + 1)) > "$D/count"'
rc=$?
if [ $rc -ne 0 ]; then echo "job failed: $rc" >&2; exit $rc; fi
exit 0
)");
  std::vector<Process*> jobs;
  for (int i = 0; i < 8; ++i) jobs.push_back(StartScript("job", job));
  for (Process* p : jobs) {
    RunResult r = Finish(p, Millis(60000));
    EXPECT_EQ(r.code(), 0) << r.Describe();
  }
  EXPECT_EQ(ReadFile(Path("count")), "8\n") << "lost updates under flom";

  std::vector<pid_t> nodes = Nodes();
  ASSERT_EQ(nodes.size(), 1u) << "one auto-started node expected";
  // It runs as `flom` (argv[0] and the process name), so `flom -x` and `pkill flom` find it.
  EXPECT_EQ(ReadFile("/proc/" + std::to_string(nodes[0]) + "/comm"), "flom\n");
  std::vector<std::string> cmdline = Cmdline(nodes[0]);
  ASSERT_GE(cmdline.size(), 3u);
  EXPECT_EQ(cmdline[0], "flom");
  EXPECT_EQ(cmdline[1], "--lockmesh");
  EXPECT_EQ(cmdline[2], "node");
  RunResult pgrep = Finish(Spawn("pgrep", {"pgrep", "-x", "flom"}), Millis(10000));
  EXPECT_NE(pgrep.out.find(std::to_string(nodes[0])), std::string::npos)
      << "pgrep -x flom (as pkill flom) must find the node: " << pgrep.Describe();

  std::string stop = Script("stop.sh", "# end of the batch\nflom -x\n");
  RunResult x = RunScript("stop", stop);
  EXPECT_EQ(x.code(), 0) << x.Describe();
  EXPECT_EQ(x.out, "Starting FLoM daemon quiesce shutdown...\n");
  EXPECT_TRUE(WaitNoNode()) << "the node did not stop after flom -x";
  // As FLoM: with no daemon left, flom -x reports an error.
  RunResult again = RunScript("stop", stop);
  EXPECT_EQ(again.code(), 99) << again.Describe();
}

// The man page's nesting: the outer flom holds A while the inner one takes B and runs the
// command; both are busy for others meanwhile; the inner command's status comes back out.
TEST_F(FlomScriptTest, NestedFlomHoldsBothLocks) {
  std::string nested = Script("nested.sh", R"(# nested.sh
flom -r A -- flom -r B -- sh -c 'touch "$D/in.started"
  while [ ! -e "$D/in.release" ]; do sleep 0.02; done; exit 5'
echo "status $?"
)");
  Process* p = StartScript("nested", nested);
  ASSERT_TRUE(WaitFor([&] { return FileExists(Path("in.started")) || !p->Running(); },
                      Millis(30000)))
      << Finish(p, Millis(1)).Describe();
  ASSERT_TRUE(FileExists(Path("in.started"))) << Finish(p, Millis(1)).Describe();
  EXPECT_EQ(RunFlom("a", {"-r", "A", "-o", "0", "--", "true"}).code(), 98);
  EXPECT_EQ(RunFlom("b", {"-r", "B", "-o", "0", "--", "true"}).code(), 98);
  WriteFile(Path("in.release"), "");
  RunResult r = Finish(p, Millis(30000));
  EXPECT_EQ(r.code(), 0) << r.Describe();
  EXPECT_EQ(r.out, "status 5\n") << "the inner command's status must pass through both flom";
  EXPECT_EQ(RunFlom("a2", {"-r", "A", "-o", "0", "--", "true"}).code(), 0);
  EXPECT_EQ(RunFlom("b2", {"-r", "B", "-o", "0", "--", "true"}).code(), 0);
}

// FLoM's workaround for cron races (its issue #3): a permanent daemon started once with
// `flom -d -1 -- true`, clients with `-d 0` (never start one), and `flom -X` to stop it.
TEST_F(FlomScriptTest, PermanentDaemonWithClientsThatNeverStartOne) {
  std::string setup = Script("setup.sh", "flom -d -1 -- true\n");
  RunResult s = RunScript("setup", setup);
  ASSERT_EQ(s.code(), 0) << s.Describe();
  ASSERT_EQ(Nodes().size(), 1u);
  std::vector<std::string> args = Cmdline(Nodes()[0]);
  std::string joined;
  for (const auto& a : args) joined += a + " ";
  EXPECT_NE(joined.find("--idle-exit 0 "), std::string::npos)
      << "-d -1: the node must never idle out: " << joined;

  std::string client = Script("client.sh", R"(# client.sh: never starts a node
flom -d 0 -r job -o 0 -- sh -c 'echo ran' || echo "busy or error: $?"
)");
  RunResult c = RunScript("client", client);
  EXPECT_EQ(c.code(), 0) << c.Describe();
  EXPECT_EQ(c.out, "ran\n");

  RunResult x = RunFlom("X", {"-X"});
  EXPECT_EQ(x.code(), 0) << x.Describe();
  EXPECT_EQ(x.out, "Starting FLoM daemon immediate shutdown...\n");
  EXPECT_TRUE(WaitNoNode()) << "the node did not stop after flom -X";
  RunResult none = RunScript("client", client);
  EXPECT_EQ(none.out, "busy or error: 99\n") << "-d 0 with no node: " << none.Describe();
  EXPECT_TRUE(Nodes().empty()) << "-d 0 must not start a node";
}

// `flom -X` stops the node at once: a flom whose command runs loses its lock, terminates
// the command (lockmesh; FLoM lets it run unprotected) and exits 99 (FLoM's code when its
// unlock fails).
TEST_F(FlomScriptTest, ImmediateExitEndsHoldersWithLostLock) {
  Process* holder = Spawn("holder", {flom_, "-r", "R", "--", "sh", "-c",
                                     "echo $$ > \"$D/cmd.pid\"; exec sleep 60"},
                          ScriptEnv());
  ASSERT_TRUE(WaitFor([&] { return !ReadFile(Path("cmd.pid")).empty() || !holder->Running(); },
                      Millis(30000)));
  pid_t command = std::atoi(ReadFile(Path("cmd.pid")).c_str());
  ASSERT_GT(command, 0);
  RunResult x = RunFlom("X", {"-X"});
  EXPECT_EQ(x.code(), 0) << x.Describe();
  RunResult h = Finish(holder, Millis(30000));
  EXPECT_EQ(h.code(), 99) << h.Describe();
  EXPECT_NE(h.err.find("lost"), std::string::npos) << h.err;
  EXPECT_TRUE(WaitFor([&] { return kill(command, 0) != 0; }, Millis(30000)))
      << "the command must not run on without its lock";
  EXPECT_TRUE(WaitNoNode());
}

// -d N: the auto-started node exits after N ms without clients or locks (FLoM: 5000 ms).
TEST_F(FlomScriptTest, DaemonLifespanEndsTheAutoStartedNode) {
  RunResult r = RunFlom("short", {"-d", "300", "--", "true"});
  ASSERT_EQ(r.code(), 0) << r.Describe();
  EXPECT_TRUE(WaitNoNode()) << "a node started with -d 300 should exit once idle";
}

// --ignore-signal SIGTERM: a SIGTERM to flom neither kills it nor reaches the command, and
// the lock stays held (FLoM issue #15). Without it, lockmesh forwards SIGTERM to the
// command and keeps the lock until the command has exited.
TEST_F(FlomScriptTest, IgnoreSignalKeepsTheLockAndTheCommand) {
  const std::string hold =
      "touch \"$D/$1.started\"; while [ ! -e \"$D/$1.release\" ]; do sleep 0.02; done";
  Process* p = Spawn("ignoring", {flom_, "--ignore-signal=SIGTERM", "-r", "bed", "--", "sh", "-c",
                                  hold, "sh", "ign"},
                     ScriptEnv());
  ASSERT_TRUE(WaitFor([&] { return FileExists(Path("ign.started")) || !p->Running(); },
                      Millis(30000)));
  p->Signal(SIGTERM);
  EXPECT_EQ(RunFlom("probe", {"-r", "bed", "-o", "0", "--", "true"}).code(), 98);
  EXPECT_TRUE(p->Running()) << "SIGTERM should have been ignored";
  WriteFile(Path("ign.release"), "");
  RunResult r = Finish(p, Millis(30000));
  EXPECT_EQ(r.code(), 0) << r.Describe();

  // Default: forwarded to the command, whose status comes back (143 = 128 + SIGTERM).
  Process* q = Spawn("forwarding", {flom_, "-r", "bed", "--", "sh", "-c",
                                    "touch \"$D/fwd.started\"; exec sleep 60"},
                     ScriptEnv());
  ASSERT_TRUE(WaitFor([&] { return FileExists(Path("fwd.started")) || !q->Running(); },
                      Millis(30000)));
  q->Signal(SIGTERM);
  RunResult f = Finish(q, Millis(30000));
  EXPECT_EQ(f.code(), 143) << f.Describe();
  EXPECT_EQ(RunFlom("free", {"-r", "bed", "-o", "0", "--", "true"}).code(), 0);
}

// -v, --help, -V, --signal-list, --unique-id; `lockmesh flom ...` is the same front end.
TEST_F(FlomScriptTest, VersionHelpVerboseAndInformationalOptions) {
  RunResult v = RunFlom("v", {"-v"});
  EXPECT_EQ(v.code(), 0) << v.Describe();
  EXPECT_NE(v.out.find("FLoM 1.7.2"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("lockmesh"), std::string::npos) << v.out;
  RunResult h = RunFlom("h", {"--help"});
  EXPECT_EQ(h.code(), 0) << h.Describe();
  for (const char* flag : {"--resource-name", "--resource-timeout", "--lock-mode",
                           "--daemon-lifespan", "--socket-name", "--quiesce-exit",
                           "--ignore-signal", "--unicast-address", "96", "97", "98", "99"}) {
    EXPECT_NE(h.out.find(flag), std::string::npos) << "--help lacks " << flag;
  }
  RunResult verbose = RunFlom("V", {"-V", "-r", "red.green", "--", "true"});
  EXPECT_EQ(verbose.code(), 0) << verbose.Describe();
  EXPECT_NE(verbose.out.find("[Resource]/Name='red.green'\n"), std::string::npos) << verbose.out;
  EXPECT_NE(verbose.out.find("[Daemon]/SocketName='" + paths_.socket + "'\n"), std::string::npos)
      << verbose.out;
  EXPECT_NE(verbose.out.find("[Resource]/LockMode=5\n"), std::string::npos) << verbose.out;
  EXPECT_NE(verbose.out.find("Locked element is 'red'\n"), std::string::npos) << verbose.out;
  RunResult signals = RunFlom("signals", {"--signal-list"});
  EXPECT_EQ(signals.code(), 0);
  EXPECT_NE(signals.out.find("SIGTERM"), std::string::npos) << signals.out;
  EXPECT_EQ(signals.out.find("SIGKILL"), std::string::npos) << signals.out;
  RunResult id = RunFlom("id", {"--unique-id"});
  EXPECT_EQ(id.code(), 0) << id.Describe();
  EXPECT_GE(id.out.size(), 9u) << id.out;
  RunResult sub = Finish(Spawn("sub", {LockmeshBinary(), "flom", "-r", "s.t", "--", "echo"},
                               ScriptEnv()),
                         Millis(30000));
  EXPECT_EQ(sub.code(), 0) << sub.Describe();
  EXPECT_EQ(sub.out, "s\n");
}

// Bad flags and refused options: one clear line on stderr and FLoM's generic error, 99.
TEST_F(FlomScriptTest, BadFlagsAndRefusedOptionsExit99) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--no-such-flag", "--", "true"}, "option parsing failed"},
      {{"-o", "soon", "--", "true"}, "'soon' is not an integer"},
      {{"-l", "XX", "--", "true"}, "unknown lock mode 'XX'"},
      {{"-e", "maybe", "--", "true"}, "'maybe' is not yes or no"},
      {{"-r", "a b", "--", "true"}, "--resource-name a b"},
      {{"-A", "10.0.0.1", "--", "true"}, "-A/--multicast-address 10.0.0.1 is not a multicast"},
      {{"-m", "/tmp/vfs", "--", "true"}, "--mount-point-vfs"},
      {{"--debug-feature", "tls.client"}, "--debug-feature"},
      {{"--tls-check-peer-id", "yes", "--", "true"}, "full TLS configuration"},
      {{"--ignore-signal", "SIGKILL", "--", "true"}, "not a signal that can be ignored"},
      {{"-c", "/nonexistent/flom.conf", "--", "true"}, "/nonexistent/flom.conf"},
  };
  for (const Case& c : cases) {
    RunResult r = RunFlom("bad", c.args);
    std::string label;
    for (const auto& a : c.args) label += a + " ";
    EXPECT_EQ(r.code(), 99) << label << r.Describe();
    EXPECT_EQ(r.err.rfind("flom: ", 0), 0u) << label << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << label << r.err;
  }
  EXPECT_TRUE(Nodes().empty()) << "a refused command line must not start a node";
  // FLoM ignores a negative quantity with a message.
  RunResult q = RunFlom("q", {"-q", "-2", "-r", "pool[2]", "--", "true"});
  EXPECT_EQ(q.code(), 0) << q.Describe();
  EXPECT_NE(q.err.find("Resource quantity ignored"), std::string::npos) << q.err;
}

}  // namespace
}  // namespace lockmesh::testing
