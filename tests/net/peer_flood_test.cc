// Hostile load on a real node's peer port (docs/mesh.md), on a mesh of three real
// `lockmesh node` processes on loopback, with --security none and encrypt:
//  * Flood: 15,000 bare TCP connections (nothing sent) from 100 loopback source addresses,
//    held open, three times. The node's RSS (/proc/PID/status) rises by at most 64 MB during
//    each flood and comes back once the connections are closed; its log gets a few dozen
//    lines, not one per connection; afterwards the mesh still has its leader and peers and
//    grants locks through the flooded node.
//  * Per-source limit: connections from one address beyond the limit (32) are closed at once,
//    the ones within it are held (until the deadline), another address is still admitted,
//    and a slot comes back when its connection closes.
//  * Handshake deadline (10 s): a connection that sends nothing, and one that trickles a byte
//    every 300 ms, are both closed after the deadline, not before.
//  * The limits and the deadline are the node's flags (--max-pending-per-source,
//    --max-pending-connections, --handshake-timeout), and out-of-range values are refused.
//
// Bound for the rise: 64 MB (docs/mesh.md, "Hostile load"). The node holds at most 512 connections
// before their handshake (L2 of core/connection_limits.h), about 1 KB each while they send
// nothing, and those it closes at accept for at most one loop iteration (up to the listen
// backlog, 1024). Measured here: +7 to +13 MB (RSS 7-8 MB before, 15-21 MB at the peak);
// before the limits, lazy TLS and the shared read buffer, 557 MB. Bound for the return:
// 4 MB above the RSS before the first flood (measured: +0.1 MB, the transport trims the
// heap once a flood is over; without the trim RSS stays at its peak), and after the third
// flood no more than 4 MB above the first's "after": a leak of even 300 bytes per
// connection would add that much over the 30,000 connections of floods 2 and 3.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "net/support/loopback_mesh.h"

namespace lockmesh::testing {
namespace {

// Built with AddressSanitizer (the node under test is then too): RSS says nothing about
// what the node keeps, since freed memory sits in ASan's quarantine.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

constexpr size_t kFloodConnections = 15000;
constexpr int kFloodSources = 100;           // 127.0.0.2 .. 127.0.0.101
constexpr uint64_t kMaxRiseKiB = 64 * 1024;  // the bound of docs/mesh.md
constexpr uint64_t kReturnKiB = 4 * 1024;
constexpr uint64_t kGrowthPerFloodsKiB = 4 * 1024;
constexpr size_t kPerSourceLimit = 32;   // core::kDefaultMaxPendingPerSource
constexpr double kDeadlineSeconds = 10;  // PeerTransportOptions::handshake_timeout_ms

// A field of /proc/PID/status in KiB (0 if unreadable).
uint64_t StatusKiB(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1));
  }
  return 0;
}
uint64_t RssKiB(pid_t pid) { return StatusKiB(pid, "VmRSS"); }
// Resets VmHWM (the peak RSS) to the current RSS; false if the kernel does not let us.
bool ResetPeak(pid_t pid) {
  std::ofstream out("/proc/" + std::to_string(pid) + "/clear_refs");
  out << "5";
  out.close();
  return static_cast<bool>(out);
}

// Raw TCP connections to a loopback port, opened from chosen 127.0.0.x source addresses and
// held open by the test. Every fd is closed by CloseAll or the destructor.
class RawConnections {
 public:
  RawConnections() = default;
  RawConnections(const RawConnections&) = delete;
  RawConnections& operator=(const RawConnections&) = delete;
  ~RawConnections() { CloseAll(); }

