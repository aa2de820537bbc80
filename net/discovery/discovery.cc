#include "net/discovery/discovery.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>

#include "net/support/errno_text.h"

namespace mesh::net {
namespace {

// How often one log category may print, and how often a duplicate id is re-reported.
constexpr uint64_t kLogEveryMs = 10000;

uint64_t RandomInstance() {
  uint64_t value = 0;
  while (value == 0) {
    if (getrandom(&value, sizeof value, 0) != sizeof value) {
      // getrandom cannot fail for 8 bytes once the pool is initialised; be safe anyway.
      value = static_cast<uint64_t>(std::random_device{}()) << 32 | std::random_device{}();
    }
  }
  return value;
}

// The address bytes of `from` (the rate limiter's key) and its printable forms.
struct SourceAddress {
  std::string key;  // raw address bytes
  std::string ip;   // "10.0.0.1", "fd00::1", "fe80::1%eth0"
  uint16_t port = 0;
};

bool DescribeSource(const sockaddr* from, SourceAddress* out) {
  char text[INET6_ADDRSTRLEN] = {0};
  if (from->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(from);
    out->key.assign(reinterpret_cast<const char*>(&in->sin_addr), sizeof in->sin_addr);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    out->ip = text;
    out->port = ntohs(in->sin_port);
    return true;
  }
  if (from->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(from);
    out->key.assign(reinterpret_cast<const char*>(&in6->sin6_addr), sizeof in6->sin6_addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    out->ip = text;
    if (IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr) && in6->sin6_scope_id != 0) {
      char name[IF_NAMESIZE] = {0};
      out->ip += "%";
      out->ip +=
          if_indextoname(in6->sin6_scope_id, name) ? name : std::to_string(in6->sin6_scope_id);
    }
    out->port = ntohs(in6->sin6_port);
    return true;
  }
  return false;
}

bool IsUnspecifiedHost(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]";
}

// True if `host` (an advertised peer host) is an IP literal for the same address as `ip` (a
// datagram's source, DescribeSource's text). A scope ("%eth0") is ignored: both came off
// one interface. A host name is never the same: a beacon must name its sender by address.
bool SameAddress(std::string host, std::string ip) {
  auto unscoped = [](std::string* text) {
    if (!text->empty() && text->front() == '[' && text->back() == ']') {
      *text = text->substr(1, text->size() - 2);
    }
    const size_t percent = text->find('%');
    if (percent != std::string::npos) text->resize(percent);
  };
  unscoped(&host);
  unscoped(&ip);
  in_addr a4{}, b4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1 && inet_pton(AF_INET, ip.c_str(), &b4) == 1) {
    return a4.s_addr == b4.s_addr;
  }
  in6_addr a6{}, b6{};
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1 && inet_pton(AF_INET6, ip.c_str(), &b6) == 1) {
    return memcmp(&a6, &b6, sizeof(a6)) == 0;
  }
  return false;
}

// Equal beacons apart from the sequence number.
bool SameContent(const BeaconContent& a, const BeaconContent& b) {
  BeaconContent x = a;
  x.sequence = b.sequence;
  return x == b;
}

}  // namespace

const char* PeerEventName(PeerEvent event) {
  switch (event) {
    case PeerEvent::kSuggested:
      return "suggested";
    case PeerEvent::kChanged:
      return "changed";
    case PeerEvent::kExpired:
      return "expired";
  }
  return "?";
}

struct Discovery::Resolve {
  uv_getaddrinfo_t req;
  Discovery* owner;
  size_t join_index;
};

Discovery::Discovery(uv_loop_t* loop, DiscoveryOptions options)
    : loop_(loop),
      options_(std::move(options)),
      limiter_(options_.source_rate_per_s, options_.source_burst, options_.max_sources) {
  // Start refuses options out of range before the timing is used.
  timing_.burst_count = options_.burst_count;
  timing_.burst_interval_ms = static_cast<uint64_t>(std::max(0, options_.burst_interval_ms));
  timing_.period_ms = static_cast<uint64_t>(std::max(0, options_.period_ms));
  timing_.expire_ms = static_cast<uint64_t>(std::max(0, options_.expire_ms));
  schedule_ = core::BeaconSchedule(timing_);
  udp4_.owner = this;
  udp6_.owner = this;
}

