// `lockmesh tls-debug` against the real `openssl` CLI and against itself:
// handshakes both ways with s_client / s_server, fingerprints equal to
// OpenSSL's, OpenSSL-made self-signed certificates in tofu mode, and every named failure
// (connection refused, timeout with a firewall hint, unknown CA, expired, CN mismatch,
// fingerprint changed, not on the allow-list, no client certificate, private vs public
// address) shown in words with exit status 1; 0 only on full success.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <regex>
#include <string>
#include <vector>

#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

constexpr Millis kRun(60000);

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

bool HasLine(const std::string& text, const std::string& line) {
  for (const std::string& l : SplitLines(text)) {
    if (l == line) return true;
  }
  return false;
}

std::string LastLine(const std::string& text) {
  std::vector<std::string> lines = SplitLines(text);
  return lines.empty() ? "" : lines.back();
}

class TlsDebugTest : public ProcessTest {
 protected:
  void SetUp() override {
    ProcessTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_EQ(Lockmesh0({"cert", "ca", "--out", Path("ca")}), 0);
    ASSERT_EQ(Lockmesh0({"cert", "node", "--ca", Path("ca"), "--out", Path("srv"), "--cn", "srv"}),
              0);
    ASSERT_EQ(Lockmesh0({"cert", "node", "--ca", Path("ca"), "--out", Path("cli"), "--cn", "cli"}),
              0);
  }

  int Lockmesh0(const std::vector<std::string>& args) {
    RunResult r = RunLockmesh("setup", args, kRun);
    EXPECT_EQ(r.code(), 0) << r.Describe();
    return r.code();
  }

  RunResult Run(const std::vector<std::string>& argv) { return Finish(Spawn(argv[0], argv), kRun); }

  std::string OpenSslFingerprint(const std::string& cert) {
    RunResult r = Run({"openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", cert});
    EXPECT_EQ(r.code(), 0) << r.Describe();
    return FirstLine(r.out);
  }

  // --tls-cert/--tls-key of a directory written by `lockmesh cert`.
  std::vector<std::string> Pair(const std::string& dir) {
    return {"--tls-cert", Path(dir + "/cert.pem"), "--tls-key", Path(dir + "/key.pem")};
  }
  std::vector<std::string> Encrypt(const std::string& dir, const std::string& ca = "ca",
                                   const std::string& level = "encrypt") {
    std::vector<std::string> a = {"--security", level, "--tls-ca", Path(ca + "/cert.pem")};
    for (auto& s : Pair(dir)) a.push_back(s);
    return a;
  }
  std::vector<std::string> Plus(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }

  // Starts `lockmesh tls-debug server --listen 127.0.0.1:0 args...`; returns it and its port.
  Process* StartServer(const std::vector<std::string>& args, int* port) {
    Process* p = Lockmesh(
        "server", Plus({"tls-debug", "server", "--listen", "127.0.0.1:0", "--wait", "60"}, args));
    std::smatch m;
    std::regex re("listening on 127\\.0\\.0\\.1:([0-9]+)");
    bool up = WaitFor(
        [&] {
          std::string out = p->Stdout();
          if (!std::regex_search(out, m, re)) return !p->Running();
          *port = std::stoi(m[1]);
          return true;
        },
        Millis(30000));
    EXPECT_TRUE(up && *port > 0) << "server did not listen: " << p->Stdout() << p->Stderr();
    return p;
  }

  RunResult Client(int port, const std::vector<std::string>& args) {
    return RunLockmesh(
        "client", Plus({"tls-debug", "client", "127.0.0.1:" + std::to_string(port)}, args), kRun);
  }

  // openssl s_server with stdin held open by a pipe (it quits on EOF of stdin).
  Process* StartOpenSslServer(int port, const std::vector<std::string>& args) {
    std::string command =
        "sleep 60 | exec openssl s_server -accept " + std::to_string(port) + " -naccept 1";
    for (const auto& a : args) command += " '" + a + "'";
    Process* p = Spawn("s_server", {"sh", "-c", command});
    EXPECT_TRUE(
        WaitFor([&] { return p->Stdout().find("ACCEPT") != std::string::npos; }, Millis(30000)))
        << p->Stdout() << p->Stderr();
    return p;
  }

