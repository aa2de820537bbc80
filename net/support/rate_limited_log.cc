// net/support/rate_limited_log.h: core/log_rate_limiter with a libuv timer for the summaries.
#include "net/support/rate_limited_log.h"

#include <limits>

namespace mesh::net {

RateLimitedLog::RateLimitedLog(uv_loop_t* loop, Sink sink, core::LogRateOptions options)
    : loop_(loop), sink_(std::move(sink)), limiter_(options) {}

void RateLimitedLog::Write(std::string_view key, const std::string& line) {
  if (closed_) return;
  core::LogRateLimiter::Decision d = limiter_.Allow(key, uv_now(loop_));
  if (d.suppressed > 0) {
    sink_(core::SummaryLine({std::string(key), d.suppressed}, limiter_.options().interval_ms));
  }
  if (d.write) {
    sink_(line);
    return;
  }
  suppressed_total_++;
  Arm();
}

void RateLimitedLog::WriteSummaries(uint64_t now_ms) {
  for (const core::SuppressedLines& s : limiter_.TakeSummaries(now_ms)) {
    sink_(core::SummaryLine(s, limiter_.options().interval_ms));
  }
}

void RateLimitedLog::Arm() {
  if (!timer_made_) {
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    timer_made_ = true;
  }
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_))) return;
  std::optional<uint64_t> next = limiter_.NextSummaryMs();
  if (!next) return;
  uint64_t now = uv_now(loop_);
  uv_timer_start(&timer_, OnTimer, *next > now ? *next - now : 0, 0);
}

void RateLimitedLog::OnTimer(uv_timer_t* t) {
  auto* self = static_cast<RateLimitedLog*>(t->data);
  self->WriteSummaries(uv_now(self->loop_));
  self->Arm();
}

bool RateLimitedLog::Close(std::function<void()> done) {
  if (closed_) return false;
  closed_ = true;
  WriteSummaries(std::numeric_limits<uint64_t>::max());
  if (!timer_made_) return false;
  done_ = std::move(done);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) {
    auto* self = static_cast<RateLimitedLog*>(h->data);
    auto done = std::move(self->done_);
    if (done) done();
  });
  return true;
}

}  // namespace mesh::net
