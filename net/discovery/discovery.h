// net/discovery/discovery: finds peers of our cluster by UDP multicast beacons and a static --join list.
//
// A Discovery multicasts this node's beacon (net/discovery/discovery_beacon.h) on IPv4 and IPv6 — a
// quick burst at start, then every `period_ms` with jitter, and an extra beacon soon after it
// first hears a new peer, so a newcomer learns of everyone within about one burst interval —
// and listens for the beacons of others. Everything it reports is a *suggestion*: beacons are
// not authenticated, and the secure peer link decides who is let in (docs/design.md §5, §6).
//
// Reports (callbacks, on the loop thread):
//  * on_peer(kSuggested) the first time a node id of our cluster and protocol version is heard;
//    on_peer(kChanged) when its beacon changes (new instance, cluster id, address, security,
//    fingerprint); on_peer(kExpired) when it has not been heard for `expire_ms`.
//  * on_peer(kSuggested) with `join_entry` set for each address a --join entry resolves to,
//    every `join_period_ms`, until SetJoinConnected(entry, true).
//  * on_duplicate_id when a beacon carries our node id from another process (another
//    instance nonce): two live nodes with one id, which the node must refuse loudly.
// Beacons of another cluster name or protocol version are counted and ignored (logged at debug
// level, rate-limited). Hostile input — garbage, truncated, oversized or absurd datagrams — is
// counted and dropped; memory stays bounded (fixed receive buffers, bounded peer and source
// tables) and a per-source token bucket keeps a flood from one address from costing more than
// a few parses per second; libuv reads at most a few dozen datagrams per loop iteration, so
// the loop keeps serving its other handles.
//
// Lifetime: the owner creates it, calls Start(), and must call Close() and wait for its
// callback before destroying it (libuv handles are freed only in their close callbacks; the
// destructor aborts if they are still open). Threading: everything on the loop's thread.
#ifndef LOCKMESH_NET_DISCOVERY_DISCOVERY_H_
#define LOCKMESH_NET_DISCOVERY_DISCOVERY_H_

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/discovery_timing.h"
#include "mesh/status.h"
#include "net/discovery/discovery_beacon.h"

namespace mesh::net {

/// Default multicast groups and UDP port (docs/design.md §5). The port is also the default peer
/// TCP port.
inline constexpr const char* kDefaultDiscoveryGroup4 = "239.255.28.17";
inline constexpr const char* kDefaultDiscoveryGroup6 = "ff12::2817";
inline constexpr uint16_t kDefaultDiscoveryPort = 28017;

/// The parts of our beacon that change over a node's life (SetBeaconContent).
struct BeaconAdvert {
  std::string cluster_id;  // "" until the node belongs to a cluster
  std::string peer_host;   // "" = "the address my beacon comes from" (listening on all)
  uint16_t peer_port = kDefaultDiscoveryPort;  // the peer listener's TCP port
  std::string security = "none";
  std::string fingerprint;  // "" without TLS
};

/// Severity of a log line; debug lines are passed to `log` only with `debug_log`.
enum class DiscoveryLogLevel { kDebug, kInfo, kWarning };

struct DiscoveryOptions {
  /// Identity. `node_id` and `cluster_name` follow ValidateBeacon's rules.
  std::string cluster_name = "lockmesh";
  std::string node_id;
  /// Random per process when 0 (the usual case); fixed only by tests.
  uint64_t instance = 0;
  uint32_t protocol_version = 1;
  BeaconAdvert advert;

  /// Multicast. With `multicast` false only the --join list is used (no socket is opened).
  bool multicast = true;
  bool ipv4 = true;
  bool ipv6 = true;
  std::string group4 = kDefaultDiscoveryGroup4;  // must be an IPv4 multicast address
  std::string group6 = kDefaultDiscoveryGroup6;  // must be an IPv6 multicast address
  uint16_t port = kDefaultDiscoveryPort;
  /// IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS: 1 keeps beacons on the local link.
  int ttl = 1;
  /// Interface name to join and send on (e.g. "eth0"); "" lets the kernel choose by its
  /// routes to the group (a family with no such route is disabled with a warning).
  std::string interface;

