// `lockmesh tls-debug server | client | peer`: a TLS link tested step by step (docs/design.md §6).
//
// Each step prints one line that starts with its name and "ok" or "FAILED"; the last line is
// "result: ok" or "result: FAILED: <what went wrong, in words>", and the exit status is 0
// only when every step passed. The TLS itself is net/tls/tls_context + net/tls/tls_session, the very
// configuration and verification rules a node uses; the identity checks after the handshake
// (CN = node id in mutual; known_peers or the allow-list in tofu) use the same functions as
// the peer transport, but never write to known_peers (a debugging tool must not pin peers).
// Sockets are plain blocking ones with a deadline per step (tls_debug_net.h).
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "cli_support.h"
#include "commands.h"
#include "exit_codes.h"
#include "mesh/node.h"
#include "net/peer/peer_hello.h"
#include "net/peer/peer_transport.h"
#include "net/support/errno_text.h"
#include "net/support/frame.h"
#include "net/tls/certificate.h"
#include "net/tls/known_peers.h"
#include "net/tls/tls_context.h"
#include "net/tls/tls_session.h"
#include "peer.pb.h"
#include "tls_debug_net.h"

namespace lockmesh::cli {
namespace {

using mesh::Status;
using mesh::net::CertificateInfo;
using mesh::net::SecurityLevel;
using mesh::net::TlsRole;
using Clock = std::chrono::steady_clock;
using tls_debug::AddressHint;
using tls_debug::AddressKind;
using tls_debug::AddressText;
using tls_debug::ConnectWithTimeout;
using tls_debug::IsPrivateKind;
using tls_debug::ReceiveSome;
using tls_debug::SendAll;
using tls_debug::SplitHostPort;

/// tls-debug exits 1 when the link failed a step (0 = every step passed).
constexpr int kExitLinkFailed = 1;

enum class Mode { kServer, kClient, kPeer };

struct DebugFlags {
  CommonOptions
      common;          // --config, --socket; --security, --tls-*, --node-id, --data-dir, --cluster
  std::string target;  // HOST:PORT for client and peer
  std::string listen;  // HOST:PORT for server
  std::string trusted_fingerprints;
  std::string peer_id;
  double timeout = 5;
  double wait = 0;
  bool hello = false;  // server: run the peer protocol after the handshake
};

// ------------------------------------------------------------------------------ output

void Line(const std::string& text) {
  fputs((text + "\n").c_str(), stdout);
  fflush(stdout);
}

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::string Ms(double ms) {
  char buffer[32];
  snprintf(buffer, sizeof buffer, "%.1f ms", ms);
  return buffer;
}

/// Prints the final line and returns the exit code.
int Fail(const std::string& what) {
  Line("result: FAILED: " + what);
  return kExitLinkFailed;
}

// ------------------------------------------------------------------------------ the checks

/// Everything a run needs after its flags are resolved.
struct Setup {
  Mode mode;
  SecurityLevel level = SecurityLevel::kNone;
  std::string node_id;
  std::string data_dir;
  std::string cluster;
  bool hello = false;  // server --hello, or peer mode
  std::shared_ptr<const mesh::net::TlsContext> tls;
  std::unique_ptr<mesh::net::TrustedFingerprints> allow_list;
  double timeout = 5;
};

/// Runs the handshake to completion over `fd`.
Status RunHandshake(int fd, mesh::net::TlsSession* session, Clock::time_point deadline) {
  std::string out;
  for (;;) {
    Status st = session->Handshake();
    session->TakeOutput(&out);
    if (!out.empty() && !SendAll(fd, out) && st.ok()) {
      return Status::Unavailable(std::string("the connection failed: ") +
                                 mesh::net::ErrnoText(errno));
    }
    if (!st.ok() || session->handshake_done()) return st;
    std::string in;
    Status rst = ReceiveSome(fd, deadline, &in);
    if (rst.IsTimedOut()) {
      return Status::TimedOut(
          "the peer accepted the TCP connection but did not complete the TLS handshake in time "
          "(is it a TLS endpoint? is a proxy or firewall in between holding the packets?)");
    }
    if (!rst.ok()) {
      return Status::Unavailable(rst.message() +
                                 " during the TLS handshake (it may have refused us without "
                                 "saying why, or it does not speak TLS)");
    }
    session->Feed(in);
  }
}

void PrintChain(const mbedtls_x509_crt* chain) {
  int64_t now = static_cast<int64_t>(time(nullptr));
  int index = 0;
  for (const mbedtls_x509_crt* c = chain; c != nullptr && c->raw.p != nullptr; c = c->next) {
    CertificateInfo info = mesh::net::InspectCertificate(*c);
    Line("certificate " + std::to_string(index) + (index == 0 ? " (leaf)" : ""));
    ++index;
    Line("  subject      " + info.subject);
    Line("  issuer       " + info.issuer);
    Line("  CN           " + (info.common_name.empty() ? "(none)" : info.common_name));
    Line("  validity     " + mesh::net::FormatUtc(info.not_before) + " .. " +
         mesh::net::FormatUtc(info.not_after) + " (" +
         mesh::net::ValidityName(info.ValidityAt(now)) + ")");
    Line(std::string("  CA           ") + (info.is_ca ? "yes" : "no") + ", self-signed " +
         (info.self_signed ? "yes" : "no") + ", key " + info.key_type);
    Line("  fingerprint  " + info.fingerprint.ToCompact());
    Line("  " + info.fingerprint.ToOpenSsl());
  }
}

/// A handshake failure as a named category plus the session's words.
std::string ClassifyHandshakeFailure(const Status& st, const mesh::net::TlsSession& session,
                                     SecurityLevel level) {
  const std::string& m = st.message();
  if (st.IsTimedOut()) return "handshake timeout: " + m;
  if (session.peer_refused()) {
    std::string category = "refused by the peer";
    if (m.find("unknown CA") != std::string::npos)
      category = "unknown CA (the peer does not trust ours)";
    if (m.find("expired") != std::string::npos)
      category = m.find("not valid before") != std::string::npos
                     ? "the peer says our certificate is not yet valid"
                     : "the peer says our certificate is expired";
    if (m.find("eyUsage lacks") != std::string::npos)
      category = "the peer refuses our certificate's key usage";
    if (m.find(" CNs,") != std::string::npos) category = "several CNs (mutual takes one)";
    if (m.find("requires a client certificate") != std::string::npos)
      category = "no client certificate";
    return category + ": " + m;
  }
  const mbedtls_x509_crt* peer = session.peer_certificate();
  if (peer != nullptr && st.code() == Status::Code::kPermissionDenied) {
    CertificateInfo info = mesh::net::InspectCertificate(*peer);
    mesh::net::Validity validity = info.ValidityAt(static_cast<int64_t>(time(nullptr)));
    std::string category = "certificate refused";
    if (validity == mesh::net::Validity::kExpired) {
      category = "expired certificate";
    } else if (validity == mesh::net::Validity::kNotYetValid) {
      category = "certificate not yet valid";
    } else if (info.self_signed && level != SecurityLevel::kTofu) {
      category = "self-signed certificate (use --security tofu, or a certificate from the CA)";
    } else if (m.find("not issued by a CA") != std::string::npos) {
      category = "unknown CA (the peer's certificate is not from --tls-ca)";
    }
    return category + ": " + m;
  }
  if (st.code() == Status::Code::kPermissionDenied &&
      m.rfind("we refused the peer's certificate", 0) == 0) {
    // The session does not keep a refused chain: name the failure from the words of the very
    // rule that refused it (net/tls/tls_context.cc CheckCertificate / DescribeVerifyFlags).
    if (m.find("expired on") != std::string::npos) return "expired certificate: " + m;
    if (m.find("not valid before") != std::string::npos) return "certificate not yet valid: " + m;
    if (m.find("is self-signed") != std::string::npos) {
      return "self-signed certificate (use --security tofu, or a certificate from the CA): " + m;
    }
    if (m.find("not issued by a CA") != std::string::npos) {
      return "unknown CA (the peer's certificate is not from --tls-ca): " + m;
    }
    if (m.find("eyUsage lacks") != std::string::npos) {
      return "key usage: " + m;
    }
    if (m.find(" CNs,") != std::string::npos) return "several CNs (mutual takes one): " + m;
    return "certificate refused: " + m;
  }
  if (m.find("presented no certificate") != std::string::npos) return "no client certificate: " + m;
  if (m.find("does not speak TLS") != std::string::npos) return "not TLS: " + m;
  return m;
}

/// Checks the peer's certificate against the identity rules of the level: CN = claimed id in
/// mutual; allow-list or known_peers in tofu (read-only). Prints a line; returns the failure
/// words or "".
std::string CheckIdentity(const Setup& setup, const mbedtls_x509_crt* peer,
                          const std::string& claimed_id, const std::string& claimed_from) {
  if (setup.level == SecurityLevel::kNone) return "";
  if (peer == nullptr) return "no certificate: the peer presented none";
  CertificateInfo info = mesh::net::InspectCertificate(*peer);
  if (setup.level == SecurityLevel::kMutual) {
    if (claimed_id.empty()) {
      Line("identity: not checked (give --peer-id ID to compare the certificate's CN '" +
           info.common_name + "' with the node id you expect)");
      return "";
    }
    if (info.common_name != claimed_id) {
      return "CN mismatch: certificate CN '" + info.common_name + "' does not match the node id '" +
             claimed_id + "' " + claimed_from +
             " (--security mutual: each node's certificate must have CN = its node id)";
    }
    Line("identity: ok, certificate CN '" + info.common_name + "' equals the node id " +
         claimed_from);
    return "";
  }
  if (setup.level != SecurityLevel::kTofu) {
    if (!claimed_id.empty() && info.common_name != claimed_id) {
      Line("identity: note, certificate CN '" + info.common_name + "' differs from node id '" +
           claimed_id + "' (fine with --security " + mesh::net::SecurityLevelName(setup.level) +
           ", refused with mutual)");
    } else {
      Line("identity: ok (--security " + std::string(mesh::net::SecurityLevelName(setup.level)) +
           " trusts the CA, not node ids)");
    }
    return "";
  }
  if (setup.allow_list) {
    if (!setup.allow_list->Contains(info.fingerprint)) {
      return "fingerprint not on the allow-list: " + info.fingerprint.ToCompact() +
             " is not in --trusted-fingerprints " + setup.allow_list->path();
    }
    Line("identity: ok, fingerprint " + info.fingerprint.ToCompact() +
         " is in --trusted-fingerprints " + setup.allow_list->path());
    return "";
  }
  std::string path = mesh::net::KnownPeersPath(setup.data_dir);
  std::vector<mesh::net::KnownPeer> known;
  Status st = mesh::net::LoadKnownPeers(path, &known);
  if (!st.ok()) return "cannot check known_peers: " + st.message();
  if (claimed_id.empty()) {
    for (const auto& k : known) {
      if (k.fingerprint == info.fingerprint) {
        Line("identity: ok, fingerprint is known for node '" + k.node_id + "' in " + path);
        return "";
      }
    }
    Line("identity: fingerprint " + info.fingerprint.ToCompact() + " is not in " + path +
         " (a node would pin it on first contact; give --peer-id ID to check a node id)");
    return "";
  }
  for (const auto& k : known) {
    if (k.node_id != claimed_id) continue;
    if (k.fingerprint != info.fingerprint) {
      return "fingerprint changed: " +
             mesh::net::FingerprintChangedMessage(claimed_id, k, info.fingerprint, setup.data_dir);
    }
    Line("identity: ok, fingerprint matches the one known for node '" + claimed_id + "' since " +
         mesh::net::FormatUtc(k.first_seen));
    return "";
  }
  Line("identity: first contact: node '" + claimed_id + "' is not in " + path +
       "; a node would now pin " + info.fingerprint.ToCompact() + " (tls-debug does not)");
  return "";
}

/// One peer connection after its channel is secured (TLS, or plain with --security none):
/// sends envelopes and reads whole frames with the step's deadline.
class PeerChannel {
 public:
  PeerChannel(int fd, mesh::net::TlsSession* session, double timeout)
      : fd_(fd), session_(session), timeout_(timeout) {}

