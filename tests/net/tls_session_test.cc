// TlsContext + TlsSession with real mbedTLS and real certificates (net/tls/certificate.h), two
// sessions wired back to back through memory: every security level's accepted case and the
// refusals of the handshake, each with its reason on both sides.
#include "net/tls/tls_session.h"

#include <gtest/gtest.h>
#include <mbedtls/x509.h>

#include <string>
#include <vector>

#include "net/peer_test_util.h"
#include "net/tls/tls_context.h"

namespace lockmesh::testing {
namespace {

using net::CertificateKind;
using net::SecurityLevel;
using net::TlsContext;
using net::TlsRole;
using net::TlsSession;

class TlsSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = MakeCert(dir_.Join("ca"), CertificateKind::kCa, "test CA");
    other_ca_ = MakeCert(dir_.Join("ca2"), CertificateKind::kCa, "other CA");
    a_ = MakeCert(dir_.Join("a"), CertificateKind::kNode, "a", &ca_);
    b_ = MakeCert(dir_.Join("b"), CertificateKind::kNode, "b", &ca_);
  }

  std::shared_ptr<const TlsContext> Context(const net::TlsOptions& o) {
    std::shared_ptr<const TlsContext> c;
    Status st = TlsContext::Create(o, &c);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return c;
  }

  struct Outcome {
    Status client;
    Status server;
    bool done = false;
  };

  // Runs a handshake between two sessions through memory until both are done or one fails
  // and the other has consumed everything it was sent.
  Outcome Handshake(TlsSession* client, TlsSession* server) {
    Outcome out;
    EXPECT_TRUE(client->Init().ok());
    EXPECT_TRUE(server->Init().ok());
    std::string bytes;
    for (int round = 0; round < 50; ++round) {
      if (out.client.ok() && !client->handshake_done()) out.client = client->Handshake();
      client->TakeOutput(&bytes);
      if (!bytes.empty()) server->Feed(bytes);
      if (out.server.ok() && !server->handshake_done()) out.server = server->Handshake();
      server->TakeOutput(&bytes);
      if (!bytes.empty()) client->Feed(bytes);
      if (out.client.ok() && !client->handshake_done()) out.client = client->Handshake();
      bool c_end = !out.client.ok() || client->handshake_done();
      bool s_end = !out.server.ok() || server->handshake_done();
      if (c_end && s_end && !client->has_output() && !server->has_output()) break;
    }
    // After the handshake, a side that was refused learns it at its next read.
    if (out.client.ok() && client->handshake_done() && !out.server.ok()) {
      std::string plain;
      out.client = client->Read(&plain);
    }
    if (out.server.ok() && server->handshake_done() && !out.client.ok()) {
      std::string plain;
      out.server = server->Read(&plain);
    }
    out.done =
        client->handshake_done() && server->handshake_done() && out.client.ok() && out.server.ok();
    return out;
  }

  // A node certificate from ca_ per `spec` (validity a year from now unless set).
  CertDir MakeSpecCert(const std::string& dir, const net::CertificateSpec& spec) {
    return MakeCertFromSpec(dir, spec, &ca_);
  }
  static net::CertificateSpec NodeSpec(const std::string& cn) {
    net::CertificateSpec spec;
    spec.kind = CertificateKind::kNode;
    spec.common_name = cn;
    return spec;
  }

  TempDir dir_{"lmtls"};
  CertDir ca_, other_ca_, a_, b_;
};

// What a test expects to read in a message.
#define EXPECT_SAYS(status, words) \
  EXPECT_NE((status).message().find(words), std::string::npos) << (status).ToString()
#define EXPECT_NOT_SAYS(status, words) \
  EXPECT_EQ((status).message().find(words), std::string::npos) << (status).ToString()

