#include "net/support/process_harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

extern char** environ;

#ifndef LOCKMESH_BINARY
#error "LOCKMESH_BINARY must be defined by the build (absolute path of the lockmesh binary)"
#endif

namespace lockmesh::testing {
namespace {

// PIDs owned by live Process objects: SweepDescendants leaves them alone.
std::mutex g_owned_mutex;
std::set<pid_t>& OwnedPids() {
  static std::set<pid_t> pids;
  return pids;
}
void Own(pid_t pid) {
  std::lock_guard<std::mutex> lock(g_owned_mutex);
  OwnedPids().insert(pid);
}
void Disown(pid_t pid) {
  std::lock_guard<std::mutex> lock(g_owned_mutex);
  OwnedPids().erase(pid);
}
bool IsOwned(pid_t pid) {
  std::lock_guard<std::mutex> lock(g_owned_mutex);
  return OwnedPids().count(pid) != 0;
}

ExitStatus FromWaitStatus(int ws) {
  ExitStatus s;
  if (WIFEXITED(ws)) {
    s.code = WEXITSTATUS(ws);
  } else if (WIFSIGNALED(ws)) {
    s.signal = WTERMSIG(ws);
  }
  return s;
}

std::string ResolveExecutable(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::stringstream ss(dirs);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return name;  // execve will fail with ENOENT, reported as an error
}

// Child-side failure report: stage + errno, written on the close-on-exec pipe.
[[noreturn]] void ChildFail(int fd, int stage) {
  int data[2] = {stage, errno};
  ssize_t unused = write(fd, data, sizeof data);
  (void)unused;
  _exit(127);
}

const char* StageName(int stage) {
  switch (stage) {
    case 1:
      return "setpgid";
    case 2:
      return "open stdin";
    case 3:
      return "open stdout";
    case 4:
      return "open stderr";
    case 5:
      return "dup2";
    case 6:
      return "chdir";
    case 7:
      return "setgroups";
    case 8:
      return "setgid";
    case 9:
      return "setuid";
    case 10:
      return "execve";
    default:
      return "?";
  }
}

bool IsZombieOrGone(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return true;
  size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return true;
  char state = stat[close + 2];
  return state == 'Z' || state == 'X';
}

// pid -> (ppid, state) for every process in /proc.
struct ProcInfo {
  pid_t ppid = 0;
  char state = '?';
};
std::map<pid_t, ProcInfo> ProcessTable() {
  std::map<pid_t, ProcInfo> table;
  DIR* d = opendir("/proc");
  if (!d) return table;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::string stat = ReadFile(std::string("/proc/") + e->d_name + "/stat");
    size_t close = stat.rfind(')');
    if (close == std::string::npos || close + 4 >= stat.size()) continue;
    ProcInfo info;
    info.state = stat[close + 2];
    info.ppid = static_cast<pid_t>(strtol(stat.c_str() + close + 4, nullptr, 10));
    table[static_cast<pid_t>(pid)] = info;
  }
  closedir(d);
  return table;
}

}  // namespace

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// ------------------------------------------------------------------ files

std::string ReadFile(const std::string& path) { return ReadFileFrom(path, 0); }

std::string ReadFileFrom(const std::string& path, size_t offset) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out;
  char buf[8192];
  if (offset > 0 && lseek(fd, static_cast<off_t>(offset), SEEK_SET) < 0) {
    close(fd);
    return "";
  }
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

size_t FileSize(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return static_cast<size_t>(st.st_size);
}

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << contents;
  f.close();
  ASSERT_TRUE(f.good()) << "cannot write " << path;
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::string Tail(const std::string& path, size_t n) {
  std::vector<std::string> lines = SplitLines(ReadFile(path));
  size_t from = lines.size() > n ? lines.size() - n : 0;
  std::string out = "---- last lines of " + path + " ----\n";
  for (size_t i = from; i < lines.size(); ++i) out += lines[i] + "\n";
  if (lines.empty()) out += "(empty or missing)\n";
  return out;
}

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp " << tmpl << ": " << strerror(errno);
    return;
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec) std::cerr << "[harness] cannot remove " << path_ << ": " << ec.message() << "\n";
}

std::string TempDir::MakeDir(const std::string& name, mode_t mode) const {
  std::string p = Join(name);
  std::error_code ec;
  std::filesystem::create_directories(p, ec);
  if (ec) ADD_FAILURE() << "cannot create " << p << ": " << ec.message();
  chmod(p.c_str(), mode);
  return p;
}