Discovery::~Discovery() {
  if (state_ == State::kRunning || state_ == State::kClosing) {
    fprintf(stderr, "lockmesh: internal error: Discovery destroyed before its Close completed\n");
    abort();
  }
}

Status Discovery::ValidateOptions() {
  const DiscoveryOptions& o = options_;
  Status st = ValidateBeacon(self_);
  if (!st.ok()) return st.Annotate("discovery");
  if (o.ttl < 0 || o.ttl > 255) return Status::InvalidArgument("discovery TTL must be 0-255");
  if (o.port == 0) return Status::InvalidArgument("discovery port must be 1-65535");
  if (o.burst_count < 0 || o.burst_count > 100) {
    return Status::InvalidArgument("discovery burst count must be 0-100");
  }
  if (o.burst_interval_ms < 1 || o.period_ms < 1 || o.join_period_ms < 1 || o.expire_ms < 0) {
    return Status::InvalidArgument("discovery intervals must be positive");
  }
  if (o.max_peers == 0) return Status::InvalidArgument("discovery max_peers must be positive");
  if (o.multicast) {
    if (!o.ipv4 && !o.ipv6) return Status::InvalidArgument("discovery needs IPv4 or IPv6");
    sockaddr_in g4;
    if (o.ipv4 && (uv_ip4_addr(o.group4.c_str(), o.port, &g4) != 0 ||
                   !IN_MULTICAST(ntohl(g4.sin_addr.s_addr)))) {
      return Status::InvalidArgument("'" + o.group4 + "' is not an IPv4 multicast group");
    }
    sockaddr_in6 g6;
    if (o.ipv6 && (uv_ip6_addr(o.group6.c_str(), o.port, &g6) != 0 ||
                   !IN6_IS_ADDR_MULTICAST(&g6.sin6_addr))) {
      return Status::InvalidArgument("'" + o.group6 + "' is not an IPv6 multicast group");
    }
    if (!o.interface.empty()) {
      interface_index_ = if_nametoindex(o.interface.c_str());
      if (interface_index_ == 0) {
        return Status::InvalidArgument("no network interface named '" + o.interface + "'");
      }
    }
  }
  for (const std::string& text : o.join) {
    JoinEntry entry;
    entry.text = text;
    Status parsed = ParseHostPort(text, o.advert.peer_port, &entry.host, &entry.port);
    if (!parsed.ok()) return parsed.Annotate("--join");
    joins_.push_back(std::move(entry));
  }
  return Status::OK();
}

Status Discovery::OpenSocket(Socket* s, int family, int* fd_out) {
  const bool v4 = family == AF_INET;
  const char* name = v4 ? "IPv4" : "IPv6";
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IOError(ErrnoMessage(v4 ? "IPv4 socket" : "IPv6 socket", errno));
  auto fail = [&](const std::string& what) {
    Status st = Status::IOError(std::string(name) + " discovery: " + ErrnoMessage(what, errno));
    close(fd);
    return st;
  };
  int one = 1;
  int zero = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) return fail("SO_REUSEADDR");
  const std::string port = std::to_string(options_.port);
  if (v4) {
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_port = htons(options_.port);
    any.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof any) != 0) {
      return fail("cannot bind UDP port " + port);
    }
    // Receive only the groups this socket joined, not every group joined on the host.
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero);
    auto* group = reinterpret_cast<sockaddr_in*>(&s->group);
    uv_ip4_addr(options_.group4.c_str(), options_.port, group);
    ip_mreqn mreq{};
    mreq.imr_multiaddr = group->sin_addr;
    mreq.imr_ifindex = static_cast<int>(interface_index_);
    if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0) {
      return fail(
          "cannot join " + options_.group4 +
          (interface_index_ ? " on " + options_.interface : std::string(" (no route to it? name an interface)")));
    }
    if (interface_index_ != 0 &&
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq, sizeof mreq) != 0) {
      return fail("IP_MULTICAST_IF " + options_.interface);
    }
    int ttl = options_.ttl;
    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) != 0) {
      return fail("IP_MULTICAST_TTL");
    }
    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof one) != 0) {
      return fail("IP_MULTICAST_LOOP");
    }
  } else {
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) {
      return fail("IPV6_V6ONLY");
    }
    sockaddr_in6 any{};
    any.sin6_family = AF_INET6;
    any.sin6_port = htons(options_.port);
    any.sin6_addr = in6addr_any;
    if (bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof any) != 0) {
      return fail("cannot bind UDP port " + port);
    }