  // A self-signed certificate made by OpenSSL the usual way (openssl req -x509, EC key).
  void OpenSslSelfSigned(const std::string& name, const std::string& cn) {
    RunResult r = Run({"openssl", "req", "-new", "-x509", "-newkey", "ec", "-pkeyopt",
                       "ec_paramgen_curve:prime256v1", "-days", "1825", "-nodes", "-subj",
                       "/CN=" + cn, "-keyout", Path(name + ".key"), "-out", Path(name + ".pem")});
    ASSERT_EQ(r.code(), 0) << r.Describe();
  }
};

// `tls-debug server` completes a handshake with `openssl s_client -cert -key`,
// each side sees the other's certificate, and tls-debug prints OpenSSL's fingerprint.
TEST_F(TlsDebugTest, ServerHandshakesWithOpenSslClient) {
  int port = 0;
  Process* server = StartServer(Plus(Encrypt("srv"), {"--node-id", "srv"}), &port);
  ASSERT_GT(port, 0);
  ProcessOptions o;
  o.argv = {"openssl",
            "s_client",
            "-connect",
            "127.0.0.1:" + std::to_string(port),
            "-cert",
            Path("cli/cert.pem"),
            "-key",
            Path("cli/key.pem"),
            "-CAfile",
            Path("ca/cert.pem"),
            "-verify_return_error"};
  o.stdout_path = Path("s_client.out");
  o.stderr_path = Path("s_client.err");
  processes_.push_back(std::make_unique<Process>(o));
  RunResult client = Finish(processes_.back().get(), kRun);
  EXPECT_EQ(client.code(), 0) << client.Describe();
  EXPECT_NE(client.out.find("Verify return code: 0 (ok)"), std::string::npos) << client.out;
  EXPECT_NE(client.out.find("subject=CN = srv, O = lockmesh"), std::string::npos) << client.out;
  RunResult done = Finish(server, kRun);
  EXPECT_EQ(done.code(), 0) << done.Describe() << done.out;
  EXPECT_TRUE(HasLine(done.out, "  CN           cli")) << done.out;
  EXPECT_TRUE(HasLine(done.out, "  " + OpenSslFingerprint(Path("cli/cert.pem")))) << done.out;
  EXPECT_NE(done.out.find("tls: ok, TLSv1.2, TLS-ECDHE-ECDSA-WITH-"), std::string::npos)
      << done.out;
  EXPECT_EQ(LastLine(done.out), "result: ok");
}

// `tls-debug client` completes a handshake with `openssl s_server -Verify 1`.
TEST_F(TlsDebugTest, ClientHandshakesWithOpenSslServer) {
  int port = LoopbackPortBlock(1);
  Process* server = StartOpenSslServer(
      port, {"-cert", Path("srv/cert.pem"), "-key", Path("srv/key.pem"), "-CAfile",
             Path("ca/cert.pem"), "-Verify", "1", "-verify_return_error"});
  RunResult client = Client(port, Plus(Encrypt("cli"), {"--peer-id", "srv"}));
  EXPECT_EQ(client.code(), 0) << client.Describe() << client.out;
  EXPECT_TRUE(HasLine(client.out, "  " + OpenSslFingerprint(Path("srv/cert.pem")))) << client.out;
  EXPECT_EQ(LastLine(client.out), "result: ok");
  ASSERT_TRUE(WaitFor([&] { return server->Stdout().find("CIPHER is") != std::string::npos; },
                      Millis(30000)))
      << server->Stdout() << server->Stderr();
  EXPECT_NE(server->Stdout().find("Client certificate"), std::string::npos) << server->Stdout();
  EXPECT_NE(server->Stdout().find("subject=CN = cli, O = lockmesh"), std::string::npos)
      << server->Stdout();
}

