// net/discovery/discovery on a real libuv loop with real UDP multicast, in a network namespace of its
// own.
//
// Each test process first moves itself into a fresh network namespace (unshare; as root, or
// through a user namespace otherwise) and makes a veth pair there (see IsolateNetwork). So the
// beacons, the garbage flood and the --join targets (loopback) never leave this process's
// private namespace, and parallel tests cannot hear each other. Without namespaces the tests skip
// and say why (with CI=true they fail instead).
#include "net/discovery/discovery.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace mesh::net {
namespace {

using Millis = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// The test's own link: a veth pair inside the test's namespace, `lmd0` (10.99.0.1/24 and
// fd00:99::1/64, plus .2 and ::2 for the hostile sender) and its peer `lmd1`. Multicast sent
// on lmd0 is looped back to the members on lmd0 (IP_MULTICAST_LOOP), which loopback itself
// cannot do for IPv6. Only this namespace's addresses are ever targeted.
constexpr const char* kInterface = "lmd0";

// Moves this process into a network namespace of its own (once) and sets up lo and lmd0.
// Returns "" or why it could not.
const std::string& IsolateNetwork() {
  static const std::string reason = []() -> std::string {
    if (unshare(CLONE_NEWNET) != 0) {
      int first = errno;
      uid_t uid = getuid();
      gid_t gid = getgid();
      if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
        return std::string("cannot create a network namespace (unshare CLONE_NEWNET: ") +
               strerror(first) + "; with a user namespace: " + strerror(errno) +
               "); run as root or allow unprivileged user namespaces";
      }
      // Be root inside the user namespace, so that `ip` (exec'd below) keeps its capabilities.
      auto write = [](const char* path, const std::string& text) {
        FILE* f = fopen(path, "w");
        if (f == nullptr) return;
        fputs(text.c_str(), f);
        fclose(f);
      };
      write("/proc/self/setgroups", "deny");
      write("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1");
      write("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1");
    }
    // Still single-threaded here: system() runs `ip` inside the new namespace.
    const char* setup =
        "ip link set lo up && ip link add lmd0 type veth peer name lmd1 && "
        "ip link set lmd1 up && ip link set lmd0 up multicast on && "
        "ip addr add 10.99.0.1/24 dev lmd0 && ip addr add 10.99.0.2/24 dev lmd0 && "
        "ip addr add fd00:99::1/64 dev lmd0 nodad && ip addr add fd00:99::2/64 dev lmd0 nodad";
    int rc = system(setup);
    if (rc != 0) {
      return "cannot set up the test link with iproute2 (`" + std::string(setup) + "` exited " +
             std::to_string(rc) + ")";
    }
    return "";
  }();
  return reason;
}

