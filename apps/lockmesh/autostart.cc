#include "autostart.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/mesh_claim.h"
#include "core/path_text.h"
#include "net/local/local_dir.h"
#include "net/local/mesh_claim.h"
#include "net/support/errno_text.h"
#include "net/support/posix_file_system.h"

namespace lockmesh::cli {
namespace {

using mesh::Status;
using Clock = std::chrono::steady_clock;

/// Descriptor numbers inside the spawned node.
constexpr int kChildReadyFd = 3;
constexpr int kChildExecErrorFd = 4;

using mesh::net::ErrnoMessage;

/// Holds the lock on a lock file (FileSystem::LockFile); unlocks when destroyed.
class StartLock {
 public:
  /// `dir_fd`: the checked socket directory; the file is opened in it, never through a
  /// symlink (net/local/local_dir.h).
  Status Acquire(int dir_fd, const std::string& path, Clock::time_point deadline) {
    while (true) {
      int fd = -1;
      MESH_RETURN_IF_ERROR(mesh::net::OpenOwnFile(dir_fd, mesh::core::BaseName(path), O_RDWR,
                                                  /*create=*/true, path, &fd));
      Status locked = mesh::net::LockOpenFile(fd, path, mesh::core::LockWait::kTry, &lock_);
      if (!locked.IsBusy()) return locked;
      if (Clock::now() >= deadline) {
        return Status::TimedOut("another lockmesh has held " + path +
                                " too long while starting a node");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

 private:
  std::unique_ptr<mesh::core::FileLock> lock_;
};

/// Runs in the grandchild: becomes the node or reports errno on kChildExecErrorFd.
[[noreturn]] void ExecNode(std::vector<char*>& argv, int ready_fd, int exec_error_fd) {
  umask(077);
  if (chdir("/") != 0) _exit(127);
  // Park the two pipe ends above the stdio range, then move them to 3 and 4.
  int ready = fcntl(ready_fd, F_DUPFD, 64);
  int exec_error = fcntl(exec_error_fd, F_DUPFD, 64);
  int null_fd = open("/dev/null", O_RDWR);
  if (ready < 0 || exec_error < 0 || null_fd < 0) _exit(127);
  dup2(null_fd, 0);
  dup2(null_fd, 1);
  dup2(null_fd, 2);
  dup2(ready, kChildReadyFd);
  dup2(exec_error, kChildExecErrorFd);
  fcntl(kChildExecErrorFd, F_SETFD, FD_CLOEXEC);
  long max_fd = sysconf(_SC_OPEN_MAX);
  if (max_fd < 0 || max_fd > 65536) max_fd = 65536;
  for (int fd = kChildExecErrorFd + 1; fd < max_fd; ++fd) close(fd);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
  }
  // The node must not die with the terminal session it came from.
  signal(SIGHUP, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execv("/proc/self/exe", argv.data());
  int err = errno;
  ssize_t unused = write(kChildExecErrorFd, &err, sizeof err);
  (void)unused;
  _exit(127);
}

/// Starts the node detached. On success `*ready_read_fd` is the read end of its ready pipe.
Status SpawnNode(const AutostartOptions& options, int* ready_read_fd) {
  std::vector<std::string> args = options.argv_prefix;
  if (args.empty()) args.push_back("lockmesh");
  for (const char* arg : {"node", "--auto-started", "--socket"}) args.push_back(arg);
  args.push_back(options.socket);
  if (!options.data_dir.empty()) {
    args.push_back("--data-dir");
    args.push_back(options.data_dir);
  }
  if (!options.config_file.empty()) {
    args.push_back("--config");
    args.push_back(options.config_file);
  }
  args.insert(args.end(), options.extra_node_args.begin(), options.extra_node_args.end());
  args.push_back(kReadyFdFlag);
  args.push_back(std::to_string(kChildReadyFd));
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  int ready[2];
  int exec_error[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return Status::IOError(ErrnoMessage("pipe", errno));
  if (pipe2(exec_error, O_CLOEXEC) != 0) {
    int err = errno;
    close(ready[0]);
    close(ready[1]);
    return Status::IOError(ErrnoMessage("pipe", err));
  }
  // Block signals across fork so that no handler of ours runs in the children.
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    pid_t grandchild = fork();
    if (grandchild != 0) _exit(grandchild < 0 ? 1 : 0);
    ExecNode(argv, ready[1], exec_error[1]);
  }
  int fork_errno = errno;
  sigprocmask(SIG_SETMASK, &old, nullptr);
  close(ready[1]);
  close(exec_error[1]);
  if (pid < 0) {
    close(ready[0]);
    close(exec_error[0]);
    return Status::IOError(ErrnoMessage("cannot start a node: fork", fork_errno));
  }
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    close(ready[0]);
    close(exec_error[0]);
    return Status::IOError("cannot start a node: fork failed in the intermediate process");
  }
  // EOF once the grandchild has exec'd (the write end is close-on-exec); errno if not.
  int err = 0;
  ssize_t n;
  do {
    n = read(exec_error[0], &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  close(exec_error[0]);
  if (n == static_cast<ssize_t>(sizeof err)) {
    close(ready[0]);
    return Status::IOError(ErrnoMessage("cannot start a node: exec /proc/self/exe", err));
  }
  *ready_read_fd = ready[0];
  return Status::OK();
}

/// "; see LOG" when the auto-started node's log exists, else "": a node that could not
/// create its data dir has no log there, and its error already names the directory.
std::string SeeLog(const AutostartOptions& options) {
  if (options.log_file.empty() || access(options.log_file.c_str(), F_OK) != 0) return "";
  return "; see " + options.log_file;
}

/// Reads the node's ready line (until `deadline`). ok: serving; AlreadyExists: another node
/// has the socket; other errors: the node failed to start.
Status AwaitReady(int fd, Clock::time_point deadline, const AutostartOptions& options) {
  std::string line;
  char buffer[512];
  while (line.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return Status::TimedOut("the auto-started node did not report within the timeout" +
                              SeeLog(options));
    }
    pollfd pfd{fd, POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return Status::Unavailable("the auto-started node exited during start-up" + SeeLog(options));
    }
    line.append(buffer, n);
  }
  line.resize(line.find('\n'));
  if (line == "ok") return Status::OK();
  if (line.rfind("already-running ", 0) == 0) return Status::AlreadyExists(line.substr(16));
  if (line.rfind("refused ", 0) == 0) return Status::PermissionDenied(line.substr(8));
  if (line.rfind("error ", 0) == 0) line = line.substr(6);
  return Status::Unavailable("the auto-started node failed to start: " + line + SeeLog(options));
}

/// Connects with backoff until ok, a non-Unavailable error, or the deadline.
Status PollConnect(const TryConnectFunction& try_connect, Clock::time_point deadline) {
  auto delay = std::chrono::milliseconds(5);
  while (true) {
    Status st = try_connect();
    if (!st.IsUnavailable() || Clock::now() >= deadline) return st;
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(200));
  }
}

}  // namespace

void WriteReadyLine(int fd, const Status& start_status) {
  std::string line;
  if (start_status.ok()) {
    line = "ok\n";
  } else {
    line = (start_status.code() == Status::Code::kAlreadyExists      ? "already-running "
            : start_status.code() == Status::Code::kPermissionDenied ? "refused "
                                                                     : "error ") +
           start_status.message();
    for (char& c : line) {
      if (c == '\n') c = ' ';
    }
    line += '\n';
  }
  ssize_t unused = write(fd, line.data(), line.size());
  (void)unused;
  close(fd);
}

Status CheckNoMeshClaim(const std::string& socket, const std::string& data_dir) {
  mesh::core::Starter who;
  who.socket = socket;
  who.data_dir = data_dir;
  return mesh::core::DecideStart(who, mesh::net::ReadMeshClaims(who.socket, who.data_dir));
}

namespace {

/// CheckNoMeshClaim for the socket and data dir that a node started here would use.
Status CheckNoMeshClaimFor(const AutostartOptions& options) {
  if (options.mesh) return Status::OK();  // the mesh node decides (autostart.h)
  return CheckNoMeshClaim(options.socket,
                          options.data_dir.empty() ? options.claim_data_dir : options.data_dir);
}

/// One pass of the protocol in autostart.h.
Status ConnectOrStartNodeOnce(const AutostartOptions& options,
                              const TryConnectFunction& try_connect, bool* started) {
  *started = false;
  Status st = try_connect();
  if (!st.IsUnavailable()) return st;
  // No node answers. If a mesh node has claimed this socket or data dir, it is down: say so
  // at once (the node we would start refuses anyway: that refusal is the rule).
  MESH_RETURN_IF_ERROR(CheckNoMeshClaimFor(options));
  if (!options.enabled) {
    return Status::Unavailable("no node is running at " + options.socket);
  }
  auto deadline = Clock::now() +
                  std::chrono::milliseconds(static_cast<int64_t>(options.timeout_seconds * 1000));
  std::string dir = mesh::core::DirName(options.socket);
  int dir_fd = -1;
  MESH_RETURN_IF_ERROR(mesh::net::OpenSocketDirectory(dir, static_cast<gid_t>(-1), &dir_fd));
  StartLock lock;
  st = lock.Acquire(dir_fd, options.socket + ".start.lock", deadline);
  close(dir_fd);
  MESH_RETURN_IF_ERROR(st);
  st = try_connect();
  if (!st.IsUnavailable()) return st;
  MESH_RETURN_IF_ERROR(CheckNoMeshClaimFor(options));

  int ready_fd = -1;
  MESH_RETURN_IF_ERROR(SpawnNode(options, &ready_fd));
  // The lock's wait above does not eat into the node's own start-up time.
  deadline = Clock::now() +
             std::chrono::milliseconds(static_cast<int64_t>(options.timeout_seconds * 1000));
  st = AwaitReady(ready_fd, deadline, options);
  close(ready_fd);
  if (st.ok()) {
    *started = true;
  } else if (st.code() != Status::Code::kAlreadyExists) {
    return st;
  }
  // Serving (or another node holds the socket): it should answer now.
  st = PollConnect(try_connect, deadline);
  if (st.IsUnavailable()) {
    return Status::Unavailable("no node answers at " + options.socket + " (" + st.message() + ")" +
                               SeeLog(options));
  }
  return st;
}

}  // namespace

Status ConnectOrStartNode(const AutostartOptions& options, const TryConnectFunction& try_connect,
                          bool* started) {
  // A node may exit at the end of its idle lifespan just as we connect: the connection is
  // then reset (IOError), or the socket stops answering (Unavailable) while the exiting node
  // still holds its lock file. Both mean "no node any more": start over (FLoM's issue #3).
  constexpr int kAttempts = 3;
  Status st;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    st = ConnectOrStartNodeOnce(options, try_connect, started);
    if (st.ok() || !options.enabled || !(st.IsIOError() || st.IsUnavailable())) return st;
  }
  return st;
}

}  // namespace lockmesh::cli
