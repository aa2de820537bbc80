// Real-process test harness: temporary directories, child processes, polling, and the
// `lockmesh` binary (nodes, clients, raw client sockets).
//
// Everything here is for tests that run REAL processes: fork/exec of the built `lockmesh`
// binary, real UNIX sockets, real files. No mocks. Reused by tests/net and (later) the
// cluster tests.
//
// Rules the helpers follow (and that tests built on them should keep):
//  * Nothing leaks. TempDir removes its tree; Process kills its process group with SIGKILL
//    and reaps it when destroyed; ProcessTest (below) additionally becomes a child subreaper
//    so that orphans (the command of a `lockmesh lock` killed with -9, auto-started nodes,
//    which double-fork) are re-parented to the test and swept at TearDown.
//  * Never sleep-and-hope: wait for an observable condition with WaitFor and a generous
//    deadline. The machines are small and loaded; never assert tight timing.
//  * Fork is done with everything pre-built (argv, envp, paths) so that the child only makes
//    async-signal-safe calls: tests may have helper threads (samplers) running.
#ifndef LOCKMESH_TESTS_NET_SUPPORT_PROCESS_HARNESS_H_
#define LOCKMESH_TESTS_NET_SUPPORT_PROCESS_HARNESS_H_

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mesh/client.h"

namespace lockmesh::testing {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

/// Seconds elapsed since `start`, as a double.
double SecondsSince(Clock::time_point start);

// ------------------------------------------------------------------ files

/// Whole file, or "" if it cannot be read.
std::string ReadFile(const std::string& path);
/// Bytes of `path` from `offset` on ("" if none or unreadable).
std::string ReadFileFrom(const std::string& path, size_t offset);
/// Size in bytes, 0 if missing.
size_t FileSize(const std::string& path);
bool FileExists(const std::string& path);
/// Writes (truncates) `path`; fails the test on error.
void WriteFile(const std::string& path, const std::string& contents);
/// Lines of `text` without their '\n' (a missing final newline is fine; empty lines dropped).
std::vector<std::string> SplitLines(const std::string& text);
/// The last `n` lines of a file, for failure messages.
std::string Tail(const std::string& path, size_t n = 40);

/// mkdtemp under /tmp; the tree is removed (recursively) when the object dies.
/// Paths stay short: /tmp/<prefix>-XXXXXX (UNIX socket paths must stay under ~100 bytes).
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "lmt");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  /// path() + "/" + name.
  std::string Join(const std::string& name) const { return path_ + "/" + name; }
  /// Creates path()/name (and parents) with `mode`, returns its path.
  std::string MakeDir(const std::string& name, mode_t mode = 0700) const;

 private:
  std::string path_;
};

// ------------------------------------------------------------------ processes

/// How a child ended.
struct ExitStatus {
  int code = -1;   // exit code when signal == 0
  int signal = 0;  // terminating signal, 0 if it exited
  bool exited() const { return signal == 0; }
  std::string ToString() const;
};
std::ostream& operator<<(std::ostream& os, const ExitStatus& s);

struct ProcessOptions {
  /// argv[0] without '/' is looked up in PATH (before fork).
  std::vector<std::string> argv;
  /// Environment changes on top of ours: a value sets, std::nullopt removes.
  std::map<std::string, std::optional<std::string>> env;
  /// Remove every inherited variable starting with this prefix before applying `env`
  /// (default: LOCKMESH_, so the caller's own settings never leak into a test).
  std::vector<std::string> scrub_env_prefixes = {"LOCKMESH_"};
  /// Redirections; "" means /dev/null. Files are created/truncated (0644) BEFORE any
  /// privilege drop, so a child running as another uid can still log into 0700 dirs.
  std::string stdin_path;
  std::string stdout_path;
  std::string stderr_path;
  /// Append to stdout/stderr files instead of truncating them (a restarted node's log).
  bool append_output = false;
  /// Working directory ("" = inherit).
  std::string cwd;
  /// Run as this uid/gid (needs root; supplementary groups are dropped).
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  /// Start a new process group whose id is the child's pid (default). Kill() / the
  /// destructor then signal the whole group.
  bool new_process_group = true;
};

/// A child process. Destruction kills its process group with SIGKILL and reaps it.
class Process {
 public:
  explicit Process(ProcessOptions options);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  /// False if fork or exec failed; error() says why.
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  pid_t pid() const { return pid_; }
  const ProcessOptions& options() const { return options_; }
  Clock::time_point start_time() const { return start_time_; }