#ifdef IPV6_MULTICAST_ALL
    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, &zero, sizeof zero);
#endif
    auto* group = reinterpret_cast<sockaddr_in6*>(&s->group);
    uv_ip6_addr(options_.group6.c_str(), options_.port, group);
    group->sin6_scope_id = interface_index_;
    ipv6_mreq mreq{};
    mreq.ipv6mr_multiaddr = group->sin6_addr;
    mreq.ipv6mr_interface = interface_index_;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mreq, sizeof mreq) != 0) {
      return fail(
          "cannot join " + options_.group6 +
          (interface_index_ ? " on " + options_.interface : std::string(" (no route to it? name an interface)")));
    }
    if (interface_index_ != 0) {
      unsigned index = interface_index_;
      if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof index) != 0) {
        return fail("IPV6_MULTICAST_IF " + options_.interface);
      }
    }
    int hops = options_.ttl;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops) != 0) {
      return fail("IPV6_MULTICAST_HOPS");
    }
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &one, sizeof one) != 0) {
      return fail("IPV6_MULTICAST_LOOP");
    }
  }
  *fd_out = fd;
  return Status::OK();
}

Status Discovery::Start(PeerCallback on_peer, DuplicateIdCallback on_duplicate_id) {
  if (state_ != State::kNew) return Status::InvalidArgument("discovery already started");
  self_.protocol_version = options_.protocol_version;
  self_.cluster_name = options_.cluster_name;
  self_.node_id = options_.node_id;
  self_.instance = options_.instance != 0 ? options_.instance : RandomInstance();
  self_.cluster_id = options_.advert.cluster_id;
  self_.peer_host = options_.advert.peer_host;
  self_.peer_port = options_.advert.peer_port;
  self_.security = options_.advert.security;
  self_.fingerprint = options_.advert.fingerprint;
  identity_ = {self_.cluster_name, self_.protocol_version, self_.node_id, self_.instance};
  MESH_RETURN_IF_ERROR(ValidateOptions());

  // Raw sockets first: a failure here leaves no libuv handle to close.
  int fd4 = -1;
  int fd6 = -1;
  std::string failures;
  if (options_.multicast && options_.ipv4) {
    Status st = OpenSocket(&udp4_, AF_INET, &fd4);
    if (!st.ok()) failures += st.message();
  }
  if (options_.multicast && options_.ipv6) {
    Status st = OpenSocket(&udp6_, AF_INET6, &fd6);
    if (!st.ok()) failures += (failures.empty() ? "" : "; ") + st.message();
  }
  if (options_.multicast && fd4 < 0 && fd6 < 0 && joins_.empty()) {
    return Status::IOError("no discovery: " + failures);
  }
  if (!failures.empty()) Log(DiscoveryLogLevel::kWarning, failures + " (that family is off)");

  on_peer_ = std::move(on_peer);
  on_duplicate_id_ = std::move(on_duplicate_id);
  state_ = State::kRunning;
  jitter_.seed(self_.instance);
  for (auto [s, fd] : {std::pair{&udp4_, fd4}, std::pair{&udp6_, fd6}}) {
    if (fd < 0) continue;
    uv_udp_init(loop_, &s->handle);
    s->handle.data = this;
    s->open = true;
    ++open_handles_;
    int rc = uv_udp_open(&s->handle, fd);
    if (rc != 0) close(fd);  // not adopted by libuv
    if (rc == 0) rc = uv_udp_recv_start(&s->handle, OnAlloc, OnRecv);
    if (rc != 0) {
      Log(DiscoveryLogLevel::kWarning, std::string("discovery socket: ") + uv_strerror(rc));
      CloseFamily(s);
      continue;
    }
    s->up = true;
  }
  uv_timer_init(loop_, &beacon_timer_);
  uv_timer_init(loop_, &join_timer_);
  beacon_timer_.data = this;
  join_timer_.data = this;
  timers_open_ = true;
  open_handles_ += 2;
  Log(DiscoveryLogLevel::kInfo,
      "discovery of cluster '" + self_.cluster_name + "' as node " + self_.node_id + ": " +
          (udp4_.up ? options_.group4 + " " : "") + (udp6_.up ? options_.group6 + " " : "") +
          "port " + std::to_string(options_.port) +
          (options_.interface.empty() ? "" : " on " + options_.interface) + ", TTL " +
          std::to_string(options_.ttl) +
          (joins_.empty() ? "" : ", join list of " + std::to_string(joins_.size())));
  schedule_.Start();
  if (udp4_.up || udp6_.up) {
    uv_timer_start(&beacon_timer_, OnBeaconTimer, 0, 0);
  }
  if (!joins_.empty()) {
    uv_timer_start(
        &join_timer_, [](uv_timer_t* t) { static_cast<Discovery*>(t->data)->ResolveJoins(); }, 0,
        static_cast<uint64_t>(options_.join_period_ms));
  }
  return Status::OK();
}