// ------------------------------------------------------------------ processes

std::string ExitStatus::ToString() const {
  if (signal != 0)
    return "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  return "exit " + std::to_string(code);
}

std::ostream& operator<<(std::ostream& os, const ExitStatus& s) { return os << s.ToString(); }

Process::Process(ProcessOptions options) : options_(std::move(options)) {
  if (options_.argv.empty()) {
    error_ = "empty argv";
    return;
  }
  // Everything the child needs is built here, before fork.
  std::string exe = ResolveExecutable(options_.argv[0]);
  std::vector<char*> argv;
  for (auto& a : options_.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  std::map<std::string, std::string> env_map;
  for (char** e = environ; e && *e; ++e) {
    std::string entry = *e;
    size_t eq = entry.find('=');
    if (eq == std::string::npos) continue;
    std::string key = entry.substr(0, eq);
    bool scrub = false;
    for (const auto& prefix : options_.scrub_env_prefixes) {
      if (key.rfind(prefix, 0) == 0) scrub = true;
    }
    if (!scrub) env_map[key] = entry.substr(eq + 1);
  }
  for (const auto& [key, value] : options_.env) {
    if (value) {
      env_map[key] = *value;
    } else {
      env_map.erase(key);
    }
  }
  std::vector<std::string> env_strings;
  for (const auto& [key, value] : env_map) env_strings.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  auto dev_null_or = [](const std::string& p) { return p.empty() ? std::string("/dev/null") : p; };
  std::string in_path = dev_null_or(options_.stdin_path);
  std::string out_path = dev_null_or(options_.stdout_path);
  std::string err_path = dev_null_or(options_.stderr_path);
  bool same_out_err = out_path == err_path;
  int out_flags = O_WRONLY | O_CREAT | O_CLOEXEC | (options_.append_output ? O_APPEND : O_TRUNC);
  long max_fd = sysconf(_SC_OPEN_MAX);
  if (max_fd < 0 || max_fd > 4096) max_fd = 4096;

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    error_ = std::string("pipe2: ") + strerror(errno);
    return;
  }
  start_time_ = Clock::now();
  pid_t pid = fork();
  if (pid < 0) {
    error_ = std::string("fork: ") + strerror(errno);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return;
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    int report = pipe_fds[1];
    if (options_.new_process_group && setpgid(0, 0) != 0) ChildFail(report, 1);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    int in = open(in_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) ChildFail(report, 2);
    int out = open(out_path.c_str(), out_flags, 0644);
    if (out < 0) ChildFail(report, 3);
    int err = same_out_err ? out : open(err_path.c_str(), out_flags, 0644);
    if (err < 0) ChildFail(report, 4);
    // Move them out of the way of 0-2 first, then into place (dup2 clears CLOEXEC).
    int in2 = fcntl(in, F_DUPFD_CLOEXEC, 10);
    int out2 = fcntl(out, F_DUPFD_CLOEXEC, 10);
    int err2 = fcntl(err, F_DUPFD_CLOEXEC, 10);
    if (in2 < 0 || out2 < 0 || err2 < 0) ChildFail(report, 5);
    if (dup2(in2, 0) < 0 || dup2(out2, 1) < 0 || dup2(err2, 2) < 0) ChildFail(report, 5);
    for (int fd = 3; fd < max_fd; ++fd) {
      if (fd != report) close(fd);
    }
    if (!options_.cwd.empty() && chdir(options_.cwd.c_str()) != 0) ChildFail(report, 6);
    if (options_.uid || options_.gid) {
      if (setgroups(0, nullptr) != 0) ChildFail(report, 7);
      if (options_.gid && setgid(*options_.gid) != 0) ChildFail(report, 8);
      if (options_.uid && setuid(*options_.uid) != 0) ChildFail(report, 9);
    }
    execve(exe.c_str(), argv.data(), envp.data());
    ChildFail(report, 10);
  }
  // Parent.
  if (options_.new_process_group) setpgid(pid, pid);  // also done by the child; no race
  close(pipe_fds[1]);
  int data[2] = {0, 0};
  ssize_t n;
  do {
    n = read(pipe_fds[0], data, sizeof data);
  } while (n < 0 && errno == EINTR);
  close(pipe_fds[0]);
  if (n == static_cast<ssize_t>(sizeof data)) {
    error_ = std::string("child failed at ") + StageName(data[0]) + " (" + exe +
             "): " + strerror(data[1]);
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    status_ = FromWaitStatus(ws);
    pid_ = pid;
    return;
  }
  pid_ = pid;
  Own(pid);
}