  // Opens `count` connections to 127.0.0.1:`port`, connection i from 127.0.0.(first + i %
  // sources), at most 128 connecting at once. `sample` runs after every batch. Returns how
  // many completed the TCP handshake (a refused or timed-out connect is closed and dropped).
  size_t Open(int port, size_t count, int first, int sources, const std::function<void()>& sample,
              Millis timeout = Millis(120000)) {
    Clock::time_point start = Clock::now();
    size_t connected = 0;
    for (size_t i = 0; i < count && Clock::now() - start < timeout;) {
      std::vector<pollfd> batch;
      for (; i < count && batch.size() < 128; ++i) {
        int fd = Connect(port, first + static_cast<int>(i % sources));
        if (fd >= 0) batch.push_back({fd, POLLOUT, 0});
      }
      // Wait (bounded) until each connect completes or fails.
      Clock::time_point batch_start = Clock::now();
      size_t done = 0;
      while (done < batch.size() && Clock::now() - batch_start < Millis(15000)) {
        if (poll(batch.data(), batch.size(), 200) < 0 && errno != EINTR) break;
        for (pollfd& p : batch) {
          if (p.fd < 0 || p.revents == 0) continue;
          int err = 0;
          socklen_t len = sizeof err;
          getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len);
          if (err == 0) {
            fds_.push_back(p.fd);
            connected++;
          } else {
            close(p.fd);
          }
          p.fd = -1;
          done++;
        }
      }
      for (pollfd& p : batch) {
        if (p.fd >= 0) close(p.fd);  // still connecting after 15 s
      }
      if (sample) sample();
    }
    return connected;
  }

  // One connection from 127.0.0.`source` (blocking connect); -1 on failure.
  int OpenOne(int port, int source) {
    int fd = Connect(port, source);
    if (fd < 0) return -1;
    pollfd p{fd, POLLOUT, 0};
    int err = -1;
    socklen_t len = sizeof err;
    if (poll(&p, 1, 10000) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
        err != 0) {
      close(fd);
      return -1;
    }
    fds_.push_back(fd);
    return fd;
  }

  // How many of the connections the node has closed (EOF or reset); reads and drops what
  // the node sent (a Hello with --security none).
  size_t ClosedByPeer() {
    size_t closed = 0;
    for (int fd : fds_) closed += IsClosed(fd) ? 1 : 0;
    return closed;
  }

  // True once the node closed `fd` (a connection of this set).
  bool IsClosed(int fd) {
    if (closed_.count(fd)) return true;
    char buf[4096];
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) continue;
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        closed_.insert(fd);
        return true;
      }
      return false;
    }
  }

  void Close(int fd) {
    auto it = std::find(fds_.begin(), fds_.end(), fd);
    if (it == fds_.end()) return;
    fds_.erase(it);
    closed_.erase(fd);
    close(fd);
  }

  void CloseAll() {
    for (int fd : fds_) close(fd);
    fds_.clear();
    closed_.clear();
  }

  size_t size() const { return fds_.size(); }

 private:
  static int Connect(int port, int source) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    // The local port is chosen at connect, per destination: 15,000 sockets bound to a few
    // addresses do not exhaust the ephemeral range at bind.
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in from{};
    from.sin_family = AF_INET;
    from.sin_addr.s_addr = htonl((127u << 24) | static_cast<uint32_t>(source));
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
        (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 && errno != EINPROGRESS)) {
      close(fd);
      return -1;
    }
    return fd;
  }

  std::vector<int> fds_;
  std::set<int> closed_;
};

class PeerFloodTest : public LoopbackMeshTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    LoopbackMeshTest::SetUp();
    // 15,000 held connections and the harness's own descriptors.
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    const rlim_t need = kFloodConnections + 1024;
    if (rl.rlim_cur < need) {
      rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, need);
      setrlimit(RLIMIT_NOFILE, &rl);
      getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < need) {
      GTEST_SKIP() << "SKIPPED LOUDLY: RLIMIT_NOFILE is " << rl.rlim_cur << " (hard " << rl.rlim_max
                   << "); this test needs " << need << " descriptors for its flood of "
                   << kFloodConnections << " connections";
    }
    security_ = GetParam();
    if (security_ != "none") {
      ASSERT_EQ(RunLockmesh("ca", {"cert", "ca", "--out", Path("ca")}).code(), 0);
      for (int i = 1; i <= 3; ++i) {
        ASSERT_EQ(RunLockmesh("cert", {"cert", "node", "--ca", Path("ca"), "--cn", Id(i), "--out",
                                       Path("c" + Id(i))})
                      .code(),
                  0);
      }
    }
  }

  std::vector<std::string> SecurityArgs(int i) const {
    if (security_ == "none") return {"--security", "none"};
    return {"--security", security_,
            "--tls-cert", Path("c" + Id(i) + "/cert.pem"),
            "--tls-key",  Path("c" + Id(i) + "/key.pem"),
            "--tls-ca",   Path("ca/cert.pem")};
  }

  void StartMesh() {
    for (int i = 1; i <= 3; ++i) StartMeshNode(i, 3, SecurityArgs(i));
    ASSERT_TRUE(WaitFormed({1, 2, 3}, 3, Millis(90000))) << NodeLog(1);
  }

  int PeerPort(int i) const { return base_port_ + i; }

  // The mesh still works: one leader seen by all, every member connected as n1 sees it, and
  // a lock granted through n1 and n2.
  void ExpectMeshServes() {
    EXPECT_TRUE(WaitFormed({1, 2, 3}, 3, Millis(60000)));
    EXPECT_TRUE(WaitFor(
        [&] {
          Json s = Status(1);
          if (s.is_null()) return false;
          int connected = 0;
          for (const Json& m : s["members"]) {
            connected += m.value("connected", false) && m["node_id"] != "n1" ? 1 : 0;
          }
          return connected == 2;
        },
        Millis(60000), Millis(500)))
        << Status(1).dump();
    RunResult r1 = LockOn(1, "after-flood-1");
    EXPECT_EQ(r1.code(), 0) << r1.Describe();
    RunResult r2 = LockOn(2, "after-flood-2");
    EXPECT_EQ(r2.code(), 0) << r2.Describe();
  }

  std::string security_;
};

