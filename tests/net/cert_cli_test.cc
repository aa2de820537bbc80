// `lockmesh cert` and `lockmesh trust` as a user runs them: real processes, real files, and
// the real `openssl` CLI as the judge of what lockmesh writes.
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

bool HasLine(const std::string& text, const std::string& line) {
  for (const std::string& l : SplitLines(text)) {
    if (l == line) return true;
  }
  return false;
}

class CertCliTest : public ProcessTest {
 protected:
  RunResult Run(const std::vector<std::string>& argv) {
    return Finish(Spawn(argv[0], argv), Millis(60000));
  }
  RunResult Cert(const std::vector<std::string>& args) {
    std::vector<std::string> full = {"cert"};
    full.insert(full.end(), args.begin(), args.end());
    return RunLockmesh("cert", full, Millis(60000));
  }
  std::string OpenSslFingerprint(const std::string& cert) {
    RunResult r = Run({"openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", cert});
    EXPECT_EQ(r.code(), 0) << r.Describe();
    return FirstLine(r.out);
  }
};

TEST_F(CertCliTest, CaAndNodeCertificatesPassOpenSslVerify) {
  RunResult ca = Cert({"ca", "--out", Path("ca")});
  ASSERT_EQ(ca.code(), 0) << ca.Describe();
  RunResult node = Cert({"node", "--ca", Path("ca"), "--out", Path("n1"), "--node-id", "node-one"});
  ASSERT_EQ(node.code(), 0) << node.Describe();
  RunResult verify =
      Run({"openssl", "verify", "-CAfile", Path("ca/cert.pem"), Path("n1/cert.pem")});
  EXPECT_EQ(verify.code(), 0) << verify.Describe();
  EXPECT_EQ(verify.out, Path("n1/cert.pem") + ": OK\n");
  // The fingerprint `cert node` printed is OpenSSL's, line for line.
  EXPECT_TRUE(HasLine(node.out, "  " + OpenSslFingerprint(Path("n1/cert.pem")))) << node.out;
  EXPECT_EQ(ModeOf(Path("n1/key.pem")), 0600u);
  EXPECT_EQ(ModeOf(Path("n1/cert.pem")), 0644u);
  EXPECT_EQ(ModeOf(Path("n1")), 0700u);
  RunResult subject = Run({"openssl", "x509", "-noout", "-subject", "-in", Path("n1/cert.pem")});
  EXPECT_EQ(subject.out, "subject=CN = node-one, O = lockmesh\n");
}

TEST_F(CertCliTest, NodeCertificateDefaultsToTheUniqueId) {
  ASSERT_EQ(Cert({"ca", "--out", Path("ca")}).code(), 0);
  RunResult id = RunLockmesh("unique-id", {"unique-id", "--data-dir", Path("data")});
  ASSERT_EQ(id.code(), 0) << id.Describe();
  RunResult node =
      Cert({"node", "--ca", Path("ca"), "--out", Path("n"), "--data-dir", Path("data")});
  ASSERT_EQ(node.code(), 0) << node.Describe();
  RunResult show = Cert({"show", "--json", Path("n/cert.pem")});
  ASSERT_EQ(show.code(), 0) << show.Describe();
  auto json = nlohmann::json::parse(show.out);
  EXPECT_EQ(json["certificates"][0]["common_name"], FirstLine(id.out));
  EXPECT_EQ(json["certificates"][0]["dns_names"][0], FirstLine(id.out));
  EXPECT_EQ(json["certificates"][0]["is_ca"], false);
  EXPECT_EQ(json["certificates"][0]["fingerprint_openssl"], OpenSslFingerprint(Path("n/cert.pem")));
}