Process::~Process() { Kill(); }

std::optional<ExitStatus> Process::Poll() {
  if (status_ || pid_ <= 0) return status_;
  int ws;
  pid_t r = waitpid(pid_, &ws, WNOHANG);
  if (r == pid_) {
    status_ = FromWaitStatus(ws);
    Disown(pid_);
  } else if (r < 0 && errno == ECHILD) {
    // Reaped elsewhere (should not happen: the sweeper skips owned pids).
    status_ = ExitStatus{-1, 0};
    Disown(pid_);
  }
  return status_;
}

std::optional<ExitStatus> Process::Wait(Millis timeout) {
  auto deadline = Clock::now() + timeout;
  auto interval = Millis(1);
  while (true) {
    if (auto s = Poll()) return s;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(interval);
    interval = std::min(interval * 2, Millis(10));
  }
}

void Process::Signal(int sig) {
  if (pid_ > 0 && !status_) kill(pid_, sig);
}

void Process::SignalGroup(int sig) {
  if (pid_ <= 0) return;
  if (options_.new_process_group) {
    kill(-pid_, sig);
  } else if (!status_) {
    kill(pid_, sig);
  }
}

void Process::Kill() {
  if (pid_ <= 0) return;
  // The group first (it may outlive the leader, e.g. a shell's background jobs).
  if (options_.new_process_group) kill(-pid_, SIGKILL);
  if (!status_) {
    kill(pid_, SIGKILL);
    int ws;
    pid_t r;
    do {
      r = waitpid(pid_, &ws, 0);
    } while (r < 0 && errno == EINTR);
    status_ = r == pid_ ? FromWaitStatus(ws) : ExitStatus{-1, SIGKILL};
  }
  Disown(pid_);
}

std::string Process::Stdout() const {
  return options_.stdout_path.empty() ? "" : ReadFile(options_.stdout_path);
}
std::string Process::Stderr() const {
  return options_.stderr_path.empty() ? "" : ReadFile(options_.stderr_path);
}

bool WaitFor(const std::function<bool()>& predicate, Millis timeout, Millis interval) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(interval);
  }
  return predicate();
}

std::vector<pid_t> Descendants() {
  auto table = ProcessTable();
  std::map<pid_t, std::vector<pid_t>> children;
  for (const auto& [pid, info] : table) children[info.ppid].push_back(pid);
  std::vector<pid_t> out;
  std::vector<pid_t> todo = {getpid()};
  std::set<pid_t> seen;
  while (!todo.empty()) {
    pid_t p = todo.back();
    todo.pop_back();
    for (pid_t c : children[p]) {
      if (seen.insert(c).second) {
        out.push_back(c);
        todo.push_back(c);
      }
    }
  }
  return out;
}

void BecomeSubreaper() {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    std::cerr << "[harness] PR_SET_CHILD_SUBREAPER failed: " << strerror(errno)
              << " (orphans will go to init and may not be swept)\n";
  }
}

int SweepDescendants() {
  std::set<pid_t> found;
  for (int round = 0; round < 100; ++round) {
    auto table = ProcessTable();
    // Descendants reachable from us without passing through a live Process (whose own
    // children are its business until it is destroyed).
    std::map<pid_t, std::vector<pid_t>> children;
    for (const auto& [pid, info] : table) children[info.ppid].push_back(pid);
    std::vector<pid_t> victims;
    std::vector<pid_t> todo = {getpid()};
    while (!todo.empty()) {
      pid_t parent = todo.back();
      todo.pop_back();
      for (pid_t c : children[parent]) {
        if (IsOwned(c)) continue;
        victims.push_back(c);
        todo.push_back(c);
      }
    }
    if (victims.empty()) break;
    for (pid_t p : victims) {
      if (table[p].state != 'Z') found.insert(p);
      kill(p, SIGKILL);
    }
    // Reap those that are our own children (re-parented orphans); the others are reaped by
    // their parents or re-parented to us and reaped in a later round.
    for (pid_t p : victims) {
      if (table[p].ppid == getpid()) {
        int ws;
        while (waitpid(p, &ws, 0) < 0 && errno == EINTR) {
        }
      }
    }
    std::this_thread::sleep_for(Millis(5));
  }
  return static_cast<int>(found.size());
}