TEST_P(PeerFloodTest, FifteenThousandBareConnectionsCostLittleAndItComesBack) {
  StartMesh();
  pid_t pid = nodes_[1]->pid();
  // A lock first, so the heap has seen ordinary work before "before" is taken.
  RunResult warm = LockOn(1, "warm-up");
  ASSERT_EQ(warm.code(), 0) << warm.Describe();
  uint64_t before = RssKiB(pid);
  ASSERT_GT(before, 0u);
  size_t log_lines_before = SplitLines(NodeLog(1)).size();
  std::vector<uint64_t> afters;
  for (int round = 1; round <= 3; ++round) {
    SCOPED_TRACE("flood " + std::to_string(round));
    bool peak_known = ResetPeak(pid);
    uint64_t sampled = 0;
    RawConnections flood;
    Clock::time_point start = Clock::now();
    size_t connected = flood.Open(PeerPort(1), kFloodConnections, 2, kFloodSources,
                                  [&] { sampled = std::max(sampled, RssKiB(pid)); });
    double open_seconds = SecondsSince(start);
    // All but the 512 the node may hold (L2) are closed at once: well before the 10 s
    // deadline would close them (without the limits, all of the last 10 s stay open).
    size_t still_open = 0;
    WaitFor(
        [&] {
          still_open = connected - flood.ClosedByPeer();
          return still_open <= 512;
        },
        Millis(3000), Millis(100));
    uint64_t during = RssKiB(pid);
    sampled = std::max(sampled, during);
    uint64_t peak = peak_known ? std::max(sampled, StatusKiB(pid, "VmHWM")) : sampled;
    flood.CloseAll();
    // Back, within a generous deadline (the node frees a connection when it sees it close).
    uint64_t after = 0;
    WaitFor(
        [&] {
          after = RssKiB(pid);
          return after <= before + kReturnKiB;
        },
        Millis(60000), Millis(500));
    afters.push_back(after);
    std::printf(
        "[ figures ] %s flood %d: %zu connections in %.1f s, %zu still open; "
        "node RSS before %llu KiB, during %llu KiB, peak %llu KiB%s, after %llu KiB\n",
        security_.c_str(), round, connected, open_seconds, still_open,
        static_cast<unsigned long long>(before), static_cast<unsigned long long>(during),
        static_cast<unsigned long long>(peak), peak_known ? "" : " (sampled)",
        static_cast<unsigned long long>(after));
    EXPECT_GE(connected, kFloodConnections * 9 / 10);
    EXPECT_LE(still_open, 512u);
    if (!kSanitized) {
      EXPECT_LE(peak, before + kMaxRiseKiB);
      EXPECT_LE(after, before + kReturnKiB);
    }
    ASSERT_TRUE(nodes_[1]->Running()) << NodeLog(1);
  }
  if (kSanitized) {
    std::printf("[ NOTE ] RSS bounds not checked: this is an AddressSanitizer build, whose "
                "allocator keeps freed memory in quarantine (the plain build checks them)\n");
  } else {
    EXPECT_LE(afters.back(), afters.front() + kGrowthPerFloodsKiB);
  }
  // The log: a few lines per kind and window, and a summary, not one per connection.
  std::vector<std::string> lines = SplitLines(NodeLog(1));
  size_t flood_lines = lines.size() - log_lines_before;
  std::printf("[ figures ] %s: %zu log lines for %zu connections\n", security_.c_str(), flood_lines,
              3 * kFloodConnections);
  EXPECT_LE(flood_lines, 1000u) << Tail(nodes_[1]->options().stderr_path, 60);
  // The summary of the lines left out, once their window (10 s) has ended.
  EXPECT_TRUE(WaitFor([&] { return NodeLog(1).find("suppressed") != std::string::npos; },
                      Millis(30000), Millis(200)))
      << Tail(nodes_[1]->options().stderr_path, 60);
  EXPECT_NE(NodeLog(1).find("at once: too many connections"), std::string::npos);
  ExpectMeshServes();
}

