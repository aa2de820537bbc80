// Unit tests of core/log_rate_limiter: N lines per key per window,
// the count of the rest reported once (with the next line or by TakeSummaries), keys
// independent, and memory bounded whatever the keys.
#include "core/log_rate_limiter.h"

#include <gtest/gtest.h>

#include <string>

namespace mesh::core {
namespace {

LogRateOptions Options(size_t lines, uint64_t interval_ms, size_t max_keys = 256) {
  LogRateOptions o;
  o.lines_per_interval = lines;
  o.interval_ms = interval_ms;
  o.max_keys = max_keys;
  return o;
}

TEST(LogRateLimiter, TheFirstLinesOfAWindowAreWrittenAndTheRestCounted) {
  LogRateLimiter limiter(Options(3, 1000));
  int written = 0;
  for (int i = 0; i < 15000; ++i) {
    LogRateLimiter::Decision d = limiter.Allow("refused", 100 + i % 500);
    written += d.write ? 1 : 0;
    EXPECT_EQ(d.suppressed, 0u);
  }
  EXPECT_EQ(written, 3);
  EXPECT_EQ(limiter.NextSummaryMs(), 1100u);
  EXPECT_TRUE(limiter.TakeSummaries(1099).empty());  // the window has not ended
  std::vector<SuppressedLines> s = limiter.TakeSummaries(1100);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].key, "refused");
  EXPECT_EQ(s[0].count, 14997u);
  // Reported once.
  EXPECT_TRUE(limiter.TakeSummaries(5000).empty());
  EXPECT_FALSE(limiter.NextSummaryMs().has_value());
  EXPECT_EQ(limiter.keys(), 0u);
}

TEST(LogRateLimiter, TheNextLineAfterTheWindowCarriesTheCountOnce) {
  LogRateLimiter limiter(Options(1, 1000));
  EXPECT_TRUE(limiter.Allow("k", 0).write);
  EXPECT_FALSE(limiter.Allow("k", 10).write);
  EXPECT_FALSE(limiter.Allow("k", 999).write);
  LogRateLimiter::Decision d = limiter.Allow("k", 1000);
  EXPECT_TRUE(d.write);
  EXPECT_EQ(d.suppressed, 2u);
  EXPECT_TRUE(limiter.TakeSummaries(100000).empty());  // not again
  // A new window, written again.
  EXPECT_TRUE(limiter.Allow("k", 200000).write);
}

TEST(LogRateLimiter, KeysAreLimitedIndependently) {
  LogRateLimiter limiter(Options(2, 1000));
  EXPECT_TRUE(limiter.Allow("a", 0).write);
  EXPECT_TRUE(limiter.Allow("a", 0).write);
  EXPECT_FALSE(limiter.Allow("a", 0).write);
  EXPECT_TRUE(limiter.Allow("b", 500).write);
  EXPECT_TRUE(limiter.Allow("b", 500).write);
  EXPECT_FALSE(limiter.Allow("b", 500).write);
  EXPECT_FALSE(limiter.Allow("b", 500).write);
  EXPECT_EQ(limiter.NextSummaryMs(), 1000u);
  std::vector<SuppressedLines> s = limiter.TakeSummaries(1000);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].key, "a");
  EXPECT_EQ(s[0].count, 1u);
  EXPECT_EQ(limiter.NextSummaryMs(), 1500u);
  s = limiter.TakeSummaries(1500);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].key, "b");
  EXPECT_EQ(s[0].count, 2u);
}

TEST(LogRateLimiter, AQuietKeyHasNothingToReport) {
  LogRateLimiter limiter(Options(5, 1000));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.Allow("k", i).write);
  EXPECT_FALSE(limiter.NextSummaryMs().has_value());
  EXPECT_TRUE(limiter.TakeSummaries(10000).empty());
  EXPECT_EQ(limiter.keys(), 0u);  // its window ended: forgotten
}

TEST(LogRateLimiter, KeysBeyondTheBoundShareOneKey) {
  LogRateLimiter limiter(Options(1, 1000, 4));
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(limiter.Allow("k" + std::to_string(i), 0).write);
  // 1,000 more distinct keys (an address in each line, say) in the same window: one shared
  // key, one line written, the rest counted.
  int written = 0;
  for (int i = 0; i < 1000; ++i) written += limiter.Allow("x" + std::to_string(i), 1).write;
  EXPECT_EQ(written, 1);
  EXPECT_LE(limiter.keys(), 5u);
  std::vector<SuppressedLines> s = limiter.TakeSummaries(1001);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].key, "");
  EXPECT_EQ(s[0].count, 999u);
  EXPECT_EQ(SummaryLine(s[0], 1000), "suppressed 999 similar lines in 1 s: other lines");
  // Once the quiet windows have ended, new keys get their own entries again.
  EXPECT_TRUE(limiter.Allow("fresh", 5000).write);
  EXPECT_FALSE(limiter.Allow("fresh", 5000).write);
  s = limiter.TakeSummaries(6000);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].key, "fresh");
}

TEST(LogRateLimiter, SummaryLineSaysHowManyAndWhat) {
  EXPECT_EQ(SummaryLine({"refused peer: bad", 1}, 10000),
            "suppressed 1 similar line in 10 s: refused peer: bad");
  EXPECT_EQ(SummaryLine({"k", 42}, 2500), "suppressed 42 similar lines in 2.5 s: k");
}

TEST(LogRateLimiter, TheDefaultsAreThoseDocumented) {
  LogRateLimiter limiter;
  EXPECT_EQ(limiter.options().lines_per_interval, 10u);
  EXPECT_EQ(limiter.options().interval_ms, 10000u);
}

}  // namespace
}  // namespace mesh::core
