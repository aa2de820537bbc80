#include "cluster/support/mesh_cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <sstream>

#include "net/discovery/discovery_beacon.h"

namespace lockmesh::testing {

using Json = nlohmann::json;

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t ReadStamp(const std::string& path) {
  std::string text = ReadFile(path);
  if (text.empty()) return 0;
  return strtoll(text.c_str(), nullptr, 10);
}

// ==================================================================== tool mode
//
// The test binary started as {exe, kToolFlag, subcommand, args...} runs the subcommand from an
// ELF constructor, before gtest's main() and before most static initialisation matters, and
// exits. glibc passes (argc, argv, envp) to constructors of the main program.
namespace {

// ---- async-signal-safe pieces (used from SIGTERM handlers)

// Decimal of v into buf (no terminator); returns the length.
size_t FormatDecimal(int64_t v, char* buf) {
  char tmp[24];
  size_t n = 0;
  bool negative = v < 0;
  uint64_t u = negative ? static_cast<uint64_t>(-(v + 1)) + 1 : static_cast<uint64_t>(v);
  do {
    tmp[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0);
  size_t len = 0;
  if (negative) buf[len++] = '-';
  while (n > 0) buf[len++] = tmp[--n];
  return len;
}

void WriteAllFd(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n;
    len -= static_cast<size_t>(n);
  }
}

// Writes `contents` to `path` via a temporary file and rename(): readers see all or nothing.
bool WriteAtomically(const std::string& path, const std::string& contents) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  WriteAllFd(fd, contents.data(), contents.size());
  close(fd);
  return rename(tmp.c_str(), path.c_str()) == 0;
}

// ---- hold

char g_stop_path[4096];

void HoldOnTerm(int) {
  char buf[32];
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  size_t len = FormatDecimal(static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec, buf);
  buf[len++] = '\n';
  int fd = open(g_stop_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    WriteAllFd(fd, buf, len);
    close(fd);
  }
  _exit(143);
}

int ToolHold(const std::vector<std::string>& a) {
  if (a.size() < 2) return 2;
  snprintf(g_stop_path, sizeof g_stop_path, "%s", a[1].c_str());
  struct sigaction sa {};
  sa.sa_handler = HoldOnTerm;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  if (!WriteAtomically(a[0], std::to_string(MonotonicNs()) + "\n")) return 1;
  int64_t seconds = a.size() > 2 ? atoll(a[2].c_str()) : 600;
  int64_t until = MonotonicNs() + seconds * 1000000000;
  while (MonotonicNs() < until) usleep(50 * 1000);
  return 0;
}

// ---- increment (the critical section of mesh_safety_test.cc)

// Pre-formatted "T <token> " for the handler, and the log's fd (opened before the handler is
// installed).
char g_term_prefix[128];
size_t g_term_prefix_len = 0;
int g_log_fd = -1;

void IncrementOnTerm(int) {
  char buf[192];
  memcpy(buf, g_term_prefix, g_term_prefix_len);
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  size_t len = g_term_prefix_len;
  len += FormatDecimal(static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec, buf + len);
  buf[len++] = '\n';
  if (g_log_fd >= 0) WriteAllFd(g_log_fd, buf, len);
  _exit(143);
}

// DIR LOG RUN [MS]. Records (one line each, appended to LOG; times are MonotonicNs):
//   S <token> <run> <start> <value read> <writer token read>
//   E <token> <run> <end>               after the increment was made (the last step)
//   T <token> <run> <time>              SIGTERM arrived (the lock was lost); exit 143
// The counter file DIR/counter holds "<value> <token of the section that wrote it>". The
// increment is one rename() of a complete new file: it either happened or it did not.
int ToolIncrement(const std::vector<std::string>& a) {
  if (a.size() < 3) return 2;
  const std::string counter = a[0] + "/counter";
  const std::string& log = a[1];
  const std::string& run = a[2];
  int hold_ms = a.size() > 3 ? atoi(a[3].c_str()) : 20;
  const char* token_env = getenv("LOCKMESH_TOKEN");
  std::string token = token_env ? token_env : "";
  if (token.empty()) {
    fprintf(stderr, "increment: no LOCKMESH_TOKEN\n");
    return 3;
  }
  g_log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (g_log_fd < 0) return 4;
  snprintf(g_term_prefix, sizeof g_term_prefix, "T %s %s ", token.c_str(), run.c_str());
  g_term_prefix_len = strlen(g_term_prefix);
  struct sigaction sa {};
  sa.sa_handler = IncrementOnTerm;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  int64_t start = MonotonicNs();
  long long value = 0;
  std::string writer = "0";
  {
    std::istringstream in(ReadFile(counter));
    in >> value >> writer;
  }
  std::string s = "S " + token + " " + run + " " + std::to_string(start) + " " +
                  std::to_string(value) + " " + writer + "\n";
  WriteAllFd(g_log_fd, s.data(), s.size());
  if (hold_ms > 0) usleep(static_cast<useconds_t>(hold_ms) * 1000);
  if (!WriteAtomically(counter, std::to_string(value + 1) + " " + token + "\n")) return 5;
  std::string e = "E " + token + " " + run + " " + std::to_string(MonotonicNs()) + "\n";
  WriteAllFd(g_log_fd, e.data(), e.size());
  return 0;
}

// ---- udp-garbage

int ToolUdpGarbage(const std::vector<std::string>& a) {
  if (a.size() < 4) return 2;
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICHOST;
  addrinfo* res = nullptr;
  if (getaddrinfo(a[0].c_str(), a[1].c_str(), &hints, &res) != 0 || res == nullptr) {
    fprintf(stderr, "udp-garbage: bad address %s\n", a[0].c_str());
    return 3;
  }
  int fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    perror("socket");
    return 4;
  }
  // A multicast group needs a hop limit; 1 keeps it on the link (like the beacons).
  int ttl = 1;
  setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
  setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof ttl);
  long count = atol(a[2].c_str());
  std::mt19937_64 rng(strtoull(a[3].c_str(), nullptr, 10));
  long sent = 0;
  std::string buf;
  for (long k = 0; k < count; ++k) {
    size_t len = rng() % 1401;
    buf.resize(len);
    for (char& c : buf) c = static_cast<char>(rng());
    // Every third datagram looks like a protobuf message (field 1, length-delimited, a length
    // that may lie), so that the parser gets past its first byte.
    if (k % 3 == 0 && len >= 2) {
      buf[0] = 0x0a;
      buf[1] = static_cast<char>(rng() % 128);
    }
    for (int attempt = 0; attempt < 100; ++attempt) {
      ssize_t n = sendto(fd, buf.data(), buf.size(), 0, res->ai_addr, res->ai_addrlen);
      if (n >= 0) {
        ++sent;
        break;
      }
      if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) break;
      usleep(1000);
    }
    if (k % 200 == 199) usleep(2000);  // ~10,000 in a few seconds, not one burst
  }
  freeaddrinfo(res);
  close(fd);
  printf("sent %ld of %ld\n", sent, count);
  return sent == count ? 0 : 1;
}

