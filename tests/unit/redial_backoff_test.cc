// Unit tests of core/redial_backoff: the redial delay doubles per failure from the minimum up
// to the maximum (B1), a permanent refusal waits the maximum (B2), and jitter keeps every delay
// in [base / 2, base) (B3).
#include "core/redial_backoff.h"

#include <gtest/gtest.h>

namespace mesh::core {
namespace {

TEST(RedialBackoff, TheBaseDoublesPerFailureUpToTheMaximum) {
  // unit = 1 - epsilon: just under the base; unit = 0: half the base.
  const double top = 0.999999999;
  EXPECT_EQ(RedialDelayMs(100, 10'000, 0, false, 0.0), 50u);
  EXPECT_EQ(RedialDelayMs(100, 10'000, 0, false, top), 99u);
  EXPECT_EQ(RedialDelayMs(100, 10'000, 1, false, 0.0), 100u);
  EXPECT_EQ(RedialDelayMs(100, 10'000, 3, false, 0.0), 400u);
  EXPECT_EQ(RedialDelayMs(100, 10'000, 6, false, 0.0), 3200u);
  EXPECT_EQ(RedialDelayMs(100, 10'000, 7, false, 0.0), 5000u) << "capped at 10 s";
  EXPECT_EQ(RedialDelayMs(100, 10'000, 1'000'000, false, 0.0), 5000u) << "no overflow";
  EXPECT_EQ(RedialDelayMs(100, 1000, 4, false, 0.0), 500u) << "a node's 1 s cap";
}

TEST(RedialBackoff, APermanentRefusalWaitsTheLongest) {
  EXPECT_EQ(RedialDelayMs(100, 10'000, 0, true, 0.0), 5000u);
  EXPECT_EQ(RedialDelayMs(100, 10'000, 0, true, 0.5), 7500u);
}

TEST(RedialBackoff, JitterStaysInTheUpperHalfOfTheBase) {
  for (int failures = 0; failures < 25; ++failures) {
    const uint64_t base = failures < 7 ? 100u << failures : 10'000u;
    for (double unit = 0.0; unit < 1.0; unit += 0.01) {
      const uint64_t d = RedialDelayMs(100, 10'000, failures, false, unit);
      EXPECT_GE(d, base / 2) << failures << " " << unit;
      EXPECT_LT(d, base) << failures << " " << unit;
    }
  }
  // Out-of-range draws are clamped, not extrapolated.
  EXPECT_EQ(RedialDelayMs(100, 10'000, 0, false, -3.0), 50u);
  EXPECT_EQ(RedialDelayMs(100, 10'000, 0, false, 7.0), 100u);
  EXPECT_EQ(RedialDelayMs(100, 10'000, -1, false, 0.0), 50u) << "negative failures: none";
}

}  // namespace
}  // namespace mesh::core