  /// Sends one envelope. The failure message says what went wrong.
  Status Send(const mesh::pb::PeerEnvelope& envelope) {
    std::string frame, out;
    mesh::net::AppendFrame(envelope, &frame);
    if (session_ != nullptr) {
      MESH_RETURN_IF_ERROR(session_->Write(frame));
      session_->TakeOutput(&out);
    } else {
      out = frame;
    }
    if (!SendAll(fd_, out))
      return Status::Unavailable(std::string("cannot send: ") + mesh::net::ErrnoText(errno));
    return Status::OK();
  }

  /// Reads the next envelope (waiting at most the timeout).
  Status Receive(mesh::pb::PeerEnvelope* envelope) {
    auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_ * 1000));
    Status pending;  // an error seen after some bytes: report it once they are used up
    for (;;) {
      if (plain_.size() >= 4) {
        uint32_t len = (uint32_t(uint8_t(plain_[0])) << 24) | (uint32_t(uint8_t(plain_[1])) << 16) |
                       (uint32_t(uint8_t(plain_[2])) << 8) | uint32_t(uint8_t(plain_[3]));
        if (len > mesh::net::kMaxPeerFrameBytes) {
          return Status::InvalidArgument("the peer sent a frame of " + std::to_string(len) +
                                         " bytes: it does not speak lockmesh's peer protocol");
        }
        if (plain_.size() >= 4 + len) {
          bool ok = envelope->ParseFromArray(plain_.data() + 4, static_cast<int>(len));
          plain_.erase(0, 4 + len);
          if (!ok) return Status::InvalidArgument("the peer's frame is not a PeerEnvelope");
          return Status::OK();
        }
      }
      // A refusal arrives just before the close: use every whole frame before the error.
      if (!pending.ok()) return pending;
      std::string in;
      Status st = ReceiveSome(fd_, deadline, &in);
      if (st.IsTimedOut()) return Status::TimedOut("no answer from the peer within the timeout");
      if (!st.ok()) {
        pending = st;
        continue;
      }
      if (session_ == nullptr) {
        plain_ += in;
        continue;
      }
      session_->Feed(in);
      pending = session_->Read(&plain_);
    }
  }

