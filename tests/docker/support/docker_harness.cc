#include "docker/support/docker_harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace lockmesh::docker_testing {
namespace {

/// Prefix of run directories, cgroups and bridges: with the test's pid it names one run.
constexpr const char* kTagPrefix = "lmdt";
/// The cgroup v1 controllers dockerd's cgroupfs driver puts containers in.
constexpr const char* kCgroupControllers[] = {"pids", "cpu", "cpuacct", "cpuset", "memory",
                                              "devices", "freezer", "blkio", "net_cls",
                                              "perf_event", "hugetlb", "systemd", "unified"};

/// The test's environment with `extra` added/replaced, as "K=V" strings.
std::vector<std::string> MergedEnv(const Env& extra) {
  std::map<std::string, std::string> all;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) all[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : extra) all[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : all) out.push_back(k + "=" + v);
  return out;
}

/// fork + exec in a new process group; stdout/stderr to `out_fd`. Everything the child needs
/// is built before the fork (only async-signal-safe calls after it).
pid_t Spawn(const std::vector<std::string>& argv, const Env& env, int out_fd) {
  std::vector<std::string> env_strings = MergedEnv(env);
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  for (const auto& e : env_strings) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(out_fd, STDERR_FILENO);
    execvpe(cargv[0], cargv.data(), cenv.data());
    const char msg[] = "exec failed\n";
    ssize_t unused = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)unused;
    _exit(127);
  }
  if (null_fd >= 0) close(null_fd);
  return pid;
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

bool IsAlive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

/// /proc/PID/cmdline with NULs as spaces ("" if gone).
std::string CommandLine(pid_t pid) {
  std::string s = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  std::replace(s.begin(), s.end(), '\0', ' ');
  return s;
}

std::vector<pid_t> AllPids() {
  std::vector<pid_t> pids;
  DIR* d = opendir("/proc");
  if (d == nullptr) return pids;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = strtol(e->d_name, &end, 10);
    if (*end == '\0' && pid > 0) pids.push_back(static_cast<pid_t>(pid));
  }
  closedir(d);
  return pids;
}

/// Pids listed in every cgroup.procs under `dir` (recursively).
void CgroupPids(const std::string& dir, std::vector<pid_t>* out) {
  std::istringstream procs(ReadFile(dir + "/cgroup.procs"));
  pid_t pid;
  while (procs >> pid) out->push_back(pid);
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> subdirs;
  while (dirent* e = readdir(d)) {
    if (e->d_type == DT_DIR && strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      subdirs.push_back(dir + "/" + e->d_name);
    }
  }
  closedir(d);
  for (const auto& s : subdirs) CgroupPids(s, out);
}

/// rmdir of a cgroup tree, deepest first.
void RemoveCgroupTree(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> subdirs;
  while (dirent* e = readdir(d)) {
    if (e->d_type == DT_DIR && strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      subdirs.push_back(dir + "/" + e->d_name);
    }
  }
  closedir(d);
  for (const auto& s : subdirs) RemoveCgroupTree(s);
  rmdir(dir.c_str());
}

/// Kills (SIGKILL, by pid) every process of the cgroups named `cgroup_name` and every process
/// whose command line mentions `path`; waits (bounded) until they are gone. Returns how many.
int KillEngineProcesses(const std::string& cgroup_name, const std::string& path) {
  std::vector<pid_t> victims;
  if (!cgroup_name.empty()) {
    for (const char* c : kCgroupControllers) {
      CgroupPids(std::string("/sys/fs/cgroup/") + c + "/" + cgroup_name, &victims);
    }
  }
  if (!path.empty()) {
    pid_t self = getpid();
    for (pid_t pid : AllPids()) {
      if (pid != self && CommandLine(pid).find(path) != std::string::npos) victims.push_back(pid);
    }
  }
  std::sort(victims.begin(), victims.end());
  victims.erase(std::unique(victims.begin(), victims.end()), victims.end());
  for (pid_t pid : victims) kill(pid, SIGKILL);
  WaitFor(
      [&] {
        for (pid_t pid : victims) {
          waitpid(pid, nullptr, WNOHANG);  // ours (dockerd) must be reaped
          if (IsAlive(pid) && ReadFile("/proc/" + std::to_string(pid) + "/stat").find(") Z ") ==
                                  std::string::npos) {
            return false;
          }
        }
        return true;
      },
      10, 0.1);
  if (!cgroup_name.empty()) {
    for (const char* c : kCgroupControllers) {
      RemoveCgroupTree(std::string("/sys/fs/cgroup/") + c + "/" + cgroup_name);
    }
  }
  return static_cast<int>(victims.size());
}