TEST_P(PeerFloodTest, ConnectionsFromOneAddressBeyondTheLimitAreClosedAtOnce) {
  StartMesh();
  RawConnections conns;
  std::vector<int> within;
  for (size_t i = 0; i < kPerSourceLimit; ++i) {
    int fd = conns.OpenOne(PeerPort(1), 50);
    ASSERT_GE(fd, 0);
    within.push_back(fd);
  }
  // Beyond the limit: each is closed by the node right away (well before the deadline).
  for (int i = 0; i < 8; ++i) {
    int fd = conns.OpenOne(PeerPort(1), 50);
    ASSERT_GE(fd, 0);
    Clock::time_point start = Clock::now();
    EXPECT_TRUE(WaitFor([&] { return conns.IsClosed(fd); }, Millis(5000)));
    EXPECT_LT(SecondsSince(start), kDeadlineSeconds / 2);
    conns.Close(fd);
  }
  // Another address still gets in, and the ones within the limit are held.
  int other = conns.OpenOne(PeerPort(1), 51);
  ASSERT_GE(other, 0);
  WaitFor([] { return false; }, Millis(1000));
  EXPECT_FALSE(conns.IsClosed(other));
  for (int fd : within) EXPECT_FALSE(conns.IsClosed(fd));
  // A slot comes back when its connection closes.
  conns.Close(within.back());
  within.pop_back();
  int again = -1;
  EXPECT_TRUE(WaitFor(
      [&] {
        if (again >= 0) conns.Close(again);
        again = conns.OpenOne(PeerPort(1), 50);
        WaitFor([] { return false; }, Millis(500));
        return again >= 0 && !conns.IsClosed(again);
      },
      Millis(20000), Millis(200)));
  EXPECT_NE(NodeLog(1).find("too many connections from one address before their handshake"),
            std::string::npos)
      << NodeLog(1);
  conns.CloseAll();
  ExpectMeshServes();
}