  /// Tells the peer why we hang up (as a node would), then closes the TLS session.
  void Refuse(const std::string& reason) {
    mesh::pb::PeerEnvelope refusal;
    refusal.mutable_refusal()->set_reason("tls-debug: " + reason);
    refusal.mutable_refusal()->set_permanent(true);
    Send(refusal);
    Close();
  }

  void Close() {
    if (session_ == nullptr) return;
    std::string out;
    session_->Close();
    session_->TakeOutput(&out);
    SendAll(fd_, out);
  }

 private:
  int fd_;
  mesh::net::TlsSession* session_;
  double timeout_;
  std::string plain_;
};

/// The Hello exchange of `peer` mode, as a node's transport does it: our Hello; theirs,
/// checked with the transport's own rules (net/peer/peer_hello.h CheckHello) and the identity rules
/// of the level; our Welcome; theirs (or their refusal of us).
int ExchangeHello(const Setup& setup, int fd, mesh::net::TlsSession* session,
                  const std::string& dialled, const sockaddr_storage& target) {
  PeerChannel channel(fd, session, setup.timeout);
  mesh::net::HelloIdentity ours;
  ours.cluster = setup.cluster;
  ours.node_id = setup.node_id;
  ours.protocol_version = mesh::net::kPeerProtocolVersion;
  ours.incarnation = static_cast<uint64_t>(Clock::now().time_since_epoch().count()) | 1;
  mesh::pb::PeerEnvelope mine;
  mesh::pb::PeerHello* hello = mine.mutable_hello();
  hello->set_cluster(ours.cluster);
  hello->set_node_id(ours.node_id);
  hello->set_protocol_version(ours.protocol_version);
  hello->set_incarnation(ours.incarnation);
  hello->set_security(mesh::net::SecurityLevelName(setup.level));
  if (Status st = channel.Send(mine); !st.ok()) return Fail("hello: " + st.message());
  mesh::pb::PeerEnvelope theirs;
  if (Status st = channel.Receive(&theirs); !st.ok()) {
    return Fail("hello: " + st.message() + " (waiting for the node's Hello)");
  }
  if (theirs.has_refusal()) {
    return Fail("the node refused us: " + mesh::net::Printable(theirs.refusal().reason(), 1024));
  }
  if (!theirs.has_hello()) return Fail("hello: the node's first message is not a Hello");
  const mesh::pb::PeerHello& h = theirs.hello();
  Line("hello: node id '" + mesh::net::Printable(h.node_id()) + "', cluster '" +
       mesh::net::Printable(h.cluster()) + "', protocol " + std::to_string(h.protocol_version()) +
       ", security " + mesh::net::Printable(h.security()) + ", listens on " +
       (h.listen_address().empty() ? "(nothing)" : mesh::net::Printable(h.listen_address())));
  std::string reason;
  bool permanent = false;
  switch (mesh::net::CheckHello(h, ours, &reason, &permanent)) {
    case mesh::net::HelloVerdict::kAccept:
      break;
    case mesh::net::HelloVerdict::kSelf:
      return Fail("we dialled ourselves");
    case mesh::net::HelloVerdict::kRefuse:
      channel.Refuse(reason);
      if (h.node_id() == setup.node_id) {
        return Fail("unique id clash: " + reason +
                    " (two nodes must not share an id; see `lockmesh unique-id`)");
      }
      return Fail(reason);
  }
  std::string why = CheckIdentity(setup, session ? session->peer_certificate() : nullptr,
                                  h.node_id(), "it claims in its Hello");
  if (!why.empty()) {
    channel.Refuse(why);
    return Fail(why);
  }
  // The address it advertises vs the one we used to reach it.
  std::string host, port;
  if (setup.mode == Mode::kPeer && !h.listen_address().empty() &&
      SplitHostPort(h.listen_address(), &host, &port)) {
    sockaddr_storage adv = {};
    if (inet_pton(AF_INET, host.c_str(), &reinterpret_cast<sockaddr_in&>(adv).sin_addr) == 1) {
      adv.ss_family = AF_INET;
      std::string adv_kind = AddressKind(adv), used_kind = AddressKind(target);
      if (IsPrivateKind(adv_kind) != IsPrivateKind(used_kind) && used_kind != "loopback") {
        Line("address: note, we reached it at " + dialled + " (" + used_kind +
             ") but it advertises " + h.listen_address() + " (" + adv_kind +
             "): nodes that dial the advertised address from elsewhere may not reach it");
      }
    }
  }
  mesh::pb::PeerEnvelope welcome;
  welcome.mutable_welcome();
  Status sent = channel.Send(welcome);
  // Read even if the send failed: the node may already have refused our Hello and closed.
  mesh::pb::PeerEnvelope answer;
  Status received = channel.Receive(&answer);
  if (received.ok() && answer.has_refusal()) {
    return Fail("the node refused us: " + mesh::net::Printable(answer.refusal().reason(), 1024));
  }
  if (!sent.ok()) return Fail("welcome: " + sent.message());
  if (!received.ok()) {
    return Fail("welcome: " + received.message() + " (waiting for the node to accept our Hello)");
  }
  if (!answer.has_welcome())
    return Fail("welcome: the node answered our Hello with something else");
  Line("welcome: ok, the node accepted our Hello (a node would now be linked to it)");
  channel.Close();
  Line("result: ok");
  return kExitOk;
}