  /// Timing (ms): `burst_count` beacons `burst_interval_ms` apart at start, then one every
  /// `period_ms` (+-20 % jitter). A peer unheard for `expire_ms` is reported expired
  /// (0 = 3 * period_ms + burst_interval_ms).
  int burst_count = 5;
  int burst_interval_ms = 200;
  int period_ms = 2000;
  int expire_ms = 0;

  /// Static peers ("host:port", "[v6]:port", "host"; port defaults to advert.peer_port),
  /// resolved every `join_period_ms` and suggested until marked connected.
  std::vector<std::string> join;
  int join_period_ms = 2000;

  /// Hostile-input limits: datagrams per second (and burst) processed per source address,
  /// the number of source buckets and of peers kept.
  double source_rate_per_s = 50;
  double source_burst = 100;
  size_t max_sources = 256;
  size_t max_peers = 1024;

  /// Where log lines go (one line, no newline); null = stderr. Debug lines only with
  /// `debug_log`.
  std::function<void(DiscoveryLogLevel, const std::string&)> log;
  bool debug_log = false;
};

/// One suggested peer.
struct DiscoveredPeer {
  /// The beacon as received; for a --join suggestion only peer_host/peer_port are set.
  BeaconContent beacon;
  /// HOST:PORT to dial: the beacon's peer_host (or else the source address) and peer_port.
  /// Link-local IPv6 sources carry their %interface.
  std::string address;
  /// Where the beacon came from ("ip:port"), or the resolved address of a --join entry.
  std::string source;
  /// The --join entry as given, for suggestions from the static list; "" for beacons.
  std::string join_entry;
  /// Loop time (uv_now, ms) of the last beacon heard from this peer.
  uint64_t last_seen_ms = 0;
};

enum class PeerEvent { kSuggested, kChanged, kExpired };
const char* PeerEventName(PeerEvent event);

/// Counters since Start (all datagrams received, whatever their fate).
struct DiscoveryStats {
  uint64_t sent = 0;           // beacon datagrams sent
  uint64_t send_errors = 0;    // sends the kernel refused (no route, buffer full, ...)
  uint64_t received = 0;       // datagrams received
  uint64_t accepted = 0;       // valid beacons of our cluster from other nodes
  uint64_t own = 0;            // our own beacons looped back
  uint64_t other_cluster = 0;  // valid beacons of another cluster name
  uint64_t other_version = 0;  // valid beacons of another protocol version
  uint64_t duplicate_id = 0;   // our node id from another instance
  uint64_t malformed = 0;      // wrong magic, unparsable, or fields out of limits
  uint64_t oversized = 0;      // longer than kMaxBeaconBytes (or truncated by the kernel)
  uint64_t rate_limited = 0;   // dropped unparsed by the per-source limit
  uint64_t table_full = 0;     // new peers not recorded because max_peers was reached
  uint64_t foreign_host = 0;   // beacons naming a peer host other than their source address
};

class Discovery {
 public:
  using PeerCallback = std::function<void(PeerEvent, const DiscoveredPeer&)>;
  using DuplicateIdCallback = std::function<void(const DiscoveredPeer&)>;

  /// Nothing happens until Start. `loop` must outlive this object.
  Discovery(uv_loop_t* loop, DiscoveryOptions options);
  ~Discovery();
  Discovery(const Discovery&) = delete;
  Discovery& operator=(const Discovery&) = delete;

  /// Validates the options, opens and joins the sockets, starts beaconing and resolving the
  /// join list. Callbacks may be null. InvalidArgument for bad options; IOError when no
  /// family could be set up and there is no join list (a family that fails while the other
  /// works is disabled with a warning). On error nothing is left open (Close is then a
  /// no-op that still calls back).
  Status Start(PeerCallback on_peer, DuplicateIdCallback on_duplicate_id);

  /// Replaces the changing part of our beacon (a cluster id was learnt, the certificate
  /// changed); the new beacon goes out within burst_interval_ms. Invalid content is refused.
  Status SetBeaconContent(const BeaconAdvert& advert);

  /// Stops (true) or resumes (false) suggestions for one --join entry, named as given.
  void SetJoinConnected(std::string_view join_entry, bool connected);

