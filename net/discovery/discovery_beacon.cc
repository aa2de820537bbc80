#include "net/discovery/discovery_beacon.h"

#include <algorithm>

#include "discovery.pb.h"

namespace mesh::net {
namespace {

bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

bool IsHostChar(char c) { return IsIdChar(c) || c == ':' || c == '%'; }

// Checks length and character set of one field; `min_bytes` 0 allows an empty field.
Status CheckField(std::string_view name, std::string_view value, size_t min_bytes, size_t max_bytes,
                  bool (*allowed)(char)) {
  if (value.size() < min_bytes) return Status::InvalidArgument(std::string(name) + " is empty");
  if (value.size() > max_bytes) {
    return Status::InvalidArgument(std::string(name) + " is longer than " +
                                   std::to_string(max_bytes) + " bytes");
  }
  for (char c : value) {
    if (!allowed(c)) {
      return Status::InvalidArgument(std::string(name) + " has a character outside its set");
    }
  }
  return Status::OK();
}

}  // namespace

Status ValidateBeacon(const BeaconContent& b) {
  MESH_RETURN_IF_ERROR(
      CheckField("cluster name", b.cluster_name, 1, kMaxClusterNameBytes, IsIdChar));
  MESH_RETURN_IF_ERROR(CheckField("node id", b.node_id, 1, kMaxNodeIdBytes, IsIdChar));
  MESH_RETURN_IF_ERROR(CheckField("cluster id", b.cluster_id, 0, kMaxClusterIdBytes, IsIdChar));
  MESH_RETURN_IF_ERROR(CheckField("peer host", b.peer_host, 0, kMaxPeerHostBytes, IsHostChar));
  MESH_RETURN_IF_ERROR(CheckField("security", b.security, 0, kMaxSecurityBytes,
                                  [](char c) { return c >= 'a' && c <= 'z'; }));
  MESH_RETURN_IF_ERROR(CheckField("fingerprint", b.fingerprint, 0, kMaxFingerprintBytes,
                                  [](char c) { return c > ' ' && c < 0x7f; }));
  if (b.instance == 0) return Status::InvalidArgument("instance is 0");
  if (b.peer_port == 0) return Status::InvalidArgument("peer port is 0");
  return Status::OK();
}

std::string EncodeBeacon(const BeaconContent& b) {
  pb::Beacon m;
  m.set_protocol_version(b.protocol_version);
  m.set_cluster_name(b.cluster_name);
  m.set_node_id(b.node_id);
  m.set_instance(b.instance);
  m.set_cluster_id(b.cluster_id);
  m.set_peer_host(b.peer_host);
  m.set_peer_port(b.peer_port);
  m.set_security(b.security);
  m.set_fingerprint(b.fingerprint);
  m.set_sequence(b.sequence);
  std::string out(kBeaconMagic);
  m.AppendToString(&out);
  return out;
}

Status DecodeBeacon(std::string_view datagram, BeaconContent* out) {
  if (datagram.size() > kMaxBeaconBytes) {
    return Status::InvalidArgument("datagram of " + std::to_string(datagram.size()) +
                                   " bytes is longer than a beacon may be");
  }
  if (datagram.substr(0, kBeaconMagic.size()) != kBeaconMagic) {
    return Status::InvalidArgument("not a lockmesh beacon (wrong magic)");
  }
  datagram.remove_prefix(kBeaconMagic.size());
  // The message is bounded by the datagram (at most kMaxBeaconBytes), so whatever protobuf
  // keeps (fields, unknown fields) is too.
  pb::Beacon m;
  if (!m.ParseFromArray(datagram.data(), static_cast<int>(datagram.size()))) {
    return Status::InvalidArgument("beacon does not parse");
  }
  if (m.peer_port() > 65535) return Status::InvalidArgument("peer port is above 65535");
  BeaconContent b;
  b.protocol_version = m.protocol_version();
  b.cluster_name = m.cluster_name();
  b.node_id = m.node_id();
  b.instance = m.instance();
  b.cluster_id = m.cluster_id();
  b.peer_host = m.peer_host();
  b.peer_port = static_cast<uint16_t>(m.peer_port());
  b.security = m.security();
  b.fingerprint = m.fingerprint();
  b.sequence = m.sequence();
  MESH_RETURN_IF_ERROR(ValidateBeacon(b));
  *out = std::move(b);
  return Status::OK();
}

const char* BeaconVerdictName(BeaconVerdict verdict) {
  switch (verdict) {
    case BeaconVerdict::kAccept:
      return "accept";
    case BeaconVerdict::kOwn:
      return "own";
    case BeaconVerdict::kDuplicateId:
      return "duplicate id";
    case BeaconVerdict::kOtherCluster:
      return "other cluster";
    case BeaconVerdict::kOtherVersion:
      return "other protocol version";
  }
  return "?";
}

BeaconVerdict ClassifyBeacon(const BeaconContent& beacon, const LocalIdentity& self) {
  if (beacon.cluster_name != self.cluster_name) return BeaconVerdict::kOtherCluster;
  if (beacon.protocol_version != self.protocol_version) return BeaconVerdict::kOtherVersion;
  if (beacon.node_id == self.node_id) {
    return beacon.instance == self.instance ? BeaconVerdict::kOwn : BeaconVerdict::kDuplicateId;
  }
  return BeaconVerdict::kAccept;
}

SourceRateLimiter::SourceRateLimiter(double rate_per_s, double burst, size_t max_sources)
    : rate_per_ms_(rate_per_s / 1000.0),
      burst_(std::max(1.0, burst)),
      max_sources_(std::max<size_t>(1, max_sources)) {
  overflow_.tokens = burst_;
}

bool SourceRateLimiter::Take(Bucket* bucket, int64_t now_ms) {
  if (now_ms > bucket->last_ms) {
    bucket->tokens = std::min(burst_, bucket->tokens + (now_ms - bucket->last_ms) * rate_per_ms_);
    bucket->last_ms = now_ms;
  }
  if (bucket->tokens < 1.0) return false;
  bucket->tokens -= 1.0;
  return true;
}

bool SourceRateLimiter::EvictIdle(int64_t now_ms) {
  for (auto it = buckets_.begin(); it != buckets_.end(); ++it) {
    double refilled = it->second.tokens + (now_ms - it->second.last_ms) * rate_per_ms_;
    if (refilled >= burst_) {
      buckets_.erase(it);
      return true;
    }
  }
  return false;
}

bool SourceRateLimiter::Allow(std::string_view source, int64_t now_ms) {
  auto it = buckets_.find(std::string(source));
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_sources_ && !EvictIdle(now_ms)) return Take(&overflow_, now_ms);
    it = buckets_.emplace(std::string(source), Bucket{burst_, now_ms}).first;
  }
  return Take(&it->second, now_ms);
}

Status ParseHostPort(std::string_view text, uint16_t default_port, std::string* host,
                     uint16_t* port) {
  std::string h;
  std::string p;
  MESH_RETURN_IF_ERROR(core::SplitHostPort(text, &h, &p));
  if (h.empty()) return Status::InvalidArgument("'" + std::string(text) + "': empty host");
  if (h.size() > kMaxPeerHostBytes) {
    return Status::InvalidArgument("'" + std::string(text) + "': host is too long");
  }
  for (char c : h) {
    if (!IsHostChar(c)) {
      return Status::InvalidArgument("'" + std::string(text) + "': bad character in host");
    }
  }
  uint16_t value = default_port;
  if (!p.empty() && !core::ParsePort(p, /*allow_zero=*/false, &value)) {
    return Status::InvalidArgument("'" + std::string(text) + "': port must be 1-65535");
  }
  *host = std::move(h);
  *port = value;
  return Status::OK();
}

}  // namespace mesh::net