bool InCi() {
  const char* ci = getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// A Discovery plus everything its callbacks reported.
struct Watched {
  std::unique_ptr<Discovery> discovery;
  std::vector<std::pair<PeerEvent, DiscoveredPeer>> events;
  std::vector<DiscoveredPeer> duplicates;
  std::vector<std::string> logs;

  // Latest non-expired suggestion per node id.
  std::map<std::string, DiscoveredPeer> Known() const {
    std::map<std::string, DiscoveredPeer> known;
    for (const auto& [event, peer] : events) {
      if (peer.join_entry.empty()) {
        if (event == PeerEvent::kExpired) {
          known.erase(peer.beacon.node_id);
        } else {
          known[peer.beacon.node_id] = peer;
        }
      }
    }
    return known;
  }
  bool Sees(const std::string& node_id) const { return Known().count(node_id) > 0; }
  size_t Count(PeerEvent e, const std::string& join_entry = "") const {
    size_t n = 0;
    for (const auto& [event, peer] : events) n += event == e && peer.join_entry == join_entry;
    return n;
  }
  std::string Describe() const {
    std::string s;
    for (const auto& [event, peer] : events) {
      s += std::string(PeerEventName(event)) + " " + peer.beacon.node_id + " " + peer.address +
           " from " + peer.source + " join=" + peer.join_entry + "\n";
    }
    for (const auto& l : logs) s += "log: " + l + "\n";
    return s;
  }
};

class DiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string& reason = IsolateNetwork();
    if (!reason.empty()) {
      if (InCi()) FAIL() << "discovery tests need a network namespace: " << reason;
      GTEST_SKIP() << "SKIPPED LOUDLY: discovery tests need a network namespace: " << reason;
    }
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    loop_ready_ = true;
    uv_timer_init(&loop_, &tick_);
  }

  void TearDown() override {
    if (!loop_ready_) return;
    int closing = 0;
    for (auto& w : nodes_) {
      ++closing;
      w->discovery->Close([&closing] { --closing; });
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    EXPECT_TRUE(RunUntil([&] { return closing == 0; }, Millis(10000))) << "Close never completed";
    uv_run(&loop_, UV_RUN_DEFAULT);  // nothing may be left: this returns at once
    for (auto& w : nodes_) w->discovery.reset();
    EXPECT_EQ(uv_loop_close(&loop_), 0) << "a libuv handle was left open";
  }

  DiscoveryOptions Options(const std::string& node_id, const std::string& cluster = "t") {
    DiscoveryOptions o;
    o.cluster_name = cluster;
    o.node_id = node_id;
    o.interface = kInterface;
    o.burst_count = 3;
    o.burst_interval_ms = 50;
    o.period_ms = 300;
    o.advert.peer_port = 4000;
    return o;
  }

  Watched* Add(DiscoveryOptions o) {
    auto w = std::make_unique<Watched>();
    Watched* raw = w.get();
    o.log = [raw](DiscoveryLogLevel, const std::string& line) { raw->logs.push_back(line); };
    w->discovery = std::make_unique<Discovery>(&loop_, std::move(o));
    Status st = w->discovery->Start(
        [raw](PeerEvent e, const DiscoveredPeer& p) { raw->events.emplace_back(e, p); },
        [raw](const DiscoveredPeer& p) { raw->duplicates.push_back(p); });
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok()) return nullptr;
    nodes_.push_back(std::move(w));
    return raw;
  }

  // Runs the loop until `done` or `timeout`; a 5 ms tick keeps the check going.
  bool RunUntil(const std::function<bool()>& done, Millis timeout) {
    auto deadline = Clock::now() + timeout;
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&tick_))) {
      uv_timer_start(
          &tick_, [](uv_timer_t*) {}, 5, 5);
    }
    bool ok = done();
    while (!ok && Clock::now() < deadline) {
      uv_run(&loop_, UV_RUN_ONCE);
      ok = done();
    }
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&tick_))) uv_timer_stop(&tick_);
    return ok;
  }
  void RunFor(Millis duration) {
    auto end = Clock::now() + duration;
    RunUntil([&] { return Clock::now() >= end; }, duration + Millis(100));
  }

  uv_loop_t loop_;
  uv_timer_t tick_;
  bool loop_ready_ = false;
  std::vector<std::unique_ptr<Watched>> nodes_;
};