// ---- beacon-dials
//
// beacon-dials CLUSTER GROUP N SEND_MS QUIET_FROM_MS QUIET_TO_MS BASE_PORT: a forger of
// discovery beacons (a dialer learned from a beacon must end when the beacon expires).
// Listens on TCP ports BASE_PORT..BASE_PORT+N-1 of every address of this host, and for
// SEND_MS sends, every 300 ms, one valid beacon per made-up node `forged-K` (K < N) naming
// port BASE_PORT+K, to GROUP:28017. Every connection accepted is closed at once (the node's
// dial fails, and it redials with backoff). Prints `during=D quiet=Q`: connections accepted
// before QUIET_FROM_MS (counted from the last beacon) and between QUIET_FROM_MS and
// QUIET_TO_MS.
int ToolBeaconDials(const std::vector<std::string>& a) {
  if (a.size() < 7) return 2;
  const std::string cluster = a[0];
  const int n = atoi(a[2].c_str());
  const int64_t send_ms = atoll(a[3].c_str()), quiet_from = atoll(a[4].c_str()),
                quiet_to = atoll(a[5].c_str());
  const int base = atoi(a[6].c_str());
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICHOST;
  addrinfo* group = nullptr;
  if (n <= 0 || n > 500 || getaddrinfo(a[1].c_str(), "28017", &hints, &group) != 0) return 3;
  int udp = socket(group->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int ttl = 1;
  setsockopt(udp, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
  setsockopt(udp, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof ttl);
  std::vector<int> listeners;
  for (int k = 0; k < n; ++k) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int off = 0, on = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);  // IPv4 too
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in6 addr{};
    addr.sin6_family = AF_INET6;
    addr.sin6_addr = in6addr_any;
    addr.sin6_port = htons(static_cast<uint16_t>(base + k));
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 64) != 0) {
      perror("beacon-dials: listen");
      return 4;
    }
    listeners.push_back(fd);
  }
  const int64_t start = MonotonicNs() / 1000000;
  int64_t last_beacon = start, next_beacon = start;
  long during = 0, quiet = 0;
  uint64_t sequence = 0;
  for (;;) {
    const int64_t now = MonotonicNs() / 1000000;
    if (now - start < send_ms && now >= next_beacon) {
      for (int k = 0; k < n; ++k) {
        mesh::net::BeaconContent b;
        b.protocol_version = 1;
        b.cluster_name = cluster;
        b.node_id = "forged-" + std::to_string(k);
        b.instance = 1000 + static_cast<uint64_t>(k);
        b.peer_port = static_cast<uint16_t>(base + k);
        b.sequence = ++sequence;
        const std::string d = mesh::net::EncodeBeacon(b);
        sendto(udp, d.data(), d.size(), 0, group->ai_addr, group->ai_addrlen);
      }
      last_beacon = now;
      next_beacon = now + 300;
    }
    if (now - start >= send_ms && now - last_beacon >= quiet_to) break;
    std::vector<pollfd> fds;
    for (int fd : listeners) fds.push_back(pollfd{fd, POLLIN, 0});
    poll(fds.data(), fds.size(), 20);
    for (const pollfd& p : fds) {
      if (!(p.revents & POLLIN)) continue;
      for (;;) {
        int c = accept4(p.fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) break;
        close(c);
        const int64_t at = MonotonicNs() / 1000000;
        const bool sending = at - start < send_ms;
        if (sending || at - last_beacon < quiet_from) {
          ++during;
        } else if (at - last_beacon < quiet_to) {
          ++quiet;
        }
      }
    }
  }
  for (int fd : listeners) close(fd);
  close(udp);
  freeaddrinfo(group);
  printf("during=%ld quiet=%ld\n", during, quiet);
  return 0;
}

