// Tests of core/host_port: joining (IPv6 in brackets), splitting every accepted form and
// refusing the malformed ones, and ports.
#include "core/host_port.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace mesh::core {
namespace {

using ::testing::HasSubstr;

TEST(HostPortTest, JoinBracketsIpv6Only) {
  EXPECT_EQ(JoinHostPort("10.0.0.1", 7000), "10.0.0.1:7000");
  EXPECT_EQ(JoinHostPort("node-a.example", "80"), "node-a.example:80");
  EXPECT_EQ(JoinHostPort("::1", 7000), "[::1]:7000");
  EXPECT_EQ(JoinHostPort("fe80::1%eth0", uint16_t{1}), "[fe80::1%eth0]:1");
  EXPECT_EQ(JoinHostPort("", 65535), ":65535");
}

struct SplitCase {
  const char* text;
  const char* host;
  const char* port;
};

TEST(HostPortTest, SplitsEveryForm) {
  for (const SplitCase& c :
       {SplitCase{"10.0.0.1:7000", "10.0.0.1", "7000"}, SplitCase{"localhost", "localhost", ""},
        SplitCase{"[::1]:7000", "::1", "7000"}, SplitCase{"[fd00::1]", "fd00::1", ""},
        SplitCase{"fd00::1", "fd00::1", ""},  // bare IPv6: no port
        SplitCase{"::", "::", ""}, SplitCase{"[fe80::1%eth0]:9", "fe80::1%eth0", "9"},
        SplitCase{":7000", "", "7000"}, SplitCase{"[]:1", "", "1"}, SplitCase{"", "", ""}}) {
    std::string host = "x", port = "y";
    Status s = SplitHostPort(c.text, &host, &port);
    ASSERT_TRUE(s.ok()) << c.text << ": " << s.ToString();
    EXPECT_EQ(host, c.host) << c.text;
    EXPECT_EQ(port, c.port) << c.text;
    // Joining gives the canonical form back.
    if (!port.empty() && !host.empty()) {
      std::string again_host, again_port;
      ASSERT_TRUE(SplitHostPort(JoinHostPort(host, port), &again_host, &again_port).ok());
      EXPECT_EQ(again_host, host);
      EXPECT_EQ(again_port, port);
    }
  }
}

TEST(HostPortTest, RefusesMalformedTexts) {
  struct Bad {
    const char* text;
    const char* why;
  };
  for (const Bad& b : {Bad{"[::1", "'[' without ']'"}, Bad{"[::1]7000", "expected ':PORT'"},
                       Bad{"[::1]:", "empty port"}, Bad{"host:", "empty port"},
                       Bad{"[::1]x:1", "expected ':PORT'"}}) {
    std::string host = "kept", port = "kept";
    Status s = SplitHostPort(b.text, &host, &port);
    EXPECT_TRUE(s.IsInvalidArgument()) << b.text;
    EXPECT_THAT(s.message(), HasSubstr(b.why)) << b.text;
    EXPECT_THAT(s.message(), HasSubstr(std::string("'") + b.text + "'"));
    EXPECT_EQ(host, "kept");
    EXPECT_EQ(port, "kept");
  }
}

TEST(HostPortTest, ParsesPorts) {
  uint16_t port = 7;
  ASSERT_TRUE(ParsePort("1", false, &port));
  EXPECT_EQ(port, 1);
  ASSERT_TRUE(ParsePort("65535", false, &port));
  EXPECT_EQ(port, 65535);
  ASSERT_TRUE(ParsePort("0", true, &port));
  EXPECT_EQ(port, 0);
  ASSERT_TRUE(ParsePort("08080", false, &port));
  EXPECT_EQ(port, 8080);
  port = 7;
  for (const char* bad :
       {"", "0", "65536", "99999", "123456", "-1", "+1", " 1", "1 ", "0x10", "7a"}) {
    EXPECT_FALSE(ParsePort(bad, false, &port)) << bad;
  }
  EXPECT_FALSE(ParsePort("65536", true, &port));
  EXPECT_EQ(port, 7);
}

}  // namespace
}  // namespace mesh::core