TEST_F(DiscoveryTest, TwoNodesFindEachOtherOnBothFamilies) {
  Watched* a = Add(Options("node-a"));
  DiscoveryOptions ob = Options("node-b");
  ob.advert.peer_port = 4001;
  ob.advert.security = "tofu";
  ob.advert.fingerprint = "sha256$00ff";
  Watched* b = Add(ob);
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(a->discovery->ipv4_up() && a->discovery->ipv6_up()) << a->Describe();
  ASSERT_TRUE(RunUntil([&] { return a->Sees("node-b") && b->Sees("node-a"); }, Millis(5000)))
      << "a:\n"
      << a->Describe() << "b:\n"
      << b->Describe();
  DiscoveredPeer seen_b = a->Known()["node-b"];
  EXPECT_EQ(seen_b.beacon.cluster_name, "t");
  EXPECT_EQ(seen_b.beacon.security, "tofu");
  EXPECT_EQ(seen_b.beacon.fingerprint, "sha256$00ff");
  EXPECT_EQ(seen_b.beacon.instance, b->discovery->instance());
  EXPECT_TRUE(seen_b.address == "10.99.0.1:4001" || seen_b.address == "[fd00:99::1]:4001")
      << seen_b.address;
  EXPECT_EQ(seen_b.source.find("28017"), seen_b.source.size() - 5) << seen_b.source;
  // Heard on both families, reported once: the address does not flap between them.
  RunFor(Millis(1000));
  EXPECT_EQ(a->Count(PeerEvent::kSuggested), 1u) << a->Describe();
  EXPECT_EQ(a->Count(PeerEvent::kChanged), 0u) << a->Describe();
  EXPECT_GT(a->discovery->stats().own, 0u);
  EXPECT_EQ(a->discovery->stats().send_errors, 0u) << a->Describe();  // both families sent
  EXPECT_EQ(b->discovery->stats().send_errors, 0u) << b->Describe();

  // A cluster id learnt later reaches the other side as a change, within a burst interval
  // or so.
  BeaconAdvert advert = ob.advert;
  advert.cluster_id = "cluster-1";
  ASSERT_TRUE(b->discovery->SetBeaconContent(advert).ok());
  ASSERT_TRUE(
      RunUntil([&] { return a->Known()["node-b"].beacon.cluster_id == "cluster-1"; }, Millis(3000)))
      << a->Describe();
  EXPECT_FALSE(b->discovery->SetBeaconContent(BeaconAdvert{"bad id!", "", 1, "none", ""}).ok());

  // b goes away: a reports it expired after expire_ms (3 * 300 + 50 ms here).
  int closed = 0;
  b->discovery->Close([&] { ++closed; });
  auto start = Clock::now();
  ASSERT_TRUE(RunUntil([&] { return !a->Sees("node-b"); }, Millis(5000))) << a->Describe();
  EXPECT_GE(Clock::now() - start, Millis(500));
  EXPECT_EQ(closed, 1);
}

TEST_F(DiscoveryTest, OtherClusterAndOtherVersionAreIgnored) {
  Watched* a = Add(Options("node-a", "blue"));
  Watched* other_cluster = Add(Options("node-b", "green"));
  DiscoveryOptions ov = Options("node-c", "blue");
  ov.protocol_version = 2;
  Watched* other_version = Add(ov);
  Watched* same = Add(Options("node-d", "blue"));
  ASSERT_TRUE(a && other_cluster && other_version && same);
  ASSERT_TRUE(RunUntil(
      [&] {
        const DiscoveryStats& s = a->discovery->stats();
        return a->Sees("node-d") && s.other_cluster >= 4 && s.other_version >= 4;
      },
      Millis(5000)))
      << a->Describe();
  RunFor(Millis(500));
  EXPECT_FALSE(a->Sees("node-b"));
  EXPECT_FALSE(a->Sees("node-c"));
  EXPECT_EQ(a->Known().size(), 1u) << a->Describe();
  EXPECT_TRUE(other_cluster->Known().empty()) << other_cluster->Describe();
  EXPECT_TRUE(other_version->Known().empty()) << other_version->Describe();
}

// A beacon may point only at its own sender: one naming another host is dialled
// at its source address instead (counted, logged), so a forged datagram cannot make the mesh
// dial any host it likes.
TEST_F(DiscoveryTest, BeaconNamingAnotherHostIsDialledAtItsSource) {
  Watched* a = Add(Options("node-a"));
  DiscoveryOptions elsewhere = Options("node-b");
  elsewhere.advert.peer_host = "10.99.0.77";  // not an address of the sender
  elsewhere.advert.peer_port = 4001;
  Watched* b = Add(elsewhere);
  DiscoveryOptions own = Options("node-c");
  own.advert.peer_host = "10.99.0.1";  // the sender's own IPv4 address
  own.advert.peer_port = 4002;
  Watched* c = Add(own);
  ASSERT_TRUE(a && b && c);
  ASSERT_TRUE(RunUntil(
      [&] {
        return a->Sees("node-b") && a->Sees("node-c") && a->discovery->stats().foreign_host >= 3;
      },
      Millis(5000)))
      << a->Describe();
  for (const auto& [event, peer] : a->events) {
    if (peer.beacon.node_id == "node-b") {
      EXPECT_EQ(peer.address.find("10.99.0.77"), std::string::npos) << a->Describe();
      EXPECT_NE(peer.address.find(":4001"), std::string::npos) << a->Describe();
    }
  }
  EXPECT_EQ(a->Known()["node-c"].address.find("10.99.0.77"), std::string::npos);
  bool logged = false;
  for (const auto& l : a->logs) logged |= l.find("names peer host 10.99.0.77") != std::string::npos;
  EXPECT_TRUE(logged) << a->Describe();
}

