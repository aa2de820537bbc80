// The beacon codec, its limits, the receiver's verdicts, the per-source rate limiter and
// HOST:PORT parsing (net/discovery/discovery_beacon.h). Pure functions: no sockets.
#include "net/discovery/discovery_beacon.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "discovery.pb.h"

namespace mesh::net {
namespace {

BeaconContent Sample() {
  BeaconContent b;
  b.protocol_version = 1;
  b.cluster_name = "prod-locks";
  b.node_id = "3d12a9f0c4b14e2e9a7c5d1e2f3a4b5c";
  b.instance = 0x1122334455667788ull;
  b.cluster_id = "c7e1.2";
  b.peer_host = "";
  b.peer_port = 28017;
  b.security = "mutual";
  b.fingerprint = "sha256$" + std::string(64, 'a');
  b.sequence = 42;
  return b;
}

TEST(DiscoveryBeacon, RoundTrip) {
  BeaconContent in = Sample();
  std::string datagram = EncodeBeacon(in);
  EXPECT_EQ(datagram.substr(0, 4), "LMB1");
  EXPECT_LT(datagram.size(), 300u);
  BeaconContent out;
  ASSERT_TRUE(DecodeBeacon(datagram, &out).ok());
  EXPECT_EQ(out, in);

  in.peer_host = "fe80::1%eth0";
  in.cluster_id.clear();
  in.fingerprint.clear();
  ASSERT_TRUE(DecodeBeacon(EncodeBeacon(in), &out).ok());
  EXPECT_EQ(out, in);
}

TEST(DiscoveryBeacon, RejectsGarbageTruncationAndOversize) {
  BeaconContent out;
  EXPECT_FALSE(DecodeBeacon("", &out).ok());
  EXPECT_FALSE(DecodeBeacon("LMB", &out).ok());
  EXPECT_FALSE(DecodeBeacon("XXXX" + EncodeBeacon(Sample()).substr(4), &out).ok());
  // A valid magic with nothing after it parses as an empty message: missing fields fail.
  EXPECT_FALSE(DecodeBeacon("LMB1", &out).ok());
  std::string good = EncodeBeacon(Sample());
  // Every truncation of a valid beacon is refused (it parses to a beacon missing fields or
  // does not parse at all) — or, if it happens to end on a field boundary after every
  // required field, decodes to a valid beacon; either way nothing crashes.
  for (size_t n = 0; n < good.size(); ++n) {
    BeaconContent partial;
    Status st = DecodeBeacon(std::string_view(good).substr(0, n), &partial);
    if (st.ok()) {
      EXPECT_TRUE(ValidateBeacon(partial).ok());
    }
  }
  std::string big = good + std::string(kMaxBeaconBytes, '\0');
  Status st = DecodeBeacon(big, &out);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("longer"), std::string::npos) << st.ToString();
}

TEST(DiscoveryBeacon, RandomBytesNeverCrash) {
  std::mt19937 rng(2817);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string d(rng() % (kMaxBeaconBytes + 64), '\0');
    for (char& c : d) c = static_cast<char>(rng());
    if (i % 2 == 0 && d.size() >= 4) d.replace(0, 4, "LMB1");  // get past the magic too
    BeaconContent out;
    if (DecodeBeacon(d, &out).ok()) ++accepted;
  }
  EXPECT_EQ(accepted, 0);
}

// Valid protobuf, absurd fields: each one is refused with the field named.
TEST(DiscoveryBeacon, AbsurdFieldsAreRefused) {
  auto decode_with = [](auto mutate, std::string extra = "") {
    pb::Beacon m;
    m.set_protocol_version(1);
    m.set_cluster_name("lockmesh");
    m.set_node_id("n1");
    m.set_instance(7);
    m.set_peer_port(28017);
    mutate(m);
    std::string d = "LMB1" + m.SerializeAsString() + extra;
    BeaconContent out;
    return DecodeBeacon(d, &out);
  };
  EXPECT_TRUE(decode_with([](pb::Beacon&) {}).ok());
  struct Case {
    const char* what;
    std::function<void(pb::Beacon&)> mutate;
  };
  std::vector<Case> cases = {
      {"port above 65535", [](pb::Beacon& m) { m.set_peer_port(70000); }},
      {"port 0", [](pb::Beacon& m) { m.set_peer_port(0); }},
      {"instance 0", [](pb::Beacon& m) { m.set_instance(0); }},
      {"empty node id", [](pb::Beacon& m) { m.clear_node_id(); }},
      {"empty cluster", [](pb::Beacon& m) { m.clear_cluster_name(); }},
      {"node id too long", [](pb::Beacon& m) { m.set_node_id(std::string(129, 'a')); }},
      {"cluster too long", [](pb::Beacon& m) { m.set_cluster_name(std::string(65, 'a')); }},
      {"node id with a NUL", [](pb::Beacon& m) { m.set_node_id(std::string("a\0b", 3)); }},
      {"node id with a newline", [](pb::Beacon& m) { m.set_node_id("a\nb"); }},
      {"node id invalid UTF-8", [](pb::Beacon& m) { m.set_node_id("\xff\xfe"); }},
      {"cluster id with a space", [](pb::Beacon& m) { m.set_cluster_id("a b"); }},
      {"host with a slash", [](pb::Beacon& m) { m.set_peer_host("a/b"); }},
      {"host too long", [](pb::Beacon& m) { m.set_peer_host(std::string(300, 'h')); }},
      {"security upper case", [](pb::Beacon& m) { m.set_security("NONE"); }},
      {"fingerprint with a space", [](pb::Beacon& m) { m.set_fingerprint("sha256 x"); }},
      {"fingerprint too long", [](pb::Beacon& m) { m.set_fingerprint(std::string(129, 'f')); }},
  };
  for (const Case& c : cases) {
    Status st = decode_with(c.mutate);
    EXPECT_FALSE(st.ok()) << c.what;
    EXPECT_TRUE(st.IsInvalidArgument()) << c.what << ": " << st.ToString();
  }
  // Unknown fields from a newer sender are ignored, not refused.
  EXPECT_TRUE(decode_with([](pb::Beacon&) {}, std::string("\xa8\x06\x01", 3)).ok());  // field 101
}

