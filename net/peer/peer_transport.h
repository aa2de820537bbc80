// net/peer/peer_transport: the links between nodes (docs/design.md §5, §6).
//
// A PeerTransport listens on a TCP address, dials the addresses it is given, and keeps at
// most one live connection per other node. On every connection each side sends a PeerHello
// (proto/peer.proto) right after the channel is secured — the TLS handshake, or the TCP
// connect with --security none — and accepts the other's Hello only if:
//   * it is the first frame, and the protocol version and the cluster name equal ours;
//   * the node id is non-empty and not ours (a node that dialled itself just hangs up);
//   * mutual: the peer certificate's CN equals the node id it claims;
//   * tofu: with --trusted-fingerprints, the certificate's SHA-256 fingerprint is on the
//     list; without, it matches the one pinned for that id in known_peers (first contact
//     pins it; a changed one is refused with both fingerprints and the exact
//     `lockmesh trust accept ...` command, net/tls/known_peers.h);
//   * no other live process holds a connection under that node id (same id, different
//     incarnation: refused). Two connections of the same pair (both sides dialled) are
//     resolved by node id: the connection dialled by the node with the smaller id stays.
// A side that accepts the other's Hello sends a PeerWelcome; the link is up (on_peer_up,
// Send) only once each side has accepted the other's Hello and received its Welcome, so a
// node that is being refused never sees the refusing peer come up.
// A refusal is logged with the peer's address and the reason in words, sent to the peer as a
// PeerRefusal (so that both logs say the same thing), reported through on_refused, and the
// connection is closed. TLS handshake failures (another CA, expired, no certificate,
// self-signed in encrypt/mutual, plaintext vs TLS) are reported the same way on both sides:
// the refusing side from its own check, the refused side from the TLS alert.
//
// Frames are length-prefixed PeerEnvelopes of at most max_frame_bytes. A malformed or
// oversized frame, TLS garbage, or a peer that does not finish its handshake and Hello within
// the deadline closes that connection only, with a logged reason.
//
// Hostile load (docs/mesh.md). Anyone who can reach the listener can open
// connections, so an accepted connection is held only within bounds until its link is up:
//  * Admission: connections that have not finished their TLS handshake, Hello and Welcome
//    are counted per source address and in total (core/connection_limits.h, L1 and L2;
//    PeerTransportOptions::pending_limits). One over a limit is closed as soon as it is
//    accepted, before a byte is read or any TLS state exists.
//  * Deadline: handshake_timeout_ms from the accept to the link being up, whatever the peer
//    sends meanwhile (silence, or a byte now and then): it is not extended by traffic.
//  * Memory: an accepted connection costs about 1 KB until its first bytes, its TLS state
//    is made only then (net/peer/peer_connection.h), and every connection is freed from its last
//    close callback.
//  * Log: the lines a remote party can repeat per connection (refusals, failed or timed-out
//    handshakes, connections over the limits, failed accepts) go through a RateLimitedLog
//    (net/support/rate_limited_log.h; PeerTransportOptions::log_rate): N per kind per window, then
//    one "suppressed K similar lines" line. A link coming up or going down is always logged.
//
// Dialled addresses are redialled after a failure or a loss with exponential backoff and
// jitter (delay = min(max, min * 2^failures) * uniform[0.5, 1)); a refusal the peer marked
// permanent waits the longest delay (core::RedialDelayMs decides, core/redial_backoff.h). An address that turned out to be our own is dropped.
//
// Reload() re-reads --tls-cert/--tls-key/--tls-ca (and the allow-list): new connections use
// the new certificates, and connected peers whose certificate no longer passes the new rules
// are cut off (refused with the reason).
//
// Lifetime and threading: everything runs on the loop's thread. Create, Start, use, then
// Stop(done) and wait for `done` before destroying the object or closing the loop. No
// callback runs after Stop() is called. Every libuv handle is freed in its close callback.
#ifndef LOCKMESH_NET_PEER_PEER_TRANSPORT_H_
#define LOCKMESH_NET_PEER_PEER_TRANSPORT_H_

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/connection_limits.h"
#include "core/log_rate_limiter.h"
#include "mesh/status.h"
#include "net/support/rate_limited_log.h"
#include "net/tls/certificate.h"
#include "net/tls/known_peers.h"
#include "net/tls/tls_context.h"
#include "peer.pb.h"