TEST_F(DiscoveryTest, SameNodeIdInAnotherProcessIsReported) {
  Watched* a = Add(Options("twin"));
  Watched* b = Add(Options("twin"));
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(
      RunUntil([&] { return !a->duplicates.empty() && !b->duplicates.empty(); }, Millis(5000)));
  EXPECT_EQ(a->duplicates[0].beacon.instance, b->discovery->instance());
  EXPECT_EQ(b->duplicates[0].beacon.instance, a->discovery->instance());
  EXPECT_TRUE(a->Known().empty()) << "a duplicate is not a peer";
  // Reported again at most every 10 s, not on every beacon.
  RunFor(Millis(1000));
  EXPECT_EQ(a->duplicates.size(), 1u);
  EXPECT_GT(a->discovery->stats().duplicate_id, 2u);
  bool logged = false;
  for (const auto& l : a->logs) logged |= l.find("claims our node id twin") != std::string::npos;
  EXPECT_TRUE(logged);
}

// Regression: the identity our own beacons are checked against once pointed into the
// beacon content that SetBeaconContent replaces; with ids too long for the small-string
// buffer (32 characters, as `lockmesh unique-id` makes) that was a use-after-free and
// our own beacons looked like another process claiming our id.
TEST_F(DiscoveryTest, OwnBeaconsStayOwnAfterTheContentChangesWithLongIds) {
  const std::string long_id = "0123456789abcdef0123456789abcdef";
  const std::string long_cluster = "a-cluster-name-longer-than-sso-buffers";
  Watched* a = Add(Options(long_id, long_cluster));
  Watched* b = Add(Options("fedcba9876543210fedcba9876543210", long_cluster));
  ASSERT_TRUE(a && b);
  for (int i = 0; i < 5; ++i) {
    BeaconAdvert advert;
    advert.cluster_id = "cluster-id-number-" + std::to_string(i) + "-padded-past-sso";
    advert.peer_port = 4000;
    ASSERT_TRUE(a->discovery->SetBeaconContent(advert).ok());
    // Churn the heap so that a dangling view would see other bytes.
    std::vector<std::string> churn(64, std::string(long_id.size(), static_cast<char>('A' + i)));
    ASSERT_TRUE(RunUntil(
        [&] {
          return b->Known()[long_id].beacon.cluster_id == advert.cluster_id &&
                 a->discovery->stats().own > static_cast<uint64_t>(i) * 2;
        },
        Millis(5000)))
        << a->Describe() << b->Describe();
  }
  EXPECT_TRUE(a->duplicates.empty()) << a->Describe();
  EXPECT_EQ(a->discovery->stats().duplicate_id, 0u) << a->Describe();
  EXPECT_TRUE(a->Sees("fedcba9876543210fedcba9876543210")) << a->Describe();
}

// Sends `count` hostile datagrams from `source` (bound) to `target`.
int Flood(const sockaddr* source, socklen_t source_len, const sockaddr* target,
          socklen_t target_len, int count, std::mt19937* rng, const std::string& valid) {
  int fd = socket(source->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, source, source_len) != 0) return -errno;
  unsigned index = if_nametoindex(kInterface);
  if (source->sa_family == AF_INET) {
    ip_mreqn mreq{};
    mreq.imr_ifindex = static_cast<int>(index);
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq, sizeof mreq);
  } else {
    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof index);
  }
  int sent = 0;
  std::string d;
  for (int i = 0; i < count; ++i) {
    switch (i % 5) {
      case 0:  // random bytes
        d.resize((*rng)() % 1500);
        for (char& c : d) c = static_cast<char>((*rng)());
        break;
      case 1:  // a valid beacon, truncated
        d = valid.substr(0, (*rng)() % valid.size());
        break;
      case 2:  // oversized, with a valid start
        d = valid + std::string(1000 + (*rng)() % 30000, 'x');
        break;
      case 3:  // the magic and garbage
        d = "LMB1" + std::string((*rng)() % 64, static_cast<char>((*rng)()));
        break;
      case 4:  // empty
        d.clear();
        break;
    }
    if (sendto(fd, d.data(), d.size(), 0, target, target_len) >= 0) ++sent;
  }
  close(fd);
  return sent;
}