  /// Stops everything; `done` runs (on the loop) once every handle is closed and every
  /// pending name resolution has returned. No callback runs after Close. Idempotent; later
  /// calls' `done` also run.
  void Close(std::function<void()> done);

  /// Peers currently known from beacons (not expired), by node id.
  std::vector<DiscoveredPeer> Peers() const;
  const DiscoveryStats& stats() const { return stats_; }
  uint64_t instance() const { return self_.instance; }
  /// Whether each family is sending and receiving (after Start).
  bool ipv4_up() const { return udp4_.up; }
  bool ipv6_up() const { return udp6_.up; }

 private:
  struct Socket {
    uv_udp_t handle;
    bool open = false;  // uv_udp_init done, close pending or not
    bool up = false;    // joined and usable
    sockaddr_storage group{};
    char buffer[kMaxBeaconBytes + 1];  // one byte more: longer datagrams show as oversized
    Discovery* owner = nullptr;
  };
  struct JoinEntry {
    std::string text;
    std::string host;
    uint16_t port = 0;
    bool connected = false;
    bool resolving = false;
    std::string last_error;  // to log a resolution failure once per change
  };
  struct Resolve;
  enum class State { kNew, kRunning, kClosing, kClosed };

  Status ValidateOptions();
  // Opens, binds and joins a raw socket for `family` (AF_INET / AF_INET6) into `*fd`; on
  // error nothing stays open. libuv adopts the fd afterwards (uv_udp_open).
  Status OpenSocket(Socket* s, int family, int* fd);
  void CloseFamily(Socket* s);
  void SendBeacons();
  void ScheduleNextBeacon(bool soon);
  void OnDatagram(Socket* s, ssize_t n, const sockaddr* from, unsigned flags);
  void HandleBeacon(const BeaconContent& beacon, const sockaddr* from);
  void ExpirePeers();
  void ResolveJoins();
  void OnResolved(Resolve* r, int status, addrinfo* res);
  void Log(DiscoveryLogLevel level, const std::string& line);
  // At most one line per `category` per 10 s; the next one says how many were suppressed.
  void LogLimited(DiscoveryLogLevel level, const std::string& category, const std::string& line);
  void MaybeFinishClose();

  static void OnBeaconTimer(uv_timer_t* t);
  static void OnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void OnRecv(uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* from,
                     unsigned flags);
  static void OnHandleClosed(uv_handle_t* h);

  uv_loop_t* loop_;
  DiscoveryOptions options_;
  State state_ = State::kNew;
  PeerCallback on_peer_;
  DuplicateIdCallback on_duplicate_id_;
  BeaconContent self_;  // our beacon; sequence counts up
  LocalIdentity identity_;
  unsigned interface_index_ = 0;
  Socket udp4_;
  Socket udp6_;
  uv_timer_t beacon_timer_;
  uv_timer_t join_timer_;
  bool timers_open_ = false;
  int open_handles_ = 0;
  int pending_resolves_ = 0;
  std::vector<std::function<void()>> close_done_;
  core::DiscoveryTiming timing_;   // from options_ (core/discovery_timing.h decides)
  core::BeaconSchedule schedule_;  // when the next beacon is due
  std::mt19937_64 jitter_;         // the schedule's uniform draws
  std::vector<JoinEntry> joins_;
  std::vector<Resolve*> resolves_;  // in flight, for uv_cancel at Close
  struct PeerEntry {
    DiscoveredPeer peer;
    uint64_t source_seen_ms = 0;  // last beacon from peer.source (a node may be heard on two)
  };
  std::map<std::string, PeerEntry> peers_;              // by node id
  std::map<uint64_t, uint64_t> duplicate_reported_ms_;  // instance -> when last reported
  SourceRateLimiter limiter_;
  DiscoveryStats stats_;
  struct LimitedLog {
    uint64_t last_ms = 0;
    uint64_t suppressed = 0;
    bool ever = false;
  };
  std::map<std::string, LimitedLog> limited_logs_;
};

}  // namespace mesh::net

#endif  // LOCKMESH_NET_DISCOVERY_DISCOVERY_H_
