// core/log_rate_limiter: at most N log lines per key per interval, then one summary of how
// many were left out (docs/mesh.md, "Hostile load") — a pure decision; the caller passes the time.
//
// A line that a remote party can make the node write once per connection (a refusal, a
// failed handshake) must not let it fill the disk or drown the lines that matter: 15,000
// bare connections wrote 15,000 lines. Such lines go through a limiter under a key naming
// what is similar about them (the line without its address, or a category):
//  * The first `lines_per_interval` lines of a key in a window of `interval_ms` (starting at
//    its first line) are written; the rest of the window's lines are counted, not written.
//  * Once a window with lines left out has ended, its count is reported once: by the next
//    Allow of that key (Decision::suppressed, to be written before that line), or by
//    TakeSummaries (the caller's timer, so that a flood that stops is still summed up).
//  * At most `max_keys` keys are tracked; lines of further keys share one key, "" ("other
//    lines"), so memory stays bounded whatever the keys are.
// net/support/rate_limited_log.h drives it from a libuv timer.
//
// Threading: not thread-safe; one owner, on one thread.
#ifndef LOCKMESH_CORE_LOG_RATE_LIMITER_H_
#define LOCKMESH_CORE_LOG_RATE_LIMITER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mesh::core {

/// The limits. Plain data.
struct LogRateOptions {
  /// Lines of one key written per window.
  size_t lines_per_interval = 10;
  /// Length of a key's window, from its first line.
  uint64_t interval_ms = 10000;
  /// Keys tracked at once (further keys share the key "").
  size_t max_keys = 256;
};

/// Lines of one key that were not written in a window that has ended.
struct SuppressedLines {
  std::string key;     // "" for the shared key of lines beyond max_keys
  uint64_t count = 0;  // lines left out
};

/// The summary line for `s`: "suppressed K similar lines in the last S s: KEY" (or "...: other
/// lines" for the shared key).
std::string SummaryLine(const SuppressedLines& s, uint64_t interval_ms);

class LogRateLimiter {
 public:
  explicit LogRateLimiter(LogRateOptions options = {});

  /// What to do with one line of `key` at `now_ms` (a monotonic clock, non-decreasing).
  struct Decision {
    /// Write the line.
    bool write = false;
    /// > 0: lines of this key left out in its previous window, to be reported (SummaryLine)
    /// before this one. Counted once.
    uint64_t suppressed = 0;
  };
  Decision Allow(std::string_view key, uint64_t now_ms);

  /// The keys whose window has ended by `now_ms` with lines left out, each reported once;
  /// windows that have ended are forgotten.
  std::vector<SuppressedLines> TakeSummaries(uint64_t now_ms);
  /// When TakeSummaries will next have something to report (the end of the earliest window
  /// with lines left out), or nullopt if none.
  std::optional<uint64_t> NextSummaryMs() const;

  /// Keys tracked now (for tests).
  size_t keys() const { return windows_.size(); }
  const LogRateOptions& options() const { return options_; }

 private:
  struct Window {
    uint64_t start_ms = 0;
    size_t written = 0;
    uint64_t suppressed = 0;
  };
  // Forgets windows that have ended without lines left out (making room for new keys).
  void ForgetQuietEnded(uint64_t now_ms);

  LogRateOptions options_;
  std::unordered_map<std::string, Window> windows_;
};

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_LOG_RATE_LIMITER_H_