TEST_F(DiscoveryTest, TenThousandGarbageDatagramsDoNotStopDiscovery) {
  Watched* a = Add(Options("node-a"));
  ASSERT_TRUE(a);
  BeaconContent valid;
  valid.protocol_version = 1;
  valid.cluster_name = "t";
  valid.node_id = "x";
  valid.instance = 1;
  valid.peer_port = 1;
  std::string valid_datagram = EncodeBeacon(valid);
  std::mt19937 rng(28017);

  // 10,000 datagrams in rounds of 500, the loop running in between: unicast and multicast
  // from 10.99.0.2, multicast from fd00:99::2. Bounded in count and in time.
  sockaddr_in from4{};
  from4.sin_family = AF_INET;
  inet_pton(AF_INET, "10.99.0.2", &from4.sin_addr);
  sockaddr_in6 from6{};
  from6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "fd00:99::2", &from6.sin6_addr);
  sockaddr_in to_unicast{};
  to_unicast.sin_family = AF_INET;
  to_unicast.sin_port = htons(28017);
  inet_pton(AF_INET, "10.99.0.1", &to_unicast.sin_addr);
  sockaddr_in to_group4{};
  to_group4.sin_family = AF_INET;
  to_group4.sin_port = htons(28017);
  inet_pton(AF_INET, kDefaultDiscoveryGroup4, &to_group4.sin_addr);
  sockaddr_in6 to_group6{};
  to_group6.sin6_family = AF_INET6;
  to_group6.sin6_port = htons(28017);
  to_group6.sin6_scope_id = if_nametoindex(kInterface);
  inet_pton(AF_INET6, kDefaultDiscoveryGroup6, &to_group6.sin6_addr);
  auto started = Clock::now();
  int sent = 0;
  for (int round = 0; round < 20; ++round) {
    int r = 0;
    if (round % 4 == 0) {
      r = Flood(reinterpret_cast<sockaddr*>(&from4), sizeof from4,
                reinterpret_cast<sockaddr*>(&to_unicast), sizeof to_unicast, 500, &rng,
                valid_datagram);
    } else if (round % 4 == 1 || round % 4 == 2) {
      r = Flood(reinterpret_cast<sockaddr*>(&from4), sizeof from4,
                reinterpret_cast<sockaddr*>(&to_group4), sizeof to_group4, 500, &rng,
                valid_datagram);
    } else {
      r = Flood(reinterpret_cast<sockaddr*>(&from6), sizeof from6,
                reinterpret_cast<sockaddr*>(&to_group6), sizeof to_group6, 500, &rng,
                valid_datagram);
    }
    ASSERT_GE(r, 0) << strerror(-r);
    sent += r;
    RunFor(Millis(20));
  }
  double flood_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  EXPECT_GE(sent, 9000) << "the flood itself did not get out";
  // While the flood's source is still rate-limited, a valid node appears: it is seen.
  Watched* b = Add(Options("node-b"));
  ASSERT_TRUE(b);
  ASSERT_TRUE(RunUntil([&] { return a->Sees("node-b") && b->Sees("node-a"); }, Millis(5000)))
      << a->Describe();
  const DiscoveryStats& s = a->discovery->stats();
  printf(
      "flood: %d datagrams sent in %.2f s; a received %llu: rate-limited %llu, malformed "
      "%llu, oversized %llu, accepted %llu\n",
      sent, flood_seconds, (unsigned long long)s.received, (unsigned long long)s.rate_limited,
      (unsigned long long)s.malformed, (unsigned long long)s.oversized,
      (unsigned long long)s.accepted);
  EXPECT_GT(s.received, 500u);  // the rest overflowed the socket buffer, as under any flood
  EXPECT_GT(s.rate_limited, 0u);
  EXPECT_GT(s.malformed, 0u);
  EXPECT_EQ(a->Known().size(), 1u) << a->Describe();  // garbage never became a peer
  EXPECT_TRUE(a->duplicates.empty());
}