// OpenSSL-made self-signed certificates work in tofu mode; the OpenSSL form of a
// fingerprint goes straight into `trust accept`; a changed certificate is refused with both
// fingerprints and a pasteable accept command ("fingerprint changed").
TEST_F(TlsDebugTest, TofuWithOpenSslCertificatesAndFingerprintChange) {
  OpenSslSelfSigned("a", "node-a");
  OpenSslSelfSigned("a2", "node-a");
  OpenSslSelfSigned("b", "node-b");
  std::string data = Path("data-b");
  std::vector<std::string> server_a = {"--security", "tofu",        "--tls-cert", Path("a.pem"),
                                       "--tls-key",  Path("a.key"), "--node-id",  "node-a"};
  std::vector<std::string> client_b = {"--security", "tofu",        "--tls-cert", Path("b.pem"),
                                       "--tls-key",  Path("b.key"), "--node-id",  "node-b",
                                       "--data-dir", data,          "--peer-id",  "node-a"};
  int port = 0;
  Process* server = StartServer(server_a, &port);
  RunResult first = Client(port, client_b);
  EXPECT_EQ(first.code(), 0) << first.Describe() << first.out;
  EXPECT_NE(first.out.find("identity: first contact"), std::string::npos) << first.out;
  EXPECT_EQ(Finish(server, kRun).code(), 0);
  EXPECT_FALSE(FileExists(data + "/known_peers"));  // tls-debug never pins

  std::string fp_a = OpenSslFingerprint(Path("a.pem"));
  RunResult accept = RunLockmesh("trust", {"trust", "accept", "--data-dir", data, "node-a", fp_a});
  ASSERT_EQ(accept.code(), 0) << accept.Describe();
  server = StartServer(server_a, &port);
  RunResult known = Client(port, client_b);
  EXPECT_EQ(known.code(), 0) << known.Describe() << known.out;
  EXPECT_NE(known.out.find("identity: ok, fingerprint matches"), std::string::npos) << known.out;
  Finish(server, kRun);

  // node-a comes back with another certificate.
  server = StartServer({"--security", "tofu", "--tls-cert", Path("a2.pem"), "--tls-key",
                        Path("a2.key"), "--node-id", "node-a"},
                       &port);
  RunResult changed = Client(port, client_b);
  EXPECT_EQ(changed.code(), 1) << changed.Describe();
  std::string result = LastLine(changed.out);
  EXPECT_EQ(result.rfind("result: FAILED: fingerprint changed: ", 0), 0u) << changed.out;
  RunResult show_a = RunLockmesh("show", {"cert", "show", "--json", Path("a.pem")});
  RunResult show_a2 = RunLockmesh("show", {"cert", "show", "--json", Path("a2.pem")});
  std::smatch m;
  std::regex fp_re("\"fingerprint\": \"(sha256\\$[0-9a-f]{64})\"");
  ASSERT_TRUE(std::regex_search(show_a.out, m, fp_re)) << show_a.out;
  std::string old_fp = m[1];
  ASSERT_TRUE(std::regex_search(show_a2.out, m, fp_re)) << show_a2.out;
  std::string new_fp = m[1];
  EXPECT_NE(result.find("known " + old_fp), std::string::npos) << result;
  EXPECT_NE(result.find("presented " + new_fp), std::string::npos) << result;
  std::string command = result.substr(result.find("accept it with: ") + strlen("accept it with: "));
  EXPECT_EQ(command, "lockmesh trust accept --data-dir " + data + " node-a '" + new_fp + "'");
  Finish(server, kRun);

  // The printed command, run by a shell, accepts the new certificate.
  RunResult pasted =
      Run({"sh", "-c", "exec \"$0\" " + command.substr(strlen("lockmesh ")), LockmeshBinary()});
  ASSERT_EQ(pasted.code(), 0) << pasted.Describe();
  server = StartServer({"--security", "tofu", "--tls-cert", Path("a2.pem"), "--tls-key",
                        Path("a2.key"), "--node-id", "node-a"},
                       &port);
  RunResult after = Client(port, client_b);
  EXPECT_EQ(after.code(), 0) << after.Describe() << after.out;
}