TEST_F(TlsSessionTest, EncryptHandshakeAndDataBothWays) {
  auto ca = Context(Tls(SecurityLevel::kEncrypt, a_, &ca_));
  auto cb = Context(Tls(SecurityLevel::kEncrypt, b_, &ca_));
  TlsSession client(ca, TlsRole::kClient), server(cb, TlsRole::kServer);
  Outcome o = Handshake(&client, &server);
  ASSERT_TRUE(o.done) << o.client.ToString() << " / " << o.server.ToString();
  EXPECT_EQ(client.version(), "TLSv1.2");
  EXPECT_EQ(client.cipher_suite(), "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256");
  ASSERT_NE(server.peer_certificate(), nullptr);
  EXPECT_EQ(net::PeerCommonName(*server.peer_certificate()), "a");
  EXPECT_EQ(net::PeerCommonName(*client.peer_certificate()), "b");

  std::string big(100000, 'x');
  ASSERT_TRUE(client.Write(big).ok());
  std::string wire, plain;
  client.TakeOutput(&wire);
  server.Feed(wire);
  ASSERT_TRUE(server.Read(&plain).ok());
  EXPECT_EQ(plain, big);
  ASSERT_TRUE(server.Write("pong").ok());
  server.TakeOutput(&wire);
  client.Feed(wire);
  plain.clear();
  ASSERT_TRUE(client.Read(&plain).ok());
  EXPECT_EQ(plain, "pong");
  client.Close();
  client.TakeOutput(&wire);
  server.Feed(wire);
  Status end = server.Read(&plain);
  EXPECT_TRUE(end.IsUnavailable()) << end.ToString();
}

TEST_F(TlsSessionTest, MutualAndTofuAccepted) {
  net::TlsOptions oa = Tls(SecurityLevel::kMutual, a_, &ca_);
  oa.node_id = "a";
  net::TlsOptions ob = Tls(SecurityLevel::kMutual, b_, &ca_);
  ob.node_id = "b";
  TlsSession c1(Context(oa), TlsRole::kClient), s1(Context(ob), TlsRole::kServer);
  Outcome o = Handshake(&c1, &s1);
  EXPECT_TRUE(o.done) << o.client.ToString() << " / " << o.server.ToString();

  CertDir sa = MakeCert(dir_.Join("sa"), CertificateKind::kSelfSigned, "a");
  CertDir sb = MakeCert(dir_.Join("sb"), CertificateKind::kSelfSigned, "b");
  TlsSession c2(Context(Tls(SecurityLevel::kTofu, sa, nullptr)), TlsRole::kClient);
  TlsSession s2(Context(Tls(SecurityLevel::kTofu, sb, nullptr)), TlsRole::kServer);
  o = Handshake(&c2, &s2);
  EXPECT_TRUE(o.done) << o.client.ToString() << " / " << o.server.ToString();
  EXPECT_EQ(s2.peer_fingerprint(),
            net::Fingerprint::OfDer(s2.peer_certificate()->raw.p, s2.peer_certificate()->raw.len));
}

