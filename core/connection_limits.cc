// core/connection_limits.h: the pending-connection limits (L1, L2).
#include "core/connection_limits.h"

#include <cstdio>

namespace mesh::core {

std::string DescribeVerdict(ConnectionVerdict verdict, const ConnectionLimitsOptions& options) {
  switch (verdict) {
    case ConnectionVerdict::kAdmit:
      return "";
    case ConnectionVerdict::kSourceFull:
      return "too many connections from one address before their handshake (limit " +
             std::to_string(options.max_pending_per_source) + ")";
    case ConnectionVerdict::kTotalFull:
      return "too many connections before their handshake (limit " +
             std::to_string(options.max_pending_total) + " in total)";
  }
  return "";
}

std::string ConnectionSourceKey(const uint8_t* a, size_t length) {
  char text[64];
  if (length == 4) {
    snprintf(text, sizeof text, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
    return text;
  }
  if (length != 16) return "?";
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  bool mapped = true;
  for (size_t i = 0; i < 12; ++i) mapped = mapped && a[i] == kMapped[i];
  if (mapped) return ConnectionSourceKey(a + 12, 4);
  snprintf(text, sizeof text, "%x:%x:%x:%x::/64", (a[0] << 8) | a[1], (a[2] << 8) | a[3],
           (a[4] << 8) | a[5], (a[6] << 8) | a[7]);
  return text;
}

ConnectionLimits::ConnectionLimits(ConnectionLimitsOptions options) : options_(options) {}

ConnectionVerdict ConnectionLimits::Admit(const std::string& source) {
  auto it = per_source_.find(source);
  size_t from_source = it == per_source_.end() ? 0 : it->second;
  if (from_source >= options_.max_pending_per_source) return ConnectionVerdict::kSourceFull;
  if (total_ >= options_.max_pending_total) return ConnectionVerdict::kTotalFull;
  if (it == per_source_.end()) {
    per_source_.emplace(source, 1);
  } else {
    it->second++;
  }
  total_++;
  return ConnectionVerdict::kAdmit;
}

void ConnectionLimits::Release(const std::string& source) {
  auto it = per_source_.find(source);
  if (it == per_source_.end()) return;
  if (--it->second == 0) per_source_.erase(it);
  total_--;
}

size_t ConnectionLimits::pending_from(const std::string& source) const {
  auto it = per_source_.find(source);
  return it == per_source_.end() ? 0 : it->second;
}

}  // namespace mesh::core
