// net/support/rate_limited_log: log lines that a remote party can repeat at will (one per
// connection it opens), written through core/log_rate_limiter on a libuv loop: at most N
// lines per key per interval, then "suppressed K similar lines in S s: KEY" once the
// window ends (from a timer, so a flood that stops is summed up too).
//
// Lifetime and threading: the loop's thread only. Close(done) before destroying it; the
// timer is created on the first line left out, so a limiter that never left one out has no
// handle and Close returns false at once.
#ifndef LOCKMESH_NET_SUPPORT_RATE_LIMITED_LOG_H_
#define LOCKMESH_NET_SUPPORT_RATE_LIMITED_LOG_H_

#include <uv.h>

#include <functional>
#include <string>
#include <string_view>

#include "core/log_rate_limiter.h"

namespace mesh::net {

class RateLimitedLog {
 public:
  /// Where written lines go (no newline).
  using Sink = std::function<void(const std::string& line)>;

  RateLimitedLog(uv_loop_t* loop, Sink sink, core::LogRateOptions options = {});
  /// Requires Close() to have completed if it returned true.
  ~RateLimitedLog() = default;
  RateLimitedLog(const RateLimitedLog&) = delete;
  RateLimitedLog& operator=(const RateLimitedLog&) = delete;

  /// Writes `line` unless `key` (what is similar about such lines: the line without its
  /// address, say) already had its share of the current window. After Close, writes
  /// nothing.
  void Write(std::string_view key, const std::string& line);

  /// Writes the counts of every line left out so far (windows ended or not), and closes the
  /// timer. True: `done` runs from the timer's close callback; false: there was no timer,
  /// `done` is not called. Idempotent (a second call returns false).
  bool Close(std::function<void()> done);

  /// Lines left out so far in total (for tests and `status`).
  uint64_t suppressed_total() const { return suppressed_total_; }
  const core::LogRateOptions& options() const { return limiter_.options(); }

 private:
  void WriteSummaries(uint64_t now_ms);
  void Arm();
  static void OnTimer(uv_timer_t* t);

  uv_loop_t* loop_;
  Sink sink_;
  core::LogRateLimiter limiter_;
  uv_timer_t timer_;
  bool timer_made_ = false;
  bool closed_ = false;
  uint64_t suppressed_total_ = 0;
  std::function<void()> done_;
};

}  // namespace mesh::net

#endif  // LOCKMESH_NET_SUPPORT_RATE_LIMITED_LOG_H_
