// Tests of core/hex: encoding both cases, decoding and its refusals, 64-bit ids.
#include "core/hex.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace mesh::core {
namespace {

using ::testing::HasSubstr;

TEST(HexTest, EncodesEveryByteInEitherCase) {
  EXPECT_EQ(HexEncode(""), "");
  EXPECT_EQ(HexEncode(std::string("\x00\x01\xab\xff", 4)), "0001abff");
  EXPECT_EQ(HexEncode("\xab\xcd", HexCase::kUpper), "ABCD");
  std::string out = "x";
  AppendHexByte(&out, 0x0f);
  AppendHexByte(&out, 0xe0, HexCase::kUpper);
  EXPECT_EQ(out, "x0fE0");
}

TEST(HexTest, DecodesWhatItEncodesInEitherCase) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  std::string back;
  ASSERT_TRUE(HexDecode(HexEncode(all), &back).ok());
  EXPECT_EQ(back, all);
  ASSERT_TRUE(HexDecode(HexEncode(all, HexCase::kUpper), &back).ok());
  EXPECT_EQ(back, all);
  ASSERT_TRUE(HexDecode("aBcD", &back).ok());
  EXPECT_EQ(back, "\xab\xcd");
  ASSERT_TRUE(HexDecode("", &back).ok());
  EXPECT_EQ(back, "");
}

TEST(HexTest, RefusesBadHexAndLeavesTheOutputAlone) {
  std::string out = "kept";
  Status odd = HexDecode("abc", &out);
  EXPECT_TRUE(odd.IsInvalidArgument());
  EXPECT_THAT(odd.message(), HasSubstr("odd"));
  for (const char* bad : {"zz", "0g", "g0", " 0", "0x12", "+1", "ab:c"}) {
    Status s = HexDecode(bad, &out);
    EXPECT_TRUE(s.IsInvalidArgument()) << bad;
    EXPECT_THAT(s.message(), HasSubstr("is not a hex digit")) << bad;
  }
  EXPECT_THAT(HexDecode("a0x1", &out).message(), HasSubstr("'x' at position 2"));
  EXPECT_EQ(out, "kept");
  EXPECT_EQ(HexDigitValue('0'), 0);
  EXPECT_EQ(HexDigitValue('9'), 9);
  EXPECT_EQ(HexDigitValue('a'), 10);
  EXPECT_EQ(HexDigitValue('F'), 15);
  EXPECT_EQ(HexDigitValue('g'), -1);
  EXPECT_EQ(HexDigitValue('\0'), -1);
  EXPECT_EQ(HexDigitValue('/'), -1);  // the characters next to the digit ranges
  EXPECT_EQ(HexDigitValue(':'), -1);
  EXPECT_EQ(HexDigitValue('@'), -1);
  EXPECT_EQ(HexDigitValue('`'), -1);
}

TEST(HexTest, Uint64IsSixteenDigitsAndParsesBack) {
  EXPECT_EQ(HexUint64(0), "0000000000000000");
  EXPECT_EQ(HexUint64(0xff), "00000000000000ff");
  EXPECT_EQ(HexUint64(UINT64_MAX), "ffffffffffffffff");
  uint64_t v = 7;
  ASSERT_TRUE(ParseHexUint64("ffffffffffffffff", &v));
  EXPECT_EQ(v, UINT64_MAX);
  ASSERT_TRUE(ParseHexUint64("A", &v));
  EXPECT_EQ(v, 10u);
  ASSERT_TRUE(ParseHexUint64(HexUint64(0x0123456789abcdefull), &v));
  EXPECT_EQ(v, 0x0123456789abcdefull);
  v = 7;
  for (const char* bad : {"", "10000000000000000", "-1", " 1", "1 ", "0x1", "g"}) {
    EXPECT_FALSE(ParseHexUint64(bad, &v)) << bad;
  }
  EXPECT_EQ(v, 7u);
}

}  // namespace
}  // namespace mesh::core