TEST_F(TlsSessionTest, MutualRefusesOwnCnMismatch) {
  net::TlsOptions o = Tls(SecurityLevel::kMutual, a_, &ca_);
  o.node_id = "not-a";
  std::shared_ptr<const TlsContext> c;
  Status st = TlsContext::Create(o, &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("CN 'a'"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("'not-a'"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("lockmesh cert node"), std::string::npos) << st.ToString();
}

TEST_F(TlsSessionTest, CreateErrorsNameTheProblem) {
  std::shared_ptr<const TlsContext> c;
  net::TlsOptions o = Tls(SecurityLevel::kEncrypt, a_, nullptr);
  Status st = TlsContext::Create(o, &c);
  EXPECT_NE(st.message().find("--tls-ca"), std::string::npos) << st.ToString();
  o = Tls(SecurityLevel::kEncrypt, a_, &ca_);
  o.key_file = b_.key();
  st = TlsContext::Create(o, &c);
  EXPECT_FALSE(st.ok());
  o = Tls(SecurityLevel::kEncrypt, CertDir{dir_.Join("missing")}, &ca_);
  st = TlsContext::Create(o, &c);
  EXPECT_NE(st.message().find("--tls-cert"), std::string::npos) << st.ToString();
  net::SecurityLevel level;
  EXPECT_FALSE(net::ParseSecurityLevel("paranoid", &level).ok());
  ASSERT_TRUE(net::ParseSecurityLevel("tofu", &level).ok());
  EXPECT_EQ(level, SecurityLevel::kTofu);
}

TEST_F(TlsSessionTest, CertificateFromAnotherCaRefusedOnBothSides) {
  CertDir stranger = MakeCert(dir_.Join("x"), CertificateKind::kNode, "x", &other_ca_);
  TlsSession client(Context(Tls(SecurityLevel::kEncrypt, stranger, &other_ca_)), TlsRole::kClient);
  TlsSession server(Context(Tls(SecurityLevel::kEncrypt, b_, &ca_)), TlsRole::kServer);
  Outcome o = Handshake(&client, &server);
  ASSERT_FALSE(o.done);
  // The client checks the server first: b is not from other_ca.
  EXPECT_NE(o.client.message().find("not issued by a CA this node trusts"), std::string::npos)
      << o.client.ToString();
  EXPECT_NE(o.server.message().find("unknown CA"), std::string::npos) << o.server.ToString();
  EXPECT_TRUE(server.peer_refused());
  EXPECT_FALSE(client.peer_refused());
}

TEST_F(TlsSessionTest, ServerRefusesClientFromAnotherCa) {
  CertDir stranger = MakeCert(dir_.Join("x"), CertificateKind::kNode, "x", &other_ca_);
  // The client trusts both CAs, so only the server refuses.
  std::string both = dir_.Join("both.pem");
  WriteFile(both, ReadFile(ca_.cert()) + ReadFile(other_ca_.cert()));
  net::TlsOptions co = Tls(SecurityLevel::kEncrypt, stranger, nullptr);
  co.ca_file = both;
  TlsSession client(Context(co), TlsRole::kClient);
  TlsSession server(Context(Tls(SecurityLevel::kEncrypt, b_, &ca_)), TlsRole::kServer);
  Outcome o = Handshake(&client, &server);
  ASSERT_FALSE(o.done);
  EXPECT_NE(o.server.message().find("not issued by a CA this node trusts"), std::string::npos)
      << o.server.ToString();
  EXPECT_NE(o.client.message().find("unknown CA"), std::string::npos) << o.client.ToString();
}

TEST_F(TlsSessionTest, ExpiredCertificateRefusedOnBothSides) {
  CertDir old = MakeCert(dir_.Join("old"), CertificateKind::kNode, "old", &ca_, Now() - 400 * 86400,
                         Now() - 30 * 86400);
  TlsSession client(Context(Tls(SecurityLevel::kEncrypt, old, &ca_)), TlsRole::kClient);
  TlsSession server(Context(Tls(SecurityLevel::kEncrypt, b_, &ca_)), TlsRole::kServer);
  Outcome o = Handshake(&client, &server);
  ASSERT_FALSE(o.done);
  EXPECT_NE(o.server.message().find("expired on"), std::string::npos) << o.server.ToString();
  EXPECT_NE(o.client.message().find("expired"), std::string::npos) << o.client.ToString();
  // The refused side says which of its certificates, and when it ended.
  EXPECT_SAYS(o.client, "our certificate CN=old, O=lockmesh expired on " +
                            net::FormatUtc(Now() - 30 * 86400).substr(0, 10));
}

// The server refuses an expired certificate too when it is the one checked second (the
// client refuses the server's): both sides name it.
TEST_F(TlsSessionTest, ExpiredServerCertificateNamedOnBothSides) {
  net::CertificateSpec spec = NodeSpec("old");
  spec.not_before = Now() - 400 * 86400;
  spec.not_after = Now() - 3 * 86400;
  CertDir old = MakeSpecCert(dir_.Join("old"), spec);
  TlsSession client(Context(Tls(SecurityLevel::kEncrypt, a_, &ca_)), TlsRole::kClient);
  TlsSession server(Context(Tls(SecurityLevel::kEncrypt, old, &ca_)), TlsRole::kServer);
  Outcome o = Handshake(&client, &server);
  ASSERT_FALSE(o.done);
  EXPECT_SAYS(o.client,
              "we refused the peer's certificate: certificate CN=old, O=lockmesh: "
              "expired on " +
                  net::FormatUtc(spec.not_after));
  EXPECT_SAYS(o.server, "certificate expired");
  EXPECT_SAYS(o.server,
              "our certificate CN=old, O=lockmesh expired on " + net::FormatUtc(spec.not_after));
  EXPECT_TRUE(server.peer_refused());
}

// A certificate whose validity starts tomorrow: "not valid before", never "certificate
// unknown" (mbedTLS's alert for it; we make it certificate_expired).
TEST_F(TlsSessionTest, NotYetValidCertificateNamedOnBothSides) {
  net::CertificateSpec spec = NodeSpec("early");
  spec.not_before = Now() + 86400;
  spec.not_after = Now() + 400 * 86400;
  CertDir early = MakeSpecCert(dir_.Join("early"), spec);
  TlsSession client(Context(Tls(SecurityLevel::kEncrypt, early, &ca_)), TlsRole::kClient);
  TlsSession server(Context(Tls(SecurityLevel::kEncrypt, b_, &ca_)), TlsRole::kServer);
  Outcome o = Handshake(&client, &server);
  ASSERT_FALSE(o.done);
  EXPECT_SAYS(o.server,
              "we refused the peer's certificate: certificate CN=early, O=lockmesh: "
              "not valid before " +
                  net::FormatUtc(spec.not_before));
  EXPECT_NOT_SAYS(o.server, "expired on");
  EXPECT_SAYS(o.client, "expired or not yet valid");
  EXPECT_SAYS(o.client, "our certificate CN=early, O=lockmesh is not valid before " +
                            net::FormatUtc(spec.not_before));
  EXPECT_NOT_SAYS(o.client, "certificate unknown");
  EXPECT_TRUE(client.peer_refused());
}

// extendedKeyUsage serverAuth only, used to dial: the server refuses it (mbedTLS alone said
// "Processing of the Certificate handshake message failed"), and the client learns why.
TEST_F(TlsSessionTest, ExtendedKeyUsageRefusalNamedOnBothSides) {
  net::CertificateSpec spec = NodeSpec("srv-only");
  spec.extended_key_usage = net::kEkuServerAuth;
  CertDir srv_only = MakeSpecCert(dir_.Join("srv-only"), spec);
  TlsSession client(Context(Tls(SecurityLevel::kEncrypt, srv_only, &ca_)), TlsRole::kClient);
  TlsSession server(Context(Tls(SecurityLevel::kEncrypt, b_, &ca_)), TlsRole::kServer);
  Outcome o = Handshake(&client, &server);
  ASSERT_FALSE(o.done);
  EXPECT_SAYS(o.server,
              "we refused the peer's certificate: certificate CN=srv-only, "
              "O=lockmesh: its extendedKeyUsage lacks clientAuth (TLS client)");
  EXPECT_NOT_SAYS(o.server, "Processing of the Certificate");
  EXPECT_SAYS(o.client, "unsupported certificate");
  EXPECT_SAYS(o.client,
              "our certificate CN=srv-only, O=lockmesh: its extendedKeyUsage lacks "
              "clientAuth (TLS client), which a node needs to dial peers");
  EXPECT_TRUE(client.peer_refused());
}

// keyUsage without digitalSignature (an ECDSA key must sign the handshake).
TEST_F(TlsSessionTest, KeyUsageRefusalNamedOnBothSides) {
  net::CertificateSpec spec = NodeSpec("no-sign");
  spec.key_usage = MBEDTLS_X509_KU_KEY_AGREEMENT;
  CertDir no_sign = MakeSpecCert(dir_.Join("no-sign"), spec);
  TlsSession client(Context(Tls(SecurityLevel::kEncrypt, no_sign, &ca_)), TlsRole::kClient);
  TlsSession server(Context(Tls(SecurityLevel::kEncrypt, b_, &ca_)), TlsRole::kServer);
  Outcome o = Handshake(&client, &server);
  ASSERT_FALSE(o.done);
  EXPECT_SAYS(o.server,
              "we refused the peer's certificate: certificate CN=no-sign, "
              "O=lockmesh: its keyUsage lacks digitalSignature");
  EXPECT_NOT_SAYS(o.server, "Processing of the Certificate");
  EXPECT_SAYS(o.client, "unsupported certificate");
  EXPECT_SAYS(o.client,
              "our certificate CN=no-sign, O=lockmesh: its keyUsage lacks "
              "digitalSignature");
}

// A server whose certificate may not serve (clientAuth only) finds no suite: it says why
// rather than "no common TLS version and cipher suite".
TEST_F(TlsSessionTest, ServerCertificateWithoutServerAuthSaysSo) {
  net::CertificateSpec spec = NodeSpec("cli-only");
  spec.extended_key_usage = net::kEkuClientAuth;
  CertDir cli_only = MakeSpecCert(dir_.Join("cli-only"), spec);
  TlsSession client(Context(Tls(SecurityLevel::kEncrypt, a_, &ca_)), TlsRole::kClient);
  TlsSession server(Context(Tls(SecurityLevel::kEncrypt, cli_only, &ca_)), TlsRole::kServer);
  Outcome o = Handshake(&client, &server);
  ASSERT_FALSE(o.done);
  EXPECT_SAYS(o.server,
              "our certificate CN=cli-only, O=lockmesh cannot serve TLS: its "
              "extendedKeyUsage lacks serverAuth");
  EXPECT_SAYS(o.client, "handshake failure");
  EXPECT_SAYS(o.client, "extendedKeyUsage of its own certificate");
}

// mutual takes the CN as the node's id: a certificate with two (mbedTLS-based code took the
// last) is refused by the handshake, and the refused side learns it.
TEST_F(TlsSessionTest, MultipleCommonNamesRefusedInMutualOnBothSides) {
  net::CertificateSpec spec = NodeSpec("x");
  spec.extra_common_names = {"a"};  // would pass as node "a"
  CertDir two = MakeSpecCert(dir_.Join("two"), spec);
  // The dialler runs encrypt (mutual would not even start with it, below).
  net::TlsOptions co = Tls(SecurityLevel::kEncrypt, two, &ca_);
  net::TlsOptions so = Tls(SecurityLevel::kMutual, b_, &ca_);
  so.node_id = "b";
  TlsSession client(Context(co), TlsRole::kClient), server(Context(so), TlsRole::kServer);
  Outcome o = Handshake(&client, &server);
  ASSERT_FALSE(o.done);
  EXPECT_SAYS(o.server,
              "certificate CN=x, O=lockmesh, CN=a has 2 CNs, and --security mutual "
              "takes the CN as the node's id");
  EXPECT_SAYS(o.client, "access denied");
  EXPECT_SAYS(o.client,
              "our certificate CN=x, O=lockmesh, CN=a has 2 CNs, which --security "
              "mutual refuses");
  // encrypt does not care about CNs.
  net::TlsOptions eo = Tls(SecurityLevel::kEncrypt, b_, &ca_);
  TlsSession c2(Context(co), TlsRole::kClient), s2(Context(eo), TlsRole::kServer);
  EXPECT_TRUE(Handshake(&c2, &s2).done);
  // A reload re-checks connected peers with the same rule.
  net::CertificateChain chain;
  ASSERT_TRUE(net::CertificateChain::Load(two.cert(), &chain).ok());
  Status verdict = Context(so)->VerifyChain(chain.leaf());
  EXPECT_SAYS(verdict, "has 2 CNs");
  // And a node does not start in mutual with such a certificate of its own.
  net::TlsOptions own = Tls(SecurityLevel::kMutual, two, &ca_);
  own.node_id = "a";
  std::shared_ptr<const TlsContext> c;
  Status st = TlsContext::Create(own, &c);
  ASSERT_FALSE(st.ok());
  EXPECT_SAYS(st, "has 2 CNs; the CN is the node's id, so a certificate must have exactly one");
}

// The warnings a node logs at start-up and shows in `status`, for a given instant.
TEST_F(TlsSessionTest, CertificateWarningsForOurOwnCertificate) {
  const int64_t now = Now();
  auto fine = Context(Tls(SecurityLevel::kEncrypt, a_, &ca_));
  EXPECT_TRUE(fine->CertificateWarnings(now).empty());
  // a_ and the CA are valid for a year: 340 days on, both expire within 30.
  std::vector<std::string> w = fine->CertificateWarnings(now + 340 * 86400);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NE(w[0].find("our certificate (--tls-cert " + a_.cert() + ") CN=a, O=lockmesh expires in"),
            std::string::npos)
      << w[0];
  EXPECT_NE(w[1].find("the CA certificate of --tls-ca " + ca_.cert() + " CN=test CA"),
            std::string::npos)
      << w[1];
  // And past their end they have expired.
  w = fine->CertificateWarnings(now + 400 * 86400);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NE(w[0].find("expired on"), std::string::npos) << w[0];
  // A certificate that a node cannot use in both roles is flagged too.
  net::CertificateSpec spec = NodeSpec("srv-only");
  spec.extended_key_usage = net::kEkuServerAuth;
  auto srv_only = Context(Tls(SecurityLevel::kEncrypt, MakeSpecCert(dir_.Join("s"), spec), &ca_));
  w = srv_only->CertificateWarnings(now);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("lacks clientAuth"), std::string::npos) << w[0];
}

TEST_F(TlsSessionTest, NoClientCertificateRefusedOnBothSides) {
  net::TlsOptions co;
  co.level = SecurityLevel::kEncrypt;
  co.ca_file = ca_.cert();
  co.allow_no_certificate = true;
  TlsSession client(Context(co), TlsRole::kClient);
  TlsSession server(Context(Tls(SecurityLevel::kEncrypt, b_, &ca_)), TlsRole::kServer);
  Outcome o = Handshake(&client, &server);
  ASSERT_FALSE(o.done);
  EXPECT_NE(o.server.message().find("presented no certificate"), std::string::npos)
      << o.server.ToString();
  EXPECT_NE(o.client.message().find("requires a client certificate"), std::string::npos)
      << o.client.ToString();
}

TEST_F(TlsSessionTest, SelfSignedRefusedInEncryptAndMutualEvenIfListedAsCa) {
  for (SecurityLevel level : {SecurityLevel::kEncrypt, SecurityLevel::kMutual}) {
    SCOPED_TRACE(net::SecurityLevelName(level));
    CertDir self = MakeCert(dir_.Join("self"), CertificateKind::kSelfSigned, "s");
    // The server even lists the self-signed certificate as a CA: still refused.
    std::string trust = dir_.Join("trust.pem");
    WriteFile(trust, ReadFile(ca_.cert()) + ReadFile(self.cert()));
    net::TlsOptions co = Tls(level, self, &ca_);
    co.node_id = "s";
    net::TlsOptions so = Tls(level, b_, nullptr);
    so.ca_file = trust;
    so.node_id = "b";
    TlsSession client(Context(co), TlsRole::kClient);
    TlsSession server(Context(so), TlsRole::kServer);
    Outcome o = Handshake(&client, &server);
    ASSERT_FALSE(o.done);
    EXPECT_NE(o.server.message().find("self-signed"), std::string::npos) << o.server.ToString();
    EXPECT_NE(o.client.message().find("access denied"), std::string::npos) << o.client.ToString();
  }
}

TEST_F(TlsSessionTest, TofuRefusesExpiredSelfSigned) {
  CertDir old = MakeCert(dir_.Join("old"), CertificateKind::kSelfSigned, "old", nullptr,
                         Now() - 400 * 86400, Now() - 30 * 86400);
  CertDir sb = MakeCert(dir_.Join("sb"), CertificateKind::kSelfSigned, "b");
  TlsSession client(Context(Tls(SecurityLevel::kTofu, old, nullptr)), TlsRole::kClient);
  TlsSession server(Context(Tls(SecurityLevel::kTofu, sb, nullptr)), TlsRole::kServer);
  Outcome o = Handshake(&client, &server);
  ASSERT_FALSE(o.done);
  EXPECT_NE(o.server.message().find("expired on"), std::string::npos) << o.server.ToString();
}

TEST_F(TlsSessionTest, PlaintextBytesAreNotTls) {
  TlsSession server(Context(Tls(SecurityLevel::kEncrypt, b_, &ca_)), TlsRole::kServer);
  ASSERT_TRUE(server.Init().ok());
  server.Feed(std::string("\0\0\0\x10hello, plaintext", 20));
  Status st = server.Handshake();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("does not speak TLS"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("--security none"), std::string::npos) << st.ToString();
  EXPECT_FALSE(net::LooksLikeTlsHandshake(std::string("\0\0\0\x10", 4)));
  TlsSession client(Context(Tls(SecurityLevel::kEncrypt, a_, &ca_)), TlsRole::kClient);
  ASSERT_TRUE(client.Init().ok());
  ASSERT_TRUE(client.Handshake().ok());
  std::string hello;
  client.TakeOutput(&hello);
  EXPECT_TRUE(net::LooksLikeTlsHandshake(hello));
}

TEST_F(TlsSessionTest, VerifyChainAppliesTheLevelRules) {
  auto enc = Context(Tls(SecurityLevel::kEncrypt, a_, &ca_));
  net::CertificateChain chain;
  ASSERT_TRUE(net::CertificateChain::Load(b_.cert(), &chain).ok());
  EXPECT_TRUE(enc->VerifyChain(chain.leaf()).ok());
  auto other =
      Context(Tls(SecurityLevel::kEncrypt,
                  MakeCert(dir_.Join("y"), CertificateKind::kNode, "y", &other_ca_), &other_ca_));
  Status st = other->VerifyChain(chain.leaf());
  EXPECT_NE(st.message().find("not issued by a CA this node trusts"), std::string::npos)
      << st.ToString();
}

}  // namespace
}  // namespace lockmesh::testing
