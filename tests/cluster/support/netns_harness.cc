#include "cluster/support/netns_harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <sstream>

extern char** environ;

namespace lockmesh::testing {
namespace {

constexpr const char* kPrefix = "lmn";  // every namespace and link of this harness
constexpr const char* kLossTable = "lmfault";

std::string Base36(uint64_t value, size_t width) {
  const char* digits = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out;
  do {
    out.insert(out.begin(), digits[value % 36]);
    value /= 36;
  } while (value != 0);
  while (out.size() < width) out.insert(out.begin(), '0');
  return out;
}

// The pid encoded in a tag-prefixed name ("lmn" + 5 base-36 digits), or -1.
pid_t PidOfName(const std::string& name) {
  if (name.size() < 8 || name.compare(0, 3, kPrefix) != 0) return -1;
  uint64_t value = 0;
  for (size_t i = 3; i < 8; ++i) {
    char c = name[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'z' ? c - 'a' + 10 : -1;
    if (d < 0) return -1;
    value = value * 36 + static_cast<uint64_t>(d);
  }
  return static_cast<pid_t>(value);
}

bool ProcessExists(pid_t pid) { return kill(pid, 0) == 0 || errno == EPERM; }

std::string Join(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

}  // namespace

bool InCi() {
  const char* ci = getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

CommandResult RunCommand(const std::vector<std::string>& argv, Millis timeout) {
  CommandResult result;
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    result.output = std::string("pipe: ") + strerror(errno);
    return result;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipefd[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipefd[1]);
  if (rc != 0) {
    close(pipefd[0]);
    result.output = "cannot run " + argv[0] + ": " + strerror(rc);
    return result;
  }
  auto deadline = Clock::now() + timeout;
  char buffer[4096];
  bool killed = false;
  for (;;) {
    int left =
        static_cast<int>(std::chrono::duration_cast<Millis>(deadline - Clock::now()).count());
    if (left <= 0) {
      kill(pid, SIGKILL);
      killed = true;
      break;
    }
    pollfd p{pipefd[0], POLLIN, 0};
    int n = poll(&p, 1, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    ssize_t got = read(pipefd[0], buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    if (result.output.size() < 65536) result.output.append(buffer, static_cast<size_t>(got));
  }
  close(pipefd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!killed && WIFEXITED(status)) result.code = WEXITSTATUS(status);
  if (killed) result.output += "\n(killed after " + std::to_string(timeout.count()) + " ms)";
  return result;
}

std::string NetnsUnavailableReason() {
  static const std::string reason = []() -> std::string {
    if (geteuid() != 0)
      return "network namespaces need root (running as uid " + std::to_string(geteuid()) + ")";
    CommandResult version = RunCommand({"ip", "-V"});
    if (version.code != 0) return "iproute2's `ip` is not available: " + version.output;
    std::string probe =
        std::string(kPrefix) + Base36(static_cast<uint64_t>(getpid()), 5) + "zz-probe";
    CommandResult add = RunCommand({"ip", "netns", "add", probe});
    if (add.code != 0) return "`ip netns add` fails: " + add.output;
    RunCommand({"ip", "netns", "del", probe});
    return "";
  }();
  return reason;
}

mesh::Status NetnsCluster::Must(const std::vector<std::string>& argv) {
  CommandResult r = RunCommand(argv);
  if (r.code == 0) return mesh::Status::OK();
  return mesh::Status::IOError("`" + Join(argv) + "` exited " + std::to_string(r.code) + ": " +
                               r.output);
}

std::vector<std::string> NetnsCluster::NamespacesWithPrefix(const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream lines(RunCommand({"ip", "netns", "list"}).output);
  for (std::string line; std::getline(lines, line);) {
    std::string name = line.substr(0, line.find(' '));
    if (name.compare(0, prefix.size(), prefix) == 0) out.push_back(name);
  }
  return out;
}

std::vector<std::string> NetnsCluster::LinksWithPrefix(const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream lines(RunCommand({"ip", "-o", "link", "show"}).output);
  for (std::string line; std::getline(lines, line);) {
    // "12: lmn0abcd01v0@if11: <...>"
    size_t start = line.find(": ");
    if (start == std::string::npos) continue;
    start += 2;
    size_t end = line.find_first_of("@:", start);
    std::string name = line.substr(start, end - start);
    if (name.compare(0, prefix.size(), prefix) == 0) out.push_back(name);
  }
  return out;
}

void NetnsCluster::KillNamespaceProcesses(const std::string& netns) {
  // Bounded: a few rounds, in case something forks while we kill.
  for (int round = 0; round < 5; ++round) {
    std::istringstream pids(RunCommand({"ip", "netns", "pids", netns}).output);
    bool any = false;
    for (std::string line; std::getline(pids, line);) {
      pid_t pid = static_cast<pid_t>(atoi(line.c_str()));
      if (pid > 1 && pid != getpid()) {
        kill(pid, SIGKILL);
        any = true;
      }
    }
    if (!any) return;
    // Reap any that were our children; others are reaped by their parents or init.
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    usleep(20000);
  }
}

int NetnsCluster::CleanupLeftovers() {
  int removed = 0;
  for (const std::string& ns : NamespacesWithPrefix(kPrefix)) {
    pid_t owner = PidOfName(ns);
    if (owner <= 0 || ProcessExists(owner)) continue;
    NetnsCluster scratch;
    scratch.KillNamespaceProcesses(ns);
    if (RunCommand({"ip", "netns", "del", ns}).code == 0) ++removed;
  }
  for (const std::string& link : LinksWithPrefix(kPrefix)) {
    pid_t owner = PidOfName(link);
    if (owner <= 0 || ProcessExists(owner)) continue;
    if (RunCommand({"ip", "link", "del", link}).code == 0) ++removed;
  }
  return removed;
}

mesh::Status NetnsCluster::Create(const NetnsOptions& options, std::unique_ptr<NetnsCluster>* out) {
  if (options.hosts < 1 || options.hosts > 50) {
    return mesh::Status::InvalidArgument("hosts must be 1-50");
  }
  if (!options.ipv4 && !options.ipv6) return mesh::Status::InvalidArgument("no address family");
  std::string why = NetnsUnavailableReason();
  if (!why.empty()) return mesh::Status::Unavailable(why);
  static bool cleaned = false;
  if (!cleaned) {
    cleaned = true;
    int n = CleanupLeftovers();
    if (n > 0) fprintf(stderr, "netns harness: removed %d leftovers of crashed runs\n", n);
  }
  std::unique_ptr<NetnsCluster> cluster(new NetnsCluster());
  mesh::Status st = cluster->Build(options);
  if (!st.ok()) {
    cluster->Destroy();
    return st;
  }
  *out = std::move(cluster);
  return mesh::Status::OK();
}

mesh::Status NetnsCluster::Build(const NetnsOptions& options) {
  static std::atomic<int> counter{0};
  tag_ = std::string(kPrefix) + Base36(static_cast<uint64_t>(getpid()), 5) +
         Base36(static_cast<uint64_t>(counter++ % 1296), 2);
  logs_ = std::make_unique<TempDir>("lmn");
  bridge_ = tag_ + "br";
  MESH_RETURN_IF_ERROR(
      Must({"ip", "link", "add", bridge_, "type", "bridge", "mcast_snooping", "0"}));
  // The bridge carries the hosts' frames only; it needs no address of its own.
  RunCommand({"sysctl", "-q", "-w", "net.ipv6.conf." + bridge_ + ".disable_ipv6=1"});
  MESH_RETURN_IF_ERROR(Must({"ip", "link", "set", bridge_, "up"}));
  for (int i = 0; i < options.hosts; ++i) {
    NetnsHost h;
    h.index = static_cast<size_t>(i);
    h.netns = tag_ + "-h" + std::to_string(i);
    h.bridge_port = tag_ + "v" + std::to_string(i);
    h.ifname = "eth0";
    hosts_.push_back(h);  // recorded first, so that Destroy removes a half-made host too
    MESH_RETURN_IF_ERROR(Must({"ip", "netns", "add", h.netns}));
    MESH_RETURN_IF_ERROR(Must({"ip", "link", "add", h.bridge_port, "type", "veth", "peer", "name",
                               h.ifname, "netns", h.netns}));
    RunCommand({"sysctl", "-q", "-w", "net.ipv6.conf." + h.bridge_port + ".disable_ipv6=1"});
    MESH_RETURN_IF_ERROR(Must({"ip", "link", "set", h.bridge_port, "master", bridge_}));
    MESH_RETURN_IF_ERROR(Must({"ip", "link", "set", h.bridge_port, "up"}));
    MESH_RETURN_IF_ERROR(Must({"ip", "-n", h.netns, "link", "set", "lo", "up", "multicast", "on"}));
    MESH_RETURN_IF_ERROR(
        Must({"ip", "-n", h.netns, "link", "set", h.ifname, "up", "multicast", "on"}));
    if (options.ipv4) {
      h.ipv4 = "10.77.0." + std::to_string(i + 1);
      MESH_RETURN_IF_ERROR(
          Must({"ip", "-n", h.netns, "addr", "add", h.ipv4 + "/24", "dev", h.ifname}));
      MESH_RETURN_IF_ERROR(
          Must({"ip", "-n", h.netns, "route", "add", "224.0.0.0/4", "dev", h.ifname}));
    }
    if (options.ipv6) {
      h.ipv6 = "fd00:77::" + std::to_string(i + 1);
      MESH_RETURN_IF_ERROR(
          Must({"ip", "-n", h.netns, "addr", "add", h.ipv6 + "/64", "dev", h.ifname, "nodad"}));
      MESH_RETURN_IF_ERROR(
          Must({"ip", "-n", h.netns, "-6", "route", "add", "ff00::/8", "dev", h.ifname}));
    } else {
      MESH_RETURN_IF_ERROR(Must({"ip", "netns", "exec", h.netns, "sysctl", "-q", "-w",
                                 "net.ipv6.conf.all.disable_ipv6=1"}));
    }
    hosts_.back() = h;
  }
  return mesh::Status::OK();
}

NetnsCluster::~NetnsCluster() { Destroy(); }

void NetnsCluster::Destroy() {
  if (destroyed_) return;
  destroyed_ = true;
  for (Owned& o : processes_) {
    if (o.process) o.process->Kill();
  }
  for (const NetnsHost& h : hosts_) KillNamespaceProcesses(h.netns);
  for (const NetnsHost& h : hosts_) {
    RunCommand({"ip", "link", "del", h.bridge_port});  // removes both ends of the pair
    RunCommand({"ip", "netns", "del", h.netns});
  }
  if (!bridge_.empty()) RunCommand({"ip", "link", "del", bridge_});
  if (!tag_.empty()) {
    std::vector<std::string> left = NamespacesWithPrefix(tag_);
    std::vector<std::string> links = LinksWithPrefix(tag_);
    left.insert(left.end(), links.begin(), links.end());
    if (!left.empty()) {
      ADD_FAILURE() << "netns harness could not remove: " << Join(left);
    }
  }
}

Process* NetnsCluster::Run(size_t i, const std::string& name, const std::vector<std::string>& argv,
                           const std::map<std::string, std::optional<std::string>>& env) {
  Owned o;
  o.host = i;
  o.name = name;
  o.argv = argv;
  o.env = env;
  ProcessOptions po;
  po.argv = {"ip", "netns", "exec", host(i).netns};
  po.argv.insert(po.argv.end(), argv.begin(), argv.end());
  po.env = env;
  po.stdout_path = logs_->Join(name + ".out");
  po.stderr_path = logs_->Join(name + ".err");
  po.append_output = true;
  o.process = std::make_unique<Process>(po);
  Process* raw = o.process.get();
  processes_.push_back(std::move(o));
  return raw;
}

Process* NetnsCluster::Restart(Process* p) {
  for (Owned& o : processes_) {
    if (o.process.get() != p) continue;
    o.process->Kill();
    Owned copy{o.host, o.name, o.argv, o.env, nullptr};
    o.process.reset();
    return Run(copy.host, copy.name, copy.argv, copy.env);
  }
  ADD_FAILURE() << "Restart of a process the cluster does not own";
  return nullptr;
}

CommandResult NetnsCluster::Exec(size_t i, const std::vector<std::string>& argv, Millis timeout) {
  std::vector<std::string> full = {"ip", "netns", "exec", host(i).netns};
  full.insert(full.end(), argv.begin(), argv.end());
  return RunCommand(full, timeout);
}

mesh::Status NetnsCluster::LinkDown(size_t i) {
  return Must({"ip", "link", "set", host(i).bridge_port, "down"});
}
mesh::Status NetnsCluster::LinkUp(size_t i) {
  return Must({"ip", "link", "set", host(i).bridge_port, "up"});
}
mesh::Status NetnsCluster::Isolate(size_t i) {
  return Must({"ip", "link", "set", host(i).bridge_port, "nomaster"});
}
mesh::Status NetnsCluster::Rejoin(size_t i) {
  return Must({"ip", "link", "set", host(i).bridge_port, "master", bridge_});
}

bool NetnsCluster::NetemAvailable() {
  static const bool available = [] {
    if (!NetnsUnavailableReason().empty()) return false;
    std::string probe =
        std::string(kPrefix) + Base36(static_cast<uint64_t>(getpid()), 5) + "zz-netem";
    if (RunCommand({"ip", "netns", "add", probe}).code != 0) return false;
    bool ok = RunCommand({"ip", "netns", "exec", probe, "tc", "qdisc", "add", "dev", "lo", "root",
                          "netem", "delay", "1ms"})
                  .code == 0;
    RunCommand({"ip", "netns", "del", probe});
    return ok;
  }();
  return available;
}

mesh::Status NetnsCluster::SetLoss(size_t i, double percent) {
  if (percent < 0 || percent > 100) return mesh::Status::InvalidArgument("loss must be 0-100 %");
  const NetnsHost& h = host(i);
  char pct[32];
  snprintf(pct, sizeof pct, "%g%%", percent);
  if (NetemAvailable()) {
    return Must({"ip", "netns", "exec", h.netns, "tc", "qdisc", "replace", "dev", h.ifname, "root",
                 "netem", "loss", pct});
  }
  // No netem in this kernel: an nftables rule drops the same share of outgoing packets.
  if (RunCommand({"nft", "--version"}).code != 0) {
    return mesh::Status::Unavailable(
        "packet loss needs tc netem (CONFIG_NET_SCH_NETEM) or nftables (`nft`); neither is here");
  }
  RunCommand({"ip", "netns", "exec", h.netns, "nft", "delete", "table", "inet", kLossTable});
  int threshold = static_cast<int>(percent * 100 + 0.5);  // of 10000
  MESH_RETURN_IF_ERROR(
      Must({"ip", "netns", "exec", h.netns, "nft", "add", "table", "inet", kLossTable}));
  MESH_RETURN_IF_ERROR(Must({"ip", "netns", "exec", h.netns, "nft", "add", "chain", "inet",
                             kLossTable, "out", "{ type filter hook output priority 0 ; }"}));
  std::vector<std::string> rule = {"ip",   "netns", "exec",     h.netns, "nft",     "add",
                                   "rule", "inet",  kLossTable, "out",   "oifname", h.ifname};
  if (threshold < 10000) {  // numgen's values are 0-9999
    for (const char* word : {"numgen", "random", "mod", "10000", "<"}) rule.push_back(word);
    rule.push_back(std::to_string(threshold));
  }
  rule.push_back("drop");
  return Must(rule);
}

mesh::Status NetnsCluster::SetDelay(size_t i, int delay_ms, int jitter_ms) {
  if (!NetemAvailable()) {
    return mesh::Status::Unavailable(
        "delay needs tc netem, which this kernel lacks (CONFIG_NET_SCH_NETEM)");
  }
  const NetnsHost& h = host(i);
  std::vector<std::string> argv = {"ip",
                                   "netns",
                                   "exec",
                                   h.netns,
                                   "tc",
                                   "qdisc",
                                   "replace",
                                   "dev",
                                   h.ifname,
                                   "root",
                                   "netem",
                                   "delay",
                                   std::to_string(delay_ms) + "ms"};
  if (jitter_ms > 0) argv.push_back(std::to_string(jitter_ms) + "ms");
  return Must(argv);
}

mesh::Status NetnsCluster::ClearImpairment(size_t i) {
  const NetnsHost& h = host(i);
  RunCommand({"ip", "netns", "exec", h.netns, "tc", "qdisc", "del", "dev", h.ifname, "root"});
  RunCommand({"ip", "netns", "exec", h.netns, "nft", "delete", "table", "inet", kLossTable});
  return mesh::Status::OK();
}

}  // namespace lockmesh::testing