void Discovery::CloseFamily(Socket* s) {
  s->up = false;
  if (!s->open) return;
  s->open = false;
  auto* h = reinterpret_cast<uv_handle_t*>(&s->handle);
  if (!uv_is_closing(h)) uv_close(h, OnHandleClosed);
}

void Discovery::OnHandleClosed(uv_handle_t* h) {
  auto* self = static_cast<Discovery*>(h->data);
  --self->open_handles_;
  self->MaybeFinishClose();
}

Status Discovery::SetBeaconContent(const BeaconAdvert& advert) {
  BeaconContent next = self_;
  next.cluster_id = advert.cluster_id;
  next.peer_host = advert.peer_host;
  next.peer_port = advert.peer_port;
  next.security = advert.security;
  next.fingerprint = advert.fingerprint;
  MESH_RETURN_IF_ERROR(ValidateBeacon(next));
  bool changed = !SameContent(next, self_);
  self_ = std::move(next);
  // identity_ holds views into self_'s strings, which the assignment may have freed.
  identity_ = {self_.cluster_name, self_.protocol_version, self_.node_id, self_.instance};
  options_.advert = advert;
  if (changed && state_ == State::kRunning) ScheduleNextBeacon(true);
  return Status::OK();
}

void Discovery::SetJoinConnected(std::string_view join_entry, bool connected) {
  for (JoinEntry& entry : joins_) {
    if (entry.text == join_entry) entry.connected = connected;
  }
}

void Discovery::SendBeacons() {
  if (state_ != State::kRunning) return;
  ++self_.sequence;
  std::string datagram = EncodeBeacon(self_);
  for (Socket* s : {&udp4_, &udp6_}) {
    if (!s->up) continue;
    uv_buf_t buf = uv_buf_init(datagram.data(), static_cast<unsigned>(datagram.size()));
    int rc = uv_udp_try_send(&s->handle, &buf, 1, reinterpret_cast<const sockaddr*>(&s->group));
    if (rc < 0) {
      ++stats_.send_errors;
      const std::string& group = s == &udp4_ ? options_.group4 : options_.group6;
      LogLimited(DiscoveryLogLevel::kWarning, "send " + group,
                 "cannot send a beacon to " + group + ": " + uv_strerror(rc));
    } else {
      ++stats_.sent;
    }
  }
  schedule_.OnSent(uv_now(loop_));
}

void Discovery::ScheduleNextBeacon(bool soon) {
  if (state_ != State::kRunning || !(udp4_.up || udp6_.up)) return;
  if (soon) {
    const uint64_t now = uv_now(loop_);
    std::optional<uint64_t> armed;
    if (uv_is_active(reinterpret_cast<uv_handle_t*>(&beacon_timer_))) {
      armed = now + uv_timer_get_due_in(&beacon_timer_);
    }
    const std::optional<uint64_t> due = schedule_.SoonDueMs(now, armed);
    if (due) uv_timer_start(&beacon_timer_, OnBeaconTimer, *due - now, 0);
    return;
  }
  const double unit = std::uniform_real_distribution<double>(0.0, 1.0)(jitter_);
  uv_timer_start(&beacon_timer_, OnBeaconTimer, schedule_.NextDelayMs(unit), 0);
}

void Discovery::OnBeaconTimer(uv_timer_t* t) {
  auto* self = static_cast<Discovery*>(t->data);
  self->SendBeacons();
  self->ExpirePeers();
  self->ScheduleNextBeacon(false);
}

void Discovery::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<Discovery*>(h->data);
  Socket* s = reinterpret_cast<uv_udp_t*>(h) == &self->udp4_.handle ? &self->udp4_ : &self->udp6_;
  *buf = uv_buf_init(s->buffer, sizeof s->buffer);
}

