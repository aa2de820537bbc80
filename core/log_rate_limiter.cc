// core/log_rate_limiter.h: N lines per key per window, then a summary.
#include "core/log_rate_limiter.h"

#include <algorithm>

namespace mesh::core {

std::string SummaryLine(const SuppressedLines& s, uint64_t interval_ms) {
  std::string seconds = std::to_string(interval_ms / 1000);
  if (interval_ms % 1000 != 0) seconds += "." + std::to_string(interval_ms % 1000 / 100);
  return "suppressed " + std::to_string(s.count) + " similar line" + (s.count == 1 ? "" : "s") +
         " in " + seconds + " s: " + (s.key.empty() ? std::string("other lines") : s.key);
}

LogRateLimiter::LogRateLimiter(LogRateOptions options) : options_(options) {}

LogRateLimiter::Decision LogRateLimiter::Allow(std::string_view key, uint64_t now_ms) {
  std::string k(key);
  auto it = windows_.find(k);
  if (it == windows_.end()) {
    if (windows_.size() >= options_.max_keys) ForgetQuietEnded(now_ms);
    if (windows_.size() >= options_.max_keys) k.clear();  // the shared key (one more entry)
    auto [found, inserted] = windows_.try_emplace(k);
    it = found;
    if (inserted) it->second.start_ms = now_ms;
  }
  Decision d;
  Window& w = it->second;
  if (now_ms >= w.start_ms + options_.interval_ms) {
    d.suppressed = w.suppressed;
    w = Window{now_ms, 0, 0};
  }
  if (w.written < options_.lines_per_interval) {
    w.written++;
    d.write = true;
  } else {
    w.suppressed++;
  }
  return d;
}

std::vector<SuppressedLines> LogRateLimiter::TakeSummaries(uint64_t now_ms) {
  std::vector<SuppressedLines> out;
  for (auto it = windows_.begin(); it != windows_.end();) {
    if (now_ms < it->second.start_ms + options_.interval_ms) {
      ++it;
      continue;
    }
    if (it->second.suppressed > 0) out.push_back({it->first, it->second.suppressed});
    it = windows_.erase(it);
  }
  std::sort(out.begin(), out.end(),
            [](const SuppressedLines& a, const SuppressedLines& b) { return a.key < b.key; });
  return out;
}

std::optional<uint64_t> LogRateLimiter::NextSummaryMs() const {
  std::optional<uint64_t> next;
  for (const auto& [key, w] : windows_) {
    if (w.suppressed == 0) continue;
    uint64_t end = w.start_ms + options_.interval_ms;
    if (!next || end < *next) next = end;
  }
  return next;
}

void LogRateLimiter::ForgetQuietEnded(uint64_t now_ms) {
  for (auto it = windows_.begin(); it != windows_.end();) {
    if (it->second.suppressed == 0 && now_ms >= it->second.start_ms + options_.interval_ms) {
      it = windows_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace mesh::core