TEST_F(CertCliTest, RefusesToOverwriteWithoutForce) {
  ASSERT_EQ(Cert({"self-signed", "--cn", "a", "--out", Path("s")}).code(), 0);
  std::string before = ReadFile(Path("s/cert.pem"));
  RunResult again = Cert({"self-signed", "--cn", "b", "--out", Path("s")});
  EXPECT_EQ(again.code(), 99) << again.Describe();
  EXPECT_NE(again.err.find("already exists (use --force to replace it)"), std::string::npos)
      << again.err;
  EXPECT_EQ(ReadFile(Path("s/cert.pem")), before);
  RunResult forced = Cert({"self-signed", "--cn", "b", "--out", Path("s"), "--force"});
  EXPECT_EQ(forced.code(), 0) << forced.Describe();
  EXPECT_NE(ReadFile(Path("s/cert.pem")), before);
  EXPECT_EQ(ModeOf(Path("s/key.pem")), 0600u);
}

// Even with umask 000 the key is 0600 and the directory 0700.
TEST_F(CertCliTest, KeyIsPrivateWhateverTheUmask) {
  RunResult r = Run({"sh", "-c", "umask 000; exec \"$0\" cert self-signed --cn x --out \"$1\"",
                     LockmeshBinary(), Path("u")});
  ASSERT_EQ(r.code(), 0) << r.Describe();
  EXPECT_EQ(ModeOf(Path("u/key.pem")), 0600u);
  EXPECT_EQ(ModeOf(Path("u/cert.pem")), 0644u);
  EXPECT_EQ(ModeOf(Path("u")), 0700u);
}

TEST_F(CertCliTest, ShowSaysExpiredAndNotYetValidAndMatchesOpenSsl) {
  ASSERT_EQ(Cert({"self-signed", "--cn", "old", "--out", Path("old"), "--not-before", "-3d",
                  "--not-after", "-1d"})
                .code(),
            0);
  ASSERT_EQ(Cert({"self-signed", "--cn", "new", "--out", Path("new"), "--not-before", "+1d",
                  "--days", "10"})
                .code(),
            0);
  RunResult old_show = Cert({"show", Path("old/cert.pem")});
  ASSERT_EQ(old_show.code(), 0) << old_show.Describe();
  EXPECT_TRUE(HasLine(old_show.out, "  validity     expired")) << old_show.out;
  EXPECT_TRUE(HasLine(old_show.out, "  self-signed  yes")) << old_show.out;
  EXPECT_TRUE(HasLine(old_show.out, OpenSslFingerprint(Path("old/cert.pem")))) << old_show.out;
  RunResult new_show = Cert({"show", Path("new/cert.pem")});
  EXPECT_TRUE(HasLine(new_show.out, "  validity     not yet valid")) << new_show.out;
  // OpenSSL agrees on the dates.
  RunResult end = Run({"openssl", "x509", "-noout", "-checkend", "0", "-in", Path("old/cert.pem")});
  EXPECT_EQ(end.code(), 1) << end.Describe();
  // A certificate OpenSSL made, shown by lockmesh.
  RunResult made = Run({"openssl", "req", "-new", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-days", "1825", "-nodes", "-subj",
                        "/CN=from-openssl", "-keyout", Path("o.key"), "-out", Path("o.pem")});
  ASSERT_EQ(made.code(), 0) << made.Describe();
  RunResult o = Cert({"show", Path("o.pem")});
  EXPECT_TRUE(HasLine(o.out, "  CN           from-openssl")) << o.out;
  EXPECT_TRUE(HasLine(o.out, "  CA           yes")) << o.out;  // OpenSSL's req -x509 default
  EXPECT_TRUE(HasLine(o.out, OpenSslFingerprint(Path("o.pem")))) << o.out;
}