// The allow-list (--trusted-fingerprints) in tofu mode, with OpenSSL's fingerprint lines.
TEST_F(TlsDebugTest, TofuAllowList) {
  OpenSslSelfSigned("a", "node-a");
  OpenSslSelfSigned("b", "node-b");
  OpenSslSelfSigned("c", "node-c");
  WriteFile(Path("allow"), "# node-a only\n" + OpenSslFingerprint(Path("a.pem")) + "\n");
  std::vector<std::string> client = {"--security",  "tofu",      "--tls-cert",
                                     Path("b.pem"), "--tls-key", Path("b.key"),
                                     "--node-id",   "node-b",    "--trusted-fingerprints",
                                     Path("allow")};
  int port = 0;
  Process* server = StartServer({"--security", "tofu", "--tls-cert", Path("a.pem"), "--tls-key",
                                 Path("a.key"), "--node-id", "node-a"},
                                &port);
  RunResult ok = Client(port, client);
  EXPECT_EQ(ok.code(), 0) << ok.Describe() << ok.out;
  Finish(server, kRun);
  server = StartServer({"--security", "tofu", "--tls-cert", Path("c.pem"), "--tls-key",
                        Path("c.key"), "--node-id", "node-c"},
                       &port);
  RunResult refused = Client(port, client);
  EXPECT_EQ(refused.code(), 1) << refused.Describe();
  EXPECT_EQ(LastLine(refused.out).rfind("result: FAILED: fingerprint not on the allow-list: ", 0),
            0u)
      << refused.out;
}

// Unknown CA, seen from both sides.
TEST_F(TlsDebugTest, UnknownCaIsNamedOnBothSides) {
  ASSERT_EQ(Lockmesh0({"cert", "ca", "--out", Path("ca2"), "--cn", "other CA"}), 0);
  ASSERT_EQ(Lockmesh0({"cert", "node", "--ca", Path("ca2"), "--out", Path("stranger"), "--cn",
                       "stranger"}),
            0);
  int port = 0;
  Process* server = StartServer(Plus(Encrypt("srv"), {"--node-id", "srv"}), &port);
  RunResult client = Client(port, Encrypt("stranger", "ca2"));
  EXPECT_EQ(client.code(), 1) << client.Describe();
  EXPECT_NE(LastLine(client.out).find("result: FAILED: unknown CA"), std::string::npos)
      << client.out;
  RunResult srv = Finish(server, kRun);
  EXPECT_EQ(srv.code(), 1) << srv.Describe();
  EXPECT_NE(LastLine(srv.out).find("result: FAILED: unknown CA"), std::string::npos) << srv.out;
}

// An expired server certificate; a certificate not yet valid.
TEST_F(TlsDebugTest, ExpiredAndNotYetValidAreNamed) {
  ASSERT_EQ(Lockmesh0({"cert", "node", "--ca", Path("ca"), "--out", Path("old"), "--cn", "old",
                       "--not-before", "-3d", "--not-after", "-1d"}),
            0);
  ASSERT_EQ(Lockmesh0({"cert", "node", "--ca", Path("ca"), "--out", Path("future"), "--cn",
                       "future", "--not-before", "+1d", "--days", "30"}),
            0);
  for (const std::string& which : {std::string("old"), std::string("future")}) {
    int port = 0;
    Process* server = StartServer(Encrypt(which), &port);
    RunResult client = Client(port, Encrypt("cli"));
    EXPECT_EQ(client.code(), 1) << client.Describe();
    std::string expected = which == "old" ? "result: FAILED: expired certificate: "
                                          : "result: FAILED: certificate not yet valid: ";
    EXPECT_EQ(LastLine(client.out).rfind(expected, 0), 0u) << client.out;
    Finish(server, kRun);
  }
}

