// Helpers for the TLS and peer-transport tests (tests/net/tls_*_test.cc, peer_*_test.cc):
// certificates made with net/tls/certificate.h into a temporary directory, a libuv loop fixture
// that fails a test which leaks a handle, and a PeerTransport wrapper that records what it
// hears. Header-only, so it is not compiled into every net test.
#ifndef LOCKMESH_TESTS_NET_PEER_TEST_UTIL_H_
#define LOCKMESH_TESTS_NET_PEER_TEST_UTIL_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/peer/peer_transport.h"
#include "net/support/process_harness.h"
#include "net/tls/certificate.h"

namespace lockmesh::testing {

using mesh::Status;
namespace net = mesh::net;

/// A certificate and key written as <dir>/cert.pem and <dir>/key.pem.
struct CertDir {
  std::string dir;
  std::string cert() const { return dir + "/cert.pem"; }
  std::string key() const { return dir + "/key.pem"; }
};

inline int64_t Now() { return static_cast<int64_t>(time(nullptr)); }

/// Generates a certificate into `dir` (created). kNode needs `ca`. Validity [from, to] in
/// Unix seconds; the defaults make it valid now for a year.
inline CertDir MakeCert(const std::string& dir, net::CertificateKind kind, const std::string& cn,
                        const CertDir* ca = nullptr, int64_t from = 0, int64_t to = 0) {
  net::CertificateSpec spec;
  spec.kind = kind;
  spec.common_name = cn;
  if (from == 0 && to == 0) {
    net::DefaultValidity(Now(), 365, &spec);
  } else {
    spec.not_before = from;
    spec.not_after = to;
  }
  net::PemPair pair;
  Status st;
  if (ca != nullptr) {
    net::CertificateChain ca_cert;
    net::PrivateKey ca_key;
    st = net::LoadCertificateAuthority(ca->dir, &ca_cert, &ca_key);
    EXPECT_TRUE(st.ok()) << st.ToString();
    st = net::GenerateCertificate(spec, &ca_cert, &ca_key, &pair);
  } else {
    st = net::GenerateCertificate(spec, nullptr, nullptr, &pair);
  }
  EXPECT_TRUE(st.ok()) << st.ToString();
  st = net::WriteCertificateFiles(dir, pair, true);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return CertDir{dir};
}

/// Generates a certificate per `spec` (any kind, usage, extra CNs; validity a year from now
/// unless set) into `dir`, signed by `ca` (kNode) or by itself.
inline CertDir MakeCertFromSpec(const std::string& dir, net::CertificateSpec spec,
                                const CertDir* ca = nullptr) {
  if (spec.not_before == 0 && spec.not_after == 0) net::DefaultValidity(Now(), 365, &spec);
  net::PemPair pair;
  Status st;
  if (ca != nullptr) {
    net::CertificateChain ca_cert;
    net::PrivateKey ca_key;
    st = net::LoadCertificateAuthority(ca->dir, &ca_cert, &ca_key);
    EXPECT_TRUE(st.ok()) << st.ToString();
    st = net::GenerateCertificate(spec, &ca_cert, &ca_key, &pair);
  } else {
    st = net::GenerateCertificate(spec, nullptr, nullptr, &pair);
  }
  EXPECT_TRUE(st.ok()) << st.ToString();
  st = net::WriteCertificateFiles(dir, pair, true);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return CertDir{dir};
}

/// TLS options of `level` using `node` as our certificate and `ca` as trust (may be null).
inline net::TlsOptions Tls(net::SecurityLevel level, const CertDir& node, const CertDir* ca) {
  net::TlsOptions o;
  o.level = level;
  o.cert_file = node.cert();
  o.key_file = node.key();
  if (ca) o.ca_file = ca->cert();
  return o;
}

/// A test with its own libuv loop; TearDown fails if a handle is still open.
class LoopTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }
  void TearDown() override {
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0) << "a libuv handle leaked";
  }
  /// Runs the loop until `cond` holds; fails (and returns false) after `ms` of wall time.
  bool RunUntil(const std::function<bool()>& cond, uint64_t ms = 20000) {
    uv_update_time(&loop_);
    uint64_t start = uv_now(&loop_);
    while (!cond()) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      if (cond()) return true;
      uv_update_time(&loop_);
      if (uv_now(&loop_) - start > ms) {
        ADD_FAILURE() << "condition not reached in " << ms << " ms";
        return false;
      }
      usleep(200);
    }
    return true;
  }
  /// Runs the loop for `ms` (to show that something does NOT happen).
  void RunFor(uint64_t ms) {
    uv_update_time(&loop_);
    uint64_t start = uv_now(&loop_);
    while (true) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      uv_update_time(&loop_);
      if (uv_now(&loop_) - start > ms) return;
      usleep(500);
    }
  }
  uv_loop_t loop_;
};