// ------------------------------------------------------------------ /proc

std::vector<std::string> Cmdline(pid_t pid) {
  std::string raw = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> args;
  size_t start = 0;
  while (start < raw.size()) {
    size_t end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    args.push_back(raw.substr(start, end - start));
    start = end + 1;
  }
  return args;
}

std::vector<pid_t> NodePidsServing(const std::string& socket) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  pid_t self = getpid();
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == self) continue;
    std::vector<std::string> args = Cmdline(static_cast<pid_t>(pid));
    if (args.size() < 2) continue;
    bool is_node = std::find(args.begin() + 1, args.end(), "node") != args.end();
    bool serves = false;
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--socket=" + socket) serves = true;
      if (args[i] == "--socket" && i + 1 < args.size() && args[i + 1] == socket) serves = true;
    }
    if (is_node && serves && !IsZombieOrGone(static_cast<pid_t>(pid))) {
      out.push_back(static_cast<pid_t>(pid));
    }
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

int KillNodesServing(const std::string& socket) {
  std::vector<pid_t> pids = NodePidsServing(socket);
  for (pid_t p : pids) kill(p, SIGKILL);
  for (pid_t p : pids) {
    if (IsOwned(p)) continue;  // its Process object reaps it
    WaitFor(
        [p] {
          int ws;
          pid_t r = waitpid(p, &ws, WNOHANG);
          if (r == p || (r < 0 && errno == ECHILD)) return IsZombieOrGone(p) || r == p;
          return false;
        },
        Millis(10000), Millis(5));
  }
  WaitFor([&] { return NodePidsServing(socket).empty(); }, Millis(10000), Millis(5));
  return static_cast<int>(pids.size());
}

// ------------------------------------------------------------------ sockets

namespace {

// True if a TCP socket can bind 127.0.0.1:`port` as a node's listener does (libuv sets
// SO_REUSEADDR, so a port whose last connection lingers in TIME_WAIT counts as free).
bool LoopbackPortFree(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return free;
}

}  // namespace

int LoopbackPortBlock(int count) {
  constexpr int kLowest = 10000;
  int ephemeral_low = 32768;
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  if (!(range >> ephemeral_low)) ephemeral_low = 32768;
  // A system whose ephemeral range starts low leaves no room below it: use 10000 up.
  int highest = ephemeral_low > kLowest + 100 * count ? ephemeral_low : 32768;
  int slots = (highest - kLowest) / count;
  int first_slot = static_cast<int>(getpid() % slots);
  for (int tried = 0; tried < slots; ++tried) {
    int base = kLowest + ((first_slot + tried) % slots) * count;
    bool all_free = true;
    for (int port = base; port < base + count && all_free; ++port) {
      all_free = LoopbackPortFree(port);
    }
    if (all_free) return base;
  }
  ADD_FAILURE() << "no block of " << count << " free loopback ports below " << highest;
  return kLowest + first_slot * count;
}

int ConnectUnix(const std::string& socket_path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    close(fd);
    return -ENAMETOOLONG;
  }
  memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

bool SocketAccepts(const std::string& socket) {
  int fd = ConnectUnix(socket);
  if (fd < 0) return false;
  close(fd);
  return true;
}

int SendAll(int fd, const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    off += static_cast<size_t>(n);
  }
  return 0;
}

const char* PeerCloseName(PeerClose c) {
  switch (c) {
    case PeerClose::kEof:
      return "EOF";
    case PeerClose::kReset:
      return "ECONNRESET";
    case PeerClose::kTimeout:
      return "timeout (connection still open)";
    case PeerClose::kError:
      return "read error";
  }
  return "?";
}

PeerClose ReadUntilClosed(int fd, Millis timeout, std::string* received) {
  auto deadline = Clock::now() + timeout;
  char buf[4096];
  while (true) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) return PeerClose::kTimeout;
    pollfd pfd{fd, POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return PeerClose::kTimeout;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) return PeerClose::kEof;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return errno == ECONNRESET ? PeerClose::kReset : PeerClose::kError;
    }
    if (received) received->append(buf, static_cast<size_t>(n));
  }
}

namespace {
bool ReadExactly(int fd, size_t n, Clock::time_point deadline, std::string* out) {
  out->clear();
  char buf[4096];
  while (out->size() < n) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd pfd{fd, POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    ssize_t got = read(fd, buf, std::min(sizeof buf, n - out->size()));
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) return false;
    out->append(buf, static_cast<size_t>(got));
  }
  return true;
}
}  // namespace

