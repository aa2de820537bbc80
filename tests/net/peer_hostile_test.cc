// Hostile input against a listening PeerTransport: garbage, oversized
// frames, malformed envelopes, protocol violations, TLS handshake garbage and silent
// connections, each on its own raw TCP connection. Each must be closed with a logged reason
// that names the address, and the established link to a real peer must stay up and keep
// carrying messages throughout.
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>

#include "net/peer_test_util.h"
#include "net/support/frame.h"

namespace lockmesh::testing {
namespace {

using net::CertificateKind;
using net::SecurityLevel;

std::string Frame(const std::string& body) {
  uint32_t n = static_cast<uint32_t>(body.size());
  std::string out = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                     static_cast<char>(n >> 8), static_cast<char>(n)};
  return out + body;
}

class PeerHostileTest : public LoopTest, public ::testing::WithParamInterface<SecurityLevel> {
 protected:
  void SetUp() override {
    LoopTest::SetUp();
    net::TlsOptions ta, tb;
    if (GetParam() != SecurityLevel::kNone) {
      CertDir ca = MakeCert(dir_.Join("ca"), CertificateKind::kCa, "CA");
      ta = Tls(GetParam(), MakeCert(dir_.Join("a"), CertificateKind::kNode, "a", &ca), &ca);
      tb = Tls(GetParam(), MakeCert(dir_.Join("b"), CertificateKind::kNode, "b", &ca), &ca);
    }
    net::PeerTransportOptions ao = PeerOptions("a", ta);
    ao.handshake_timeout_ms = 1500;  // silent connections are cut quickly
    ao.max_frame_bytes = 1 << 20;
    a_ = std::make_unique<TestPeer>(&loop_, ao);
    b_ = std::make_unique<TestPeer>(&loop_, PeerOptions("b", tb));
    ASSERT_TRUE(a_->Start().ok());
    ASSERT_TRUE(b_->Start().ok());
    ASSERT_TRUE(b_->transport->Dial(a_->address()).ok());
    ASSERT_TRUE(RunUntil([&] { return a_->Up("b") && b_->Up("a"); }));
  }
  void TearDown() override {
    if (a_) a_->Stop();
    if (b_) b_->Stop();
    RunUntil([&] { return (!a_ || a_->stopped) && (!b_ || b_->stopped); });
    if (HasFailure() && a_) fprintf(stderr, "a:\n%s", a_->Dump().c_str());
    a_.reset();
    b_.reset();
    LoopTest::TearDown();
  }

  // Opens a raw connection, sends `bytes`, and expects a to close it and log a line that
  // contains `reason` and the connection's address; then checks the real link is intact.
  void ExpectClosed(const std::string& bytes, const std::string& reason, bool then_eof = false) {
    SCOPED_TRACE(reason);
    int fd = RawConnect(a_->transport->listen_port());
    ASSERT_GE(fd, 0);
    sockaddr_in me{};
    socklen_t len = sizeof me;
    getsockname(fd, reinterpret_cast<sockaddr*>(&me), &len);
    std::string address = "127.0.0.1:" + std::to_string(ntohs(me.sin_port));
    size_t sent = 0;
    bool closed = false;
    EXPECT_TRUE(RunUntil([&] {
      if (sent < bytes.size()) {
        ssize_t n = write(fd, bytes.data() + sent, bytes.size() - sent);
        if (n > 0) sent += static_cast<size_t>(n);
        if (n < 0 && errno != EAGAIN) sent = bytes.size();  // the peer already closed
        if (sent == bytes.size() && then_eof) shutdown(fd, SHUT_WR);
      }
      closed = closed || RawDrain(fd).closed;
      return closed && a_->Logged(reason) && a_->Logged(address);
    })) << "closed="
        << closed;
    close(fd);
    // The real peer is still up on both sides and still carries messages.
    EXPECT_TRUE(a_->downs.empty() && b_->downs.empty());
    size_t before = b_->messages.size();
    ASSERT_TRUE(a_->SendOpaque("b", "still here"));
    ASSERT_TRUE(b_->SendOpaque("a", "me too"));
    EXPECT_TRUE(RunUntil([&] { return b_->messages.size() == before + 1; }));
    EXPECT_EQ(b_->messages.back().second, "still here");
  }

  TempDir dir_{"lmph"};
  std::unique_ptr<TestPeer> a_, b_;
};

TEST_P(PeerHostileTest, EachBadConnectionIsClosedAloneWithItsReason) {
  bool tls = GetParam() != SecurityLevel::kNone;
  std::mt19937 rng(7);
  std::string garbage(3000, '\0');
  for (char& c : garbage) c = static_cast<char>(rng() & 0x7f);
  garbage[0] = 0x01;
  // Random bytes.
  ExpectClosed(garbage, tls ? "does not speak TLS" : "exceeds the limit");
  // A frame header announcing 2 GiB.
  ExpectClosed(std::string("\x7f\xff\xff\xff", 4),
               tls ? "does not speak TLS" : "exceeds the limit");
  // Silence: nothing at all within the deadline.
  ExpectClosed(
      "", tls ? "TLS handshake did not complete" : "did not complete the Hello/Welcome exchange");
  if (!tls) {
    // A frame whose body is not a PeerEnvelope.
    ExpectClosed(Frame(std::string("\xff\xff\xff\xff\xff\xff", 6)), "malformed frame");
    // A valid envelope that is not a Hello.
    mesh::pb::PeerEnvelope env;
    env.set_opaque("hi");
    ExpectClosed(Frame(env.SerializeAsString()), "the first message must be a Hello");
    // A Hello from a node id full of control characters.
    env.Clear();
    env.mutable_hello()->set_cluster("test");
    env.mutable_hello()->set_node_id("evil\nlockmesh: forged line");
    env.mutable_hello()->set_protocol_version(net::kPeerProtocolVersion);
    ExpectClosed(Frame(env.SerializeAsString()), "evil\\x0alockmesh");
    // A large frame (under the limit) before the Hello: an unauthenticated peer may not
    // make the node buffer it.
    ExpectClosed(std::string("\0\x0d\xbb\xa0", 4) + std::string(100000, 'y'),
                 "before its Hello and Welcome");
    // Half a frame, then the end of the stream.
    ExpectClosed(std::string("\0\0\0\x40half", 8), "middle of a frame", true);
    // A TLS ClientHello at a plaintext node.
    ExpectClosed(std::string("\x16\x03\x01\x00\x40", 5) + std::string(64, 'x'), "speaks TLS");
  } else {
    // A TLS record header followed by junk: a broken handshake.
    ExpectClosed(std::string("\x16\x03\x03\x00\x30", 5) + std::string(48, '\x5a'), "TLS");
    // A huge TLS record length.
    ExpectClosed(std::string("\x16\x03\x03\xff\xff", 5) + std::string(200, '\x01'), "TLS");
  }
}

INSTANTIATE_TEST_SUITE_P(Levels, PeerHostileTest,
                         ::testing::Values(SecurityLevel::kNone, SecurityLevel::kEncrypt),
                         [](const auto& info) { return net::SecurityLevelName(info.param); });

}  // namespace
}  // namespace lockmesh::testing