TEST_F(CertCliTest, BadInputIsRefusedWithExitCodes) {
  RunResult r = Cert({"self-signed", "--cn", "x", "--out", Path("x"), "--not-after", "someday"});
  EXPECT_EQ(r.code(), 2) << r.Describe();
  EXPECT_NE(r.err.find("--not-after"), std::string::npos) << r.err;
  r = Cert({"show", Path("missing.pem")});
  EXPECT_EQ(r.code(), 99) << r.Describe();
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  ASSERT_EQ(Cert({"self-signed", "--cn", "x", "--out", Path("leaf")}).code(), 0);
  r = Cert({"node", "--ca", Path("leaf"), "--out", Path("n"), "--node-id", "n"});
  EXPECT_EQ(r.code(), 99) << r.Describe();
  EXPECT_NE(r.err.find("is not a CA certificate"), std::string::npos) << r.err;
  r = Cert({"show", Path("leaf/key.pem")});
  EXPECT_EQ(r.code(), 99) << r.Describe();
  EXPECT_NE(r.err.find("holds a private key"), std::string::npos) << r.err;
  r = Cert({"node", "--out", Path("n")});  // --ca missing
  EXPECT_EQ(r.code(), 2) << r.Describe();
}

TEST_F(CertCliTest, TrustAcceptListForget) {
  ASSERT_EQ(Cert({"self-signed", "--cn", "peer-a", "--out", Path("a")}).code(), 0);
  std::string openssl_form = OpenSslFingerprint(Path("a/cert.pem"));
  std::string data = Path("data");
  // The OpenSSL form, as one argument, is accepted.
  RunResult accept =
      RunLockmesh("trust", {"trust", "accept", "--data-dir", data, "peer-a", openssl_form});
  ASSERT_EQ(accept.code(), 0) << accept.Describe();
  EXPECT_EQ(ModeOf(data + "/known_peers"), 0600u);
  RunResult list = RunLockmesh("trust", {"trust", "list", "--json", "--data-dir", data});
  ASSERT_EQ(list.code(), 0) << list.Describe();
  auto json = nlohmann::json::parse(list.out);
  ASSERT_EQ(json["peers"].size(), 1u);
  EXPECT_EQ(json["peers"][0]["node_id"], "peer-a");
  EXPECT_EQ(json["peers"][0]["fingerprint_openssl"], openssl_form);
  RunResult text = RunLockmesh("trust", {"trust", "list", "--data-dir", data});
  EXPECT_NE(text.out.find("peer-a"), std::string::npos) << text.out;
  // OpenSSL's line left unquoted (two words) works too.
  size_t space = openssl_form.find(' ');
  RunResult two =
      RunLockmesh("trust", {"trust", "accept", "--data-dir", data, "peer-c",
                            openssl_form.substr(0, space), openssl_form.substr(space + 1)});
  EXPECT_EQ(two.code(), 0) << two.Describe();
  // `sha256$...` unquoted in a shell arrives as "sha256": the error says why.
  RunResult expanded =
      RunLockmesh("trust", {"trust", "accept", "--data-dir", data, "peer-d", "sha256"});
  EXPECT_EQ(expanded.code(), 2) << expanded.Describe();
  EXPECT_NE(expanded.err.find("single quotes"), std::string::npos) << expanded.err;
  ASSERT_EQ(RunLockmesh("trust", {"trust", "forget", "--data-dir", data, "peer-c"}).code(), 0);
  RunResult bad =
      RunLockmesh("trust", {"trust", "accept", "--data-dir", data, "peer-b", "sha256$12"});
  EXPECT_EQ(bad.code(), 2) << bad.Describe();
  EXPECT_NE(bad.err.find("64"), std::string::npos) << bad.err;
  RunResult forget = RunLockmesh("trust", {"trust", "forget", "--data-dir", data, "peer-a"});
  EXPECT_EQ(forget.code(), 0) << forget.Describe();
  forget = RunLockmesh("trust", {"trust", "forget", "--data-dir", data, "peer-a"});
  EXPECT_EQ(forget.code(), 1) << forget.Describe();
  EXPECT_NE(forget.err.find("is not in"), std::string::npos) << forget.err;
  // A corrupt store is refused with file and line.
  WriteFile(data + "/known_peers", "# ok\ngarbage line\n");
  list = RunLockmesh("trust", {"trust", "list", "--data-dir", data});
  EXPECT_EQ(list.code(), 99) << list.Describe();
  EXPECT_NE(list.err.find(data + "/known_peers:2: "), std::string::npos) << list.err;
}

}  // namespace
}  // namespace lockmesh::testing
