// Tests of core/time_text: ISO 8601 UTC both ways, the log stamp, the readable form.
#include "core/time_text.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace mesh::core {
namespace {

constexpr int64_t kStamp = 1795369200;  // 2026-11-22T17:40:00Z

TEST(TimeTextTest, IsoUtcRoundTrips) {
  EXPECT_EQ(FormatIsoUtc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatIsoUtc(kStamp), "2026-11-22T17:40:00Z");
  EXPECT_EQ(FormatIsoUtc(-1), "1969-12-31T23:59:59Z");
  EXPECT_EQ(FormatIsoUtc(951782400), "2000-02-29T00:00:00Z");  // a leap day
  for (int64_t t : {int64_t{0}, kStamp, int64_t{-86400}, int64_t{253402300799}}) {
    int64_t back = 1;
    ASSERT_TRUE(ParseIsoUtc(FormatIsoUtc(t), &back)) << t;
    EXPECT_EQ(back, t);
  }
}

TEST(TimeTextTest, ParseIsoUtcRefusesOtherForms) {
  int64_t t = 42;
  for (const char* bad :
       {"", "2026-11-22", "2026-11-22T17:40:00", "2026-11-22T17:40:00+01:00",
        "2026-11-22 17:40:00Z", "2026-11-22T17:40:00Zjunk", "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z", "2026-01-32T00:00:00Z", "2026-01-01T24:00:00Z",
        "2026-01-01T00:60:00Z", "2026-01-01T00:00:61Z", "2026-01-01T-1:00:00Z"}) {
    EXPECT_FALSE(ParseIsoUtc(bad, &t)) << bad;
  }
  EXPECT_EQ(t, 42);
  ASSERT_TRUE(ParseIsoUtc("2016-12-31T23:59:60Z", &t));  // a leap second: the next minute
  EXPECT_EQ(FormatIsoUtc(t), "2017-01-01T00:00:00Z");
}

TEST(TimeTextTest, LogTimeHasTruncatedMilliseconds) {
  EXPECT_EQ(FormatLogTime(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatLogTime(kStamp * 1000000000 + 123999999), "2026-11-22T17:40:00.123Z");
  EXPECT_EQ(FormatLogTime(kStamp * 1000000000 + 999999999), "2026-11-22T17:40:00.999Z");
  EXPECT_EQ(FormatLogTime(-1), "1969-12-31T23:59:59.999Z");  // before 1970: floor, not toward 0
}

TEST(TimeTextTest, UnixFromUtcFields) {
  EXPECT_EQ(UnixFromUtc(1970, 1, 1, 0, 0, 0), 0);
  EXPECT_EQ(UnixFromUtc(2026, 11, 22, 17, 40, 0), kStamp);
  EXPECT_EQ(UnixFromUtc(2000, 2, 29, 0, 0, 0), 951782400);
  EXPECT_EQ(UnixFromUtc(1969, 12, 31, 23, 59, 59), -1);
  EXPECT_EQ(UnixFromUtc(2026, 11, 22, 17, 39, 60), kStamp);  // normalised
}

TEST(TimeTextTest, ReadableUtc) {
  EXPECT_EQ(FormatUtcText(kStamp), "2026-11-22 17:40:00 UTC");
  EXPECT_EQ(FormatUtcText(0), "1970-01-01 00:00:00 UTC");
}

}  // namespace
}  // namespace mesh::core
