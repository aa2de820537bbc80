// PeerTransport over real TCP on 127.0.0.1 (ephemeral ports) with real mbedTLS: every
// security level's accepted case, and every refusal of docs/design.md §6
// with its reason on BOTH sides; certificate reload. Every test closes its
// loop and fails if a libuv handle leaked.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "net/peer_test_util.h"
#include "net/tls/tls_session.h"

namespace lockmesh::testing {
namespace {

using net::CertificateKind;
using net::SecurityLevel;

class PeerTransportTest : public LoopTest {
 protected:
  void SetUp() override {
    LoopTest::SetUp();
    ca_ = MakeCert(dir_.Join("ca"), CertificateKind::kCa, "test CA");
    a_ = MakeCert(dir_.Join("a"), CertificateKind::kNode, "a", &ca_);
    b_ = MakeCert(dir_.Join("b"), CertificateKind::kNode, "b", &ca_);
  }
  void TearDown() override {
    for (auto& p : peers_) {
      if (!p->stopped) p->Stop();
    }
    RunUntil([&] {
      for (auto& p : peers_) {
        if (!p->stopped) return false;
      }
      return true;
    });
    if (HasFailure()) {
      for (auto& p : peers_) fprintf(stderr, "%s", p->Dump().c_str());
    }
    peers_.clear();
    LoopTest::TearDown();
  }

  TestPeer* Peer(net::PeerTransportOptions o) {
    peers_.push_back(std::make_unique<TestPeer>(&loop_, std::move(o)));
    TestPeer* p = peers_.back().get();
    Status st = p->Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
    return p;
  }

  net::TlsOptions Level(SecurityLevel level, const CertDir& cert, const CertDir* ca = nullptr) {
    return Tls(level, cert, level == SecurityLevel::kTofu ? nullptr : (ca ? ca : &ca_));
  }

  // Both sides report a refusal: `a_text` in a's, `b_text` in b's; well before the 10 s
  // handshake deadline (so no refusal is a disguised hang).
  void ExpectRefusedBothSides(TestPeer* a, const std::string& a_text, TestPeer* b,
                              const std::string& b_text) {
    uv_update_time(&loop_);
    uint64_t start = uv_now(&loop_);
    size_t a_ups = a->ups.size(), b_ups = b->ups.size();
    EXPECT_TRUE(RunUntil([&] { return a->Refused(a_text) && b->Refused(b_text); }, 15000))
        << "a:\n"
        << a->Dump() << "b:\n"
        << b->Dump();
    uv_update_time(&loop_);
    EXPECT_LT(uv_now(&loop_) - start, 8000u) << "refusal took as long as a timeout";
    EXPECT_TRUE(a->ups.size() == a_ups && b->ups.size() == b_ups) << "a refused peer came up";
  }