void Discovery::OnRecv(uv_udp_t* h, ssize_t n, const uv_buf_t*, const sockaddr* from,
                       unsigned flags) {
  auto* self = static_cast<Discovery*>(h->data);
  Socket* s = h == &self->udp4_.handle ? &self->udp4_ : &self->udp6_;
  self->OnDatagram(s, n, from, flags);
}

void Discovery::OnDatagram(Socket* s, ssize_t n, const sockaddr* from, unsigned flags) {
  if (state_ != State::kRunning) return;
  if (n < 0) {
    LogLimited(DiscoveryLogLevel::kWarning, "recv",
               std::string("discovery receive error: ") + uv_strerror(static_cast<int>(n)));
    return;
  }
  if (from == nullptr) return;  // nothing more to read now
  ++stats_.received;
  SourceAddress source;
  if (!DescribeSource(from, &source)) {
    ++stats_.malformed;
    return;
  }
  if (!limiter_.Allow(source.key, static_cast<int64_t>(uv_now(loop_)))) {
    ++stats_.rate_limited;
    LogLimited(DiscoveryLogLevel::kDebug, "rate " + source.ip,
               "dropping datagrams from " + source.ip + ": more than " +
                   std::to_string(static_cast<int>(options_.source_rate_per_s)) + "/s");
    return;
  }
  if ((flags & UV_UDP_PARTIAL) != 0 || static_cast<size_t>(n) > kMaxBeaconBytes) {
    ++stats_.oversized;
    LogLimited(DiscoveryLogLevel::kDebug, "oversized",
               "dropping an oversized datagram from " + source.ip);
    return;
  }
  BeaconContent beacon;
  Status st = DecodeBeacon(std::string_view(s->buffer, static_cast<size_t>(n)), &beacon);
  if (!st.ok()) {
    ++stats_.malformed;
    LogLimited(DiscoveryLogLevel::kDebug, "malformed",
               "dropping a datagram from " + source.ip + ": " + st.message());
    return;
  }
  HandleBeacon(beacon, from);
}