/// After a completed handshake: chain, verification, identity.
int ReportSecured(const Setup& setup, mesh::net::TlsSession* session, double handshake_ms,
                  const std::string& expected_id) {
  Line("tls: ok, " + session->version() + ", " + session->cipher_suite() + ", handshake " +
       Ms(handshake_ms));
  const mbedtls_x509_crt* peer = session->peer_certificate();
  if (peer == nullptr) return Fail("no certificate: the peer presented none");
  PrintChain(peer);
  std::string rules =
      setup.level == SecurityLevel::kTofu
          ? "self-signed and within its validity (tofu)"
          : std::string("chains to a CA of --tls-ca, within its validity, not self-signed");
  Line("verify: ok, " + rules);
  if (setup.hello) return -1;  // the Hello names the id to check
  std::string why = CheckIdentity(setup, peer, expected_id, "expected (--peer-id)");
  if (!why.empty()) return Fail(why);
  return -1;  // continue
}

int RunConnect(const Setup& setup, const std::string& target_text, const std::string& expected_id) {
  std::string host, port;
  if (!SplitHostPort(target_text, &host, &port)) {
    PrintError("'" + target_text + "' is not HOST:PORT ([ADDR]:PORT for IPv6)");
    return kExitUsage;
  }
  addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int gai = getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
  if (gai != 0) return Fail("cannot resolve '" + host + "': " + gai_strerror(gai));
  sockaddr_storage target = {};
  memcpy(&target, found->ai_addr, found->ai_addrlen);
  freeaddrinfo(found);
  std::string kind = AddressKind(target);
  Line("target: " + AddressText(target) + ", a " + kind + " address");

  auto start = Clock::now();
  int fd = -1;
  bool timed_out = false;
  int error = 0;
  Status st = ConnectWithTimeout(target, setup.timeout, &fd, &timed_out, &error);
  if (!st.ok()) {
    std::string hint = AddressHint(target);
    if (timed_out) {
      char secs[32];
      snprintf(secs, sizeof secs, "%g", setup.timeout);
      return Fail("timeout: no answer from " + AddressText(target) + " within " + secs +
                  " s; a firewall is probably dropping the packets (check iptables/nftables on "
                  "both hosts, cloud security groups, and that " +
                  port + "/tcp is open on the peer)" + hint);
    }
    if (error == ECONNREFUSED) {
      return Fail("connection refused: nothing listens on " + AddressText(target) +
                  " (is the node running, with --listen on that address and port?)" + hint);
    }
    return Fail("cannot connect to " + AddressText(target) + ": " + st.message() + hint);
  }
  sockaddr_storage local = {};
  socklen_t llen = sizeof local;
  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen);
  Line("tcp: ok, connected from " + AddressText(local) + " (" + AddressKind(local) + ") in " +
       Ms(MsSince(start)));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};

  if (setup.level == SecurityLevel::kNone) {
    Line("tls: skipped (--security none: plain TCP)");
    if (setup.mode == Mode::kPeer) return ExchangeHello(setup, fd, nullptr, target_text, target);
    Line("result: ok");
    return kExitOk;
  }
  mesh::net::TlsSession session(setup.tls, TlsRole::kClient);
  if (Status init = session.Init(); !init.ok()) return Fail("tls: " + init.message());
  auto hs_start = Clock::now();
  auto deadline = hs_start + std::chrono::milliseconds(static_cast<int64_t>(setup.timeout * 1000));
  st = RunHandshake(fd, &session, deadline);
  if (!st.ok()) {
    if (session.peer_certificate() != nullptr) PrintChain(session.peer_certificate());
    return Fail(ClassifyHandshakeFailure(st, session, setup.level));
  }
  int code = ReportSecured(setup, &session, MsSince(hs_start),
                           setup.mode == Mode::kPeer ? "" : expected_id);
  if (code >= 0) return code;
  if (setup.mode == Mode::kPeer) return ExchangeHello(setup, fd, &session, target_text, target);
  std::string out;
  session.Close();
  session.TakeOutput(&out);
  SendAll(fd, out);
  Line("result: ok");
  return kExitOk;
}