  /// Waits until the child ends or `timeout` passes (nullopt then; the child keeps running).
  std::optional<ExitStatus> Wait(Millis timeout);
  /// Non-blocking: the status if it has ended.
  std::optional<ExitStatus> Poll();
  bool Running() { return !Poll().has_value(); }
  /// Sends `sig` to the child only.
  void Signal(int sig);
  /// Sends `sig` to the child's process group (or the child if it has none of its own).
  void SignalGroup(int sig);
  /// SIGKILL to the group and reap. Idempotent.
  void Kill();

  /// Contents of the stdout / stderr files ("" if redirected to /dev/null).
  std::string Stdout() const;
  std::string Stderr() const;

 private:
  ProcessOptions options_;
  pid_t pid_ = -1;
  std::string error_;
  std::optional<ExitStatus> status_;
  Clock::time_point start_time_;
};

/// Polls `predicate` every `interval` until it holds (true) or `timeout` passes (false).
/// The predicate is evaluated once more at the deadline.
bool WaitFor(const std::function<bool()>& predicate, Millis timeout, Millis interval = Millis(10));

/// PIDs of live processes that descend from us (via /proc/*/stat), excluding ourselves.
std::vector<pid_t> Descendants();
/// Makes this process a child subreaper (PR_SET_CHILD_SUBREAPER): orphaned descendants are
/// re-parented to it instead of init, so they can be found and reaped.
void BecomeSubreaper();
/// SIGKILLs and reaps every descendant that is neither owned by a live Process object nor
/// descends from one: orphans re-parented to us (see BecomeSubreaper) and their children.
/// Returns how many live ones were found (a sign that something leaked, e.g. the command of
/// a `lockmesh lock` killed with -9, or an auto-started node).
int SweepDescendants();

// ------------------------------------------------------------------ /proc

/// argv of a process from /proc/PID/cmdline (empty for zombies and kernel threads).
std::vector<std::string> Cmdline(pid_t pid);
/// PIDs of live `lockmesh node` processes serving `socket`: argv has "node" and either
/// "--socket" `socket` or "--socket=`socket`". Zombies and ourselves are excluded.
std::vector<pid_t> NodePidsServing(const std::string& socket);
/// SIGKILLs every node serving `socket` and waits (reaping our own children) until none is
/// left. Returns how many there were.
int KillNodesServing(const std::string& socket);

// ------------------------------------------------------------------ sockets

/// The first of `count` consecutive TCP ports of 127.0.0.1 for this test process's nodes to
/// listen on. They lie below the kernel's ephemeral range (net.ipv4.ip_local_port_range):
/// inside it, an outgoing connection of any process (a node dialing a peer that is not up
/// yet, a client of a test beside this one) could hold a port when a node binds it, and the
/// node exits with "address in use" (a CI run failed so: a mesh never formed). The block is
/// chosen from the pid and each port checked free by binding it, so test processes running
/// beside each other take different blocks.
int LoopbackPortBlock(int count);

/// One connect() to a UNIX socket: returns the fd (>= 0) or -errno.
int ConnectUnix(const std::string& socket);
/// True if a connect() succeeds (the connection is closed at once).
bool SocketAccepts(const std::string& socket);
/// Writes all of `bytes` (MSG_NOSIGNAL). Returns 0 or -errno (EPIPE/ECONNRESET when the
/// peer closed first, which malformed-frame tests expect and tolerate).
int SendAll(int fd, const std::string& bytes);
/// How a read-until-close ended.
enum class PeerClose { kEof, kReset, kTimeout, kError };
const char* PeerCloseName(PeerClose c);
/// Reads and discards until the peer closes the connection (EOF or ECONNRESET) or `timeout`.
PeerClose ReadUntilClosed(int fd, Millis timeout, std::string* received = nullptr);
/// Reads exactly one length-prefixed frame body (4-byte big-endian length). False on
/// EOF, error, timeout or a length above `max_bytes`.
bool ReadFrame(int fd, Millis timeout, std::string* body, uint32_t max_bytes = 64 * 1024);
/// 4-byte big-endian length + body.
std::string Frame(const std::string& body);
std::string BigEndian32(uint32_t value);

// ------------------------------------------------------------------ lockmesh

/// Absolute path of the built `lockmesh` binary (LOCKMESH_BINARY).
std::string LockmeshBinary();
/// Absolute path of the `flom` front end: the symlink to lockmesh beside it (CMake makes it).
std::string FlomBinary();

/// Where a test's node and clients live. All under one TempDir.
struct NodePaths {
  std::string socket;    // <root>/s/node.sock
  std::string data_dir;  // <root>/data
  std::string log;       // <root>/node.log: the node's stderr when started by StartNode
};