TEST_P(PeerFloodTest, SilentAndTricklingConnectionsAreClosedAtTheHandshakeDeadline) {
  StartMesh();
  RawConnections conns;
  int silent = conns.OpenOne(PeerPort(1), 60);
  int trickle = conns.OpenOne(PeerPort(1), 61);
  ASSERT_GE(silent, 0);
  ASSERT_GE(trickle, 0);
  Clock::time_point start = Clock::now();
  // The trickle: the start of something plausible (a TLS handshake record, or a frame header
  // announcing 200 bytes), then a byte every 300 ms — never enough to finish.
  std::string prefix =
      security_ == "none" ? std::string("\0\0\0\xc8", 4) : std::string("\x16\x03\x01\x00\xc8", 5);
  ASSERT_EQ(SendAll(trickle, prefix), 0);
  double silent_closed = -1;
  double trickle_closed = -1;
  Clock::time_point next_byte = Clock::now();
  WaitFor(
      [&] {
        if (trickle_closed < 0 && Clock::now() >= next_byte) {
          send(trickle, "\x01", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
          next_byte = Clock::now() + Millis(300);
        }
        if (silent_closed < 0 && conns.IsClosed(silent)) silent_closed = SecondsSince(start);
        if (trickle_closed < 0 && conns.IsClosed(trickle)) trickle_closed = SecondsSince(start);
        return silent_closed >= 0 && trickle_closed >= 0;
      },
      Millis(static_cast<int64_t>(kDeadlineSeconds * 1000) + 30000), Millis(50));
  std::printf("[ figures ] %s: silent connection closed after %.1f s, trickling one after %.1f s\n",
              security_.c_str(), silent_closed, trickle_closed);
  EXPECT_GE(silent_closed, kDeadlineSeconds * 0.9);
  EXPECT_GE(trickle_closed, kDeadlineSeconds * 0.9);
  std::string deadline_line = security_ == "none" ? "did not complete the Hello/Welcome exchange"
                                                  : "TLS handshake did not complete within 10 s";
  // Logged once the node has closed the connection (after a linger of up to 2 s).
  EXPECT_TRUE(WaitFor([&] { return NodeLog(1).find(deadline_line) != std::string::npos; },
                      Millis(15000), Millis(200)))
      << NodeLog(1);
  conns.CloseAll();
  ExpectMeshServes();
}

// The limits and the deadline are the node's flags (--max-pending-per-source,
// --max-pending-connections, --handshake-timeout): a node of one with small ones closes the
// connection over each limit at once and the held ones at its own deadline, not the default's.
TEST_P(PeerFloodTest, LimitsAndDeadlineAreTheNodesFlags) {
  std::vector<std::string> flags = SecurityArgs(1);
  flags.insert(flags.end(), {"--max-pending-per-source", "3", "--max-pending-connections", "5",
                             "--handshake-timeout", "2"});
  StartMeshNode(1, 1, flags);
  ASSERT_TRUE(WaitFormed({1}, 1, Millis(60000))) << NodeLog(1);
  RawConnections conns;
  std::vector<int> held;
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < 3; ++i) held.push_back(conns.OpenOne(PeerPort(1), 60));
  for (int fd : held) ASSERT_GE(fd, 0);
  // A 4th from the same address: over --max-pending-per-source 3, closed at once.
  int over_source = conns.OpenOne(PeerPort(1), 60);
  ASSERT_GE(over_source, 0);
  EXPECT_TRUE(WaitFor([&] { return conns.IsClosed(over_source); }, Millis(1500)))
      << "a 4th connection from one address was held";
  // Two from another address fill --max-pending-connections 5; a 6th from a third is over it.
  for (int i = 0; i < 2; ++i) held.push_back(conns.OpenOne(PeerPort(1), 61));
  for (int fd : held) ASSERT_GE(fd, 0);
  int over_total = conns.OpenOne(PeerPort(1), 62);
  ASSERT_GE(over_total, 0);
  EXPECT_TRUE(WaitFor([&] { return conns.IsClosed(over_total); }, Millis(1500)))
      << "a 6th pending connection was held";
  // The five held ones are closed at the 2 s deadline (the default is 10 s), not before 1.5 s.
  for (int fd : held) EXPECT_FALSE(conns.IsClosed(fd));
  EXPECT_TRUE(WaitFor(
      [&] {
        for (int fd : held) {
          if (!conns.IsClosed(fd)) return false;
        }
        return true;
      },
      Millis(8000), Millis(50)));
  EXPECT_GE(SecondsSince(start), 1.5);
  EXPECT_NE(NodeLog(1).find("too many connections from one address before their handshake"),
            std::string::npos)
      << NodeLog(1);
  conns.CloseAll();
}

// Out-of-range values are usage errors, named.
class PeerLimitFlagsTest : public LoopbackMeshTest {};

TEST_F(PeerLimitFlagsTest, OutOfRangeValuesAreUsageErrors) {
  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{{"--max-pending-per-source", "0"},
                                             {"--max-pending-connections", "70000"},
                                             {"--handshake-timeout", "0.01"}}) {
    std::vector<std::string> args = {"node", "--socket", Path("bad.sock"), "--data-dir",
                                     Path("bad"), "--no-multicast"};
    args.insert(args.end(), bad.begin(), bad.end());
    RunResult r = RunLockmesh("bad", args, Millis(20000));
    EXPECT_EQ(r.code(), 2) << bad[0] << ": " << r.Describe();
    EXPECT_NE(r.err.find(bad[0].substr(2)), std::string::npos) << r.err;
  }
}

INSTANTIATE_TEST_SUITE_P(Security, PeerFloodTest, ::testing::Values("none", "encrypt"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace lockmesh::testing
