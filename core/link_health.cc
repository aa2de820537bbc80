#include "core/link_health.h"

#include <algorithm>

namespace mesh::core {

uint64_t SilentLinkLimitMs(const LinkWatchOptions& options) {
  return std::max<uint64_t>(4 * options.gossip_interval_ms, 2 * options.election_timeout_us / 1000);
}

uint64_t StallCreditMs(const LinkWatchOptions& options, uint64_t last_tick_ms, uint64_t now_ms) {
  if (last_tick_ms == 0 || now_ms <= last_tick_ms + 4 * options.tick_ms) return 0;
  return now_ms - last_tick_ms - options.tick_ms;
}

void LinkWatch::Up(const std::string& id, uint64_t now_ms) { links_[id] = Link{now_ms, false}; }

void LinkWatch::Heard(const std::string& id, uint64_t now_ms) {
  auto it = links_.find(id);
  if (it != links_.end()) it->second.last_heard_ms = now_ms;
}

void LinkWatch::Down(const std::string& id) { links_.erase(id); }

std::vector<std::string> LinkWatch::Tick(uint64_t now_ms) {
  const uint64_t stalled = StallCreditMs(options_, last_tick_ms_, now_ms);
  if (stalled > 0) {
    for (auto& [id, link] : links_) {
      link.last_heard_ms = std::min(now_ms, link.last_heard_ms + stalled);
    }
  }
  last_tick_ms_ = now_ms;
  const uint64_t limit = silent_limit_ms();
  std::vector<std::string> silent;
  for (auto& [id, link] : links_) {
    if (now_ms - link.last_heard_ms > limit && !link.closed) {
      link.closed = true;
      silent.push_back(id);
    }
  }
  return silent;
}

}  // namespace mesh::core