namespace mesh::net {

class PeerConnection;

/// Version of the PeerHello/PeerEnvelope protocol; nodes refuse peers with another one.
inline constexpr uint32_t kPeerProtocolVersion = 1;
/// Default peer TCP port (docs/design.md §5; FLoM uses 28015).
inline constexpr uint16_t kDefaultPeerPort = 28017;
/// Default largest PeerEnvelope frame (a Raft snapshot chunk must fit).
inline constexpr uint32_t kMaxPeerFrameBytes = 16 * 1024 * 1024;

/// How a transport is set up. Plain data.
struct PeerTransportOptions {
  /// --cluster: peers of another cluster name are refused.
  std::string cluster = "lockmesh";
  /// This node's unique id (required).
  std::string node_id;
  /// "host:port" to listen on (numeric IPv4, [IPv6] or "localhost"); port 0 picks a free
  /// one (see listen_port()). Empty: do not listen (dial only).
  std::string listen_address;
  /// "host:port" announced in our Hello so that peers can dial back; default: the bound
  /// listen address.
  std::string advertise_address;
  /// --security and --tls-cert/--tls-key/--tls-ca (tls.node_id is set from node_id).
  TlsOptions tls;
  /// tofu: the data dir holding known_peers (KnownPeersPath), also named in the accept
  /// command. Required for tofu without an allow-list.
  std::string data_dir;
  /// tofu: --trusted-fingerprints FILE; non-empty makes tofu a strict allow-list.
  std::string trusted_fingerprints_file;
  /// Largest frame accepted (and sent).
  uint32_t max_frame_bytes = kMaxPeerFrameBytes;
  /// Deadline for TCP connect + TLS handshake + Hello on each connection.
  uint64_t handshake_timeout_ms = 10000;
  /// Accepted connections not yet up, per source address and in total (L1, L2 of
  /// core/connection_limits.h; defaults 32 and 512).
  core::ConnectionLimitsOptions pending_limits;
  /// Per-connection log lines (refusals, failed handshakes): at most this many of a kind
  /// per window (default 10 per 10 s), then a summary.
  core::LogRateOptions log_rate;
  /// Redial backoff bounds.
  uint64_t reconnect_min_ms = 100;
  uint64_t reconnect_max_ms = 10000;
  /// Seed of the backoff jitter (0: random).
  uint64_t seed = 0;
  /// Where log lines go (no newline); default: stderr.
  std::function<void(const std::string& line)> log;
};

/// A connected, accepted peer.
struct PeerInfo {
  std::string node_id;
  std::string address;         // ip:port of the other end of the connection
  std::string listen_address;  // from its Hello ("" if it does not listen)
  bool dialled = false;        // we dialled this connection
  std::string tls_version;     // "" with --security none
  std::string cipher_suite;    // ""  with --security none
  std::string common_name;     // of its certificate ("" with none)
  Fingerprint fingerprint;     // of its certificate (zeros with none)
};

/// A connection that ended before (or instead of) becoming a peer, or a peer cut off.
struct PeerRefusal {
  std::string address;   // ip:port of the other end
  std::string node_id;   // the id it claimed, "" if it never got as far as its Hello
  std::string reason;    // in words
  bool by_peer = false;  // true: the peer refused us (its reason); false: we refused it
};

/// What the owner hears. Every callback runs on the loop thread; any may be empty.
struct PeerCallbacks {
  /// A peer's Hello was accepted: it is connected and Send() reaches it.
  std::function<void(const PeerInfo& peer)> on_peer_up;
  /// A peer that was up is gone (connection lost or cut off), with why.
  std::function<void(const std::string& node_id, const Status& why)> on_peer_down;
  /// An envelope from a connected peer (never a Hello or a refusal). The envelope may be
  /// moved from.
  std::function<void(const std::string& node_id, pb::PeerEnvelope& message)> on_message;
  /// A refusal either way (see PeerRefusal). Failures to connect are not refusals.
  std::function<void(const PeerRefusal& refusal)> on_refused;
};

class PeerTransport {
 public:
  PeerTransport(uv_loop_t* loop, PeerTransportOptions options, PeerCallbacks callbacks);
  /// Requires Stop() to have completed (or Start() never to have succeeded).
  ~PeerTransport();
  PeerTransport(const PeerTransport&) = delete;
  PeerTransport& operator=(const PeerTransport&) = delete;

  /// Loads the TLS configuration (refusing to start, with the reason, on a bad certificate
  /// or, in mutual, one whose CN is not our node id), the allow-list, and starts listening.
  Status Start();

  /// The port actually bound (after Start; 0 if not listening).
  uint16_t listen_port() const { return listen_port_; }
  /// "host:port" sent in our Hello.
  const std::string& advertise_address() const { return advertise_address_; }

  /// Keeps a link to `host_port` (numeric IPv4, [IPv6] or "localhost", and a port): dials
  /// now and again after every failure or loss, until Stop. Dialling an address already
  /// dialled is a no-op. InvalidArgument for an address that does not parse.
  Status Dial(const std::string& host_port);
  /// Stops keeping a link to `host_port` (a no-op if it is not dialled): no redial after
  /// this. A connection it has, up or in progress, stays until it ends, and is then not
  /// redialled (unless Dial is called again meanwhile). For an address a beacon suggested,
  /// once the beacon expires: forged beacons must not leave dialers behind.
  void Undial(const std::string& host_port);
  /// Addresses dialled (kept linked) now; for tests and `status`.
  size_t dialer_count() const { return dialers_.size(); }
  /// Accepted connections not up yet (counted by the admission limits); for tests.
  size_t pending_connections() const { return limits_.pending(); }
  /// Connections closed at accept because a limit was reached, since Start.
  uint64_t refused_over_limits() const { return refused_over_limits_; }
  /// Log lines left out by the rate limit, since Start.
  uint64_t suppressed_log_lines() const { return rate_log_ ? rate_log_->suppressed_total() : 0; }

