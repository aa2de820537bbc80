// core/connection_limits: how many peer connections that have not finished their handshake a
// node holds, per source address and in total (docs/mesh.md, "Hostile load") — a pure decision.
//
// Every connection accepted on the peer port costs memory (its state, later a TLS session)
// and a file descriptor from the moment it is accepted until its TLS handshake, Hello and
// Welcome are done (net/peer/peer_transport.h), and anyone who can reach the port can open one
// without credentials. So the connections still in that phase ("pending") are counted:
//  L1 Per source: at most `max_pending_per_source` pending connections from one source
//     (ConnectionSourceKey: an IPv4 address; an IPv6 /64, the block one host usually
//     controls). One host cannot take every slot.
//  L2 In total: at most `max_pending_total` pending connections from all sources together:
//     many hosts cannot make the node hold more than that bound.
// A connection over either limit is refused at once (the transport closes it before it
// reads a byte or allocates TLS state). A pending connection stops counting once its link is
// up (Release), or when it closes first (Release): the handshake deadline
// (PeerTransportOptions::handshake_timeout_ms) bounds how long a slot is held.
// Connections this node dials are not counted: it dials only the addresses it was given.
//
// What the limits cost: under a flood, a legitimate peer's connection can be refused while
// the slots are full; its own dialer retries with backoff, and a link between two nodes is
// also made by this node dialling the other (each node dials the peers it knows), which no
// limit here touches.
//
// Threading: not thread-safe; the peer transport uses it on its loop thread.
#ifndef LOCKMESH_CORE_CONNECTION_LIMITS_H_
#define LOCKMESH_CORE_CONNECTION_LIMITS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace mesh::core {

/// Default L1: a host runs a few nodes, each dialling with a handful of attempts in flight
/// (a loopback mesh of 11 nodes has at most 10 other nodes on one address).
inline constexpr size_t kDefaultMaxPendingPerSource = 32;
/// Default L2: a full TLS handshake in progress holds about 50 KB (mbedTLS's record buffers
/// and handshake state), so 512 of them stay within about 25 MB and 512 descriptors.
inline constexpr size_t kDefaultMaxPendingTotal = 512;

/// The limits. Plain data; a limit of 0 refuses every connection.
struct ConnectionLimitsOptions {
  size_t max_pending_per_source = kDefaultMaxPendingPerSource;
  size_t max_pending_total = kDefaultMaxPendingTotal;
};

/// What Admit decided.
enum class ConnectionVerdict {
  kAdmit,       // counted as pending; Release it once
  kSourceFull,  // L1: refused, not counted
  kTotalFull,   // L2: refused, not counted
};

/// The verdict in words, for a log line (e.g. "too many connections from one address
/// before their handshake (limit 32)"); "" for kAdmit.
std::string DescribeVerdict(ConnectionVerdict verdict, const ConnectionLimitsOptions& options);

/// The key L1 counts under, from a peer's address bytes in network order: 4 bytes (IPv4),
/// or 16 bytes (IPv6). IPv4 gives "a.b.c.d"; an IPv4-mapped IPv6 address (::ffff:a.b.c.d,
/// what a dual-stack listener sees) the same; any other IPv6 address its /64, as
/// "xxxx:xxxx:xxxx:xxxx::/64" (hex, lowercase, no zero compression). Other lengths: "?".
std::string ConnectionSourceKey(const uint8_t* address, size_t length);

/// Counts pending connections per source and in total, and admits or refuses new ones
/// (L1, L2). Memory: one entry per source with a pending connection (at most
/// max_pending_total entries).
class ConnectionLimits {
 public:
  explicit ConnectionLimits(ConnectionLimitsOptions options = {});

  /// A new connection from `source` (a ConnectionSourceKey), L1 checked first: kAdmit
  /// counts it as pending (the caller must Release it exactly once); a refusal counts
  /// nothing.
  ConnectionVerdict Admit(const std::string& source);
  /// A pending connection from `source` became a link or closed: it stops counting. A
  /// source with nothing pending is ignored.
  void Release(const std::string& source);

  /// Pending connections in total, and from `source`.
  size_t pending() const { return total_; }
  size_t pending_from(const std::string& source) const;
  /// Sources with at least one pending connection.
  size_t sources() const { return per_source_.size(); }
  const ConnectionLimitsOptions& options() const { return options_; }

 private:
  ConnectionLimitsOptions options_;
  std::unordered_map<std::string, size_t> per_source_;  // only sources with a count > 0
  size_t total_ = 0;
};

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_CONNECTION_LIMITS_H_