/// A PeerTransport that records everything it reports.
class TestPeer {
 public:
  TestPeer(uv_loop_t* loop, net::PeerTransportOptions options) {
    options.log = [this](const std::string& line) { log.push_back(line); };
    if (options.listen_address.empty()) options.listen_address = "127.0.0.1:0";
    if (options.reconnect_min_ms == 100) options.reconnect_min_ms = 50;
    if (options.reconnect_max_ms == 10000) options.reconnect_max_ms = 1000;
    net::PeerCallbacks cb;
    cb.on_peer_up = [this](const net::PeerInfo& p) { ups.push_back(p); };
    cb.on_peer_down = [this](const std::string& id, const Status& why) {
      downs.push_back(id + ": " + why.ToString());
    };
    cb.on_message = [this](const std::string& id, mesh::pb::PeerEnvelope& m) {
      messages.push_back({id, m.opaque()});
    };
    cb.on_refused = [this](const net::PeerRefusal& r) { refusals.push_back(r); };
    transport = std::make_unique<net::PeerTransport>(loop, std::move(options), std::move(cb));
  }
  ~TestPeer() { EXPECT_TRUE(stopped) << "TestPeer destroyed without Stop"; }

  Status Start() { return transport->Start(); }
  std::string address() const { return "127.0.0.1:" + std::to_string(transport->listen_port()); }
  void Stop() {
    transport->Stop([this] { stopped = true; });
  }
  bool Up(const std::string& id) const { return transport->IsConnected(id); }
  /// True once a refusal containing `text` was reported (by_peer as given, or either).
  bool Refused(const std::string& text, int by_peer = -1) const {
    for (const auto& r : refusals) {
      if (r.reason.find(text) != std::string::npos &&
          (by_peer < 0 || r.by_peer == (by_peer == 1))) {
        return true;
      }
    }
    return false;
  }
  bool Logged(const std::string& text) const {
    for (const auto& l : log) {
      if (l.find(text) != std::string::npos) return true;
    }
    return false;
  }
  std::string Dump() const {
    std::string out;
    for (const auto& l : log) out += "  log: " + l + "\n";
    for (const auto& r : refusals) {
      out += std::string("  refusal") + (r.by_peer ? " by peer" : "") + " [" + r.address + " " +
             r.node_id + "]: " + r.reason + "\n";
    }
    return out;
  }
  bool SendOpaque(const std::string& id, const std::string& bytes) {
    mesh::pb::PeerEnvelope env;
    env.set_opaque(bytes);
    return transport->Send(id, env);
  }

  std::unique_ptr<net::PeerTransport> transport;
  std::vector<std::string> log;
  std::vector<net::PeerInfo> ups;
  std::vector<std::string> downs;
  std::vector<std::pair<std::string, std::string>> messages;
  std::vector<net::PeerRefusal> refusals;
  bool stopped = false;
};

/// A raw non-blocking TCP connection to 127.0.0.1:`port` (for hostile or foreign clients).
/// Returns the fd, or -1.
inline int RawConnect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

/// What a non-blocking read of everything available found.
struct RawRead {
  std::string bytes;
  bool closed = false;  // EOF or reset
};
inline RawRead RawDrain(int fd) {
  RawRead r;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      r.bytes.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) r.closed = true;
    return r;
  }
}

/// Options for node `id` at `level` (tls may be default for none).
inline net::PeerTransportOptions PeerOptions(const std::string& id, net::TlsOptions tls = {},
                                             const std::string& data_dir = "") {
  net::PeerTransportOptions o;
  o.cluster = "test";
  o.node_id = id;
  o.tls = std::move(tls);
  o.data_dir = data_dir;
  o.handshake_timeout_ms = 10000;
  o.seed = 42;
  return o;
}

}  // namespace lockmesh::testing

#endif  // LOCKMESH_TESTS_NET_PEER_TEST_UTIL_H_
