// `lockmesh tls-debug peer` against a real PeerTransport (the node's own transport, run on
// this test's libuv loop): the whole exchange (TLS, Hello both ways, Welcome both ways)
// succeeds, and the transport's refusals of us come back in words with exit status 1.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "net/peer_test_util.h"
#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

using net::CertificateKind;
using net::SecurityLevel;

class TlsDebugPeerTest : public LoopTest {
 protected:
  void SetUp() override {
    LoopTest::SetUp();
    ca_ = MakeCert(dir_.Join("ca"), CertificateKind::kCa, "test CA");
    node_ = MakeCert(dir_.Join("node"), CertificateKind::kNode, "node-a", &ca_);
    us_ = MakeCert(dir_.Join("us"), CertificateKind::kNode, "debugger", &ca_);
  }
  void TearDown() override {
    if (peer_ && !peer_->stopped) peer_->Stop();
    RunUntil([&] { return !peer_ || peer_->stopped; });
    if (HasFailure() && peer_) fprintf(stderr, "%s", peer_->Dump().c_str());
    peer_.reset();
    LoopTest::TearDown();
  }

  void StartNode(net::PeerTransportOptions o) {
    peer_ = std::make_unique<TestPeer>(&loop_, std::move(o));
    Status st = peer_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  // Runs `lockmesh tls-debug peer <node> args...` while the loop serves the node.
  RunResult Debug(const std::vector<std::string>& args) {
    ProcessOptions o;
    o.argv = {LockmeshBinary(), "tls-debug",  "peer",
              peer_->address(), "--data-dir", dir_.Join("data")};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.stdout_path = dir_.Join("debug.out");
    o.stderr_path = dir_.Join("debug.err");
    o.env = {{"HOME", dir_.path()}};
    Process p(o);
    EXPECT_TRUE(p.ok()) << p.error();
    RunResult r;
    EXPECT_TRUE(RunUntil([&] { return !p.Running(); }, 60000));
    r.status = p.Wait(Millis(1000));
    r.out = p.Stdout();
    r.err = p.Stderr();
    return r;
  }

  static std::string LastLine(const std::string& text) {
    std::vector<std::string> lines = SplitLines(text);
    return lines.empty() ? "" : lines.back();
  }

  TempDir dir_{"lmtd"};
  CertDir ca_, node_, us_;
  std::unique_ptr<TestPeer> peer_;
};

TEST_F(TlsDebugPeerTest, MutualHelloAndWelcome) {
  StartNode(PeerOptions("node-a", Tls(SecurityLevel::kMutual, node_, &ca_)));
  RunResult r = Debug({"--security", "mutual", "--cluster", "test", "--node-id", "debugger",
                       "--tls-cert", us_.cert(), "--tls-key", us_.key(), "--tls-ca", ca_.cert()});
  EXPECT_EQ(r.code(), 0) << r.Describe() << r.out;
  EXPECT_NE(r.out.find("hello: node id 'node-a', cluster 'test', protocol 1, security mutual"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("identity: ok, certificate CN 'node-a' equals the node id it claims"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("welcome: ok"), std::string::npos) << r.out;
  EXPECT_EQ(LastLine(r.out), "result: ok");
  // The node saw us as a peer.
  EXPECT_TRUE(RunUntil([&] { return !peer_->ups.empty(); }, 10000)) << peer_->Dump();
  EXPECT_EQ(peer_->ups.at(0).node_id, "debugger");
}

TEST_F(TlsDebugPeerTest, TheNodesRefusalsAreShownInWords) {
  StartNode(PeerOptions("node-a", Tls(SecurityLevel::kMutual, node_, &ca_)));
  // Another cluster name.
  RunResult r = Debug({"--security", "mutual", "--cluster", "other", "--node-id", "debugger",
                       "--tls-cert", us_.cert(), "--tls-key", us_.key(), "--tls-ca", ca_.cert()});
  EXPECT_EQ(r.code(), 1) << r.Describe();
  EXPECT_NE(LastLine(r.out).find("cluster"), std::string::npos) << r.out;
  EXPECT_EQ(LastLine(r.out).rfind("result: FAILED: ", 0), 0u) << r.out;
  // Our own id is the node's: a unique id clash.
  CertDir twin = MakeCert(dir_.Join("twin"), CertificateKind::kNode, "node-a", &ca_);
  r = Debug({"--security", "mutual", "--cluster", "test", "--node-id", "node-a", "--tls-cert",
             twin.cert(), "--tls-key", twin.key(), "--tls-ca", ca_.cert()});
  EXPECT_EQ(r.code(), 1) << r.Describe();
  EXPECT_NE(LastLine(r.out).find("node-a"), std::string::npos) << r.out;
  // Plaintext against a TLS node: an error, not a hang.
  r = Debug({"--security", "none", "--cluster", "test", "--node-id", "plain", "--timeout", "10"});
  EXPECT_EQ(r.code(), 1) << r.Describe();
  EXPECT_EQ(LastLine(r.out).rfind("result: FAILED: ", 0), 0u) << r.out;
}

TEST_F(TlsDebugPeerTest, TofuAllowListRefusalComesFromTheNode) {
  CertDir self_node = MakeCert(dir_.Join("sn"), CertificateKind::kSelfSigned, "node-a");
  CertDir self_us = MakeCert(dir_.Join("su"), CertificateKind::kSelfSigned, "debugger");
  CertDir other = MakeCert(dir_.Join("other"), CertificateKind::kSelfSigned, "other");
  net::CertificateChain other_chain;
  ASSERT_TRUE(net::CertificateChain::Load(other.cert(), &other_chain).ok());
  WriteFile(dir_.Join("allow"), other_chain.Inspect().front().fingerprint.ToOpenSsl() + "\n");
  net::PeerTransportOptions o =
      PeerOptions("node-a", Tls(SecurityLevel::kTofu, self_node, nullptr), dir_.Join("node-data"));
  o.trusted_fingerprints_file = dir_.Join("allow");
  StartNode(o);
  RunResult r = Debug({"--security", "tofu", "--cluster", "test", "--node-id", "debugger",
                       "--tls-cert", self_us.cert(), "--tls-key", self_us.key()});
  EXPECT_EQ(r.code(), 1) << r.Describe();
  EXPECT_EQ(LastLine(r.out).rfind("result: FAILED: the node refused us: ", 0), 0u) << r.out;
  EXPECT_NE(LastLine(r.out).find("--trusted-fingerprints"), std::string::npos) << r.out;
  EXPECT_TRUE(peer_->ups.empty());
}

}  // namespace
}  // namespace lockmesh::testing