int RunServer(const Setup& setup, const std::string& listen_text, double wait_s,
              const std::string& expected_id) {
  std::string host, port;
  if (!SplitHostPort(listen_text, &host, &port)) {
    PrintError("--listen '" + listen_text + "' is not HOST:PORT ([ADDR]:PORT for IPv6)");
    return kExitUsage;
  }
  addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  int gai = getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
  if (gai != 0) return Fail("cannot resolve '" + host + "': " + gai_strerror(gai));
  int lfd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (lfd < 0 || bind(lfd, found->ai_addr, found->ai_addrlen) != 0 || listen(lfd, 4) != 0) {
    std::string why = mesh::net::ErrnoText(errno);
    freeaddrinfo(found);
    return Fail("cannot listen on " + listen_text + ": " + why +
                (errno == EADDRINUSE ? " (is a node already listening there?)" : ""));
  }
  freeaddrinfo(found);
  struct Closer {
    int fd;
    ~Closer() {
      if (fd >= 0) close(fd);
    }
  } lcloser{lfd};
  sockaddr_storage bound = {};
  socklen_t blen = sizeof bound;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&bound), &blen);
  Line("listening on " + AddressText(bound) + " (" + AddressKind(bound) + " address), security " +
       mesh::net::SecurityLevelName(setup.level));
  pollfd p = {lfd, POLLIN, 0};
  int pr;
  do {
    pr = poll(&p, 1, wait_s > 0 ? static_cast<int>(wait_s * 1000) : -1);
  } while (pr < 0 && errno == EINTR);
  if (pr == 0) {
    return Fail(
        "timeout: no client connected within --wait; if one tried, a firewall is "
        "probably dropping its packets to " +
        port + "/tcp");
  }
  sockaddr_storage remote = {};
  socklen_t rlen = sizeof remote;
  int fd = accept4(lfd, reinterpret_cast<sockaddr*>(&remote), &rlen, SOCK_CLOEXEC);
  if (fd < 0) return Fail(std::string("accept: ") + mesh::net::ErrnoText(errno));
  Closer closer{fd};
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  Line("tcp: ok, connection from " + AddressText(remote) + " (" + AddressKind(remote) +
       " address)");
  if (setup.level == SecurityLevel::kNone) {
    Line("tls: skipped (--security none: plain TCP)");
    if (setup.hello) return ExchangeHello(setup, fd, nullptr, AddressText(remote), remote);
    Line("result: ok");
    return kExitOk;
  }
  mesh::net::TlsSession session(setup.tls, TlsRole::kServer);
  if (Status init = session.Init(); !init.ok()) return Fail("tls: " + init.message());
  auto hs_start = Clock::now();
  auto deadline = hs_start + std::chrono::milliseconds(static_cast<int64_t>(setup.timeout * 1000));
  Status st = RunHandshake(fd, &session, deadline);
  if (!st.ok()) {
    if (session.peer_certificate() != nullptr) PrintChain(session.peer_certificate());
    return Fail(ClassifyHandshakeFailure(st, session, setup.level));
  }
  int code = ReportSecured(setup, &session, MsSince(hs_start), expected_id);
  if (code >= 0) return code;
  if (setup.hello) return ExchangeHello(setup, fd, &session, AddressText(remote), remote);
  std::string out;
  session.Close();
  session.TakeOutput(&out);
  SendAll(fd, out);
  Line("result: ok");
  return kExitOk;
}

