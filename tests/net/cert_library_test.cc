// net/tls/certificate and net/tls/known_peers, checked against the real `openssl` CLI where OpenSSL
// has an opinion (fingerprints, chain verification, certificates OpenSSL made), and on real
// files (modes, corrupt stores, concurrent updates).
#include <mbedtls/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "net/support/process_harness.h"
#include "net/tls/certificate.h"
#include "net/tls/known_peers.h"

namespace lockmesh::testing {
namespace {

using mesh::Status;
using mesh::net::CertificateChain;
using mesh::net::CertificateInfo;
using mesh::net::CertificateKind;
using mesh::net::CertificateSpec;
using mesh::net::Fingerprint;
using mesh::net::KnownPeer;
using mesh::net::PemPair;
using mesh::net::PrivateKey;
using mesh::net::TofuVerdict;
using mesh::net::TrustedFingerprints;
using mesh::net::Validity;

int64_t Now() { return static_cast<int64_t>(time(nullptr)); }

mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

class CertLibraryTest : public ProcessTest {
 protected:
  // Runs openssl with `args`; returns its result.
  RunResult OpenSsl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    return Finish(Spawn("openssl", argv), Millis(60000));
  }

  // Generates and writes a certificate of `kind` into `dir`.
  void Make(CertificateKind kind, const std::string& cn, const std::string& dir,
            const CertificateChain* ca = nullptr, const PrivateKey* ca_key = nullptr,
            int64_t not_before = 0, int64_t not_after = 0) {
    CertificateSpec spec;
    spec.kind = kind;
    spec.common_name = cn;
    mesh::net::DefaultValidity(Now(), 30, &spec);
    if (not_after != 0) {
      spec.not_before = not_before;
      spec.not_after = not_after;
    }
    PemPair pair;
    Status st = mesh::net::GenerateCertificate(spec, ca, ca_key, &pair);
    ASSERT_TRUE(st.ok()) << st.ToString();
    st = mesh::net::WriteCertificateFiles(dir, pair, /*overwrite=*/false);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  CertificateInfo Inspect(const std::string& cert_file) {
    CertificateChain chain;
    Status st = CertificateChain::Load(cert_file, &chain);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok()) return {};
    return chain.Inspect().front();
  }
};

TEST_F(CertLibraryTest, FingerprintFormsRoundTrip) {
  std::array<uint8_t, 32> bytes;
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + 3);
  Fingerprint fp(bytes);
  EXPECT_EQ(fp.ToCompact(),
            "sha256$030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dc");
  EXPECT_EQ(fp.ToOpenSsl().rfind("sha256 Fingerprint=03:0A:11:", 0), 0u) << fp.ToOpenSsl();
  for (const std::string& text :
       {fp.ToCompact(), fp.ToOpenSsl(), fp.ToColonHex(), "  " + fp.ToOpenSsl() + "\n",
        "SHA256 Fingerprint=" + fp.ToColonHex(), fp.ToCompact().substr(7),
        std::string("SHA256$") + fp.ToCompact().substr(7)}) {
    Fingerprint parsed;
    Status st = Fingerprint::Parse(text, &parsed);
    ASSERT_TRUE(st.ok()) << text << ": " << st.ToString();
    EXPECT_EQ(parsed, fp) << text;
  }
  struct Bad {
    std::string text;
    std::string says;
  };
  for (const Bad& bad : std::vector<Bad>{
           {"sha1 Fingerprint=AB:CD", "sha1 fingerprint"},
           {"md5$abcd", "unknown digest"},
           {"sha256$abcd", "4 hex digits"},
           {fp.ToCompact() + "00", "66 hex digits"},
           {"sha256$" + std::string(63, 'a') + "g", "'g' is not a hex digit"},
           {"AB:CDE:" + fp.ToColonHex().substr(7), "two hex digits"},
           {"", "0 hex digits"},
       }) {
    Fingerprint parsed;
    Status st = Fingerprint::Parse(bad.text, &parsed);
    ASSERT_FALSE(st.ok()) << bad.text;
    EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
    EXPECT_NE(st.message().find(bad.says), std::string::npos) << st.message();
  }
}