TEST_F(DiscoveryTest, JoinListIsSuggestedUntilConnected) {
  DiscoveryOptions o = Options("node-a");
  o.multicast = false;
  o.join = {"127.0.0.1:4100", "[::1]:4101", "localhost", "no-such-host.invalid:4102"};
  o.join_period_ms = 100;
  Watched* a = Add(o);
  ASSERT_TRUE(a);
  ASSERT_TRUE(RunUntil(
      [&] {
        return a->Count(PeerEvent::kSuggested, "127.0.0.1:4100") >= 3 &&
               a->Count(PeerEvent::kSuggested, "[::1]:4101") >= 3 &&
               a->Count(PeerEvent::kSuggested, "localhost") >= 3;
      },
      Millis(10000)))
      << a->Describe();
  for (const auto& [event, peer] : a->events) {
    if (peer.join_entry == "127.0.0.1:4100") {
      EXPECT_EQ(peer.address, "127.0.0.1:4100");
    }
    if (peer.join_entry == "[::1]:4101") {
      EXPECT_EQ(peer.address, "[::1]:4101");
    }
    if (peer.join_entry == "localhost") {
      EXPECT_TRUE(peer.address == "127.0.0.1:4000" || peer.address == "[::1]:4000")
          << peer.address << " (the port defaults to the advertised peer port)";
    }
    EXPECT_NE(peer.join_entry, "no-such-host.invalid:4102");
  }
  a->discovery->SetJoinConnected("127.0.0.1:4100", true);
  RunFor(Millis(150));  // a resolution in flight may still report once
  size_t before = a->Count(PeerEvent::kSuggested, "127.0.0.1:4100");
  size_t other_before = a->Count(PeerEvent::kSuggested, "[::1]:4101");
  RunFor(Millis(600));
  EXPECT_EQ(a->Count(PeerEvent::kSuggested, "127.0.0.1:4100"), before);
  EXPECT_GT(a->Count(PeerEvent::kSuggested, "[::1]:4101"), other_before);
  // Disconnected again: suggested again.
  a->discovery->SetJoinConnected("127.0.0.1:4100", false);
  ASSERT_TRUE(RunUntil([&] { return a->Count(PeerEvent::kSuggested, "127.0.0.1:4100") > before; },
                       Millis(5000)));
  bool unresolved_logged = false;
  for (const auto& l : a->logs)
    unresolved_logged |= l.find("no-such-host.invalid") != std::string::npos;
  EXPECT_TRUE(unresolved_logged) << a->Describe();
}

TEST_F(DiscoveryTest, BadOptionsAreRefusedWithNothingLeftOpen) {
  struct Case {
    const char* what;
    std::function<void(DiscoveryOptions&)> mutate;
  };
  std::vector<Case> cases = {
      {"empty node id", [](DiscoveryOptions& o) { o.node_id.clear(); }},
      {"bad cluster", [](DiscoveryOptions& o) { o.cluster_name = "a b"; }},
      {"unicast group", [](DiscoveryOptions& o) { o.group4 = "10.0.0.1"; }},
      {"bad v6 group", [](DiscoveryOptions& o) { o.group6 = "fd00::1"; }},
      {"no interface", [](DiscoveryOptions& o) { o.interface = "nosuchif0"; }},
      {"ttl", [](DiscoveryOptions& o) { o.ttl = 300; }},
      {"port 0", [](DiscoveryOptions& o) { o.port = 0; }},
      {"bad join", [](DiscoveryOptions& o) { o.join = {"host:99999"}; }},
      {"no family", [](DiscoveryOptions& o) { o.ipv4 = o.ipv6 = false; }},
  };
  for (const Case& c : cases) {
    DiscoveryOptions o = Options("node-a");
    c.mutate(o);
    Discovery d(&loop_, o);
    Status st = d.Start(nullptr, nullptr);
    EXPECT_TRUE(st.IsInvalidArgument()) << c.what << ": " << st.ToString();
    bool done = false;
    d.Close([&] { done = true; });
    EXPECT_TRUE(done) << c.what;
  }
}

TEST_F(DiscoveryTest, CloseWhileResolvingCompletesAndFreesEverything) {
  DiscoveryOptions o = Options("node-a");
  o.join = {"localhost:1", "127.0.0.1:2", "[::1]:3"};
  Watched* a = Add(o);
  ASSERT_TRUE(a);
  // Close at once, with the resolutions just queued; TearDown checks that the loop closes
  // with no handle left and that Close called back.
}

}  // namespace
}  // namespace mesh::net