/// Unmounts everything mounted at or below `dir` (deepest first, lazily). Returns how many.
int UnmountUnder(const std::string& dir) {
  std::vector<std::string> targets;
  std::istringstream mounts(ReadFile("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(mounts, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, target;
    fields >> id >> parent >> dev >> root >> target;
    if (target == dir || target.rfind(dir + "/", 0) == 0) targets.push_back(target);
  }
  std::sort(targets.begin(), targets.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const auto& t : targets) umount2(t.c_str(), MNT_DETACH);
  return static_cast<int>(targets.size());
}

/// Bridges named `prefix`* (compose networks of our runs: LOCKMESH_BRIDGE).
std::vector<std::string> BridgesWithPrefix(const std::string& prefix) {
  std::vector<std::string> out;
  CommandResult r = RunCommand({"ip", "-o", "link", "show", "type", "bridge"}, 10);
  std::istringstream lines(r.output);
  std::string line;
  while (std::getline(lines, line)) {
    // "12: lmdt123p: <BROADCAST,...".
    size_t a = line.find(": ");
    if (a == std::string::npos) continue;
    size_t b = line.find(':', a + 2);
    std::string name = line.substr(a + 2, b == std::string::npos ? std::string::npos : b - a - 2);
    if (name.rfind(prefix, 0) == 0) out.push_back(name);
  }
  return out;
}

bool CommandExists(const std::string& name) {
  return RunCommand({"sh", "-c", "command -v " + name}, 10).code == 0;
}

}  // namespace

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

CommandResult RunCommand(const std::vector<std::string>& argv, double timeout_s, const Env& env,
                         const std::string& log_file) {
  CommandResult result;
  Clock::time_point start = Clock::now();
  int out_fd = -1;
  int pipe_fds[2] = {-1, -1};
  if (!log_file.empty()) {
    out_fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out_fd < 0) {
      result.output = "cannot open " + log_file + ": " + strerror(errno);
      return result;
    }
  } else {
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
      result.output = std::string("pipe: ") + strerror(errno);
      return result;
    }
    out_fd = pipe_fds[1];
  }
  pid_t pid = Spawn(argv, env, out_fd);
  close(out_fd);
  if (pid < 0) {
    if (pipe_fds[0] >= 0) close(pipe_fds[0]);
    result.output = std::string("fork: ") + strerror(errno);
    return result;
  }
  int status = 0;
  bool reaped = false;
  Clock::time_point reaped_at;
  bool pipe_open = pipe_fds[0] >= 0;
  char buffer[8192];
  while (!reaped || pipe_open) {
    double left = timeout_s - SecondsSince(start);
    if (left <= 0 && !reaped && !result.timed_out) {
      result.timed_out = true;
      kill(-pid, SIGKILL);
    }
    if (pipe_open) {
      pollfd p = {pipe_fds[0], POLLIN, 0};
      int wait_ms = std::clamp(static_cast<int>(left * 1000), 1, 100);
      if (poll(&p, 1, wait_ms) > 0) {
        ssize_t n = read(pipe_fds[0], buffer, sizeof buffer);
        if (n > 0) {
          result.output.append(buffer, n);
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
          pipe_open = false;  // every writer closed
        }
      }
      // A process the command left behind may hold the pipe: stop reading 2 s after the
      // command itself ended.
      if (reaped && SecondsSince(reaped_at) > 2) pipe_open = false;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!reaped && waitpid(pid, &status, WNOHANG) == pid) {
      reaped = true;
      reaped_at = Clock::now();
    }
  }
  if (pipe_fds[0] >= 0) close(pipe_fds[0]);
  result.code = result.timed_out ? -1 : DecodeStatus(status);
  result.seconds = SecondsSince(start);
  return result;
}