// ---- stamp
// ---- stamp

int ToolStamp(const std::vector<std::string>& a) {
  if (a.empty()) return 2;
  return WriteAtomically(a[0], std::to_string(MonotonicNs()) + "\n") ? 0 : 1;
}

__attribute__((constructor)) void MaybeRunTool(int argc, char** argv, char**) {
  if (argc < 3 || argv == nullptr || strcmp(argv[1], kToolFlag) != 0) return;
  std::string sub = argv[2];
  std::vector<std::string> args(argv + 3, argv + argc);
  int code = 2;
  if (sub == "stamp") {
    code = ToolStamp(args);
  } else if (sub == "hold") {
    code = ToolHold(args);
  } else if (sub == "increment") {
    code = ToolIncrement(args);
  } else if (sub == "udp-garbage") {
    code = ToolUdpGarbage(args);
  } else if (sub == "beacon-dials") {
    code = ToolBeaconDials(args);
  } else {
    fprintf(stderr, "unknown tool subcommand %s\n", sub.c_str());
  }
  fflush(stdout);
  fflush(stderr);
  _exit(code);
}

std::string SelfExe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "/proc/self/exe";
  return std::string(buf, static_cast<size_t>(n));
}

std::string Join(const std::vector<std::string>& v, const char* sep = ",") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

}  // namespace