// A CA and a node certificate made by lockmesh: OpenSSL verifies the chain, prints the same
// fingerprints, sees the CN and SAN; files and directories get their modes.
TEST_F(CertLibraryTest, GeneratedChainVerifiesWithOpenSsl) {
  std::string ca_dir = Path("pki/ca");
  std::string node_dir = Path("pki/node");
  Make(CertificateKind::kCa, "test CA", ca_dir);
  CertificateChain ca;
  PrivateKey ca_key;
  Status st = mesh::net::LoadCertificateAuthority(ca_dir, &ca, &ca_key);
  ASSERT_TRUE(st.ok()) << st.ToString();
  Make(CertificateKind::kNode, "0123456789abcdef0123456789abcdef", node_dir, &ca, &ca_key);

  EXPECT_EQ(ModeOf(ca_dir), 0700u);
  EXPECT_EQ(ModeOf(ca_dir + "/key.pem"), 0600u);
  EXPECT_EQ(ModeOf(ca_dir + "/cert.pem"), 0644u);
  EXPECT_EQ(ModeOf(node_dir + "/key.pem"), 0600u);

  RunResult verify = OpenSsl({"verify", "-CAfile", ca_dir + "/cert.pem", node_dir + "/cert.pem"});
  EXPECT_EQ(verify.code(), 0) << verify.Describe();
  EXPECT_NE(verify.out.find(": OK"), std::string::npos) << verify.out;

  for (const std::string& dir : {ca_dir, node_dir}) {
    RunResult fp = OpenSsl({"x509", "-noout", "-fingerprint", "-sha256", "-in", dir + "/cert.pem"});
    ASSERT_EQ(fp.code(), 0) << fp.Describe();
    CertificateInfo info = Inspect(dir + "/cert.pem");
    EXPECT_EQ(info.fingerprint.ToOpenSsl(), Trimmed(fp.out));
  }
  CertificateInfo node = Inspect(node_dir + "/cert.pem");
  EXPECT_EQ(node.common_name, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(node.dns_names, std::vector<std::string>{"0123456789abcdef0123456789abcdef"});
  EXPECT_FALSE(node.is_ca);
  EXPECT_FALSE(node.self_signed);
  EXPECT_EQ(node.issuer, "CN=test CA, O=lockmesh");
  EXPECT_EQ(node.key_type, "EC P-256");
  EXPECT_EQ(node.ValidityAt(Now()), Validity::kValid);
  CertificateInfo ca_info = Inspect(ca_dir + "/cert.pem");
  EXPECT_TRUE(ca_info.is_ca);
  EXPECT_TRUE(ca_info.self_signed);

  RunResult text = OpenSsl({"x509", "-noout", "-subject", "-ext", "subjectAltName,basicConstraints",
                            "-in", node_dir + "/cert.pem"});
  EXPECT_NE(text.out.find("CN = 0123456789abcdef0123456789abcdef"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("DNS:0123456789abcdef0123456789abcdef"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("CA:FALSE"), std::string::npos) << text.out;
  // OpenSSL reads the key and finds it matches the certificate.
  RunResult key_pub = OpenSsl({"pkey", "-in", node_dir + "/key.pem", "-pubout"});
  RunResult cert_pub = OpenSsl({"x509", "-in", node_dir + "/cert.pem", "-noout", "-pubkey"});
  EXPECT_EQ(key_pub.code(), 0) << key_pub.Describe();
  EXPECT_EQ(key_pub.out, cert_pub.out);
}

// The issuer of a node certificate is copied from whatever CA signs it: a CA made by OpenSSL
// (with its own DN layout and string types) still verifies.
TEST_F(CertLibraryTest, NodeCertificateSignedByOpenSslCaVerifies) {
  std::string ca_dir = dir_->MakeDir("osslca");
  RunResult made =
      OpenSsl({"req", "-new", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
               "-days", "30", "-nodes", "-subj", "/C=IT/O=Example Org/OU=Ops/CN=Example Root",
               "-keyout", ca_dir + "/key.pem", "-out", ca_dir + "/cert.pem"});
  ASSERT_EQ(made.code(), 0) << made.Describe();
  CertificateChain ca;
  PrivateKey ca_key;
  Status st = mesh::net::LoadCertificateAuthority(ca_dir, &ca, &ca_key);
  ASSERT_TRUE(st.ok()) << st.ToString();
  std::string node_dir = Path("osslnode");
  Make(CertificateKind::kNode, "node-7", node_dir, &ca, &ca_key);
  RunResult verify = OpenSsl({"verify", "-CAfile", ca_dir + "/cert.pem", node_dir + "/cert.pem"});
  EXPECT_EQ(verify.code(), 0) << verify.Describe();
  EXPECT_EQ(Inspect(node_dir + "/cert.pem").issuer, Inspect(ca_dir + "/cert.pem").subject);
}

// A self-signed certificate made by OpenSSL (openssl req -x509): lockmesh reads it, calls
// it self-signed, and agrees on the fingerprint.
TEST_F(CertLibraryTest, OpenSslSelfSignedCertificateIsUnderstood) {
  std::string dir = dir_->MakeDir("ossl");
  RunResult made =
      OpenSsl({"req", "-new", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
               "-days", "1825", "-nodes", "-subj", "/CN=openssl-node", "-keyout", dir + "/key.pem",
               "-out", dir + "/cert.pem"});
  ASSERT_EQ(made.code(), 0) << made.Describe();
  CertificateInfo info = Inspect(dir + "/cert.pem");
  EXPECT_TRUE(info.self_signed);
  EXPECT_EQ(info.common_name, "openssl-node");
  RunResult fp = OpenSsl({"x509", "-noout", "-fingerprint", "-sha256", "-in", dir + "/cert.pem"});
  EXPECT_EQ(info.fingerprint.ToOpenSsl(), Trimmed(fp.out));
  CertificateChain chain;
  PrivateKey key;
  ASSERT_TRUE(CertificateChain::Load(dir + "/cert.pem", &chain).ok());
  Status st = PrivateKey::Load(dir + "/key.pem", &key);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(mesh::net::CheckKeyMatchesCertificate(chain, key).ok());
  // Its fingerprint, in OpenSSL's own words, is accepted by the parser.
  Fingerprint parsed;
  ASSERT_TRUE(Fingerprint::Parse(fp.out, &parsed).ok());
  EXPECT_EQ(parsed, info.fingerprint);
}

TEST_F(CertLibraryTest, SelfSignedExpiredAndNotYetValid) {
  int64_t now = Now();
  Make(CertificateKind::kSelfSigned, "old", Path("old"), nullptr, nullptr, now - 10 * 86400,
       now - 86400);
  Make(CertificateKind::kSelfSigned, "future", Path("future"), nullptr, nullptr, now + 86400,
       now + 10 * 86400);
  Make(CertificateKind::kSelfSigned, "self", Path("self"));
  CertificateInfo old_info = Inspect(Path("old/cert.pem"));
  CertificateInfo future_info = Inspect(Path("future/cert.pem"));
  CertificateInfo self_info = Inspect(Path("self/cert.pem"));
  EXPECT_EQ(old_info.ValidityAt(now), Validity::kExpired);
  EXPECT_EQ(future_info.ValidityAt(now), Validity::kNotYetValid);
  EXPECT_EQ(self_info.ValidityAt(now), Validity::kValid);
  EXPECT_EQ(old_info.not_after, now - 86400);
  EXPECT_TRUE(self_info.self_signed);
  EXPECT_FALSE(self_info.is_ca);
  // OpenSSL agrees that the old one has expired.
  RunResult check = OpenSsl({"x509", "-noout", "-checkend", "0", "-in", Path("old/cert.pem")});
  EXPECT_EQ(check.code(), 1) << check.Describe();
}

// The expiry decision of a node's own certificate (start-up log, `lockmesh status`): pure,
// the instant is the caller's.
TEST(CertificateExpiryTest, WarnsWithinThirtyDaysAndAfterTheEnd) {
  using mesh::net::CertificateExpiry;
  using mesh::net::CheckCertificateExpiry;
  using State = CertificateExpiry::State;
  constexpr int64_t kDay = 86400;
  const int64_t from = 1'700'000'000, to = from + 365 * kDay;
  EXPECT_EQ(CheckCertificateExpiry(from, to, from).state, State::kFine);
  EXPECT_EQ(CheckCertificateExpiry(from, to, to - 30 * kDay - 1).state, State::kFine);
  EXPECT_EQ(CheckCertificateExpiry(from, to, to - 30 * kDay - 1).days, 30);
  // Exactly 30 days left, and anything less, is "expires soon".
  CertificateExpiry e = CheckCertificateExpiry(from, to, to - 30 * kDay);
  EXPECT_EQ(e.state, State::kExpiresSoon);
  EXPECT_EQ(e.days, 30);
  e = CheckCertificateExpiry(from, to, to - 12 * kDay - 5);
  EXPECT_EQ(e.state, State::kExpiresSoon);
  EXPECT_EQ(e.days, 12);
  e = CheckCertificateExpiry(from, to, to);  // the last valid second
  EXPECT_EQ(e.state, State::kExpiresSoon);
  EXPECT_EQ(e.days, 0);
  e = CheckCertificateExpiry(from, to, to + 1);
  EXPECT_EQ(e.state, State::kExpired);
  EXPECT_EQ(e.days, 0);
  e = CheckCertificateExpiry(from, to, to + 3 * kDay);
  EXPECT_EQ(e.state, State::kExpired);
  EXPECT_EQ(e.days, 3);
  e = CheckCertificateExpiry(from, to, from - 2 * kDay - 1);
  EXPECT_EQ(e.state, State::kNotYetValid);
  EXPECT_EQ(e.days, 2);
  // The period is a parameter; a certificate shorter than it warns from its first second.
  EXPECT_EQ(CheckCertificateExpiry(from, to, to - 10 * kDay, 7).state, State::kFine);
  EXPECT_EQ(CheckCertificateExpiry(from, from + 10 * kDay, from).state, State::kExpiresSoon);

  CertificateInfo info;
  info.subject = "CN=n1, O=lockmesh";
  info.not_before = from;
  info.not_after = to;
  EXPECT_EQ(mesh::net::CertificateExpiryWarning(info, "our certificate", from), "");
  std::string w = mesh::net::CertificateExpiryWarning(info, "our certificate", to - 12 * kDay);
  EXPECT_NE(w.find("our certificate CN=n1, O=lockmesh expires in 12 days, on " +
                   mesh::net::FormatUtc(to)),
            std::string::npos)
      << w;
  EXPECT_NE(w.find("SIGHUP"), std::string::npos) << w;
  w = mesh::net::CertificateExpiryWarning(info, "our certificate", to + kDay);
  EXPECT_NE(w.find("expired on " + mesh::net::FormatUtc(to) + " (1 day ago)"), std::string::npos)
      << w;
  w = mesh::net::CertificateExpiryWarning(info, "our certificate", from - 3 * kDay);
  EXPECT_NE(w.find("is not valid before " + mesh::net::FormatUtc(from) + " (3 days from now)"),
            std::string::npos)
      << w;
}

// The knobs tests use to make certificates TLS must refuse (keyUsage, extendedKeyUsage,
// several CNs) write what OpenSSL reads.
TEST_F(CertLibraryTest, UsageAndExtraCommonNamesAreWhatOpenSslSees) {
  CertificateChain ca;
  PrivateKey ca_key;
  Make(CertificateKind::kCa, "test CA", Path("ca"));
  ASSERT_TRUE(mesh::net::LoadCertificateAuthority(Path("ca"), &ca, &ca_key).ok());
  CertificateSpec spec;
  spec.kind = CertificateKind::kNode;
  spec.common_name = "a";
  spec.extra_common_names = {"b"};
  spec.key_usage = MBEDTLS_X509_KU_KEY_ENCIPHERMENT;
  spec.extended_key_usage = mesh::net::kEkuServerAuth;
  mesh::net::DefaultValidity(Now(), 30, &spec);
  PemPair pair;
  Status st = mesh::net::GenerateCertificate(spec, &ca, &ca_key, &pair);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_TRUE(mesh::net::WriteCertificateFiles(Path("odd"), pair, false).ok());
  CertificateInfo info = Inspect(Path("odd/cert.pem"));
  EXPECT_EQ(info.common_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(info.common_name, "b");  // the last, as mbedTLS-based code used to take it
  RunResult text = OpenSsl({"x509", "-noout", "-text", "-in", Path("odd/cert.pem")});
  ASSERT_EQ(text.code(), 0) << text.Describe();
  EXPECT_NE(text.out.find("CN = a, O = lockmesh, CN = b"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("Key Encipherment"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("Digital Signature"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("TLS Web Server Authentication"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("TLS Web Client Authentication"), std::string::npos) << text.out;
  RunResult verify = OpenSsl({"verify", "-CAfile", Path("ca/cert.pem"), Path("odd/cert.pem")});
  EXPECT_EQ(verify.code(), 0) << verify.Describe();
}

TEST_F(CertLibraryTest, BadSpecsAreRefusedInWords) {
  PemPair pair;
  CertificateSpec spec;
  spec.kind = CertificateKind::kSelfSigned;
  mesh::net::DefaultValidity(Now(), 1, &spec);
  spec.common_name = "";
  EXPECT_NE(mesh::net::GenerateCertificate(spec, nullptr, nullptr, &pair).message().find("empty"),
            std::string::npos);
  spec.common_name = "a\\b";
  EXPECT_TRUE(mesh::net::GenerateCertificate(spec, nullptr, nullptr, &pair).IsInvalidArgument());
  spec.common_name = "ok, with comma";
  Status st = mesh::net::GenerateCertificate(spec, nullptr, nullptr, &pair);
  ASSERT_TRUE(st.ok()) << st.ToString();
  CertificateChain chain;
  ASSERT_TRUE(CertificateChain::Parse(pair.cert_pem, "memory", &chain).ok());
  EXPECT_EQ(chain.Inspect().front().common_name, "ok, with comma");
  EXPECT_TRUE(chain.Inspect().front().dns_names.empty());  // not an id: no SAN
  spec.common_name = "x";
  spec.not_after = spec.not_before;
  EXPECT_NE(mesh::net::GenerateCertificate(spec, nullptr, nullptr, &pair)
                .message()
                .find("validity period is empty"),
            std::string::npos);
  // A node certificate needs a CA, and a non-CA cannot sign one.
  mesh::net::DefaultValidity(Now(), 1, &spec);
  spec.kind = CertificateKind::kNode;
  EXPECT_TRUE(mesh::net::GenerateCertificate(spec, nullptr, nullptr, &pair).IsInvalidArgument());
  Make(CertificateKind::kSelfSigned, "leaf", Path("leaf"));
  CertificateChain leaf;
  PrivateKey leaf_key;
  st = mesh::net::LoadCertificateAuthority(Path("leaf"), &leaf, &leaf_key);
  EXPECT_NE(st.message().find("is not a CA certificate"), std::string::npos) << st.ToString();
}

TEST_F(CertLibraryTest, FilesAreNeverOverwrittenWithoutForceAndKeysStayPrivate) {
  mode_t old_umask = umask(0);  // the most permissive umask: modes must still be exact
  Make(CertificateKind::kSelfSigned, "a", Path("out"));
  umask(old_umask);
  EXPECT_EQ(ModeOf(Path("out/key.pem")), 0600u);
  EXPECT_EQ(ModeOf(Path("out/cert.pem")), 0644u);
  EXPECT_EQ(ModeOf(Path("out")), 0700u);
  std::string before = ReadFile(Path("out/cert.pem"));
  PemPair pair;
  CertificateSpec spec;
  spec.common_name = "b";
  mesh::net::DefaultValidity(Now(), 1, &spec);
  ASSERT_TRUE(mesh::net::GenerateCertificate(spec, nullptr, nullptr, &pair).ok());
  Status st = mesh::net::WriteCertificateFiles(Path("out"), pair, /*overwrite=*/false);
  EXPECT_EQ(st.code(), Status::Code::kAlreadyExists);
  EXPECT_NE(st.message().find("--force"), std::string::npos) << st.message();
  EXPECT_EQ(ReadFile(Path("out/cert.pem")), before);
  // Only key.pem present is refused too (never pair a new cert with an old key).
  ASSERT_EQ(unlink(Path("out/cert.pem").c_str()), 0);
  EXPECT_FALSE(mesh::net::WriteCertificateFiles(Path("out"), pair, false).ok());
  EXPECT_FALSE(FileExists(Path("out/cert.pem")));
  st = mesh::net::WriteCertificateFiles(Path("out"), pair, /*overwrite=*/true);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(ReadFile(Path("out/cert.pem")), pair.cert_pem);
  EXPECT_EQ(ModeOf(Path("out/key.pem")), 0600u);
  // No temporary file is left behind.
  RunResult ls = Finish(Spawn("ls", {"ls", "-A", Path("out")}), Millis(10000));
  EXPECT_EQ(ls.out, "cert.pem\nkey.pem\n");
}

TEST_F(CertLibraryTest, LoadErrorsNameTheFileAndTheProblem) {
  Make(CertificateKind::kSelfSigned, "a", Path("a"));
  Make(CertificateKind::kSelfSigned, "b", Path("b"));
  CertificateChain chain;
  Status st = CertificateChain::Load(Path("missing.pem"), &chain);
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
  st = CertificateChain::Load(Path("a/key.pem"), &chain);
  EXPECT_NE(st.message().find("holds a private key"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find(Path("a/key.pem")), std::string::npos) << st.ToString();
  PrivateKey key;
  st = PrivateKey::Load(Path("a/cert.pem"), &key);
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
  RunResult enc = OpenSsl({"ec", "-in", Path("a/key.pem"), "-aes256", "-passout", "pass:secret",
                           "-out", Path("encrypted.pem")});
  ASSERT_EQ(enc.code(), 0) << enc.Describe();
  st = PrivateKey::Load(Path("encrypted.pem"), &key);
  EXPECT_NE(st.message().find("passphrase"), std::string::npos) << st.ToString();
  // The key of b does not belong to the certificate of a.
  ASSERT_TRUE(CertificateChain::Load(Path("a/cert.pem"), &chain).ok());
  ASSERT_TRUE(PrivateKey::Load(Path("b/key.pem"), &key).ok());
  st = mesh::net::CheckKeyMatchesCertificate(chain, key);
  EXPECT_NE(st.message().find("does not belong"), std::string::npos) << st.ToString();
  // A chain file with two certificates loads both, leaf first; moving keeps get() stable.
  WriteFile(Path("two.pem"), ReadFile(Path("a/cert.pem")) + ReadFile(Path("b/cert.pem")));
  ASSERT_TRUE(CertificateChain::Load(Path("two.pem"), &chain).ok());
  EXPECT_EQ(chain.size(), 2u);
  const mbedtls_x509_crt* raw = chain.get();
  CertificateChain moved = std::move(chain);
  EXPECT_EQ(moved.get(), raw);
  EXPECT_EQ(moved.Inspect().at(1).common_name, "b");
  EXPECT_TRUE(chain.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
}

// ------------------------------------------------------------------------------ known_peers

class KnownPeersTest : public ProcessTest {
 protected:
  Fingerprint Fp(uint8_t seed) {
    std::array<uint8_t, 32> b;
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(seed + i);
    return Fingerprint(b);
  }
  std::string Store() { return mesh::net::KnownPeersPath(Path("data")); }
};

TEST_F(KnownPeersTest, FirstContactThenKnownThenChanged) {
  TofuVerdict verdict;
  KnownPeer stored;
  Status st = mesh::net::CheckAndRecordPeer(Store(), "n1", Fp(1), 1700000000, &verdict, &stored);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(verdict, TofuVerdict::kFirstContact);
  EXPECT_EQ(ModeOf(Store()), 0600u);
  EXPECT_EQ(ModeOf(Path("data")), 0700u);
  EXPECT_NE(ReadFile(Store()).find("n1 " + Fp(1).ToCompact() + " 2023-11-14T22:13:20Z\n"),
            std::string::npos)
      << ReadFile(Store());
  ASSERT_TRUE(
      mesh::net::CheckAndRecordPeer(Store(), "n1", Fp(1), 1800000000, &verdict, &stored).ok());
  EXPECT_EQ(verdict, TofuVerdict::kKnown);
  EXPECT_EQ(stored.first_seen, 1700000000);
  ASSERT_TRUE(
      mesh::net::CheckAndRecordPeer(Store(), "n1", Fp(2), 1800000000, &verdict, &stored).ok());
  EXPECT_EQ(verdict, TofuVerdict::kChanged);
  EXPECT_EQ(stored.fingerprint, Fp(1));
  // A changed fingerprint is not recorded.
  std::vector<KnownPeer> peers;
  ASSERT_TRUE(mesh::net::LoadKnownPeers(Store(), &peers).ok());
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].fingerprint, Fp(1));

  std::string message = mesh::net::FingerprintChangedMessage("n1", stored, Fp(2), Path("data"));
  EXPECT_NE(message.find(Fp(1).ToCompact()), std::string::npos) << message;
  EXPECT_NE(message.find(Fp(2).ToCompact()), std::string::npos) << message;
  EXPECT_NE(message.find("lockmesh trust accept --data-dir " + Path("data") + " n1 '" +
                         Fp(2).ToCompact() + "'"),
            std::string::npos)
      << message;
  EXPECT_EQ(mesh::net::TrustAcceptCommand("-odd id", Fp(3), ""),
            "lockmesh trust accept -- '-odd id' '" + Fp(3).ToCompact() + "'");
}

TEST_F(KnownPeersTest, AcceptReplacesAndForgetRemoves) {
  std::optional<Fingerprint> previous;
  ASSERT_TRUE(mesh::net::AcceptPeer(Store(), "b", Fp(5), 100, &previous).ok());
  EXPECT_FALSE(previous.has_value());
  ASSERT_TRUE(mesh::net::AcceptPeer(Store(), "a", Fp(6), 100, &previous).ok());
  ASSERT_TRUE(mesh::net::AcceptPeer(Store(), "b", Fp(7), 200, &previous).ok());
  ASSERT_TRUE(previous.has_value());
  EXPECT_EQ(*previous, Fp(5));
  std::vector<KnownPeer> peers;
  ASSERT_TRUE(mesh::net::LoadKnownPeers(Store(), &peers).ok());
  ASSERT_EQ(peers.size(), 2u);
  EXPECT_EQ(peers[0].node_id, "a");  // sorted by id
  EXPECT_EQ(peers[1].fingerprint, Fp(7));
  EXPECT_EQ(peers[1].first_seen, 200);
  ASSERT_TRUE(mesh::net::ForgetPeer(Store(), "a").ok());
  Status st = mesh::net::ForgetPeer(Store(), "a");
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
  ASSERT_TRUE(mesh::net::LoadKnownPeers(Store(), &peers).ok());
  EXPECT_EQ(peers.size(), 1u);
  EXPECT_TRUE(mesh::net::AcceptPeer(Store(), "has space", Fp(1), 1, nullptr).IsInvalidArgument());
  // A missing store is an empty one.
  ASSERT_TRUE(mesh::net::LoadKnownPeers(Path("nowhere/known_peers"), &peers).ok());
  EXPECT_TRUE(peers.empty());
}

TEST_F(KnownPeersTest, CorruptStoreIsRefusedWithFileAndLine) {
  ASSERT_EQ(mkdir(Path("data").c_str(), 0700), 0);
  std::string good = "# comment\n\nn1 " + Fp(1).ToCompact() + " 2026-01-01T00:00:00Z\n";
  struct Case {
    std::string line;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {"n2 " + Fp(2).ToCompact(), "expected three fields"},
           {"n2 sha256$zz 2026-01-01T00:00:00Z", "is not a SHA-256 fingerprint"},
           {"n2 " + Fp(2).ToCompact() + " yesterday", "is not a UTC time"},
           {"n2 " + Fp(2).ToCompact() + " 2026-01-01T00:00:00Z extra", "expected three fields"},
           {"n1 " + Fp(2).ToCompact() + " 2026-01-01T00:00:00Z", "listed twice"},
       }) {
    WriteFile(Store(), good + c.line + "\n");
    std::vector<KnownPeer> peers;
    Status st = mesh::net::LoadKnownPeers(Store(), &peers);
    EXPECT_TRUE(st.IsCorruption()) << c.line << ": " << st.ToString();
    EXPECT_NE(st.message().find(Store() + ":4: "), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(c.says), std::string::npos) << st.message();
    // The check refuses to decide on a corrupt store and leaves it as it is.
    TofuVerdict verdict;
    EXPECT_FALSE(mesh::net::CheckAndRecordPeer(Store(), "n9", Fp(9), 1, &verdict, nullptr).ok());
    EXPECT_EQ(ReadFile(Store()), good + c.line + "\n");
  }
  // The OpenSSL form without spaces is not a store line, but a colon form is accepted.
  WriteFile(Store(), "n3 " + Fp(3).ToColonHex() + " 2026-01-01T00:00:00Z\n");
  std::vector<KnownPeer> peers;
  ASSERT_TRUE(mesh::net::LoadKnownPeers(Store(), &peers).ok());
  EXPECT_EQ(peers.at(0).fingerprint, Fp(3));
}

// flock makes read-modify-write safe: concurrent first contacts all end up in the file.
TEST_F(KnownPeersTest, ConcurrentUpdatesAreNotLost) {
  constexpr int kThreads = 6;
  constexpr int kPerThread = 15;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        TofuVerdict verdict;
        std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!mesh::net::CheckAndRecordPeer(Store(), id, Fp(static_cast<uint8_t>(t * 20 + i)), 1,
                                           &verdict, nullptr)
                 .ok() ||
            verdict != TofuVerdict::kFirstContact) {
          ++failures;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  std::vector<KnownPeer> peers;
  ASSERT_TRUE(mesh::net::LoadKnownPeers(Store(), &peers).ok());
  EXPECT_EQ(peers.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST_F(KnownPeersTest, AllowListAcceptsBothFormsAndComments) {
  std::string list = Path("allow");
  WriteFile(list, "# allowed peers\n" + Fp(1).ToOpenSsl() + "\n\n  " + Fp(2).ToCompact() +
                      "   # node b\n" + Fp(3).ToColonHex() + "\n");
  TrustedFingerprints allowed;
  Status st = TrustedFingerprints::Load(list, &allowed);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(allowed.size(), 3u);
  EXPECT_TRUE(allowed.Contains(Fp(1)));
  EXPECT_TRUE(allowed.Contains(Fp(2)));
  EXPECT_TRUE(allowed.Contains(Fp(3)));
  EXPECT_FALSE(allowed.Contains(Fp(4)));

  WriteFile(list, Fp(1).ToCompact() + "\nnot a fingerprint\n");
  st = TrustedFingerprints::Load(list, &allowed);
  EXPECT_NE(st.message().find(list + ":2: "), std::string::npos) << st.ToString();
  WriteFile(list, "# nothing\n\n");
  st = TrustedFingerprints::Load(list, &allowed);
  EXPECT_NE(st.message().find("lists no fingerprint"), std::string::npos) << st.ToString();
  st = TrustedFingerprints::Load(Path("none"), &allowed);
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
}

}  // namespace
}  // namespace lockmesh::testing