bool ReadFrame(int fd, Millis timeout, std::string* body, uint32_t max_bytes) {
  auto deadline = Clock::now() + timeout;
  std::string header;
  if (!ReadExactly(fd, 4, deadline, &header)) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(header.data());
  uint32_t length = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
  if (length > max_bytes) return false;
  return ReadExactly(fd, length, deadline, body);
}

std::string BigEndian32(uint32_t v) {
  std::string s(4, '\0');
  s[0] = static_cast<char>((v >> 24) & 0xff);
  s[1] = static_cast<char>((v >> 16) & 0xff);
  s[2] = static_cast<char>((v >> 8) & 0xff);
  s[3] = static_cast<char>(v & 0xff);
  return s;
}

std::string Frame(const std::string& body) {
  return BigEndian32(static_cast<uint32_t>(body.size())) + body;
}

// ------------------------------------------------------------------ lockmesh

std::string LockmeshBinary() { return LOCKMESH_BINARY; }

std::string FlomBinary() {
  const std::string binary = LockmeshBinary();
  return binary.substr(0, binary.rfind('/')) + "/flom";
}

std::unique_ptr<Process> StartNode(const std::string& socket, const std::string& data_dir,
                                   const std::string& log_path,
                                   const std::map<std::string, std::optional<std::string>>& env,
                                   const std::vector<std::string>& extra_args, Millis timeout) {
  ProcessOptions o;
  o.argv = {LockmeshBinary(), "node", "--local", "--socket", socket, "--data-dir", data_dir};
  o.argv.insert(o.argv.end(), extra_args.begin(), extra_args.end());
  o.env = env;
  o.stdout_path = log_path;
  o.stderr_path = log_path;
  o.append_output = true;
  auto p = std::make_unique<Process>(o);
  if (!p->ok()) {
    ADD_FAILURE() << "cannot start lockmesh node: " << p->error();
    return nullptr;
  }
  bool serving = WaitFor([&] { return !p->Running() || SocketAccepts(socket); }, timeout);
  if (!serving || !p->Running()) {
    std::string why =
        serving ? "exited with " + p->Poll()->ToString()
                : "did not accept connections within " + std::to_string(timeout.count()) + " ms";
    ADD_FAILURE() << "lockmesh node at " << socket << " " << why << "\n" << Tail(log_path);
    return nullptr;
  }
  return p;
}

bool ListLocks(const std::string& socket, std::vector<mesh::LockInfo>* out, std::string* error) {
  mesh::ClientOptions o;
  o.socket_path = socket;
  o.client_name = "test harness";
  std::unique_ptr<mesh::Client> client;
  mesh::Status st = mesh::Client::Connect(o, &client);
  if (st.ok()) st = client->ListLocks(out);
  if (!st.ok() && error) *error = st.ToString();
  return st.ok();
}

size_t CountLocks(const std::vector<mesh::LockInfo>& locks, const std::string& resource,
                  bool held) {
  return static_cast<size_t>(std::count_if(
      locks.begin(), locks.end(),
      [&](const mesh::LockInfo& l) { return l.resource == resource && l.held == held; }));
}

std::string RunResult::Describe() const {
  std::ostringstream os;
  if (status) {
    os << status->ToString();
  } else {
    os << "TIMED OUT (killed)";
  }
  os << " after " << seconds << " s";
  if (!out.empty()) os << "\n---- stdout ----\n" << out;
  if (!err.empty()) os << "\n---- stderr ----\n" << err;
  return os.str();
}

void ProcessTest::SetUp() {
  BecomeSubreaper();
  dir_ = std::make_unique<TempDir>("lmt");
  ASSERT_FALSE(dir_->path().empty());
  paths_.socket = dir_->Join("s/node.sock");
  paths_.data_dir = dir_->Join("data");
  paths_.log = dir_->Join("node.log");
  home_ = dir_->MakeDir("home");
  dir_->MakeDir("logs");
  ASSERT_LT(paths_.socket.size(), 100u);
}

void ProcessTest::TearDown() {
  processes_.clear();  // SIGKILL to each process group, reaped
  if (dir_) {
    int nodes = KillNodesServing(paths_.socket);
    if (nodes > 0)
      std::cerr << "[harness] killed " << nodes << " node(s) serving " << paths_.socket << "\n";
  }
  int orphans = SweepDescendants();
  if (orphans > 0) std::cerr << "[harness] swept " << orphans << " orphaned process(es)\n";
  if (HasFailure() && dir_) std::cerr << Tail(paths_.log, 60);
  dir_.reset();
}