// CN mismatch in mutual mode; no client certificate.
TEST_F(TlsDebugTest, CnMismatchAndNoClientCertificate) {
  int port = 0;
  Process* server = StartServer(Plus(Encrypt("srv", "ca", "mutual"), {"--node-id", "srv"}), &port);
  RunResult client =
      Client(port, Plus(Encrypt("cli", "ca", "mutual"), {"--node-id", "cli", "--peer-id", "n7"}));
  EXPECT_EQ(client.code(), 1) << client.Describe();
  EXPECT_EQ(LastLine(client.out)
                .rfind("result: FAILED: CN mismatch: certificate CN 'srv' does not "
                       "match the node id 'n7'",
                       0),
            0u)
      << client.out;
  Finish(server, kRun);
  // The matching id passes.
  server = StartServer(Plus(Encrypt("srv", "ca", "mutual"), {"--node-id", "srv"}), &port);
  client =
      Client(port, Plus(Encrypt("cli", "ca", "mutual"), {"--node-id", "cli", "--peer-id", "srv"}));
  EXPECT_EQ(client.code(), 0) << client.Describe() << client.out;
  EXPECT_NE(client.out.find("identity: ok, certificate CN 'srv' equals"), std::string::npos);
  Finish(server, kRun);
  // A client without a certificate is refused by the server, and both say so.
  server = StartServer(Plus(Encrypt("srv"), {"--node-id", "srv"}), &port);
  client = Client(port, {"--security", "encrypt", "--tls-ca", Path("ca/cert.pem")});
  EXPECT_EQ(client.code(), 1) << client.Describe();
  EXPECT_NE(LastLine(client.out).find("no client certificate"), std::string::npos) << client.out;
  RunResult srv = Finish(server, kRun);
  EXPECT_EQ(srv.code(), 1) << srv.Describe();
  EXPECT_NE(LastLine(srv.out).find("no client certificate"), std::string::npos) << srv.out;
}

// Connection refused; timeout with a firewall hint (a listener whose accept
// queue is full drops SYNs, as a filtering firewall would).
TEST_F(TlsDebugTest, ConnectionRefusedAndTimeout) {
  int port = LoopbackPortBlock(1);
  RunResult refused = Client(port, Encrypt("cli"));
  EXPECT_EQ(refused.code(), 1) << refused.Describe();
  EXPECT_EQ(LastLine(refused.out)
                .rfind("result: FAILED: connection refused: nothing listens on "
                       "127.0.0.1:" +
                           std::to_string(port),
                       0),
            0u)
      << refused.out;

  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(listener, 0), 0);
  socklen_t len = sizeof a;
  getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  std::vector<int> fillers;
  for (int i = 0; i < 3; ++i) {  // fill the accept queue (never accepted)
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    fillers.push_back(fd);
  }
  RunResult timeout = Client(ntohs(a.sin_port), Plus(Encrypt("cli"), {"--timeout", "1"}));
  for (int fd : fillers) close(fd);
  close(listener);
  EXPECT_EQ(timeout.code(), 1) << timeout.Describe();
  std::string last = LastLine(timeout.out);
  EXPECT_EQ(last.rfind("result: FAILED: timeout: no answer from 127.0.0.1:", 0), 0u) << timeout.out;
  EXPECT_NE(last.find("a firewall is probably dropping the packets"), std::string::npos) << last;
}

// A TCP server that accepts and never answers: the handshake times out in words;
// and the kind of the target address (private vs public) is named.
TEST_F(TlsDebugTest, SilentServerAndAddressKinds) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(listener, 8), 0);
  socklen_t len = sizeof a;
  getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  RunResult silent = Client(ntohs(a.sin_port), Plus(Encrypt("cli"), {"--timeout", "1"}));
  close(listener);
  EXPECT_EQ(silent.code(), 1) << silent.Describe();
  EXPECT_NE(LastLine(silent.out).find("did not complete the TLS handshake in time"),
            std::string::npos)
      << silent.out;

  // The address kind is printed before anything is sent, so the outcome of these
  // connections (which depends on the network here) does not matter.
  RunResult priv = RunLockmesh("priv", {"tls-debug", "client", "10.255.255.1:28017", "--timeout",
                                        "1", "--security", "none"});
  EXPECT_TRUE(HasLine(priv.out, "target: 10.255.255.1:28017, a private (RFC 1918) address"))
      << priv.out;
  RunResult pub = RunLockmesh(
      "pub", {"tls-debug", "client", "198.51.100.7:28017", "--timeout", "1", "--security", "none"});
  EXPECT_TRUE(HasLine(pub.out, "target: 198.51.100.7:28017, a public address")) << pub.out;
}

