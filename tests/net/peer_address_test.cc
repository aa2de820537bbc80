// Tests of net/node/peer_address: the address text the Cluster reads from its options and its
// peers' links (split, IPv4-mapped hosts unmapped, unspecified hosts recognised).
// FirstGlobalAddress depends on this host's interfaces and is not tested here.
#include "net/node/peer_address.h"

#include <gtest/gtest.h>

#include <string>

namespace mesh::net {
namespace {

TEST(PeerAddressTest, SplitHostPortOrEmpty) {
  std::string host = "x", port = "y";
  SplitHostPortOrEmpty("10.0.0.1:28017", &host, &port);
  EXPECT_EQ(host, "10.0.0.1");
  EXPECT_EQ(port, "28017");
  SplitHostPortOrEmpty("[fd00::1]:7000", &host, &port);
  EXPECT_EQ(host, "fd00::1");
  EXPECT_EQ(port, "7000");
  SplitHostPortOrEmpty("node-a", &host, &port);
  EXPECT_EQ(host, "node-a");
  EXPECT_EQ(port, "");
  // Malformed: both parts empty, whatever they held before.
  SplitHostPortOrEmpty("[fd00::1", &host, &port);
  EXPECT_EQ(host, "");
  EXPECT_EQ(port, "");
  host = "x";
  port = "y";
  SplitHostPortOrEmpty("host:", &host, &port);
  EXPECT_EQ(host, "");
  EXPECT_EQ(port, "");
}

TEST(PeerAddressTest, UnmappedHostAndAddress) {
  EXPECT_EQ(UnmappedHost("::ffff:10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(UnmappedHost("::ffff:"), "::ffff:");          // nothing after the prefix
  EXPECT_EQ(UnmappedHost("::ffff:abcd"), "::ffff:abcd");  // not an IPv4 address
  EXPECT_EQ(UnmappedHost("fd00::1"), "fd00::1");
  EXPECT_EQ(UnmappedHost("10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(UnmappedAddress("[::ffff:10.0.0.1]:28017"), "10.0.0.1:28017");
  EXPECT_EQ(UnmappedAddress("[fd00::1]:28017"), "[fd00::1]:28017");
  EXPECT_EQ(UnmappedAddress("10.0.0.1:28017"), "10.0.0.1:28017");
  EXPECT_EQ(UnmappedAddress("::ffff:10.0.0.1"), "::ffff:10.0.0.1");  // no port: as it is
  EXPECT_EQ(UnmappedAddress("[bad"), "[bad");                        // malformed: as it is
}

TEST(PeerAddressTest, IsUnspecifiedHost) {
  EXPECT_TRUE(IsUnspecifiedHost(""));
  EXPECT_TRUE(IsUnspecifiedHost("0.0.0.0"));
  EXPECT_TRUE(IsUnspecifiedHost("::"));
  EXPECT_FALSE(IsUnspecifiedHost("127.0.0.1"));
  EXPECT_FALSE(IsUnspecifiedHost("::1"));
  EXPECT_FALSE(IsUnspecifiedHost("node-a"));
}

}  // namespace
}  // namespace mesh::net