std::map<std::string, std::optional<std::string>> ProcessTest::Env(
    const std::map<std::string, std::optional<std::string>>& extra) const {
  std::map<std::string, std::optional<std::string>> env = {
      {"HOME", home_},
      {"LOCKMESH_SOCKET", paths_.socket},
      {"LOCKMESH_DATA_DIR", paths_.data_dir},
      {"XDG_RUNTIME_DIR", std::nullopt},
      {"XDG_STATE_HOME", std::nullopt},
      {"XDG_CONFIG_HOME", std::nullopt},
      {"D", dir_->path()},
  };
  for (const auto& [k, v] : extra) env[k] = v;
  return env;
}

Process* ProcessTest::Spawn(const std::string& name, const std::vector<std::string>& argv,
                            const std::map<std::string, std::optional<std::string>>& extra_env,
                            std::optional<uid_t> uid, std::optional<gid_t> gid) {
  int n = ++name_counts_[name];
  std::string unique = n == 1 ? name : name + "." + std::to_string(n);
  ProcessOptions o;
  o.argv = argv;
  o.env = Env(extra_env);
  o.stdout_path = dir_->Join("logs/" + unique + ".out");
  o.stderr_path = dir_->Join("logs/" + unique + ".err");
  o.uid = uid;
  o.gid = gid;
  processes_.push_back(std::make_unique<Process>(o));
  Process* p = processes_.back().get();
  EXPECT_TRUE(p->ok()) << name << ": " << p->error();
  return p;
}

Process* ProcessTest::Lockmesh(const std::string& name, const std::vector<std::string>& args,
                               const std::map<std::string, std::optional<std::string>>& extra_env) {
  std::vector<std::string> argv = {LockmeshBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return Spawn(name, argv, extra_env);
}

RunResult ProcessTest::Finish(Process* p, Millis timeout) {
  RunResult r;
  r.status = p->Wait(timeout);
  r.seconds = SecondsSince(p->start_time());
  if (!r.status) p->Kill();
  r.out = p->Stdout();
  r.err = p->Stderr();
  return r;
}

RunResult ProcessTest::RunLockmesh(
    const std::string& name, const std::vector<std::string>& args, Millis timeout,
    const std::map<std::string, std::optional<std::string>>& extra_env) {
  return Finish(Lockmesh(name, args, extra_env), timeout);
}

std::vector<std::string> ProcessTest::LockArgs(const std::string& resource,
                                               const std::vector<std::string>& command,
                                               const std::vector<std::string>& flags) const {
  std::vector<std::string> args = {"lock", "--socket", paths_.socket, "--no-autostart"};
  args.insert(args.end(), flags.begin(), flags.end());
  args.push_back(resource);
  args.push_back("--");
  args.insert(args.end(), command.begin(), command.end());
  return args;
}

Process* ProcessTest::StartTestNode(const std::vector<std::string>& extra_args) {
  auto node = StartNode(paths_.socket, paths_.data_dir, paths_.log, Env(), extra_args);
  if (!node) return nullptr;
  processes_.push_back(std::move(node));
  return processes_.back().get();
}

Process* ProcessTest::StartHolder(const std::string& resource, const std::string& tag,
                                  const std::vector<std::string>& flags, Millis timeout) {
  std::string started = Path(tag + ".started");
  std::string script = "touch '" + started + "'; while [ ! -e '" + Path(tag + ".release") +
                       "' ]; do sleep 0.05; done";
  Process* p = Lockmesh("holder-" + tag, LockArgs(resource, {"sh", "-c", script}, flags));
  bool got = WaitFor([&] { return FileExists(started) || !p->Running(); }, timeout);
  if (!got || !FileExists(started)) {
    auto st = p->Poll();
    ADD_FAILURE() << "holder " << tag << " of " << resource << " did not get the lock ("
                  << (st ? st->ToString() : std::string("still waiting")) << ")\n"
                  << p->Stderr();
    return nullptr;
  }
  return p;
}

void ProcessTest::ReleaseHolder(Process* holder, const std::string& tag) {
  WriteFile(Path(tag + ".release"), "");
  RunResult r = Finish(holder, Millis(20000));
  EXPECT_EQ(r.code(), 0) << "holder " << tag << ": " << r.Describe();
}

}  // namespace lockmesh::testing
