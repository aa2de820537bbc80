// Unit tests of core/resource_name and core/timestamp_format.
#include "core/resource_name.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>

#include <string>
#include <vector>

#include "core/timestamp_format.h"

namespace mesh::core {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ResourceName MustParse(const std::string& name) {
  ResourceName r;
  const Status s = ParseResourceName(name, &r);
  EXPECT_TRUE(s.ok()) << name << ": " << s.ToString();
  return r;
}

TEST(ResourceNameTest, Simple) {
  for (const char* name : {"R", "apple", "R1", "a_b", "a-b", "Zz9_-x", "_RESOURCE"}) {
    SCOPED_TRACE(name);
    const ResourceName r = MustParse(name);
    EXPECT_EQ(r.type, ResourceType::kSimple);
    EXPECT_EQ(r.name, name);
    EXPECT_EQ(r.queue_key, name);
    EXPECT_EQ(r.capacity, 1u);
    EXPECT_TRUE(r.elements.empty());
    EXPECT_TRUE(r.path.empty());
  }
}

TEST(ResourceNameTest, Numeric) {
  ResourceName r = MustParse("limit[2]");
  EXPECT_EQ(r.type, ResourceType::kNumeric);
  EXPECT_EQ(r.capacity, 2u);
  EXPECT_EQ(r.queue_key, "limit[2]");
  EXPECT_EQ(MustParse("a_b-c[1]").capacity, 1u);
  EXPECT_EQ(MustParse("x[007]").capacity, 7u);
  EXPECT_EQ(MustParse("x[18446744073709551615]").capacity, 18446744073709551615ull);
}

TEST(ResourceNameTest, Set) {
  ResourceName r = MustParse("cyan.magenta.yellow.black");
  EXPECT_EQ(r.type, ResourceType::kSet);
  EXPECT_THAT(r.elements, ElementsAre("cyan", "magenta", "yellow", "black"));
  EXPECT_EQ(r.capacity, 4u);
  EXPECT_EQ(r.queue_key, "cyan.magenta.yellow.black");
  EXPECT_THAT(MustParse("1.2").elements, ElementsAre("1", "2"));
  EXPECT_THAT(MustParse("a_1.b-2._c").elements, ElementsAre("a_1", "b-2", "_c"));
}

TEST(ResourceNameTest, Hierarchical) {
  ResourceName r = MustParse("/foo/bar/apple");
  EXPECT_EQ(r.type, ResourceType::kHierarchical);
  EXPECT_THAT(r.path, ElementsAre("foo", "bar", "apple"));
  EXPECT_EQ(r.queue_key, "/foo");
  EXPECT_EQ(r.name, "/foo/bar/apple");
  ResourceName root = MustParse("/foo");
  EXPECT_THAT(root.path, ElementsAre("foo"));
  EXPECT_EQ(root.queue_key, "/foo");
  // Any non-control byte is allowed in a component, as in FLoM.
  ResourceName odd = MustParse("/a b/c.d/[x]/\xc3\xa9");
  EXPECT_THAT(odd.path, ElementsAre("a b", "c.d", "[x]", "\xc3\xa9"));
  EXPECT_EQ(odd.queue_key, "/a b");
}

TEST(ResourceNameTest, Sequences) {
  ResourceName s = MustParse("_s_id[1]");
  EXPECT_EQ(s.type, ResourceType::kSequence);
  EXPECT_EQ(s.capacity, 1u);
  EXPECT_EQ(s.queue_key, "_s_id[1]");
  ResourceName t = MustParse("_S_tx-1[5]");
  EXPECT_EQ(t.type, ResourceType::kTransactionalSequence);
  EXPECT_EQ(t.capacity, 5u);
}

TEST(ResourceNameTest, Timestamp) {
  ResourceName t = MustParse("_t_bar.%x.%X[3]");
  EXPECT_EQ(t.type, ResourceType::kTimestamp);
  EXPECT_EQ(t.capacity, 3u);
  EXPECT_EQ(t.format, "bar.%x.%X");
  EXPECT_EQ(t.queue_key, "_t_bar.%x.%X[3]");
  EXPECT_EQ(MustParse("_t_%Y-%m-%d %H:%M:%S.#ffffff[1]").format, "%Y-%m-%d %H:%M:%S.#ffffff");
  EXPECT_EQ(MustParse("_t_#f[2]").format, "#f");
  EXPECT_EQ(MustParse("_t_%-H_%s%%[2]").format, "%-H_%s%%");
}

TEST(ResourceNameTest, MaxLength) {
  const std::string ok(kMaxResourceNameLength, 'a');
  EXPECT_EQ(MustParse(ok).type, ResourceType::kSimple);
  ResourceName r;
  const Status s = ParseResourceName(ok + "a", &r);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_THAT(s.message(), HasSubstr("longer than 512"));
  const std::string long_path = "/" + std::string(kMaxResourceNameLength, 'x');
  EXPECT_FALSE(ParseResourceName(long_path, &r).ok());
}

struct Rejection {
  std::string name;
  std::string reason;  // a substring of the message
};

// Shown by GoogleTest for each case: the rejected name, escaped.
void PrintTo(const Rejection& r, std::ostream* os) { *os << ::testing::PrintToString(r.name); }

class ResourceNameRejectTest : public ::testing::TestWithParam<Rejection> {};

TEST_P(ResourceNameRejectTest, Rejected) {
  ResourceName r;
  r.name = "untouched";
  const Status s = ParseResourceName(GetParam().name, &r);
  ASSERT_FALSE(s.ok()) << "accepted: " << GetParam().name;
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_THAT(s.message(), HasSubstr(GetParam().reason));
  EXPECT_THAT(s.message(), HasSubstr("accepted forms"));
  EXPECT_EQ(r.name, "untouched");  // out is left alone on error
}

INSTANTIATE_TEST_SUITE_P(
    All, ResourceNameRejectTest,
    ::testing::Values(
        Rejection{"", "empty"},
        // simple
        Rejection{"1abc", "must start with a letter"},
        Rejection{"_abc", "must start with a letter"}, Rejection{"-a", "must start with a letter"},
        Rejection{"a b", "may only contain"}, Rejection{"a$", "may only contain"},
        Rejection{"a\tb", "control characters"},
        Rejection{"_RESOURCE2", "must start with a letter"},
        // numeric
        Rejection{"x[0]", "at least 1"}, Rejection{"x[]", "decimal number"},
        Rejection{"x[-1]", "decimal number"}, Rejection{"x[a]", "decimal number"},
        Rejection{"x[1", "numeric"}, Rejection{"x]", "without `[`"},
        Rejection{"[2]", "name of a numeric resource"}, Rejection{"9x[2]", "name of a numeric"},
        Rejection{"x[2]y", "numeric"}, Rejection{"x[18446744073709551616]", "too large"},
        // set
        Rejection{"a..b", "empty elements"}, Rejection{".a", "empty elements"},
        Rejection{"a.", "empty elements"}, Rejection{"a.b.a", "appears twice"},
        Rejection{"a.b c", "only contain"}, Rejection{"a.b[2]", "only contain"},
        // hierarchical
        Rejection{"/", "must not end with"}, Rejection{"/a/", "must not end with"},
        Rejection{"//a", "empty components"}, Rejection{"/a//b", "empty components"},
        Rejection{"/a/b\n", "control characters"}, Rejection{"/a\x7f", "control characters"},
        // sequences
        Rejection{"_s_id", "capacity suffix"}, Rejection{"_s_[2]", "name of a sequence"},
        Rejection{"_S_1a[2]", "name of a sequence"}, Rejection{"_s_a.b[2]", "name of a sequence"},
        Rejection{"_S_x[0]", "at least 1"}, Rejection{"_s_x[y]", "decimal"},
        // timestamps
        Rejection{"_t_%H", "capacity suffix"}, Rejection{"_t_[1]", "at least one time"},
        Rejection{"_t_abc[1]", "at least one time"}, Rejection{"_t_%%[1]", "at least one time"},
        Rejection{"_t_%Z%z[1]", "at least one time"}, Rejection{"_t_%Q[1]", "unsupported"},
        Rejection{"_t_%n%S[1]", "unsupported"}, Rejection{"_t_%S%[1]", "incomplete"},
        Rejection{"_t_%S#[1]", "fraction"}, Rejection{"_t_%S#fffffff[1]", "fraction"},
        Rejection{"_t_%S#g[1]", "fraction"}, Rejection{"_t_%S/x[1]", "not `/`"},
        Rejection{"_t_%S\x01[1]", "control character"}, Rejection{"_t_%S[0]", "at least 1"}),
    // Readable test names: the case's index and the expected reason, e.g. "3_must_start_with".
    [](const ::testing::TestParamInfo<Rejection>& info) {
      std::string name = std::to_string(info.index) + "_";
      for (char c : info.param.reason) {
        name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      }
      return name;
    });

TEST(ResourceNameTest, TypeNames) {
  EXPECT_STREQ(ResourceTypeName(ResourceType::kSimple), "simple");
  EXPECT_STREQ(ResourceTypeName(ResourceType::kNumeric), "numeric");
  EXPECT_STREQ(ResourceTypeName(ResourceType::kSet), "set");
  EXPECT_STREQ(ResourceTypeName(ResourceType::kHierarchical), "hierarchical");
  EXPECT_STREQ(ResourceTypeName(ResourceType::kSequence), "sequence");
  EXPECT_STREQ(ResourceTypeName(ResourceType::kTransactionalSequence), "transactional-sequence");
  EXPECT_STREQ(ResourceTypeName(ResourceType::kTimestamp), "timestamp");
}

// ---------------------------------------------------------------- timestamp formats

constexpr int64_t kSec = 1000000000;
// 2023-11-14 22:13:20.123456789 UTC (a Tuesday).
constexpr int64_t kStamp = 1700000000 * kSec + 123456789;

TEST(ResourceNameTimestampFormatTest, FormatsInUtc) {
  EXPECT_EQ(FormatTimestamp("%Y-%m-%d %H:%M:%S", kStamp), "2023-11-14 22:13:20");
  EXPECT_EQ(FormatTimestamp("%H:%M:%S.#f", kStamp), "22:13:20.1");
  EXPECT_EQ(FormatTimestamp("%S.#fff", kStamp), "20.123");
  EXPECT_EQ(FormatTimestamp("#ffffff", kStamp), "123456");
  EXPECT_EQ(FormatTimestamp("%s", kStamp), "1700000000");
  EXPECT_EQ(FormatTimestamp("%a %b %%", kStamp), "Tue Nov %");
  EXPECT_EQ(FormatTimestamp("%x %X", kStamp), "11/14/23 22:13:20");  // "C" locale
  EXPECT_EQ(FormatTimestamp("%Z%z", kStamp), "GMT+0000");
  EXPECT_EQ(FormatTimestamp("bar.%H", 0), "bar.00");
  EXPECT_EQ(FormatTimestamp("%S.#ff", 5 * kSec + 70000000), "05.07");  // zero-padded
}

TEST(ResourceNameTimestampFormatTest, BeforeEpochUsesFloor) {
  // -0.5 s is 1969-12-31 23:59:59.5.
  EXPECT_EQ(FormatTimestamp("%Y %H:%M:%S.#f", -kSec / 2), "1969 23:59:59.5");
  EXPECT_EQ(FormatTimestamp("%s", -kSec / 2), "-1");
}

TEST(ResourceNameTimestampFormatTest, Ticks) {
  EXPECT_EQ(TimestampTickNs("%H:%M:%S"), kSec);
  EXPECT_EQ(TimestampTickNs("%X"), kSec);
  EXPECT_EQ(TimestampTickNs("%S.#fff"), 1000000);
  EXPECT_EQ(TimestampTickNs("#ffffff %S"), 1000);
  EXPECT_EQ(TimestampTickNs("#f"), 100000000);
  EXPECT_EQ(TimestampTickNs("%H%M"), 60 * kSec);
  EXPECT_EQ(TimestampTickNs("%H"), 3600 * kSec);
  EXPECT_EQ(TimestampTickNs("%Y-%m-%d"), 86400 * kSec);
  EXPECT_EQ(TimestampTickNs("%Y"), 86400 * kSec);
}

TEST(ResourceNameTimestampFormatTest, NextUniqueKeepsAFreshStamp) {
  int64_t ns = 0;
  std::string text;
  ASSERT_TRUE(NextUniqueTimestamp("%S", kStamp, false, 0, "", &ns, &text));
  EXPECT_EQ(ns, kStamp);
  EXPECT_EQ(text, "20");
  ASSERT_TRUE(NextUniqueTimestamp("%S", kStamp + kSec, true, kStamp, "20", &ns, &text));
  EXPECT_EQ(ns, kStamp + kSec);
  EXPECT_EQ(text, "21");
}

TEST(ResourceNameTimestampFormatTest, NextUniqueAdvancesToNextTick) {
  int64_t ns = 0;
  std::string text;
  // Same second: moves to the start of the next second.
  ASSERT_TRUE(NextUniqueTimestamp("%H:%M:%S", kStamp, true, kStamp, "22:13:20", &ns, &text));
  EXPECT_EQ(ns, 1700000001 * kSec);
  EXPECT_EQ(text, "22:13:21");
  // Earlier than the last value: never goes back in time.
  ASSERT_TRUE(
      NextUniqueTimestamp("%H:%M:%S", kStamp - 5 * kSec, true, kStamp, "22:13:20", &ns, &text));
  EXPECT_EQ(text, "22:13:21");
  // Milliseconds.
  ASSERT_TRUE(NextUniqueTimestamp("%S.#fff", kStamp, true, kStamp, "20.123", &ns, &text));
  EXPECT_EQ(text, "20.124");
  EXPECT_EQ(ns, 1700000000 * kSec + 124000000);
  // Days.
  ASSERT_TRUE(NextUniqueTimestamp("%Y-%m-%d", kStamp, true, kStamp, "2023-11-14", &ns, &text));
  EXPECT_EQ(text, "2023-11-15");
  // Months: several day steps.
  ASSERT_TRUE(NextUniqueTimestamp("%Y-%m", kStamp, true, kStamp, "2023-11", &ns, &text));
  EXPECT_EQ(text, "2023-12");
  // Hours shown only as AM/PM: the next distinct value is the next AM.
  ASSERT_TRUE(NextUniqueTimestamp("%p", kStamp, true, kStamp, "PM", &ns, &text));
  EXPECT_EQ(text, "AM");
}

}  // namespace
}  // namespace mesh::core
