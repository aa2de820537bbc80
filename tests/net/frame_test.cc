#include "net/support/frame.h"

#include <gtest/gtest.h>

#include "lockmesh.pb.h"

namespace mesh::net {
namespace {

pb::ClientRequest LockRequest(uint64_t id, const std::string& resource) {
  pb::ClientRequest r;
  r.set_request_id(id);
  r.mutable_lock()->set_resource(resource);
  return r;
}

TEST(FrameTest, RoundTripsManyFramesFedOneByteAtATime) {
  std::string wire;
  for (int i = 1; i <= 5; ++i) AppendFrame(LockRequest(i, "r" + std::to_string(i)), &wire);
  FrameDecoder d(kMaxClientFrameBytes);
  std::vector<pb::ClientRequest> got;
  std::string body;
  for (char c : wire) {
    d.Feed(std::string_view(&c, 1));
    while (d.Next(&body)) {
      pb::ClientRequest r;
      ASSERT_TRUE(r.ParseFromString(body));
      got.push_back(r);
    }
  }
  ASSERT_TRUE(d.status().ok());
  ASSERT_EQ(got.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(got[i].request_id(), static_cast<uint64_t>(i + 1));
    EXPECT_EQ(got[i].lock().resource(), "r" + std::to_string(i + 1));
  }
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(FrameTest, OversizedLengthIsAnErrorAndNothingIsBuffered) {
  FrameDecoder d(1024);
  std::string header("\x7f\xff\xff\xff", 4);
  d.Feed(header);
  std::string body;
  EXPECT_FALSE(d.Next(&body));
  EXPECT_TRUE(d.status().IsInvalidArgument());
  EXPECT_NE(d.status().message().find("exceeds the limit"), std::string::npos);
  d.Feed(std::string(100, 'x'));
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(FrameTest, LimitIsInclusive) {
  FrameDecoder d(8);
  std::string wire("\x00\x00\x00\x08", 4);
  wire += "12345678";
  d.Feed(wire);
  std::string body;
  ASSERT_TRUE(d.Next(&body));
  EXPECT_EQ(body, "12345678");
  FrameDecoder e(7);
  e.Feed(wire);
  EXPECT_FALSE(e.Next(&body));
  EXPECT_FALSE(e.status().ok());
}

TEST(FrameTest, TruncatedFrameWaitsForMore) {
  std::string wire;
  AppendFrame(LockRequest(1, "abc"), &wire);
  FrameDecoder d(kMaxClientFrameBytes);
  d.Feed(wire.substr(0, wire.size() - 1));
  std::string body;
  EXPECT_FALSE(d.Next(&body));
  EXPECT_TRUE(d.status().ok());
  d.Feed(wire.substr(wire.size() - 1));
  EXPECT_TRUE(d.Next(&body));
}

TEST(FrameTest, EmptyFrameIsAValidEmptyMessage) {
  FrameDecoder d(16);
  d.Feed(std::string("\x00\x00\x00\x00", 4));
  std::string body = "junk";
  ASSERT_TRUE(d.Next(&body));
  EXPECT_TRUE(body.empty());
}

}  // namespace
}  // namespace mesh::net