void Discovery::HandleBeacon(const BeaconContent& beacon, const sockaddr* from) {
  SourceAddress source;
  DescribeSource(from, &source);
  uint64_t now = uv_now(loop_);
  BeaconVerdict verdict = ClassifyBeacon(beacon, identity_);
  switch (verdict) {
    case BeaconVerdict::kOwn:
      ++stats_.own;
      return;
    case BeaconVerdict::kOtherCluster:
    case BeaconVerdict::kOtherVersion: {
      bool cluster = verdict == BeaconVerdict::kOtherCluster;
      ++(cluster ? stats_.other_cluster : stats_.other_version);
      LogLimited(DiscoveryLogLevel::kDebug, cluster ? "other cluster" : "other version",
                 "ignoring the beacon of node " + beacon.node_id + " at " + source.ip + ": " +
                     (cluster ? "cluster '" + beacon.cluster_name + "'"
                              : "protocol version " + std::to_string(beacon.protocol_version)));
      return;
    }
    case BeaconVerdict::kDuplicateId:
    case BeaconVerdict::kAccept:
      break;
  }
  DiscoveredPeer peer;
  peer.beacon = beacon;
  peer.source = JoinHostPort(source.ip, source.port);
  std::string host = beacon.peer_host;
  if (IsUnspecifiedHost(host)) {
    host = source.ip;
  } else if (!SameAddress(host, source.ip)) {
    // A beacon may point only at its own sender: otherwise one forged datagram makes every
    // node dial any host it names (a reflector). The sender is dialled at its source address
    // (with the advertised port); a node that must be reached at another address (NAT, a
    // name) is given to the others with --join.
    ++stats_.foreign_host;
    LogLimited(DiscoveryLogLevel::kWarning, "foreign host " + source.ip,
               "the beacon of node " + beacon.node_id + " from " + source.ip +
                   " names peer host " + host +
                   ", not its own source address: dialling its source address instead (a "
                   "node reached at another address needs --join)");
    host = source.ip;
  }
  // A sender without an address on its interface (multicast looped over `lo`, an IPv6-only
  // host sending on IPv4) sends from 0.0.0.0 / ::, which is nowhere to dial: such a beacon
  // suggests nothing (the same node is normally heard on its other family).
  if (verdict == BeaconVerdict::kAccept && IsUnspecifiedHost(host)) {
    LogLimited(DiscoveryLogLevel::kDebug, "no source address",
               "ignoring the beacon of node " + beacon.node_id +
                   ": it has no source address and advertises no host");
    return;
  }
  peer.address = JoinHostPort(host, beacon.peer_port);
  peer.last_seen_ms = now;
  if (verdict == BeaconVerdict::kDuplicateId) {
    ++stats_.duplicate_id;
    auto it = duplicate_reported_ms_.find(beacon.instance);
    if (!core::ReportDuplicateNow(now, it == duplicate_reported_ms_.end()
                                           ? std::nullopt
                                           : std::optional<uint64_t>(it->second))) {
      return;
    }
    duplicate_reported_ms_[beacon.instance] = now;
    if (duplicate_reported_ms_.size() > options_.max_peers) duplicate_reported_ms_.clear();
    Log(DiscoveryLogLevel::kWarning, "another live process claims our node id " + beacon.node_id +
                                         ": its beacon came from " + peer.source);
    if (on_duplicate_id_) on_duplicate_id_(peer);
    return;
  }
  ++stats_.accepted;
  auto it = peers_.find(beacon.node_id);
  if (it == peers_.end()) {
    if (peers_.size() >= options_.max_peers) {
      ++stats_.table_full;
      LogLimited(DiscoveryLogLevel::kWarning, "table full",
                 "ignoring node " + beacon.node_id + ": already " + std::to_string(peers_.size()) +
                     " peers known");
      return;
    }
    peers_.emplace(beacon.node_id, PeerEntry{peer, now});
    ScheduleNextBeacon(true);  // let the newcomer hear of us without waiting a period
    if (on_peer_) on_peer_(PeerEvent::kSuggested, peer);
    return;
  }
  PeerEntry& entry = it->second;
  const BeaconContent& old = entry.peer.beacon;
  if (beacon.instance == old.instance && beacon.sequence < old.sequence &&
      !SameContent(beacon, old)) {
    return;  // an older beacon overtaken by a newer one: not a change
  }
  entry.peer.last_seen_ms = now;
  if (SameContent(beacon, old)) {
    entry.peer.beacon.sequence = std::max(old.sequence, beacon.sequence);
    if (peer.source == entry.peer.source) {
      entry.source_seen_ms = now;
      return;
    }
    // Heard on another path (the other family, another interface): keep the current one
    // while it is alive, so that the address does not flap.
    if (core::KeepCurrentPath(timing_, now, entry.source_seen_ms)) return;
  }
  entry.peer = peer;
  entry.source_seen_ms = now;
  if (on_peer_) on_peer_(PeerEvent::kChanged, entry.peer);
}

void Discovery::ExpirePeers() {
  uint64_t now = uv_now(loop_);
  const uint64_t expire = core::PeerExpiryMs(timing_);
  for (auto it = peers_.begin(); it != peers_.end() && state_ == State::kRunning;) {
    if (now - it->second.peer.last_seen_ms <= expire) {
      ++it;
      continue;
    }
    DiscoveredPeer gone = std::move(it->second.peer);
    it = peers_.erase(it);
    if (on_peer_) on_peer_(PeerEvent::kExpired, gone);
  }
  for (auto it = duplicate_reported_ms_.begin(); it != duplicate_reported_ms_.end();) {
    it = core::ForgetDuplicateReport(timing_, now, it->second) ? duplicate_reported_ms_.erase(it)
                                                               : std::next(it);
  }
}

void Discovery::ResolveJoins() {
  if (state_ != State::kRunning) return;
  for (size_t i = 0; i < joins_.size(); ++i) {
    JoinEntry& entry = joins_[i];
    if (entry.connected || entry.resolving) continue;
    auto* r = new Resolve{{}, this, i};
    r->req.data = r;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    std::string port = std::to_string(entry.port);
    int rc = uv_getaddrinfo(
        loop_, &r->req,
        [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
          auto* resolve = static_cast<Resolve*>(req->data);
          resolve->owner->OnResolved(resolve, status, res);
        },
        entry.host.c_str(), port.c_str(), &hints);
    if (rc != 0) {
      delete r;
      LogLimited(DiscoveryLogLevel::kWarning, "resolve " + entry.text,
                 "cannot resolve --join " + entry.text + ": " + uv_strerror(rc));
      continue;
    }
    entry.resolving = true;
    ++pending_resolves_;
    resolves_.push_back(r);
  }
}