/// Starts `lockmesh node --socket S --data-dir D [extra...]` in the foreground with stderr
/// (its log) appended to `log_path`, and waits (up to `timeout`) until the socket accepts a
/// connection. On failure records a test failure (with the log tail) and returns nullptr.
std::unique_ptr<Process> StartNode(const std::string& socket, const std::string& data_dir,
                                   const std::string& log_path,
                                   const std::map<std::string, std::optional<std::string>>& env,
                                   const std::vector<std::string>& extra_args = {},
                                   Millis timeout = Millis(20000));

/// The node's lock listing, through the public mesh::Client API (its own short session).
/// False (with `error`) if the node cannot be reached or refuses.
bool ListLocks(const std::string& socket, std::vector<mesh::LockInfo>* out,
               std::string* error = nullptr);
/// Rows of a listing for `resource`: held (held=true) or waiting (held=false).
size_t CountLocks(const std::vector<mesh::LockInfo>& locks, const std::string& resource, bool held);

/// The result of running a command to completion.
struct RunResult {
  std::optional<ExitStatus> status;  // nullopt: timed out (the process was then killed)
  std::string out;
  std::string err;
  double seconds = 0;  // wall time from start to exit
  /// Exit code, or -1000 - signal, or -1 on timeout: handy in EXPECT_EQ.
  int code() const {
    if (!status) return -1;
    return status->exited() ? status->code : -1000 - status->signal;
  }
  std::string Describe() const;  // "exit 98 after 0.12 s; stderr: ..."
};

/// Base fixture for real-process tests: a TempDir, the standard environment for `lockmesh`
/// processes (HOME, LOCKMESH_SOCKET, LOCKMESH_DATA_DIR inside it; XDG_* removed), process
/// spawning with per-process log files, and a TearDown that kills every process of the
/// test, every node serving the test's socket (auto-started ones included) and every orphan.
class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  const std::string& root() const { return dir_->path(); }
  std::string Path(const std::string& name) const { return dir_->Join(name); }
  /// The standard environment for lockmesh processes of this test, plus `extra`.
  std::map<std::string, std::optional<std::string>> Env(
      const std::map<std::string, std::optional<std::string>>& extra = {}) const;

  /// Starts argv with Env(extra_env); stdout/stderr go to <root>/logs/<name>.{out,err}
  /// (name made unique). The fixture owns the process (killed at TearDown at the latest).
  Process* Spawn(const std::string& name, const std::vector<std::string>& argv,
                 const std::map<std::string, std::optional<std::string>>& extra_env = {},
                 std::optional<uid_t> uid = std::nullopt, std::optional<gid_t> gid = std::nullopt);
  /// Spawn of the lockmesh binary with `args`.
  Process* Lockmesh(const std::string& name, const std::vector<std::string>& args,
                    const std::map<std::string, std::optional<std::string>>& extra_env = {});
  /// Runs `lockmesh args...` to completion (killed after `timeout`).
  RunResult RunLockmesh(const std::string& name, const std::vector<std::string>& args,
                        Millis timeout = Millis(20000),
                        const std::map<std::string, std::optional<std::string>>& extra_env = {});
  /// Waits for a spawned process and collects its result (killed after `timeout`).
  RunResult Finish(Process* p, Millis timeout);

  /// `lockmesh lock --socket S --no-autostart [flags...] RESOURCE -- command...` argv
  /// (without the binary).
  std::vector<std::string> LockArgs(const std::string& resource,
                                    const std::vector<std::string>& command,
                                    const std::vector<std::string>& flags = {}) const;

  /// Starts the test's node (explicit `lockmesh node`) and waits until it serves.
  /// The log (stderr) is appended to paths_.log, so a restarted node keeps one log.
  Process* StartTestNode(const std::vector<std::string>& extra_args = {});

  /// A `lockmesh lock RESOURCE` whose command creates <root>/<tag>.started once it holds
  /// the lock and then runs until <root>/<tag>.release exists. Waits for .started.
  /// Returns nullptr (with a test failure) if it does not get the lock in `timeout`.
  Process* StartHolder(const std::string& resource, const std::string& tag,
                       const std::vector<std::string>& flags = {}, Millis timeout = Millis(20000));
  /// Creates <root>/<tag>.release and waits for the holder to exit 0.
  void ReleaseHolder(Process* holder, const std::string& tag);

  std::unique_ptr<TempDir> dir_;
  NodePaths paths_;
  std::string home_;
  std::vector<std::unique_ptr<Process>> processes_;
  std::map<std::string, int> name_counts_;
};

}  // namespace lockmesh::testing

#endif  // LOCKMESH_TESTS_NET_SUPPORT_PROCESS_HARNESS_H_