  /// Queues `message` for the connected peer `node_id`; false if it is not connected.
  /// Messages to one peer arrive in order; those queued in one loop iteration are written
  /// together (one TLS write, one system call).
  bool Send(const std::string& node_id, const pb::PeerEnvelope& message);
  /// As Send, for frames already encoded with AppendFrame (benchmarks, fan-out of one
  /// message to many peers).
  bool SendEncoded(const std::string& node_id, std::string_view frames);

  /// Re-reads the certificate files and the allow-list (SIGHUP). On error the old
  /// configuration stays and the error says why; otherwise new connections use the new one
  /// and connected peers whose certificate fails the new rules are cut off (returned count
  /// through `cut_off` if non-null).
  Status Reload(size_t* cut_off = nullptr);

  /// Closes the listener, every connection and timer; `done` runs once every handle is
  /// closed (from a close callback). No other callback runs after Stop is called.
  void Stop(std::function<void()> done);

  /// Closes the link to `node_id` (if any) with `why` as the reason: on_peer_down runs, and
  /// a dialled address is redialled with the usual backoff. For a link that carries nothing
  /// although traffic is expected (a half-open TCP connection after a network outage, which
  /// TCP's retransmission backoff can keep silent for many seconds).
  void Disconnect(const std::string& node_id, const std::string& why);

  /// Connected peers, by node id.
  std::vector<PeerInfo> Peers() const;
  bool IsConnected(const std::string& node_id) const { return peers_.count(node_id) != 0; }
  /// Writes what Send queued for every peer now rather than before the next poll.
  void FlushQueued();
  /// Bytes queued in libuv for `node_id` but not yet written to the kernel (0 if unknown).
  size_t QueuedBytes(const std::string& node_id) const;
  /// The security level in force.
  SecurityLevel security() const { return options_.tls.level; }
  /// TlsContext::CertificateWarnings of the certificates in force at `now` (Unix seconds),
  /// none with --security none. Start and Reload log them; `lockmesh status` shows them.
  std::vector<std::string> CertificateWarnings(int64_t now) const;

 private:
  struct Dialer;

  void Log(const std::string& line) const;
  // A line a remote party can repeat at will: written through the rate limit under `key`
  // (what such lines have in common: the line without its address).
  void LogLimited(const std::string& key, const std::string& line);
  void OnConnection(int status);
  // The connection no longer counts against the admission limits (its link is up, or it
  // closed). Idempotent.
  void ReleasePending(PeerConnection* conn);
  void Adopt(PeerConnection* conn, Dialer* dialer);
  // Takes the dialer of `address` out of dialers_ and frees it once its timer is closed.
  void Retire(const std::string& address);
  void OnSecured(PeerConnection* conn);
  Status OnEnvelope(PeerConnection* conn, pb::PeerEnvelope& env);
  Status OnHello(PeerConnection* conn, const pb::PeerHello& hello);
  // Both Hellos accepted: resolves duplicates and reports the peer up.
  void BecomeUp(PeerConnection* conn);
  // The checks of a peer's certificate beyond the handshake's: CN (mutual), fingerprint
  // (tofu). `record` pins a first contact in known_peers. Returns the refusal or OK.
  Status CheckIdentity(const PeerConnection* conn, const std::string& node_id, bool record,
                       bool* permanent) const;
  void OnClosed(PeerConnection* conn, const Status& why);
  void Refuse(PeerConnection* conn, const std::string& reason, bool permanent);
  void DialNow(Dialer* d);
  void ScheduleRedial(Dialer* d, bool longest);
  PeerInfo Describe(const PeerConnection* conn) const;
  void MaybeFinishStop();

  uv_loop_t* loop_;
  PeerTransportOptions options_;
  PeerCallbacks callbacks_;
  std::shared_ptr<const TlsContext> tls_;  // null with --security none
  std::unique_ptr<TrustedFingerprints> allow_list_;
  uint64_t incarnation_ = 0;
  std::mt19937_64 rng_;
  uv_tcp_t listener_;
  bool listening_ = false;
  uint16_t listen_port_ = 0;
  std::string advertise_address_;
  bool started_ = false;
  bool stopping_ = false;
  int closing_handles_ = 0;
  std::function<void()> stop_done_;
  core::ConnectionLimits limits_;
  uint64_t refused_over_limits_ = 0;
  size_t pending_peak_ = 0;                   // most pending at once since the last trim
  std::unique_ptr<RateLimitedLog> rate_log_;  // closed by Stop

  std::set<PeerConnection*> connections_;                   // every open connection
  std::map<std::string, PeerConnection*> peers_;            // accepted, by node id
  std::map<PeerConnection*, Dialer*> dialled_by_;           // connections we dialled
  std::map<std::string, std::unique_ptr<Dialer>> dialers_;  // by address text
};

}  // namespace mesh::net

#endif  // LOCKMESH_NET_PEER_PEER_TRANSPORT_H_