int Run(Mode mode, const DebugFlags& flags) {
  Config config;
  if (int code = LoadEffectiveConfig(flags.common, &config); code != 0) return code;
  Setup setup;
  setup.mode = mode;
  setup.timeout = flags.timeout;
  setup.hello = mode == Mode::kPeer || flags.hello;
  setup.cluster = config.node.cluster;
  Status st = mesh::net::ParseSecurityLevel(config.node.security, &setup.level);
  if (!st.ok()) {
    PrintError("--security: " + st.message());
    return kExitUsage;
  }
  setup.data_dir = EffectiveDataDir(config, EffectiveSocket(config));
  setup.node_id = config.node.node_id;
  if (setup.node_id.empty()) {
    st = mesh::UniqueId(setup.data_dir, &setup.node_id);
    if (!st.ok()) {
      PrintError("cannot find this node's unique id (give --node-id): " + st.message());
      return kExitError;
    }
  }
  Line("local: node id '" + setup.node_id + "', security " +
       mesh::net::SecurityLevelName(setup.level));
  if (setup.level != SecurityLevel::kNone) {
    mesh::net::TlsOptions options;
    options.level = setup.level;
    options.cert_file = config.node.tls_cert.empty() ? "" : AbsolutePath(config.node.tls_cert);
    options.key_file = config.node.tls_key.empty() ? "" : AbsolutePath(config.node.tls_key);
    options.ca_file = config.node.tls_ca.empty() ? "" : AbsolutePath(config.node.tls_ca);
    options.node_id = setup.node_id;
    options.allow_no_certificate =
        mode != Mode::kServer && options.cert_file.empty() && options.key_file.empty();
    st = mesh::net::TlsContext::Create(options, &setup.tls);
    if (!st.ok()) return Fail("local configuration: " + st.message());
    if (setup.tls->own_chain().empty()) {
      Line("local: no certificate (--tls-cert): the peer should refuse us");
    } else {
      CertificateInfo own = mesh::net::InspectCertificate(setup.tls->own_chain().leaf());
      Line("local: certificate " + own.subject + ", " + own.fingerprint.ToCompact());
    }
    if (setup.level == SecurityLevel::kTofu && !flags.trusted_fingerprints.empty()) {
      setup.allow_list = std::make_unique<mesh::net::TrustedFingerprints>();
      st = mesh::net::TrustedFingerprints::Load(AbsolutePath(flags.trusted_fingerprints),
                                                setup.allow_list.get());
      if (!st.ok()) return Fail("local configuration: --trusted-fingerprints: " + st.message());
    }
  }
  if (mode == Mode::kServer) return RunServer(setup, flags.listen, flags.wait, flags.peer_id);
  return RunConnect(setup, flags.target, flags.peer_id);
}