  TempDir dir_{"lmpt"};
  CertDir ca_, a_, b_;
  std::vector<std::unique_ptr<TestPeer>> peers_;
};

TEST_F(PeerTransportTest, PlaintextLinkCarriesMessagesInOrder) {
  TestPeer* a = Peer(PeerOptions("a"));
  TestPeer* b = Peer(PeerOptions("b"));
  ASSERT_TRUE(b->transport->Dial(a->address()).ok());
  ASSERT_TRUE(RunUntil([&] { return a->Up("b") && b->Up("a"); }));
  EXPECT_TRUE(b->ups[0].dialled);
  EXPECT_FALSE(a->ups[0].dialled);
  EXPECT_EQ(b->ups[0].listen_address, a->address());
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(a->SendOpaque("b", "m" + std::to_string(i)));
    ASSERT_TRUE(b->SendOpaque("a", "r" + std::to_string(i)));
  }
  ASSERT_TRUE(RunUntil([&] { return a->messages.size() == 2000 && b->messages.size() == 2000; }));
  for (int i = 0; i < 2000; ++i) {
    ASSERT_EQ(b->messages[i].second, "m" + std::to_string(i));
    ASSERT_EQ(a->messages[i].second, "r" + std::to_string(i));
    ASSERT_EQ(a->messages[i].first, "b");
  }
  EXPECT_FALSE(a->SendOpaque("nobody", "x"));
}

TEST_F(PeerTransportTest, DuplicateDialsLeaveOneConnectionPerPair) {
  TestPeer* a = Peer(PeerOptions("a"));
  TestPeer* b = Peer(PeerOptions("b"));
  ASSERT_TRUE(a->transport->Dial(b->address()).ok());
  ASSERT_TRUE(b->transport->Dial(a->address()).ok());
  ASSERT_TRUE(RunUntil([&] { return a->Up("b") && b->Up("a"); }));
  RunFor(1500);  // let the losing connection close and redials settle
  ASSERT_TRUE(a->Up("b") && b->Up("a"));
  ASSERT_EQ(a->transport->Peers().size(), 1u);
  // The connection that stays is the one dialled by the smaller id, "a".
  EXPECT_TRUE(a->transport->Peers()[0].dialled);
  EXPECT_FALSE(b->transport->Peers()[0].dialled);
  ASSERT_TRUE(a->SendOpaque("b", "x"));
  ASSERT_TRUE(RunUntil([&] { return !b->messages.empty(); }));
}

TEST_F(PeerTransportTest, ReconnectsAfterThePeerRestarts) {
  TestPeer* a = Peer(PeerOptions("a"));
  net::PeerTransportOptions bo = PeerOptions("b");
  TestPeer* b = Peer(bo);
  ASSERT_TRUE(a->transport->Dial(b->address()).ok());
  ASSERT_TRUE(RunUntil([&] { return a->Up("b"); }));
  std::string b_address = b->address();
  b->Stop();
  ASSERT_TRUE(RunUntil([&] { return b->stopped && !a->Up("b"); }));
  EXPECT_EQ(a->downs.size(), 1u);
  bo.listen_address = b_address;  // same port: a keeps dialling it
  TestPeer* b2 = Peer(bo);
  ASSERT_TRUE(RunUntil([&] { return a->Up("b") && b2->Up("a"); }));
}

// Undial (a beacon's suggestion expired): an idle dialer is gone at once; a
// connected one keeps its link, and once the link ends the address is not dialled again.
TEST_F(PeerTransportTest, UndialledAddressIsNotDialledAgain) {
  TestPeer* a = Peer(PeerOptions("a"));
  net::PeerTransportOptions bo = PeerOptions("b");
  TestPeer* b = Peer(bo);
  // An address nobody listens on: refused, redialled with backoff. Undialled while its
  // connect is in flight or while it waits to redial (either, by timing), it is freed once
  // nothing of it is left running, and no timer of it is left (TearDown's leak check).
  ASSERT_TRUE(a->transport->Dial("127.0.0.1:1").ok());
  EXPECT_EQ(a->transport->dialer_count(), 1u);
  RunFor(300);
  a->transport->Undial("127.0.0.1:1");
  EXPECT_TRUE(RunUntil([&] { return a->transport->dialer_count() == 0; }, 2000));
  ASSERT_TRUE(a->transport->Dial("127.0.0.1:1").ok());
  a->transport->Undial("127.0.0.1:1");  // at once: its connect is in flight
  EXPECT_TRUE(RunUntil([&] { return a->transport->dialer_count() == 0; }, 2000));
  // Connected.
  ASSERT_TRUE(a->transport->Dial(b->address()).ok());
  ASSERT_TRUE(RunUntil([&] { return a->Up("b"); }));
  a->transport->Undial(b->address());
  RunFor(300);
  EXPECT_TRUE(a->Up("b")) << "Undial must not cut a link";
  const std::string b_address = b->address();
  b->Stop();
  ASSERT_TRUE(RunUntil([&] { return b->stopped && !a->Up("b"); }));
  EXPECT_EQ(a->transport->dialer_count(), 0u);
  bo.listen_address = b_address;  // the same port again: a must not come back to it
  TestPeer* b2 = Peer(bo);
  RunFor(3000);  // three times the longest backoff of the test options
  EXPECT_FALSE(a->Up("b")) << a->Dump();
  EXPECT_FALSE(b2->Up("a"));
  // Dial again: linked again.
  ASSERT_TRUE(a->transport->Dial(b_address).ok());
  ASSERT_TRUE(RunUntil([&] { return a->Up("b") && b2->Up("a"); }));
}

TEST_F(PeerTransportTest, RefusesOtherClusterAndOwnId) {
  TestPeer* a = Peer(PeerOptions("a"));
  net::PeerTransportOptions o = PeerOptions("b");
  o.cluster = "elsewhere";
  TestPeer* b = Peer(o);
  ASSERT_TRUE(b->transport->Dial(a->address()).ok());
  ExpectRefusedBothSides(a, "cluster 'elsewhere'", b, "cluster 'elsewhere'");
  TestPeer* twin = Peer(PeerOptions("a"));  // another live process with a's id
  ASSERT_TRUE(twin->transport->Dial(a->address()).ok());
  ExpectRefusedBothSides(a, "own id 'a'", twin, "own id 'a'");
  // A node that dials itself just stops dialling that address.
  ASSERT_TRUE(a->transport->Dial(a->address()).ok());
  ASSERT_TRUE(RunUntil([&] { return a->Logged("is this node itself"); }));
}

class PeerLevelTest : public PeerTransportTest,
                      public ::testing::WithParamInterface<SecurityLevel> {};

TEST_P(PeerLevelTest, AcceptedWithTlsAndTheRightCertificates) {
  SecurityLevel level = GetParam();
  CertDir ca = a_, cb = b_;
  if (level == SecurityLevel::kTofu) {
    ca = MakeCert(dir_.Join("sa"), CertificateKind::kSelfSigned, "a");
    cb = MakeCert(dir_.Join("sb"), CertificateKind::kSelfSigned, "b");
  }
  TestPeer* a = Peer(PeerOptions("a", Level(level, ca), dir_.MakeDir("da")));
  TestPeer* b = Peer(PeerOptions("b", Level(level, cb), dir_.MakeDir("db")));
  ASSERT_TRUE(b->transport->Dial(a->address()).ok());
  ASSERT_TRUE(RunUntil([&] { return a->Up("b") && b->Up("a"); }));
  net::CertificateChain chain;
  ASSERT_TRUE(net::CertificateChain::Load(cb.cert(), &chain).ok());
  EXPECT_EQ(a->ups[0].fingerprint, chain.Inspect()[0].fingerprint);
  EXPECT_EQ(a->ups[0].common_name, "b");
  EXPECT_EQ(a->ups[0].tls_version, "TLSv1.2");
  EXPECT_EQ(a->ups[0].cipher_suite, "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256");
  ASSERT_TRUE(a->SendOpaque("b", std::string(100000, 'z')));
  ASSERT_TRUE(RunUntil([&] { return b->messages.size() == 1; }));
  EXPECT_EQ(b->messages[0].second.size(), 100000u);
  if (level == SecurityLevel::kTofu) {
    EXPECT_TRUE(a->Logged("first contact with node b"));
    std::vector<net::KnownPeer> known;
    ASSERT_TRUE(net::LoadKnownPeers(net::KnownPeersPath(dir_.Join("da")), &known).ok());
    ASSERT_EQ(known.size(), 1u);
    EXPECT_EQ(known[0].node_id, "b");
    EXPECT_EQ(known[0].fingerprint, a->ups[0].fingerprint);
  }
}

INSTANTIATE_TEST_SUITE_P(Levels, PeerLevelTest,
                         ::testing::Values(SecurityLevel::kEncrypt, SecurityLevel::kMutual,
                                           SecurityLevel::kTofu),
                         [](const auto& info) { return net::SecurityLevelName(info.param); });

TEST_F(PeerTransportTest, CertificateFromAnotherCaRefusedBothSides) {
  CertDir ca2 = MakeCert(dir_.Join("ca2"), CertificateKind::kCa, "other CA");
  CertDir x = MakeCert(dir_.Join("x"), CertificateKind::kNode, "x", &ca2);
  TestPeer* a = Peer(PeerOptions("a", Level(SecurityLevel::kEncrypt, a_)));
  TestPeer* x_node = Peer(PeerOptions("x", Level(SecurityLevel::kEncrypt, x, &ca2)));
  ASSERT_TRUE(a->transport->Dial(x_node->address()).ok());
  ExpectRefusedBothSides(a, "not issued by a CA this node trusts", x_node, "unknown CA");
  EXPECT_TRUE(a->Logged("refused peer 127.0.0.1:"));
  EXPECT_TRUE(x_node->Logged("refused by peer 127.0.0.1:"));
}

TEST_F(PeerTransportTest, ExpiredCertificateRefusedBothSides) {
  CertDir old = MakeCert(dir_.Join("old"), CertificateKind::kNode, "old", &ca_, Now() - 400 * 86400,
                         Now() - 86400);
  TestPeer* a = Peer(PeerOptions("a", Level(SecurityLevel::kMutual, a_)));
  TestPeer* o = Peer(PeerOptions("old", Level(SecurityLevel::kMutual, old)));
  ASSERT_TRUE(o->transport->Dial(a->address()).ok());
  ExpectRefusedBothSides(a, "expired on", o, "expired");
}

// Certificates refused for a reason in words (not yet valid, key usage, several CNs) through
// the transport: each side's log names the reason.
TEST_F(PeerTransportTest, NotYetValidKeyUsageAndSeveralCnsRefusedBothSidesInWords) {
  TestPeer* a = Peer(PeerOptions("a", Level(SecurityLevel::kMutual, a_)));
  net::CertificateSpec early;
  early.kind = CertificateKind::kNode;
  early.common_name = "early";
  early.not_before = Now() + 86400;
  early.not_after = Now() + 400 * 86400;
  TestPeer* e = Peer(PeerOptions(
      "early", Level(SecurityLevel::kMutual, MakeCertFromSpec(dir_.Join("e"), early, &ca_))));
  ASSERT_TRUE(e->transport->Dial(a->address()).ok());
  ExpectRefusedBothSides(a, "not valid before", e, "is not valid before");
  EXPECT_FALSE(e->Refused("certificate unknown")) << e->Dump();

  net::CertificateSpec srv_only;
  srv_only.kind = CertificateKind::kNode;
  srv_only.common_name = "srv";
  srv_only.extended_key_usage = net::kEkuServerAuth;
  TestPeer* s = Peer(PeerOptions(
      "srv", Level(SecurityLevel::kMutual, MakeCertFromSpec(dir_.Join("s"), srv_only, &ca_))));
  ASSERT_TRUE(s->transport->Dial(a->address()).ok());
  ExpectRefusedBothSides(
      a, "extendedKeyUsage lacks clientAuth", s,
      "our certificate CN=srv, O=lockmesh: its extendedKeyUsage lacks clientAuth");

  // Two CNs, the last one "b": it would have passed as node b. The dialler runs encrypt (a
  // mutual node does not start with it).
  net::CertificateSpec two;
  two.kind = CertificateKind::kNode;
  two.common_name = "x";
  two.extra_common_names = {"b"};
  TestPeer* t = Peer(PeerOptions(
      "b", Level(SecurityLevel::kEncrypt, MakeCertFromSpec(dir_.Join("t"), two, &ca_))));
  ASSERT_TRUE(t->transport->Dial(a->address()).ok());
  ExpectRefusedBothSides(a, "has 2 CNs, and --security mutual takes the CN as the node's id", t,
                         "has 2 CNs, which --security mutual refuses");
  EXPECT_FALSE(a->Up("b"));
}

TEST_F(PeerTransportTest, NoClientCertificateRefusedBothSides) {
  TestPeer* a = Peer(PeerOptions("a", Level(SecurityLevel::kEncrypt, a_)));
  net::TlsOptions co;
  co.level = SecurityLevel::kEncrypt;
  co.ca_file = ca_.cert();
  co.allow_no_certificate = true;
  std::shared_ptr<const net::TlsContext> ctx;
  ASSERT_TRUE(net::TlsContext::Create(co, &ctx).ok());
  net::TlsSession client(ctx, net::TlsRole::kClient);
  ASSERT_TRUE(client.Init().ok());
  int fd = RawConnect(a->transport->listen_port());
  ASSERT_GE(fd, 0);
  Status st = client.Handshake();
  std::string out;
  bool closed = false;
  ASSERT_TRUE(RunUntil(
      [&] {
        client.TakeOutput(&out);
        if (!out.empty()) {
          EXPECT_EQ(write(fd, out.data(), out.size()), static_cast<ssize_t>(out.size()));
        }
        RawRead r = RawDrain(fd);
        if (!r.bytes.empty()) {
          client.Feed(r.bytes);
          if (st.ok()) st = client.Handshake();
        }
        closed = closed || r.closed;
        return !st.ok() && a->Refused("presented no certificate");
      },
      15000))
      << st.ToString() << "\n"
      << a->Dump();
  EXPECT_NE(st.message().find("requires a client certificate"), std::string::npos) << st.ToString();
  close(fd);
}

TEST_F(PeerTransportTest, CnDifferentFromClaimedIdRefusedInMutual) {
  // "b" uses a CA-issued certificate whose CN is "x". In encrypt mode it can start with it;
  // a mutual node refuses it after its Hello claims id "b".
  CertDir x = MakeCert(dir_.Join("x"), CertificateKind::kNode, "x", &ca_);
  TestPeer* a = Peer(PeerOptions("a", Level(SecurityLevel::kMutual, a_)));
  TestPeer* b = Peer(PeerOptions("b", Level(SecurityLevel::kEncrypt, x)));
  ASSERT_TRUE(b->transport->Dial(a->address()).ok());
  ExpectRefusedBothSides(a, "certificate CN 'x' does not match the node id 'b'", b,
                         "certificate CN 'x' does not match the node id 'b'");
  EXPECT_TRUE(b->Refused("does not match", 1));
  // And a mutual node refuses to start with such a certificate.
  net::PeerTransportOptions o = PeerOptions("b", Level(SecurityLevel::kMutual, x));
  TestPeer bad(&loop_, o);
  Status st = bad.Start();
  EXPECT_NE(st.message().find("CN 'x'"), std::string::npos) << st.ToString();
  bad.Stop();
  ASSERT_TRUE(RunUntil([&] { return bad.stopped; }));
}

TEST_F(PeerTransportTest, SelfSignedRefusedInEncryptAndMutual) {
  for (SecurityLevel level : {SecurityLevel::kEncrypt, SecurityLevel::kMutual}) {
    SCOPED_TRACE(net::SecurityLevelName(level));
    std::string name = std::string("s") + net::SecurityLevelName(level);
    CertDir self = MakeCert(dir_.Join(name), CertificateKind::kSelfSigned, name);
    TestPeer* a = Peer(PeerOptions("a", Level(level, a_)));
    TestPeer* s = Peer(PeerOptions(name, Level(level, self)));
    ASSERT_TRUE(s->transport->Dial(a->address()).ok());
    ExpectRefusedBothSides(a, "is self-signed", s, "access denied");
    a->Stop();
    s->Stop();
    ASSERT_TRUE(RunUntil([&] { return a->stopped && s->stopped; }));
  }
}

TEST_F(PeerTransportTest, TofuRefusesAChangedFingerprintWithBothAndTheAcceptCommand) {
  std::string da = dir_.MakeDir("da");
  CertDir sa = MakeCert(dir_.Join("sa"), CertificateKind::kSelfSigned, "a");
  CertDir sb1 = MakeCert(dir_.Join("sb1"), CertificateKind::kSelfSigned, "b");
  CertDir sb2 = MakeCert(dir_.Join("sb2"), CertificateKind::kSelfSigned, "b");
  TestPeer* a = Peer(PeerOptions("a", Level(SecurityLevel::kTofu, sa), da));
  TestPeer* b1 = Peer(PeerOptions("b", Level(SecurityLevel::kTofu, sb1), dir_.MakeDir("db1")));
  ASSERT_TRUE(b1->transport->Dial(a->address()).ok());
  ASSERT_TRUE(RunUntil([&] { return a->Up("b"); }));
  net::Fingerprint first = a->ups[0].fingerprint;
  b1->Stop();
  ASSERT_TRUE(RunUntil([&] { return b1->stopped && !a->Up("b"); }));

  TestPeer* b2 = Peer(PeerOptions("b", Level(SecurityLevel::kTofu, sb2), dir_.MakeDir("db2")));
  ASSERT_TRUE(b2->transport->Dial(a->address()).ok());
  net::CertificateChain chain;
  ASSERT_TRUE(net::CertificateChain::Load(sb2.cert(), &chain).ok());
  net::Fingerprint second = chain.Inspect()[0].fingerprint;
  ExpectRefusedBothSides(a, first.ToCompact(), b2, first.ToCompact());
  for (TestPeer* p : {a, b2}) {
    EXPECT_TRUE(p->Refused(second.ToCompact())) << p->Dump();
    EXPECT_TRUE(p->Refused("lockmesh trust accept")) << p->Dump();
  }
  EXPECT_EQ(a->ups.size(), 1u);
  // Accepting the new fingerprint (what `lockmesh trust accept` does) lets b back in.
  ASSERT_TRUE(net::AcceptPeer(net::KnownPeersPath(da), "b", second, Now(), nullptr).ok());
  ASSERT_TRUE(RunUntil([&] { return a->Up("b") && b2->Up("a"); }, 30000));
}

TEST_F(PeerTransportTest, TofuAllowListRefusesUnlistedFingerprint) {
  CertDir sa = MakeCert(dir_.Join("sa"), CertificateKind::kSelfSigned, "a");
  CertDir sb = MakeCert(dir_.Join("sb"), CertificateKind::kSelfSigned, "b");
  CertDir sc = MakeCert(dir_.Join("sc"), CertificateKind::kSelfSigned, "c");
  net::CertificateChain chain;
  ASSERT_TRUE(net::CertificateChain::Load(sc.cert(), &chain).ok());
  std::string list = dir_.Join("trusted");
  WriteFile(list, "# only c\n" + chain.Inspect()[0].fingerprint.ToOpenSsl() + "\n");
  net::PeerTransportOptions ao = PeerOptions("a", Level(SecurityLevel::kTofu, sa));
  ao.trusted_fingerprints_file = list;
  TestPeer* a = Peer(ao);
  TestPeer* b = Peer(PeerOptions("b", Level(SecurityLevel::kTofu, sb), dir_.MakeDir("db")));
  TestPeer* c = Peer(PeerOptions("c", Level(SecurityLevel::kTofu, sc), dir_.MakeDir("dc")));
  ASSERT_TRUE(b->transport->Dial(a->address()).ok());
  ExpectRefusedBothSides(a, "is not in --trusted-fingerprints", b,
                         "is not in --trusted-fingerprints");
  ASSERT_TRUE(c->transport->Dial(a->address()).ok());
  ASSERT_TRUE(RunUntil([&] { return a->Up("c") && c->Up("a"); }));
  EXPECT_FALSE(a->Up("b"));
}

TEST_F(PeerTransportTest, PlaintextPeerTalkingToTlsNodeIsAnErrorOnBothSides) {
  TestPeer* tls = Peer(PeerOptions("a", Level(SecurityLevel::kEncrypt, a_)));
  TestPeer* plain = Peer(PeerOptions("b"));
  ASSERT_TRUE(plain->transport->Dial(tls->address()).ok());
  ExpectRefusedBothSides(tls, "does not speak TLS", plain, "require TLS");
}

TEST_F(PeerTransportTest, TlsPeerTalkingToPlaintextNodeIsAnErrorOnBothSides) {
  TestPeer* plain = Peer(PeerOptions("a"));
  TestPeer* tls = Peer(PeerOptions("b", Level(SecurityLevel::kEncrypt, b_)));
  ASSERT_TRUE(tls->transport->Dial(plain->address()).ok());
  ExpectRefusedBothSides(plain, "speaks TLS but this node runs with --security none", tls,
                         "does not speak TLS");
}

// After a reload, new connections use the new certificates, and a connected
// peer whose certificate no longer verifies is cut off.
TEST_F(PeerTransportTest, ReloadUsesNewCertificatesAndCutsOffPeersNoLongerTrusted) {
  // Files at fixed paths, rewritten in place as an operator would before SIGHUP.
  std::string da = dir_.MakeDir("live-a"), db = dir_.MakeDir("live-b");
  auto install = [](const CertDir& cert, const CertDir& ca, const std::string& dir) {
    WriteFile(dir + "/cert.pem", ReadFile(cert.cert()));
    WriteFile(dir + "/key.pem", ReadFile(cert.key()));
    WriteFile(dir + "/ca.pem", ReadFile(ca.cert()));
  };
  auto options = [](const std::string& id, const std::string& dir) {
    net::TlsOptions t;
    t.level = SecurityLevel::kMutual;
    t.cert_file = dir + "/cert.pem";
    t.key_file = dir + "/key.pem";
    t.ca_file = dir + "/ca.pem";
    return PeerOptions(id, t);
  };
  install(a_, ca_, da);
  install(b_, ca_, db);
  TestPeer* a = Peer(options("a", da));
  TestPeer* b = Peer(options("b", db));
  ASSERT_TRUE(a->transport->Dial(b->address()).ok());
  ASSERT_TRUE(RunUntil([&] { return a->Up("b") && b->Up("a"); }));

  // Reload with the same files: nobody is cut off.
  size_t cut = 99;
  ASSERT_TRUE(b->transport->Reload(&cut).ok());
  EXPECT_EQ(cut, 0u);
  RunFor(200);
  EXPECT_TRUE(a->Up("b"));

  // b moves to a new CA. Its reload cuts a off (a's certificate is from the old CA).
  CertDir ca2 = MakeCert(dir_.Join("ca2"), CertificateKind::kCa, "new CA");
  CertDir b2 = MakeCert(dir_.Join("b2"), CertificateKind::kNode, "b", &ca2);
  CertDir a2 = MakeCert(dir_.Join("a2"), CertificateKind::kNode, "a", &ca2);
  install(b2, ca2, db);
  ASSERT_TRUE(b->transport->Reload(&cut).ok());
  EXPECT_EQ(cut, 1u);
  ASSERT_TRUE(RunUntil([&] {
    return !a->Up("b") && b->Refused("no longer accepts") && a->Refused("no longer accepts", 1);
  }));
  // a redials and is refused: b now presents the new CA's certificate, which a does not trust.
  ASSERT_TRUE(RunUntil([&] { return a->Refused("not issued by a CA this node trusts"); }));

  // a moves too: the next connection uses the new certificates on both sides.
  install(a2, ca2, da);
  ASSERT_TRUE(a->transport->Reload(&cut).ok());
  ASSERT_TRUE(RunUntil([&] { return a->Up("b") && b->Up("a"); }, 30000));
  net::CertificateChain chain;
  ASSERT_TRUE(net::CertificateChain::Load(b2.cert(), &chain).ok());
  EXPECT_EQ(a->ups.back().fingerprint, chain.Inspect()[0].fingerprint);

  // A reload that cannot load its files keeps the current configuration.
  WriteFile(da + "/cert.pem", "not a certificate");
  EXPECT_FALSE(a->transport->Reload(&cut).ok());
  EXPECT_TRUE(a->Up("b"));
}

}  // namespace
}  // namespace lockmesh::testing