std::vector<std::string> ToolArgv(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {SelfExe(), kToolFlag};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// ==================================================================== NodeView

int NodeView::Voters() const {
  int n = 0;
  for (const MemberView& m : members) n += m.voter ? 1 : 0;
  return n;
}

int NodeView::Learners() const { return static_cast<int>(members.size()) - Voters(); }

bool NodeView::HasMember(const std::string& id) const {
  for (const MemberView& m : members) {
    if (m.node_id == id) return true;
  }
  return false;
}

std::set<std::string> NodeView::VoterIds() const {
  std::set<std::string> ids;
  for (const MemberView& m : members) {
    if (m.voter) ids.insert(m.node_id);
  }
  return ids;
}

std::string NodeView::Summary() const {
  if (!ok) return "(no answer: " + error + ")";
  std::vector<std::string> voters, learners;
  for (const MemberView& m : members) {
    (m.voter ? voters : learners).push_back(m.node_id + (m.connected ? "" : "(down)"));
  }
  std::string s = node_id + ": " + role + (leader_id.empty() ? ", no leader" : ", leader " +
                                                                                   leader_id) +
                  ", term " + std::to_string(term) + ", commit " + std::to_string(commit_index) +
                  ", cluster '" + cluster_id + "', voters " + Join(voters) + ", learners " +
                  Join(learners) + ", lease_ms " + std::to_string(lease_ms);
  for (const std::string& w : warnings) s += "\n    warning: " + w;
  return s;
}

// ==================================================================== MeshCluster

mesh::Status MeshCluster::Create(const MeshOptions& options, std::unique_ptr<MeshCluster>* out) {
  std::unique_ptr<MeshCluster> c(new MeshCluster());
  c->options_ = options;
  MESH_RETURN_IF_ERROR(NetnsCluster::Create(options.net, &c->net_));
  c->dir_ = std::make_unique<TempDir>("lmc");
  // Every namespace's processes run as root too, but keep the tree readable for the log
  // readers of a failed run.
  chmod(c->dir_->path().c_str(), 0755);
  for (size_t i = 0; i < c->size(); ++i) {
    std::string h = "h" + std::to_string(i);
    c->dir_->MakeDir(h, 0700);
    if (options.host_environment) {
      for (const char* sub : {"/home", "/run", "/state", "/config"}) c->dir_->MakeDir(h + sub);
    }
    c->nodes_.push_back(nullptr);
  }
  if (options.security == "mutual") {
    MESH_RETURN_IF_ERROR(MakeCa(c->CaDir()));
    for (size_t i = 0; i < c->size(); ++i) {
      MESH_RETURN_IF_ERROR(MakeNodeCert(c->CaDir(), NodeId(i), c->CertDir(i)));
    }
  } else if (options.security != "none") {
    return mesh::Status::InvalidArgument("MeshCluster: security none or mutual only");
  }
  *out = std::move(c);
  return mesh::Status::OK();
}

MeshCluster::~MeshCluster() {
  // The namespaces (and every process in them) go first, then the files they used.
  net_.reset();
  dir_.reset();
}

std::optional<size_t> MeshCluster::HostOf(const std::string& node_id) const {
  for (size_t i = 0; i < size(); ++i) {
    if (NodeId(i) == node_id) return i;
  }
  return std::nullopt;
}

std::string MeshCluster::Socket(size_t i) const {
  std::string h = "h" + std::to_string(i);
  return options_.host_environment ? dir_->Join(h + "/run/lockmesh/node.sock")
                                   : dir_->Join(h + ".sock");
}

std::string MeshCluster::DataDir(size_t i) const {
  std::string h = "h" + std::to_string(i);
  return options_.host_environment ? dir_->Join(h + "/state/lockmesh/default")
                                   : dir_->Join(h + "/data");
}

std::map<std::string, std::optional<std::string>> MeshCluster::HostEnv(size_t i) const {
  if (!options_.host_environment) return {};
  std::string h = dir_->Join("h" + std::to_string(i));
  return {{"HOME", h + "/home"},
          {"XDG_RUNTIME_DIR", h + "/run"},
          {"XDG_STATE_HOME", h + "/state"},
          {"XDG_CONFIG_HOME", h + "/config"}};
}

std::string MeshCluster::PeerAddress(size_t i) const {
  const NetnsHost& h = net_->host(i);
  if (!h.ipv4.empty()) return h.ipv4 + ":28017";
  return "[" + h.ipv6 + "]:28017";
}

mesh::Status MeshCluster::MakeCa(const std::string& dir) {
  CommandResult r = RunCommand({LockmeshBinary(), "cert", "ca", "--out", dir});
  if (r.code != 0) {
    return mesh::Status::IOError("lockmesh cert ca --out " + dir + ": exit " +
                                 std::to_string(r.code) + ": " + r.output);
  }
  return mesh::Status::OK();
}

mesh::Status MeshCluster::MakeNodeCert(const std::string& ca_dir, const std::string& cn,
                                       const std::string& dir) {
  CommandResult r =
      RunCommand({LockmeshBinary(), "cert", "node", "--ca", ca_dir, "--cn", cn, "--out", dir});
  if (r.code != 0) {
    return mesh::Status::IOError("lockmesh cert node --cn " + cn + ": exit " +
                                 std::to_string(r.code) + ": " + r.output);
  }
  return mesh::Status::OK();
}

std::vector<std::string> MeshCluster::NodeArgv(size_t i,
                                               const std::vector<std::string>& extra) const {
  std::vector<std::string> argv = {LockmeshBinary(),
                                   "node",
                                   "--node-id",
                                   NodeId(i),
                                   "--cluster",
                                   options_.cluster,
                                   "--socket",
                                   Socket(i),
                                   "--data-dir",
                                   DataDir(i),
                                   "--expect",
                                   std::to_string(options_.expect),
                                   "--voters",
                                   std::to_string(options_.voters),
                                   "--session-ttl",
                                   std::to_string(options_.session_ttl_s),
                                   "--dead-after",
                                   std::to_string(options_.dead_after_s),
                                   "--election-timeout",
                                   std::to_string(options_.election_timeout_ms),
                                   "--security",
                                   options_.security};
  if (options_.security == "mutual") {
    argv.insert(argv.end(), {"--tls-cert", CertDir(i) + "/cert.pem", "--tls-key",
                             CertDir(i) + "/key.pem", "--tls-ca", CaDir() + "/cert.pem"});
  }
  if (options_.host_environment) {
    // The host's own defaults: neither --socket nor --data-dir.
    for (const char* flag : {"--socket", "--data-dir"}) {
      auto at = std::find(argv.begin(), argv.end(), flag);
      if (at != argv.end()) argv.erase(at, at + 2);
    }
  }
  argv.insert(argv.end(), options_.extra_node_args.begin(), options_.extra_node_args.end());
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

Process* MeshCluster::StartNode(size_t i, const std::vector<std::string>& extra) {
  Process* p = net_->Run(i, "node-" + NodeId(i), NodeArgv(i, extra), HostEnv(i));
  EXPECT_TRUE(p->ok()) << p->error();
  nodes_[i] = p;
  return p;
}

void MeshCluster::StartAll() {
  for (size_t i = 0; i < size(); ++i) StartNode(i);
}

void MeshCluster::KillNode(size_t i) {
  if (nodes_[i]) net_->Kill(nodes_[i]);
}

Process* MeshCluster::RestartNode(size_t i) {
  if (!nodes_[i]) return StartNode(i);
  nodes_[i] = net_->Restart(nodes_[i]);
  return nodes_[i];
}

void MeshCluster::CrashHost(size_t i) {
  // Everything in the namespace stops at once, as in a power cut: first SIGSTOP to all (so that
  // no survivor sees another die and reacts, e.g. a client stopping its command because its
  // node went away), then SIGKILL to all. A few rounds, in case something forked meanwhile.
  for (int round = 0; round < 5; ++round) {
    std::istringstream lines(RunCommand({"ip", "netns", "pids", net_->host(i).netns}).output);
    std::vector<pid_t> pids;
    for (std::string line; std::getline(lines, line);) {
      pid_t pid = static_cast<pid_t>(atoi(line.c_str()));
      if (pid > 1 && pid != getpid()) pids.push_back(pid);
    }
    if (pids.empty()) break;
    for (pid_t pid : pids) kill(pid, SIGSTOP);
    for (pid_t pid : pids) kill(pid, SIGKILL);
    usleep(20 * 1000);
  }
  KillNode(i);  // reaps it
}

std::string MeshCluster::NodeLog(size_t i) const {
  return ReadFile(net_->log_dir() + "/node-" + NodeId(i) + ".err");
}

NodeView MeshCluster::Status(size_t i, Millis timeout) const {
  NodeView v;
  CommandResult r =
      RunCommand({LockmeshBinary(), "status", "--socket", Socket(i), "--json"}, timeout);
  if (r.code != 0) {
    v.error = "exit " + std::to_string(r.code) + ": " + r.output.substr(0, 300);
    return v;
  }
  // stdout and stderr are one stream here: the JSON object is the part from the first '{'.
  size_t brace = r.output.find('{');
  Json j = Json::parse(brace == std::string::npos ? r.output : r.output.substr(brace), nullptr,
                       /*allow_exceptions=*/false);
  if (!j.is_object()) {
    v.error = "not JSON: " + r.output.substr(0, 300);
    return v;
  }
  v.ok = true;
  v.raw = j;
  v.node_id = j.value("node_id", "");
  v.cluster = j.value("cluster", "");
  v.cluster_id = j.value("cluster_id", "");
  v.role = j.value("role", "");
  v.leader_id = j.value("leader_id", "");
  v.term = j.value("term", uint64_t{0});
  v.commit_index = j.value("commit_index", uint64_t{0});
  v.lease_ms = j.value("lease_ms", int64_t{-1});
  v.locks_held = j.value("locks_held", int64_t{0});
  v.locks_waiting = j.value("locks_waiting", int64_t{0});
  if (j.contains("members") && j["members"].is_array()) {
    for (const Json& m : j["members"]) {
      MemberView mv;
      mv.node_id = m.value("node_id", "");
      mv.role = m.value("role", "");
      mv.voter = m.value("voter", false);
      mv.leader = m.value("leader", false);
      mv.connected = m.value("connected", false);
      mv.address = m.value("address", "");
      v.members.push_back(mv);
    }
  }
  if (j.contains("warnings") && j["warnings"].is_array()) {
    for (const Json& w : j["warnings"]) {
      if (w.is_string()) v.warnings.push_back(w.get<std::string>());
    }
  }
  return v;
}

bool MeshCluster::WaitFormed(const std::vector<size_t>& hosts, int voters, int members,
                             Millis timeout, std::string* why) const {
  std::string last;
  bool ok = WaitFor(
      [&] {
        std::string cluster_id, leader;
        last.clear();
        bool good = true;
        for (size_t i : hosts) {
          NodeView v = Status(i);
          last += "  " + (v.ok ? v.Summary() : NodeId(i) + " " + v.Summary()) + "\n";
          if (!good) continue;  // the rest only for the description
          if (!v.ok || v.cluster_id.empty() || v.leader_id.empty() || v.Voters() != voters ||
              static_cast<int>(v.members.size()) != members) {
            good = false;
            continue;
          }
          if (cluster_id.empty()) {
            cluster_id = v.cluster_id;
            leader = v.leader_id;
          } else if (v.cluster_id != cluster_id || v.leader_id != leader) {
            good = false;
          }
        }
        return good;
      },
      timeout, Millis(100));
  if (why) *why = last;
  return ok;
}

std::optional<size_t> MeshCluster::AgreedLeader(const std::vector<size_t>& hosts) const {
  std::string leader;
  for (size_t i : hosts) {
    NodeView v = Status(i);
    if (!v.ok || v.leader_id.empty()) return std::nullopt;
    if (leader.empty()) {
      leader = v.leader_id;
    } else if (v.leader_id != leader) {
      return std::nullopt;
    }
  }
  return HostOf(leader);
}

std::optional<size_t> MeshCluster::WaitLeader(const std::vector<size_t>& hosts, Millis timeout,
                                              std::optional<size_t> not_host) const {
  std::optional<size_t> found;
  WaitFor(
      [&] {
        found = AgreedLeader(hosts);
        return found.has_value() && (!not_host || *found != *not_host);
      },
      timeout, Millis(100));
  if (found && not_host && *found == *not_host) return std::nullopt;
  return found;
}

std::vector<size_t> MeshCluster::HostsExcept(const std::set<size_t>& except) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < size(); ++i) {
    if (except.count(i) == 0) out.push_back(i);
  }
  return out;
}