// `server --hello` speaks the peer protocol, so `peer` can be tested against it: accepted in
// mutual; in tofu a fingerprint off the server's allow-list is refused, and both say why.
TEST_F(TlsDebugTest, PeerAgainstServerWithHello) {
  int port = 0;
  Process* server = StartServer(
      Plus(Encrypt("srv", "ca", "mutual"), {"--node-id", "srv", "--hello", "--cluster", "c1"}),
      &port);
  RunResult peer = RunLockmesh("peer",
                               Plus({"tls-debug", "peer", "127.0.0.1:" + std::to_string(port),
                                     "--node-id", "cli", "--cluster", "c1"},
                                    Encrypt("cli", "ca", "mutual")),
                               kRun);
  EXPECT_EQ(peer.code(), 0) << peer.Describe() << peer.out;
  EXPECT_NE(peer.out.find("hello: node id 'srv', cluster 'c1'"), std::string::npos) << peer.out;
  EXPECT_NE(peer.out.find("identity: ok, certificate CN 'srv' equals the node id it claims"),
            std::string::npos)
      << peer.out;
  RunResult srv = Finish(server, kRun);
  EXPECT_EQ(srv.code(), 0) << srv.Describe() << srv.out;
  EXPECT_NE(srv.out.find("identity: ok, certificate CN 'cli' equals the node id it claims"),
            std::string::npos)
      << srv.out;

  OpenSslSelfSigned("a", "node-a");
  OpenSslSelfSigned("b", "node-b");
  WriteFile(Path("allow"), OpenSslFingerprint(Path("a.pem")) + "\n");  // only itself
  server =
      StartServer({"--security", "tofu", "--tls-cert", Path("a.pem"), "--tls-key", Path("a.key"),
                   "--node-id", "node-a", "--hello", "--trusted-fingerprints", Path("allow")},
                  &port);
  peer = RunLockmesh(
      "peer",
      {"tls-debug", "peer", "127.0.0.1:" + std::to_string(port), "--security", "tofu", "--tls-cert",
       Path("b.pem"), "--tls-key", Path("b.key"), "--node-id", "node-b", "--data-dir", Path("db")},
      kRun);
  EXPECT_EQ(peer.code(), 1) << peer.Describe();
  EXPECT_EQ(LastLine(peer.out).rfind("result: FAILED: the node refused us: tls-debug: fingerprint "
                                     "not on the allow-list",
                                     0),
            0u)
      << peer.out;
  srv = Finish(server, kRun);
  EXPECT_EQ(srv.code(), 1) << srv.Describe();
  EXPECT_EQ(LastLine(srv.out).rfind("result: FAILED: fingerprint not on the allow-list", 0), 0u)
      << srv.out;
}

// A plaintext peer (as a node with --security none would answer) is named, not hung on.
TEST_F(TlsDebugTest, PlaintextPeerIsNamed) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(listener, 8), 0);
  socklen_t len = sizeof a;
  getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  Process* client = Lockmesh(
      "client", Plus({"tls-debug", "client", "127.0.0.1:" + std::to_string(ntohs(a.sin_port))},
                     Encrypt("cli")));
  int fd = accept(listener, nullptr, nullptr);
  ASSERT_GE(fd, 0);
  char buffer[512];
  EXPECT_GT(recv(fd, buffer, sizeof buffer, 0), 0);  // the ClientHello
  EXPECT_EQ(SendAll(fd, Frame("not a TLS record")), 0);
  RunResult r = Finish(client, kRun);
  close(fd);
  close(listener);
  EXPECT_EQ(r.code(), 1) << r.Describe();
  EXPECT_EQ(LastLine(r.out).rfind("result: FAILED: not TLS: ", 0), 0u) << r.out;
}

TEST_F(TlsDebugTest, SelfSignedRefusedInEncrypt) {
  ASSERT_EQ(Lockmesh0({"cert", "self-signed", "--cn", "loner", "--out", Path("loner")}), 0);
  int port = 0;
  Process* server = StartServer(Encrypt("loner"), &port);
  RunResult client = Client(port, Encrypt("cli"));
  EXPECT_EQ(client.code(), 1) << client.Describe();
  EXPECT_EQ(LastLine(client.out).rfind("result: FAILED: self-signed certificate", 0), 0u)
      << client.out;
  Finish(server, kRun);
}

}  // namespace
}  // namespace lockmesh::testing