void AddDebugOptions(CLI::App* cmd, DebugFlags* flags, Mode mode) {
  FlagOverrides& o = flags->common.overrides;
  o.AddOption(cmd, "--security", "node.security",
              "none, encrypt, mutual or tofu, as for `lockmesh node` (default: the node's "
              "configuration, else none)")
      ->type_name("LEVEL");
  o.AddOption(
       cmd, "--tls-cert", "node.tls_cert",
       std::string("Our PEM certificate chain (default: the node's configuration") +
           (mode == Mode::kServer ? ")" : "; none: connect without one, to see the refusal)"))
      ->type_name("FILE");
  o.AddOption(cmd, "--tls-key", "node.tls_key", "Our PEM private key (default: the node's)")
      ->type_name("FILE");
  o.AddOption(cmd, "--tls-ca", "node.tls_ca",
              "CA certificate(s) to trust, encrypt and mutual (default: the node's)")
      ->type_name("FILE");
  cmd->add_option("--trusted-fingerprints", flags->trusted_fingerprints,
                  "tofu: allow only these fingerprints (one per line, either form, # comments) "
                  "(default: check known_peers)")
      ->type_name("FILE");
  o.AddOption(cmd, "--node-id", "node.node_id",
              "Our node id (default: `lockmesh unique-id`); mutual needs our certificate's CN "
              "to equal it")
      ->type_name("ID");
  o.AddOption(cmd, "--data-dir", "node.data_dir",
              "Data dir with known_peers (tofu) and a generated id (default: as for `lockmesh "
              "node`)")
      ->type_name("DIR");
  if (mode != Mode::kClient) {
    o.AddOption(cmd, "--cluster", "node.cluster",
                std::string("Cluster name sent in our Hello") +
                    (mode == Mode::kServer ? " with --hello" : "") + " (default: lockmesh)")
        ->type_name("NAME");
  }
  if (mode != Mode::kPeer) {
    cmd->add_option("--peer-id", flags->peer_id,
                    "The node id expected on the other side: mutual compares it with the "
                    "certificate's CN, tofu looks its fingerprint up in known_peers (default: "
                    "not checked)")
        ->type_name("ID");
  }
  cmd->add_option("--timeout", flags->timeout,
                  "Seconds allowed for each step: TCP connect, TLS handshake, and for peer the "
                  "Hello and the Welcome (default: 5)")
      ->check(CLI::Range(0.1, 3600.0))
      ->type_name("SECONDS");
  AddCommonOptions(cmd, &flags->common);
}

}  // namespace

