// core/discovery_timing: the beacon schedule (burst, jittered period, "soon"), the peer
// expiry, path stickiness and the duplicate-id report interval (rules T1-T5).
#include "core/discovery_timing.h"

#include <gtest/gtest.h>

namespace mesh::core {
namespace {

DiscoveryTiming Timing() {
  DiscoveryTiming t;
  t.burst_count = 3;
  t.burst_interval_ms = 200;
  t.period_ms = 2000;
  return t;
}

TEST(DiscoveryTimingTest, BurstThenAJitteredPeriod) {
  BeaconSchedule s(Timing());
  s.Start();  // the first beacon goes at once; two more follow a burst interval apart
  EXPECT_EQ(s.NextDelayMs(0.99), 200u);
  EXPECT_EQ(s.NextDelayMs(0.99), 200u);
  EXPECT_EQ(s.NextDelayMs(0.0), 1600u);  // -20 %
  EXPECT_EQ(s.NextDelayMs(0.5), 2000u);
  EXPECT_EQ(s.NextDelayMs(0.999), 2399u);  // just under +20 %
  EXPECT_EQ(s.NextDelayMs(-3.0), 1600u);   // clamped
  EXPECT_EQ(s.NextDelayMs(7.0), 2400u);
  s.Start();  // a restart bursts again
  EXPECT_EQ(s.NextDelayMs(0.5), 200u);
}

TEST(DiscoveryTimingTest, NeverLessThanOneMs) {
  DiscoveryTiming t = Timing();
  t.burst_count = 0;
  t.period_ms = 1;
  BeaconSchedule s(t);
  s.Start();
  EXPECT_EQ(s.NextDelayMs(0.0), 1u);  // 0.8 ms rounds down to 0
}

TEST(DiscoveryTimingTest, SoonIsAtMostOneBeaconPerBurstInterval) {
  BeaconSchedule s(Timing());
  s.Start();
  EXPECT_EQ(s.SoonDueMs(1000, std::nullopt), 1000u);  // none sent yet: now
  s.OnSent(1000);
  EXPECT_EQ(s.SoonDueMs(1050, std::nullopt), 1200u);  // a burst interval after the last
  EXPECT_EQ(s.SoonDueMs(1500, std::nullopt), 1500u);  // long after: now
  EXPECT_EQ(s.SoonDueMs(1050, 3000), 1200u);          // earlier than the armed timer
  EXPECT_EQ(s.SoonDueMs(1050, 1200), std::nullopt);   // the timer fires by then anyway
  EXPECT_EQ(s.SoonDueMs(1050, 1100), std::nullopt);
}

TEST(DiscoveryTimingTest, ExpiryDefaultsToThreePeriodsAndABurstInterval) {
  DiscoveryTiming t = Timing();
  EXPECT_EQ(PeerExpiryMs(t), 6200u);
  t.expire_ms = 900;
  EXPECT_EQ(PeerExpiryMs(t), 900u);
}

TEST(DiscoveryTimingTest, APathIsKeptWhileHeardWithinOneAndAHalfPeriods) {
  const DiscoveryTiming t = Timing();
  EXPECT_TRUE(KeepCurrentPath(t, 10000, 7000));
  EXPECT_FALSE(KeepCurrentPath(t, 10001, 7000));
}

TEST(DiscoveryTimingTest, ADuplicateIdIsReportedOncePerIntervalAndForgottenWhenQuiet) {
  EXPECT_TRUE(ReportDuplicateNow(5, std::nullopt));
  EXPECT_FALSE(ReportDuplicateNow(5 + kDuplicateReportEveryMs - 1, 5));
  EXPECT_TRUE(ReportDuplicateNow(5 + kDuplicateReportEveryMs, 5));
  const DiscoveryTiming t = Timing();
  EXPECT_FALSE(ForgetDuplicateReport(t, 6200 + kDuplicateReportEveryMs, 0));
  EXPECT_TRUE(ForgetDuplicateReport(t, 6201 + kDuplicateReportEveryMs, 0));
}

}  // namespace
}  // namespace mesh::core