void Discovery::OnResolved(Resolve* r, int status, addrinfo* res) {
  --pending_resolves_;
  std::erase(resolves_, r);
  JoinEntry& entry = joins_[r->join_index];
  entry.resolving = false;
  delete r;
  if (state_ != State::kRunning) {
    uv_freeaddrinfo(res);
    MaybeFinishClose();
    return;
  }
  if (status < 0) {
    std::string error = uv_strerror(status);
    if (error != entry.last_error) {
      Log(DiscoveryLogLevel::kWarning, "cannot resolve --join " + entry.text + ": " + error);
    }
    entry.last_error = error;
    uv_freeaddrinfo(res);
    return;
  }
  entry.last_error.clear();
  std::vector<DiscoveredPeer> suggestions;
  std::set<std::string> seen;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    SourceAddress address;
    if (!DescribeSource(ai->ai_addr, &address) || !seen.insert(address.ip).second) continue;
    DiscoveredPeer peer;
    peer.beacon.peer_host = entry.host;
    peer.beacon.peer_port = entry.port;
    peer.address = JoinHostPort(address.ip, entry.port);
    peer.source = peer.address;
    peer.join_entry = entry.text;
    peer.last_seen_ms = uv_now(loop_);
    suggestions.push_back(std::move(peer));
  }
  uv_freeaddrinfo(res);
  for (const DiscoveredPeer& peer : suggestions) {
    if (state_ != State::kRunning || entry.connected) break;  // a callback may Close or connect
    if (on_peer_) on_peer_(PeerEvent::kSuggested, peer);
  }
}

std::vector<DiscoveredPeer> Discovery::Peers() const {
  std::vector<DiscoveredPeer> out;
  out.reserve(peers_.size());
  for (const auto& [id, entry] : peers_) out.push_back(entry.peer);
  return out;
}

void Discovery::Close(std::function<void()> done) {
  if (done) close_done_.push_back(std::move(done));
  switch (state_) {
    case State::kNew:
    case State::kClosed:
      state_ = State::kClosed;
      MaybeFinishClose();
      return;
    case State::kClosing:
      return;
    case State::kRunning:
      break;
  }
  state_ = State::kClosing;
  on_peer_ = nullptr;
  on_duplicate_id_ = nullptr;
  CloseFamily(&udp4_);
  CloseFamily(&udp6_);
  if (timers_open_) {
    timers_open_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&beacon_timer_), OnHandleClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&join_timer_), OnHandleClosed);
  }
  // A resolution already running in the thread pool cannot be cancelled; its callback still
  // comes (with UV_EAI_CANCELED otherwise) and MaybeFinishClose waits for it.
  for (Resolve* r : resolves_) uv_cancel(reinterpret_cast<uv_req_t*>(&r->req));
  MaybeFinishClose();
}

void Discovery::MaybeFinishClose() {
  if (state_ == State::kClosing && open_handles_ == 0 && pending_resolves_ == 0) {
    state_ = State::kClosed;
  }
  if (state_ != State::kClosed) return;
  std::vector<std::function<void()>> done;
  done.swap(close_done_);
  for (auto& d : done) d();
}

void Discovery::Log(DiscoveryLogLevel level, const std::string& line) {
  if (level == DiscoveryLogLevel::kDebug && !options_.debug_log) return;
  if (options_.log) {
    options_.log(level, line);
  } else {
    fprintf(stderr, "lockmesh discovery: %s\n", line.c_str());
  }
}

void Discovery::LogLimited(DiscoveryLogLevel level, const std::string& category,
                           const std::string& line) {
  if (level == DiscoveryLogLevel::kDebug && !options_.debug_log) return;
  uint64_t now = uv_now(loop_);
  if (limited_logs_.size() > 64 && limited_logs_.find(category) == limited_logs_.end()) {
    limited_logs_.clear();  // bounded: categories can name (spoofed) sources
  }
  LimitedLog& l = limited_logs_[category];
  if (l.ever && now - l.last_ms < kLogEveryMs) {
    ++l.suppressed;
    return;
  }
  std::string suffix =
      l.suppressed ? " (" + std::to_string(l.suppressed) + " more like this since the last)" : "";
  l = {now, 0, true};
  Log(level, line + suffix);
}

}  // namespace mesh::net