std::string MeshCluster::Describe(size_t log_lines) const {
  std::string s = "=== status of every host\n";
  for (size_t i = 0; i < size(); ++i) {
    NodeView v = Status(i, Millis(3000));
    s += "  " + (v.ok ? v.Summary() : NodeId(i) + " " + v.Summary()) + "\n";
  }
  for (size_t i = 0; i < size(); ++i) {
    s += "=== node log of " + NodeId(i) + " (last " + std::to_string(log_lines) + " lines)\n";
    s += Tail(net_->log_dir() + "/node-" + NodeId(i) + ".err", log_lines) + "\n";
  }
  return s;
}

std::vector<std::string> MeshCluster::LockArgv(size_t i, const std::string& resource,
                                               const std::vector<std::string>& flags,
                                               const std::vector<std::string>& command) const {
  std::vector<std::string> argv = {LockmeshBinary(), "lock", "--socket", Socket(i),
                                   "--no-autostart"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back(resource);
  argv.push_back("--");
  argv.insert(argv.end(), command.begin(), command.end());
  return argv;
}

CommandResult MeshCluster::Lock(size_t i, const std::string& resource,
                                const std::vector<std::string>& flags,
                                const std::vector<std::string>& command, Millis timeout) const {
  // A Process of our own rather than Exec, so that a lock that hangs past `timeout` can be
  // described (its node's status and lock table) before it is killed. Thread-safe: the
  // cluster's process list is not touched.
  static std::atomic<int> counter{0};
  std::string base = Path("client-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  ProcessOptions po;
  po.argv = {"ip", "netns", "exec", net_->host(i).netns};
  std::vector<std::string> lock = LockArgv(i, resource, flags, command);
  po.argv.insert(po.argv.end(), lock.begin(), lock.end());
  po.stdout_path = base + ".out";
  po.stderr_path = base + ".err";
  CommandResult result;
  {
    Process p(po);
    if (!p.ok()) {
      result.output = "cannot start lockmesh lock: " + p.error();
      return result;
    }
    std::optional<ExitStatus> st = p.Wait(timeout);
    if (st) {
      result.code = st->exited() ? st->code : 128 + st->signal;
    } else {
      NodeView v = Status(i);
      CommandResult locks =
          RunCommand({LockmeshBinary(), "locks", "--socket", Socket(i), "--json"}, Millis(5000));
      result.output = "(lockmesh lock still running after " + std::to_string(timeout.count()) +
                      " ms; killed. Its node then: " + v.Summary() + "\n  locks: " +
                      locks.output.substr(0, 2000) + ")\n";
      p.Kill();
    }
  }
  result.output = ReadFile(base + ".out") + ReadFile(base + ".err") + result.output;
  unlink((base + ".out").c_str());
  unlink((base + ".err").c_str());
  return result;
}

uint64_t MeshCluster::LockToken(size_t i, const std::string& resource, CommandResult* result,
                                const std::vector<std::string>& flags, Millis timeout) const {
  CommandResult r =
      Lock(i, resource, flags, {"sh", "-c", "echo token=$LOCKMESH_TOKEN"}, timeout);
  uint64_t token = 0;
  size_t at = r.output.find("token=");
  if (r.code == 0 && at != std::string::npos) {
    token = strtoull(r.output.c_str() + at + 6, nullptr, 10);
  }
  if (result) *result = r;
  return token;
}

Process* MeshCluster::StartLock(size_t i, const std::string& name, const std::string& resource,
                                const std::vector<std::string>& flags,
                                const std::vector<std::string>& command) {
  Process* p = net_->Run(i, name, LockArgv(i, resource, flags, command));
  EXPECT_TRUE(p->ok()) << p->error();
  return p;
}

// ==================================================================== MeshTest

void MeshTest::Make(const MeshOptions& options) {
  mesh::Status st = MeshCluster::Create(options, &mesh_);
  ASSERT_TRUE(st.ok()) << st.ToString();
}

void MeshTest::TearDown() {
  if (!mesh_) return;
  std::string tag = mesh_->net().tag();
  // The logs go with the namespaces; LOCKMESH_CLUSTER_KEEP_LOGS=DIR keeps those of a failed
  // test (node logs, client output, the shared directory) in DIR/<test name>.
  const char* keep = getenv("LOCKMESH_CLUSTER_KEEP_LOGS");
  if (HasFailure() && keep != nullptr && *keep != '\0') {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string dest = std::string(keep) + "/" + info->test_suite_name() + "." + info->name();
    RunCommand({"mkdir", "-p", dest});
    RunCommand({"cp", "-r", mesh_->net().log_dir(), dest + "/logs"});
    // The shared tree without the data dirs (64 MB of preallocated log each) and sockets.
    RunCommand({"mkdir", "-p", dest + "/shared"});
    RunCommand({"sh", "-c",
                "cd '" + mesh_->Path("") + "' && tar cf - --exclude='./h*/data' "
                "--exclude='*.sock' . | (cd '" + dest + "/shared' && tar xf -)"});
    printf("logs of the failed test kept in %s\n", dest.c_str());
  }
  mesh_.reset();
  EXPECT_TRUE(NetnsCluster::NamespacesWithPrefix(tag).empty());
  EXPECT_TRUE(NetnsCluster::LinksWithPrefix(tag).empty());
}

}  // namespace lockmesh::testing
