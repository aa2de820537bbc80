// A real `lockmesh node` warns about its own certificate: in its log at start-up and in
// `lockmesh status` (text and --json) when the certificate expires within 30 days or already
// has. The decision itself is CheckCertificateExpiry (cert_library_test).
#include <string>
#include <vector>

#include "net/support/loopback_mesh.h"

namespace lockmesh::testing {
namespace {

class CertExpiryNodeTest : public LoopbackMeshTest {
 protected:
  // A CA, and a certificate for node 1 made by `lockmesh cert node` with `validity` flags.
  void MakeCerts(const std::vector<std::string>& validity) {
    ASSERT_EQ(RunLockmesh("ca", {"cert", "ca", "--out", Path("ca")}).code(), 0);
    std::vector<std::string> args = {"cert", "node", "--ca",  Path("ca"),
                                     "--cn", Id(1),  "--out", Path("c1")};
    args.insert(args.end(), validity.begin(), validity.end());
    RunResult r = RunLockmesh("cert", args);
    ASSERT_EQ(r.code(), 0) << r.Describe();
  }
  std::vector<std::string> TlsArgs() {
    return {"--security", "mutual",           "--tls-cert", Path("c1/cert.pem"),
            "--tls-key",  Path("c1/key.pem"), "--tls-ca",   Path("ca/cert.pem")};
  }
  // Starts node 1 alone and waits until it answers `status`.
  void StartNode() {
    StartMeshNode(1, 1, TlsArgs());
    ASSERT_TRUE(WaitFor([&] { return !Status(1).is_null(); }, Millis(30000), Millis(100)))
        << NodeLog(1);
  }
  // The warnings of `status --json` that are about our certificate.
  std::vector<std::string> CertificateWarnings() {
    std::vector<std::string> out;
    Json status = Status(1);
    for (const Json& w : status["warnings"]) {
      std::string text = w.get<std::string>();
      if (text.find("our certificate") != std::string::npos) out.push_back(text);
    }
    return out;
  }
  std::string StatusText() {
    RunResult r = RunLockmesh("status", {"status", "--socket", Socket(1)}, Millis(10000));
    EXPECT_EQ(r.code(), 0) << r.Describe();
    return r.out;
  }
};

TEST_F(CertExpiryNodeTest, WarnsAtStartAndInStatusWhenItsCertificateExpiresWithin30Days) {
  MakeCerts({"--days", "10"});
  StartNode();
  const std::string ours = "our certificate (--tls-cert " + Path("c1/cert.pem") + ") CN=n1";
  std::vector<std::string> warnings = CertificateWarnings();
  ASSERT_EQ(warnings.size(), 1u) << Status(1).dump();
  EXPECT_NE(warnings[0].find(ours), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find(" expires in "), std::string::npos) << warnings[0];
  EXPECT_NE(StatusText().find("warning: " + ours), std::string::npos) << StatusText();
  std::string log = NodeLog(1);
  EXPECT_NE(log.find("warning: " + ours), std::string::npos) << log;
  EXPECT_NE(log.find(" expires in "), std::string::npos) << log;
}

TEST_F(CertExpiryNodeTest, WarnsWhenItsCertificateHasExpired) {
  MakeCerts({"--not-before", "-30d", "--not-after", "-1d"});
  StartNode();  // it starts: peers refuse the certificate, but the operator must hear why
  std::vector<std::string> warnings = CertificateWarnings();
  ASSERT_EQ(warnings.size(), 1u) << Status(1).dump();
  EXPECT_NE(warnings[0].find(" expired on "), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("peers refuse it"), std::string::npos) << warnings[0];
  EXPECT_NE(StatusText().find(" expired on "), std::string::npos) << StatusText();
  // (Not just " expired on ": the node dials its own address and refuses its certificate.)
  const std::string ours = "warning: our certificate (--tls-cert " + Path("c1/cert.pem") +
                           ") CN=n1, O=lockmesh expired on ";
  EXPECT_NE(NodeLog(1).find(ours), std::string::npos) << NodeLog(1);
}

TEST_F(CertExpiryNodeTest, NoWarningForACertificateValidLongerThan30Days) {
  MakeCerts({"--days", "31"});
  StartNode();
  EXPECT_TRUE(CertificateWarnings().empty()) << Status(1).dump();
  EXPECT_EQ(NodeLog(1).find("our certificate"), std::string::npos) << NodeLog(1);
}

}  // namespace
}  // namespace lockmesh::testing
