// net/discovery/discovery_beacon: the pure part of discovery — the beacon datagram's encoding and
// validation, the receiver's verdict on a beacon, a per-source rate limiter, and HOST:PORT
// parsing. No sockets, no clocks (times are passed in), so all of it is unit-tested directly.
//
// A beacon datagram is the 4 bytes kBeaconMagic followed by one serialized pb::Beacon
// (proto/discovery.proto). Everything a datagram can claim is bounded here: a datagram longer
// than kMaxBeaconBytes is never parsed, and a parsed beacon whose fields leave the limits below
// is dropped as a whole.
//
// Threading: free functions are thread-safe; a SourceRateLimiter is thread-compatible.
#ifndef LOCKMESH_NET_DISCOVERY_DISCOVERY_BEACON_H_
#define LOCKMESH_NET_DISCOVERY_DISCOVERY_BEACON_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/host_port.h"
#include "mesh/status.h"

namespace mesh::net {

/// First bytes of every beacon datagram ("lockmesh beacon, framing 1").
inline constexpr std::string_view kBeaconMagic = "LMB1";
/// Largest datagram that is parsed at all; real beacons are about 200 bytes.
inline constexpr size_t kMaxBeaconBytes = 1024;
/// Field limits (bytes). Node ids and cluster names follow the CLI's rules (docs/cli.md).
inline constexpr size_t kMaxNodeIdBytes = 128;
inline constexpr size_t kMaxClusterNameBytes = 64;
inline constexpr size_t kMaxClusterIdBytes = 64;
inline constexpr size_t kMaxPeerHostBytes = 255;  // a DNS name, or an IP literal with %scope
inline constexpr size_t kMaxSecurityBytes = 16;
inline constexpr size_t kMaxFingerprintBytes = 128;

/// The content of one beacon, as sent and as received.
struct BeaconContent {
  uint32_t protocol_version = 0;  // the peer protocol the sender speaks
  std::string cluster_name;       // non-empty, letters digits . _ -
  std::string node_id;            // non-empty, letters digits . _ -
  uint64_t instance = 0;          // random per process, never 0
  std::string cluster_id;         // "" before bootstrap; letters digits . _ -
  std::string peer_host;          // "" = the datagram's source address; DNS name or IP literal
                                  // (receivers dial the source address whatever it says)
  uint16_t peer_port = 0;         // 1-65535
  std::string security;           // opaque, lower-case letters ("none", "mutual", ...)
  std::string fingerprint;        // opaque, printable ASCII without spaces
  uint64_t sequence = 0;          // beacon counter of this instance

  bool operator==(const BeaconContent&) const = default;
};

/// Checks every field against the limits above; the message names the first bad field.
Status ValidateBeacon(const BeaconContent& beacon);

/// The datagram for `beacon` (magic + protobuf). The caller validates first: encoding does
/// not check limits.
std::string EncodeBeacon(const BeaconContent& beacon);

/// Parses and validates one received datagram. InvalidArgument for a wrong magic, an
/// oversized datagram, a protobuf that does not parse, or a field outside the limits. Never
/// allocates more than a small multiple of the datagram's size.
Status DecodeBeacon(std::string_view datagram, BeaconContent* out);

/// What a receiver does with a valid beacon.
enum class BeaconVerdict {
  kAccept,        // a peer of our cluster: suggest it
  kOwn,           // our own beacon, looped back: ignore
  kDuplicateId,   // our node id from another process (another instance): report loudly
  kOtherCluster,  // another cluster name: ignore (counted)
  kOtherVersion,  // another protocol version: ignore (counted)
};
const char* BeaconVerdictName(BeaconVerdict verdict);

/// Who we are, for ClassifyBeacon.
struct LocalIdentity {
  std::string_view cluster_name;
  uint32_t protocol_version = 0;
  std::string_view node_id;
  uint64_t instance = 0;
};

/// The verdict on a valid `beacon` received by `self`. Checked in this order: cluster name,
/// protocol version, then our own id (same instance: kOwn, other instance: kDuplicateId).
BeaconVerdict ClassifyBeacon(const BeaconContent& beacon, const LocalIdentity& self);

/// Token buckets keyed by source (an address's bytes): each source may pass `rate_per_s`
/// datagrams per second on average and `burst` at once. The table holds at most
/// `max_sources` buckets; when it is full, a full (idle) bucket is recycled, and if there is
/// none, every new source shares one overflow bucket — memory stays bounded whatever the
/// number of (possibly spoofed) sources.
class SourceRateLimiter {
 public:
  SourceRateLimiter(double rate_per_s, double burst, size_t max_sources);

  /// True if a datagram from `source` at time `now_ms` (monotonic, ms) may be processed;
  /// consumes one token if so.
  bool Allow(std::string_view source, int64_t now_ms);

  /// Buckets currently held (at most max_sources).
  size_t size() const { return buckets_.size(); }

 private:
  struct Bucket {
    double tokens = 0;
    int64_t last_ms = 0;
  };
  bool Take(Bucket* bucket, int64_t now_ms);
  // Drops one bucket that has refilled completely; false if none has.
  bool EvictIdle(int64_t now_ms);

  double rate_per_ms_;
  double burst_;
  size_t max_sources_;
  std::unordered_map<std::string, Bucket> buckets_;
  Bucket overflow_;
};

/// Parses "host:port", "[v6]:port", "host", "[v6]" or a bare IPv6 literal ("fd00::1"); a
/// missing port is `default_port`. The host may be a DNS name or an IP literal (with an
/// IPv6 %scope). InvalidArgument for an empty host, a bad port (not 1-65535), unbalanced
/// brackets or characters outside letters, digits and ". - _ : %".
Status ParseHostPort(std::string_view text, uint16_t default_port, std::string* host,
                     uint16_t* port);

/// "host:port", or "[host]:port" when the host contains ':' (IPv6): core/host_port.h.
using core::JoinHostPort;

}  // namespace mesh::net

#endif  // LOCKMESH_NET_DISCOVERY_DISCOVERY_BEACON_H_