TEST(DiscoveryBeacon, Verdicts) {
  BeaconContent b = Sample();
  LocalIdentity self{"prod-locks", 1, "me", 99};
  EXPECT_EQ(ClassifyBeacon(b, self), BeaconVerdict::kAccept);
  LocalIdentity other_cluster{"dev-locks", 1, "me", 99};
  EXPECT_EQ(ClassifyBeacon(b, other_cluster), BeaconVerdict::kOtherCluster);
  LocalIdentity other_version{"prod-locks", 2, "me", 99};
  EXPECT_EQ(ClassifyBeacon(b, other_version), BeaconVerdict::kOtherVersion);
  LocalIdentity same_id{"prod-locks", 1, b.node_id, b.instance};
  EXPECT_EQ(ClassifyBeacon(b, same_id), BeaconVerdict::kOwn);
  LocalIdentity same_id_other_process{"prod-locks", 1, b.node_id, b.instance + 1};
  EXPECT_EQ(ClassifyBeacon(b, same_id_other_process), BeaconVerdict::kDuplicateId);
  // The cluster name is checked first: a foreign cluster's node with our id is not ours.
  LocalIdentity foreign_same_id{"dev-locks", 1, b.node_id, b.instance + 1};
  EXPECT_EQ(ClassifyBeacon(b, foreign_same_id), BeaconVerdict::kOtherCluster);
  EXPECT_STREQ(BeaconVerdictName(BeaconVerdict::kDuplicateId), "duplicate id");
}

TEST(SourceRateLimiter, BurstThenRate) {
  SourceRateLimiter limiter(/*rate_per_s=*/10, /*burst=*/5, /*max_sources=*/4);
  int passed = 0;
  for (int i = 0; i < 100; ++i) passed += limiter.Allow("a", 1000);
  EXPECT_EQ(passed, 5);
  // Another source has its own bucket.
  EXPECT_TRUE(limiter.Allow("b", 1000));
  // 10/s: one token per 100 ms.
  EXPECT_FALSE(limiter.Allow("a", 1050));
  EXPECT_TRUE(limiter.Allow("a", 1100));
  EXPECT_FALSE(limiter.Allow("a", 1100));
  // After a long pause the bucket is full again, not more.
  passed = 0;
  for (int i = 0; i < 100; ++i) passed += limiter.Allow("a", 100000);
  EXPECT_EQ(passed, 5);
}

TEST(SourceRateLimiter, TableStaysBoundedUnderSpoofedSources) {
  SourceRateLimiter limiter(10, 5, 16);
  int passed = 0;
  for (int i = 0; i < 100000; ++i) passed += limiter.Allow(std::to_string(i), 5000);
  EXPECT_LE(limiter.size(), 16u);
  // One datagram from each of the first 16 sources (their buckets are not idle yet, so not
  // recycled), then the shared overflow bucket's 5: the rest is refused.
  EXPECT_EQ(passed, 16 + 5);
  // Later, idle buckets are recycled for new sources.
  EXPECT_TRUE(limiter.Allow("late-newcomer", 60000));
  EXPECT_LE(limiter.size(), 16u);
}

TEST(HostPort, Parse) {
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(ParseHostPort("node1.example:1234", 28017, &host, &port).ok());
  EXPECT_EQ(host, "node1.example");
  EXPECT_EQ(port, 1234);
  ASSERT_TRUE(ParseHostPort("10.0.0.7", 28017, &host, &port).ok());
  EXPECT_EQ(host, "10.0.0.7");
  EXPECT_EQ(port, 28017);
  ASSERT_TRUE(ParseHostPort("[fd00::7]:99", 28017, &host, &port).ok());
  EXPECT_EQ(host, "fd00::7");
  EXPECT_EQ(port, 99);
  ASSERT_TRUE(ParseHostPort("[fd00::7]", 5, &host, &port).ok());
  EXPECT_EQ(port, 5);
  ASSERT_TRUE(ParseHostPort("fd00::7", 5, &host, &port).ok());  // bare literal: no port
  EXPECT_EQ(host, "fd00::7");
  ASSERT_TRUE(ParseHostPort("[fe80::1%eth0]:7", 5, &host, &port).ok());
  EXPECT_EQ(host, "fe80::1%eth0");

  for (const char* bad : {"", ":80", "host:", "host:0", "host:65536", "host:12x", "[fd00::1",
                          "[fd00::1]x", "[fd00::1]:", "[]:80", "a b:80", "a/b:1"}) {
    EXPECT_FALSE(ParseHostPort(bad, 28017, &host, &port).ok()) << bad;
  }
  EXPECT_EQ(JoinHostPort("10.0.0.1", 28017), "10.0.0.1:28017");
  EXPECT_EQ(JoinHostPort("fd00::1", 28017), "[fd00::1]:28017");
}

}  // namespace
}  // namespace mesh::net
