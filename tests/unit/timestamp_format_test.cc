// core/timestamp_format: strftime's E and O modifiers in timestamp resources (`_t_%Ec[1]`),
// as FLoM accepts them (it hands the format to glibc's strftime). The other formats are
// tested in resource_name_test.cc.
#include "core/timestamp_format.h"

#include <gtest/gtest.h>
#include <locale.h>
#include <time.h>

#include <string>

#include "core/resource_name.h"

namespace mesh::core {
namespace {

constexpr int64_t kSec = 1000000000;
// 2023-11-14 22:13:20.123456789 UTC (a Tuesday).
constexpr int64_t kStamp = 1700000000 * kSec + 123456789;

/// What glibc's strftime makes of `format` for kStamp, in UTC and the "C" locale.
std::string GlibcStrftime(const std::string& format) {
  const time_t t = static_cast<time_t>(kStamp / kSec);
  struct tm tm_utc {};
  gmtime_r(&t, &tm_utc);
  locale_t c_locale = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(0));
  char out[256];
  size_t n = strftime_l(out, sizeof out, format.c_str(), &tm_utc, c_locale);
  freelocale(c_locale);
  return std::string(out, n);
}

TEST(TimestampFormatModifierTest, CLocaleValues) {
  // In the "C" locale the alternative era and digits are the plain conversions.
  EXPECT_EQ(FormatTimestamp("%Ec", kStamp), "Tue Nov 14 22:13:20 2023");
  EXPECT_EQ(FormatTimestamp("%EC", kStamp), "20");
  EXPECT_EQ(FormatTimestamp("%Ex", kStamp), "11/14/23");
  EXPECT_EQ(FormatTimestamp("%EX", kStamp), "22:13:20");
  EXPECT_EQ(FormatTimestamp("%Ey", kStamp), "23");
  EXPECT_EQ(FormatTimestamp("%EY", kStamp), "2023");
  EXPECT_EQ(FormatTimestamp("%Od.%Om.%Oy %OH:%OM:%OS", kStamp), "14.11.23 22:13:20");
  EXPECT_EQ(FormatTimestamp("%Oe|%OI|%Ou|%OU|%OV|%Ow|%OW", kStamp), "14|10|2|46|46|2|46");
  EXPECT_EQ(FormatTimestamp("%OB %Ob", kStamp), "November Nov");
  // With a flag, written before the modifier as strftime reads it.
  EXPECT_EQ(FormatTimestamp("%_Od|%-OH|%^Ec", kStamp), "14|22|TUE NOV 14 22:13:20 2023");
  // %Es and %Os are the seconds since the epoch, in UTC like %s.
  EXPECT_EQ(FormatTimestamp("%Es %Os", kStamp), "1700000000 1700000000");
  // With fractions of a second.
  EXPECT_EQ(FormatTimestamp("%EX.#fff", kStamp), "22:13:20.123");
}

TEST(TimestampFormatModifierTest, AcceptedExactlyWhereStrftimeConverts) {
  // Every conversion letter with each modifier: accepted if and only if glibc's strftime
  // converts it (it prints an unsupported combination as it is), and then formatted as
  // strftime does.
  const std::string letters = "aAbBcCdDeFgGhHIjklmMpPrRSTuUVwWxXyYzZ";
  int accepted = 0;
  for (char modifier : {'E', 'O'}) {
    for (char c : letters) {
      const std::string format = std::string("%") + modifier + c;
      const std::string glibc = GlibcStrftime(format);
      const bool converts = glibc != format;
      Status st = ValidateTimestampFormat(format + " %S");
      EXPECT_EQ(st.ok(), converts)
          << format << ": glibc gives '" << glibc << "', " << st.ToString();
      if (converts) {
        ++accepted;
        EXPECT_EQ(FormatTimestamp(format, kStamp), glibc) << format;
        EXPECT_EQ(glibc, GlibcStrftime(std::string("%") + c)) << format << " differs from %" << c;
      } else {
        EXPECT_NE(st.message().find("modifies only"), std::string::npos) << st.ToString();
      }
    }
  }
  // POSIX's 6 E and 13 O forms at least (glibc converts more).
  EXPECT_GE(accepted, 19);
}

TEST(TimestampFormatModifierTest, Refusals) {
  for (const char* format : {"%Ea %S", "%Od %ES", "%OY", "%E_d %S", "%S %E", "%S %O"}) {
    EXPECT_FALSE(ValidateTimestampFormat(format).ok()) << format;
  }
  Status st = ValidateTimestampFormat("%Ea %S");
  EXPECT_NE(st.message().find("`%Ea`"), std::string::npos) << st.ToString();
  // A modifier alone is no time conversion.
  EXPECT_FALSE(ValidateTimestampFormat("%EZ").ok());
  EXPECT_TRUE(ValidateTimestampFormat("%Ey").ok());
}

TEST(TimestampFormatModifierTest, Ticks) {
  EXPECT_EQ(TimestampTickNs("%OS"), kSec);
  EXPECT_EQ(TimestampTickNs("%Ec"), kSec);
  EXPECT_EQ(TimestampTickNs("%EX"), kSec);
  EXPECT_EQ(TimestampTickNs("%OH:%OM"), 60 * kSec);
  EXPECT_EQ(TimestampTickNs("%OH"), 3600 * kSec);
  EXPECT_EQ(TimestampTickNs("%EY-%Om-%Od"), 86400 * kSec);
  int64_t ns = 0;
  std::string text;
  ASSERT_TRUE(NextUniqueTimestamp("%OH:%OM:%OS", kStamp, true, kStamp, "22:13:20", &ns, &text));
  EXPECT_EQ(text, "22:13:21");
}

TEST(TimestampFormatModifierTest, ResourceNames) {
  ResourceName parsed;
  ASSERT_TRUE(ParseResourceName("_t_%Ec[1]", &parsed).ok());
  EXPECT_EQ(parsed.type, ResourceType::kTimestamp);
  ASSERT_TRUE(ParseResourceName("_t_bar.%Od.%OH%OM%OS[3]", &parsed).ok());
  EXPECT_EQ(parsed.type, ResourceType::kTimestamp);
  EXPECT_FALSE(ParseResourceName("_t_%Ea%S[1]", &parsed).ok());
}

}  // namespace
}  // namespace mesh::core