std::string Join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !a.empty() && a.find_first_of(" \t'\"$\\;&|<>()*?") == std::string::npos;
    out += plain ? a : "'" + a + "'";
  }
  return out;
}

BackgroundCommand::BackgroundCommand(const std::vector<std::string>& argv, const Env& env,
                                     const std::string& output_file)
    : output_file_(output_file) {
  int fd = open(output_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  pid_ = Spawn(argv, env, fd);
  close(fd);
}

BackgroundCommand::~BackgroundCommand() {
  if (pid_ > 0 && !Poll()) {
    kill(-pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

bool BackgroundCommand::Poll() {
  if (pid_ <= 0) return true;
  if (code_ >= 0) return true;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    code_ = DecodeStatus(status);
    ended_at_ = Clock::now();
    return true;
  }
  return false;
}

bool BackgroundCommand::Wait(double timeout_s) {
  WaitFor([this] { return Poll(); }, timeout_s, 0.05);
  return Poll();
}

std::string BackgroundCommand::Output() const { return ReadFile(output_file_); }

bool WaitFor(const std::function<bool()>& condition, double timeout_s, double interval_s) {
  Clock::time_point start = Clock::now();
  while (true) {
    if (condition()) return true;
    if (SecondsSince(start) >= timeout_s) return false;
    std::this_thread::sleep_for(std::chrono::duration<double>(interval_s));
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string TailLines(const std::string& text, size_t n) {
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (size_t i = 0; i < n && pos > 0; ++i) {
    size_t nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos) return text;
    pos = nl;
  }
  return pos == 0 ? text : text.substr(pos + 1);
}

std::string InstallMissingPackages(const std::vector<std::string>& packages) {
  std::vector<std::string> missing;
  for (const auto& p : packages) {
    CommandResult q = RunCommand({"dpkg-query", "-W", "-f=${Status}", p}, 30);
    if (q.output.find("install ok installed") == std::string::npos) missing.push_back(p);
  }
  if (missing.empty()) return "";
  printf("[docker] installing %s\n", Join(missing).c_str());
  fflush(stdout);
  Env env = {{"DEBIAN_FRONTEND", "noninteractive"}};
  CommandResult update = RunCommand({"apt-get", "update", "-qq"}, 300, env);
  if (update.code != 0) return "apt-get update failed: " + TailLines(update.output, 10);
  std::vector<std::string> argv = {"apt-get", "install", "-y", "-qq", "--no-install-recommends"};
  argv.insert(argv.end(), missing.begin(), missing.end());
  CommandResult install = RunCommand(argv, 600, env);
  if (install.code != 0) {
    return "apt-get install " + Join(missing) + " failed: " + TailLines(install.output, 10);
  }
  return "";
}

std::string HarnessPaths::RunsDir() { return "/tmp/lockmesh-docker-test"; }
std::string HarnessPaths::CacheDir() { return "/var/cache/lockmesh/docker"; }

std::string CleanUpLeftovers() {
  std::string report;
  std::string runs = HarnessPaths::RunsDir();
  DIR* d = opendir(runs.c_str());
  std::vector<std::string> dead_runs;
  if (d != nullptr) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.rfind(kTagPrefix, 0) != 0) continue;
      pid_t owner = static_cast<pid_t>(atoi(ReadFile(runs + "/" + name + "/owner").c_str()));
      // A run directory is ours to clean when its test process is gone (or it has no owner
      // file: it died before writing one).
      if (owner > 0 && IsAlive(owner) && CommandLine(owner).find("compose_test") !=
                                             std::string::npos) {
        continue;
      }
      dead_runs.push_back(name);
    }
    closedir(d);
  }
  for (const auto& tag : dead_runs) {
    std::string dir = runs + "/" + tag;
    int killed = KillEngineProcesses(tag, dir);
    int unmounted = UnmountUnder(dir);
    RunCommand({"rm", "-rf", "--one-file-system", dir}, 300);
    report += "run " + tag + ": killed " + std::to_string(killed) + " process(es), unmounted " +
              std::to_string(unmounted) + ", removed " + dir + "\n";
  }
  // Bridges of compose networks whose run is gone (the engine died before removing them).
  for (const auto& bridge : BridgesWithPrefix(kTagPrefix)) {
    // Bridge names are tag + one letter: lmdt<pid><p|s>.
    pid_t owner = static_cast<pid_t>(atoi(bridge.c_str() + strlen(kTagPrefix)));
    if (owner > 0 && IsAlive(owner) && CommandLine(owner).find("compose_test") !=
                                           std::string::npos) {
      continue;
    }
    RunCommand({"ip", "link", "del", bridge}, 10);
    report += "removed bridge " + bridge + "\n";
  }
  return report;
}

DockerEngine::DockerEngine() {
  tag_ = std::string(kTagPrefix) + std::to_string(getpid());
  dir_ = HarnessPaths::RunsDir() + "/" + tag_;
  socket_ = dir_ + "/docker.sock";
  cgroup_parent_ = tag_;
}

DockerEngine::~DockerEngine() { Stop(); }

Env DockerEngine::env() const { return {{"DOCKER_HOST", "unix://" + socket_}}; }

CommandResult DockerEngine::Docker(const std::vector<std::string>& args, double timeout_s) const {
  std::vector<std::string> argv = {DockerBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout_s, env());
}

std::string DockerEngine::Start() {
  mkdir(HarnessPaths::RunsDir().c_str(), 0755);
  RunCommand({"rm", "-rf", "--one-file-system", dir_}, 60);
  if (mkdir(dir_.c_str(), 0700) != 0) return "cannot create " + dir_ + ": " + strerror(errno);
  {
    std::ofstream owner(dir_ + "/owner");
    owner << getpid() << "\n";
  }
  stopped_ = false;
  std::string log = dir_ + "/dockerd.log";
  // The engine runs at nice -5, and so does everything it starts (containerd, the image
  // build's compilers, the scenario containers): the image build is CI's longest chain,
  // and the rest of the suite, beside it, mostly waits on timers. At nice 0 a loaded run
  // took 736 s of the 900 s budget, most of it the build starved of CPU.
  std::vector<std::string> argv = {
      "nice", "-n", "-5", "dockerd",
      "--storage-driver", "vfs",
      "--data-root", dir_ + "/data",
      "--exec-root", dir_ + "/exec",
      "--pidfile", dir_ + "/dockerd.pid",
      "--host", "unix://" + socket_,
      "--cgroup-parent", cgroup_parent_,
      // Leave the host's firewall and forwarding alone (see the header).
      "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
      "--bridge=none",
      "--log-level", "warn",
  };
  int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return "cannot open " + log;
  dockerd_pid_ = Spawn(argv, {}, fd);
  close(fd);
  if (dockerd_pid_ < 0) return std::string("cannot start dockerd: ") + strerror(errno);
  bool up = WaitFor(
      [&] {
        if (waitpid(dockerd_pid_, nullptr, WNOHANG) == dockerd_pid_) {
          dockerd_pid_ = -1;
          return true;  // died: reported below
        }
        return Docker({"version", "--format", "{{.Server.Version}}"}, 10).code == 0;
      },
      60, 0.5);
  if (!up || dockerd_pid_ < 0) {
    std::string why = std::string("dockerd ") + (dockerd_pid_ < 0 ? "exited" : "did not answer") +
                      " (log " + log + "):\n" + TailLines(ReadFile(log), 15);
    return why;
  }
  return "";
}

std::string DockerEngine::Stop() {
  if (stopped_) return "";
  stopped_ = true;
  std::string report;
  if (dockerd_pid_ > 0 && IsAlive(dockerd_pid_)) {
    // Everything this run made lives in this engine: remove it all, explicitly.
    CommandResult ps = Docker({"ps", "-aq"}, 30);
    std::istringstream ids(ps.output);
    std::vector<std::string> containers;
    for (std::string id; ids >> id;) containers.push_back(id);
    if (!containers.empty()) {
      std::vector<std::string> rm = {"rm", "-f", "-v"};
      rm.insert(rm.end(), containers.begin(), containers.end());
      Docker(rm, 120);
    }
    Docker({"network", "prune", "-f"}, 60);
    Docker({"volume", "prune", "-f"}, 60);
    CommandResult images = Docker({"images", "-aq"}, 30);
    std::istringstream image_ids(images.output);
    std::vector<std::string> image_list;
    for (std::string id; image_ids >> id;) image_list.push_back(id);
    if (!image_list.empty()) {
      std::vector<std::string> rmi = {"rmi", "-f"};
      rmi.insert(rmi.end(), image_list.begin(), image_list.end());
      Docker(rmi, 300);
    }
    Docker({"builder", "prune", "-af"}, 120);
    std::string left = Docker({"ps", "-aq"}, 30).output + Docker({"images", "-aq"}, 30).output +
                       Docker({"volume", "ls", "-q"}, 30).output;
    report += "removed " + std::to_string(containers.size()) + " container(s), " +
              std::to_string(image_list.size()) + " image(s), networks and volumes; " +
              (left.empty() ? "nothing left in the engine" : "LEFT: " + left) + "\n";
    kill(dockerd_pid_, SIGTERM);
    bool gone = WaitFor([&] { return waitpid(dockerd_pid_, nullptr, WNOHANG) == dockerd_pid_; },
                        30, 0.1);
    if (!gone) {
      kill(dockerd_pid_, SIGKILL);
      waitpid(dockerd_pid_, nullptr, 0);
      report += "dockerd (pid " + std::to_string(dockerd_pid_) + ") needed SIGKILL\n";
    } else {
      report += "dockerd (pid " + std::to_string(dockerd_pid_) + ") stopped\n";
    }
  } else if (dockerd_pid_ > 0) {
    waitpid(dockerd_pid_, nullptr, WNOHANG);
  }
  dockerd_pid_ = -1;
  int killed = KillEngineProcesses(cgroup_parent_, dir_);
  if (killed > 0) report += "killed " + std::to_string(killed) + " leftover process(es)\n";
  int unmounted = UnmountUnder(dir_);
  if (unmounted > 0) report += "unmounted " + std::to_string(unmounted) + " leftover mount(s)\n";
  for (const auto& bridge : BridgesWithPrefix(tag_)) {
    RunCommand({"ip", "link", "del", bridge}, 10);
    report += "removed leftover bridge " + bridge + "\n";
  }
  RunCommand({"rm", "-rf", "--one-file-system", dir_}, 300);
  return report;
}

std::string DockerEngine::EnsureBaseImage(const std::string& tag) {
  if (Docker({"image", "inspect", tag}, 30).code == 0) return "";
  std::string cache = HarnessPaths::CacheDir();
  std::string tarball = cache + "/debian-bookworm-minbase.tar";
  struct stat st;
  bool cached = stat(tarball.c_str(), &st) == 0 && st.st_size > (50 << 20) &&
                time(nullptr) - st.st_mtime < 30 * 86400;
  if (!cached) {
    RunCommand({"mkdir", "-p", cache}, 10);
    std::string rootfs = dir_ + "/rootfs";
    printf("[docker] debootstrap --variant=minbase bookworm (no cached base image in %s)\n",
           cache.c_str());
    fflush(stdout);
    CommandResult boot = RunCommand({"nice", "-n", "10", "debootstrap", "--variant=minbase",
                                     "bookworm", rootfs, "http://deb.debian.org/debian"},
                                    600, {}, dir_ + "/debootstrap.log");
    if (boot.code != 0) {
      return "debootstrap failed (" + std::to_string(boot.code) + "):\n" +
             TailLines(ReadFile(dir_ + "/debootstrap.log"), 15);
    }
    // No downloaded .debs in the image; the image must carry no machine id (docs/design.md §6).
    RunCommand({"sh", "-c",
                "rm -rf '" + rootfs + "'/var/cache/apt/archives/*.deb '" + rootfs +
                    "'/etc/machine-id '" + rootfs + "'/var/lib/dbus/machine-id"},
               60);
    std::string partial = tarball + "." + std::to_string(getpid());
    CommandResult tar =
        RunCommand({"tar", "--numeric-owner", "-C", rootfs, "-cf", partial, "."}, 300);
    RunCommand({"rm", "-rf", "--one-file-system", rootfs}, 300);
    if (tar.code != 0 || rename(partial.c_str(), tarball.c_str()) != 0) {
      unlink(partial.c_str());
      return "cannot write " + tarball + ": " + tar.output;
    }
    printf("[docker] base image cached in %s (%.1f s)\n", tarball.c_str(), boot.seconds);
  }
  CommandResult import = Docker({"import", "--change", "CMD [\"bash\"]", tarball, tag}, 300);
  if (import.code != 0) return "docker import failed: " + import.output;
  return "";
}

std::string DockerBinary() {
  // Debian's client matches Debian's engine (API 1.41); a newer client elsewhere in PATH
  // would pick BuildKit, which Debian's engine does not bundle the same way.
  return access("/usr/bin/docker", X_OK) == 0 ? "/usr/bin/docker" : "docker";
}

std::vector<std::string> ComposeCommand() {
  if (CommandExists("docker-compose")) return {"docker-compose"};
  if (RunCommand({DockerBinary(), "compose", "version"}, 30).code == 0) {
    return {DockerBinary(), "compose"};
  }
  return {};
}

ComposeProject::ComposeProject(const DockerEngine* engine, std::string name,
                               std::vector<std::string> files, Env env)
    : engine_(engine), name_(std::move(name)), files_(std::move(files)), env_(std::move(env)) {
  for (const auto& [k, v] : engine_->env()) env_[k] = v;
}

ComposeProject::~ComposeProject() { Down(); }

CommandResult ComposeProject::Run(const std::vector<std::string>& args, double timeout_s) const {
  std::vector<std::string> argv = ComposeCommand();
  if (argv.empty()) {
    CommandResult none;
    none.output = "neither docker-compose nor `docker compose` is available";
    return none;
  }
  argv.insert(argv.end(), {"-p", name_});
  for (const auto& f : files_) argv.insert(argv.end(), {"-f", f});
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout_s, env_);
}

std::vector<std::string> ComposeProject::Containers(const std::string& service) const {
  // By label rather than `compose ps -q`: the same with v1 and v2, and ordered by number.
  CommandResult r = engine_->Docker(
      {"ps", "-a", "--filter", "label=com.docker.compose.project=" + name_, "--filter",
       "label=com.docker.compose.service=" + service, "--format",
       "{{.Label \"com.docker.compose.container-number\"}} {{.ID}}"},
      30);
  std::vector<std::pair<int, std::string>> numbered;
  std::istringstream lines(r.output);
  int number;
  std::string id;
  while (lines >> number >> id) numbered.emplace_back(number, id);
  std::sort(numbered.begin(), numbered.end());
  std::vector<std::string> out;
  for (const auto& [n, c] : numbered) out.push_back(c);
  return out;
}

void ComposeProject::Down() {
  if (down_) return;
  down_ = true;
  Run({"down", "-v", "--remove-orphans", "-t", "10"}, 180);
}

bool InCi() {
  const char* ci = getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

}  // namespace lockmesh::docker_testing