CommandRunner AddTlsDebugCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand(
      "tls-debug", "Test a TLS link step by step (TCP, handshake, chain, verification, identity)");
  cmd->require_subcommand(1);
  const char* footer =
      "Each step prints a line; the last is `result: ok` or `result: FAILED: <reason>`: "
      "connection refused,\ntimeout (with a firewall hint), unknown CA, expired certificate, "
      "self-signed certificate, no client\ncertificate, CN mismatch, fingerprint changed (with "
      "the `lockmesh trust accept` command), fingerprint\nnot on the allow-list, not TLS, and "
      "notes on private vs public addresses. Works against\n`openssl s_server -Verify 1` and "
      "`openssl s_client -cert ... -key ...`. Never writes known_peers.\n\n"
      "Exit status: 0 every step passed; 1 a step failed (reason on the result line); 2 usage "
      "error;\n99 other errors (no unique id).";
  cmd->footer(footer);
  auto server_flags = std::make_shared<DebugFlags>();
  auto client_flags = std::make_shared<DebugFlags>();
  auto peer_flags = std::make_shared<DebugFlags>();
  CLI::App* server = cmd->add_subcommand(
      "server", "Accept one connection on --listen and run the TLS server side of the checks");
  server
      ->add_option("--listen", server_flags->listen,
                   "HOST:PORT to listen on; port 0 picks a free one (printed) (required)")
      ->required()
      ->type_name("HOST:PORT");
  server->add_flag("--hello", server_flags->hello,
                   "After the handshake, run the peer protocol (Hello and Welcome both ways) as a "
                   "node would, so that a node or `tls-debug peer` dialling this address can be "
                   "tested (default: off)");
  server
      ->add_option("--wait", server_flags->wait,
                   "Give up if no client connects within SECONDS (default: 0, wait forever)")
      ->type_name("SECONDS");
  AddDebugOptions(server, server_flags.get(), Mode::kServer);
  server->footer(footer);
  CLI::App* client = cmd->add_subcommand(
      "client", "Connect to HOST:PORT and run the TLS client side of the checks");
  client->add_option("HOST:PORT", client_flags->target, "Where to connect")->required();
  AddDebugOptions(client, client_flags.get(), Mode::kClient);
  client->footer(footer);
  CLI::App* peer = cmd->add_subcommand(
      "peer", "As client, then exchange the peer Hello with a lockmesh node at HOST:PORT");
  peer->add_option("HOST:PORT", peer_flags->target, "The node's --listen address")->required();
  AddDebugOptions(peer, peer_flags.get(), Mode::kPeer);
  peer->footer(footer);
  return [=]() -> int {
    if (server->parsed()) return Run(Mode::kServer, *server_flags);
    if (client->parsed()) return Run(Mode::kClient, *client_flags);
    return Run(Mode::kPeer, *peer_flags);
  };
}

}  // namespace lockmesh::cli
