// net/peer/peer_transport.h: listener, dialers and the admission rules for peer connections.
#include "net/peer/peer_transport.h"

#include <ctime>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "core/host_port.h"
#include "core/redial_backoff.h"
#include "net/peer/peer_connection.h"
#include "net/peer/peer_hello.h"
#include "net/support/frame.h"

namespace mesh::net {
namespace {

// Parses "a.b.c.d:port", "[v6]:port" or "localhost:port" into `addr`.
Status ParseHostPort(const std::string& text, bool allow_port_zero, sockaddr_storage* addr,
                     std::string* host_out, int* port_out) {
  std::string host;
  std::string port_text;
  if (!core::SplitHostPort(text, &host, &port_text).ok() || port_text.empty()) {
    return Status::InvalidArgument("bad address '" + text +
                                   "' (expected HOST:PORT, or [IPv6]:PORT)");
  }
  uint16_t port = 0;
  if (!core::ParsePort(port_text, allow_port_zero, &port)) {
    return Status::InvalidArgument("bad port in address '" + text + "'");
  }
  if (host == "localhost") host = "127.0.0.1";
  if (host.empty()) host = "0.0.0.0";
  *addr = {};
  if (uv_ip4_addr(host.c_str(), static_cast<int>(port), reinterpret_cast<sockaddr_in*>(addr)) !=
          0 &&
      uv_ip6_addr(host.c_str(), static_cast<int>(port), reinterpret_cast<sockaddr_in6*>(addr)) !=
          0) {
    return Status::InvalidArgument("bad host in address '" + text +
                                   "' (a numeric IPv4 or [IPv6] address, or localhost)");
  }
  if (host_out) *host_out = host;
  if (port_out) *port_out = static_cast<int>(port);
  return Status::OK();
}

constexpr int kListenBacklog = 1024;

// A flood is over when no connection is pending any more after at least this many were at
// once; the memory its connections used is then handed back to the kernel (malloc_trim):
// glibc keeps freed heap pages, and without it the node's RSS stayed at its flood peak.
constexpr size_t kTrimAfterPendingPeak = 64;

}  // namespace

struct PeerTransport::Dialer {
  PeerTransport* owner = nullptr;
  std::string address;
  sockaddr_storage addr{};
  uv_timer_t timer;
  PeerConnection* conn = nullptr;
  std::string node_id;  // learned from the Hello on a dialled connection
  int failures = 0;
  bool self = false;     // the address is this node's own
  bool retired = false;  // Undial while connected: freed when the connection ends
};

PeerTransport::PeerTransport(uv_loop_t* loop, PeerTransportOptions options, PeerCallbacks callbacks)
    : loop_(loop),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      limits_(options_.pending_limits),
      rate_log_(std::make_unique<RateLimitedLog>(
          loop, [this](const std::string& line) { Log(line); }, options_.log_rate)) {}

PeerTransport::~PeerTransport() = default;

void PeerTransport::Log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    fprintf(stderr, "lockmesh: %s\n", line.c_str());
  }
}

Status PeerTransport::Start() {
  if (started_) return Status::InvalidArgument("peer transport already started");
  if (options_.node_id.empty())
    return Status::InvalidArgument("the peer transport needs a node id");
  options_.tls.node_id = options_.node_id;
  std::random_device entropy;
  incarnation_ = (uint64_t{entropy()} << 32) ^ entropy();
  rng_.seed(options_.seed != 0 ? options_.seed : incarnation_);
  if (options_.tls.level != SecurityLevel::kNone) {
    MESH_RETURN_IF_ERROR(TlsContext::Create(options_.tls, &tls_));
  }
  if (options_.tls.level == SecurityLevel::kTofu) {
    if (!options_.trusted_fingerprints_file.empty()) {
      auto list = std::make_unique<TrustedFingerprints>();
      Status st = TrustedFingerprints::Load(options_.trusted_fingerprints_file, list.get());
      if (!st.ok()) return st.Annotate("--trusted-fingerprints");
      allow_list_ = std::move(list);
    } else if (options_.data_dir.empty()) {
      return Status::InvalidArgument(
          "--security tofu needs a data dir for known_peers (or --trusted-fingerprints)");
    }
  }
  if (!options_.listen_address.empty()) {
    sockaddr_storage addr;
    std::string host;
    int port = 0;
    MESH_RETURN_IF_ERROR(ParseHostPort(options_.listen_address, true, &addr, &host, &port));
    uv_tcp_init(loop_, &listener_);
    listener_.data = this;
    listening_ = true;
    int rc = uv_tcp_bind(&listener_, reinterpret_cast<sockaddr*>(&addr), 0);
    if (rc == 0) {
      // A backlog of 1024 (capped by net.core.somaxconn): with 128, a burst of connections
      // (a flood) filled the accept queue between two loop iterations and the kernel dropped
      // SYNs, a peer's among them, each then retried only after a second.
      rc = uv_listen(
          reinterpret_cast<uv_stream_t*>(&listener_), kListenBacklog,
          [](uv_stream_t* s, int st) { static_cast<PeerTransport*>(s->data)->OnConnection(st); });
    }
    if (rc != 0) {
      // The handle must still be closed; Stop() does it.
      started_ = true;
      return Status::IOError("cannot listen on " + options_.listen_address + ": " +
                             uv_strerror(rc));
    }
    sockaddr_storage bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len);
    listen_port_ =
        ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                          : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    advertise_address_ = options_.advertise_address.empty() ? core::JoinHostPort(host, listen_port_)
                                                            : options_.advertise_address;
  }
  started_ = true;
  std::string how = SecurityLevelName(options_.tls.level);
  if (tls_) how += ", certificate " + tls_->own_fingerprint().ToCompact();
  Log("peer transport of node " + options_.node_id + " (cluster " + options_.cluster +
      ", security " + how + ")" +
      (listening_ ? " listening on " + advertise_address_ : std::string(", not listening")));
  if (options_.tls.level == SecurityLevel::kNone) {
    Log("security none: peer links are not encrypted, and any host that can reach this port "
        "and uses cluster name '" +
        options_.cluster + "' may join");
  }
  for (const std::string& w : CertificateWarnings(time(nullptr))) Log("warning: " + w);
  return Status::OK();
}

std::vector<std::string> PeerTransport::CertificateWarnings(int64_t now) const {
  return tls_ ? tls_->CertificateWarnings(now) : std::vector<std::string>{};
}

void PeerTransport::LogLimited(const std::string& key, const std::string& line) {
  rate_log_->Write(key, line);
}

void PeerTransport::OnConnection(int status) {
  if (stopping_) return;
  if (status != 0) {
    std::string line = std::string("accept failed: ") + uv_strerror(status);
    LogLimited(line, line);
    return;
  }
  auto* conn = new PeerConnection(loop_, tls_, false, options_.max_frame_bytes,
                                  options_.handshake_timeout_ms);
  Adopt(conn, nullptr);
  if (!conn->Accept(reinterpret_cast<uv_stream_t*>(&listener_)).ok()) return;  // closing
  core::ConnectionVerdict verdict = limits_.Admit(conn->source_key());
  if (verdict != core::ConnectionVerdict::kAdmit) {
    // Closed before a byte is read or any TLS state exists; not a refusal to report.
    refused_over_limits_++;
    conn->refusal_reported = true;
    std::string reason = core::DescribeVerdict(verdict, options_.pending_limits);
    LogLimited("closed connection at once: " + reason,
               "closed connection from " + conn->remote_address() + " at once: " + reason);
    conn->Close(Status::Busy(reason), false);
    return;
  }
  conn->pending_counted = true;
  pending_peak_ = std::max(pending_peak_, limits_.pending());
  conn->StartAccepted();
}

void PeerTransport::ReleasePending(PeerConnection* conn) {
  if (!conn->pending_counted) return;
  conn->pending_counted = false;
  limits_.Release(conn->source_key());
  if (limits_.pending() == 0 && pending_peak_ >= kTrimAfterPendingPeak) {
    pending_peak_ = 0;
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
  }
}

void PeerTransport::Adopt(PeerConnection* conn, Dialer* dialer) {
  connections_.insert(conn);
  if (dialer) dialled_by_[conn] = dialer;
  conn->SetHandlers([this](PeerConnection* c) { OnSecured(c); },
                    [this](PeerConnection* c, pb::PeerEnvelope& env) { return OnEnvelope(c, env); },
                    [this](PeerConnection* c, const Status& why) { OnClosed(c, why); });
}

void PeerTransport::OnSecured(PeerConnection* conn) {
  pb::PeerEnvelope env;
  pb::PeerHello* hello = env.mutable_hello();
  hello->set_cluster(options_.cluster);
  hello->set_node_id(options_.node_id);
  hello->set_protocol_version(kPeerProtocolVersion);
  hello->set_incarnation(incarnation_);
  hello->set_listen_address(advertise_address_);
  hello->set_security(SecurityLevelName(options_.tls.level));
  conn->Send(env);
}

Status PeerTransport::OnEnvelope(PeerConnection* conn, pb::PeerEnvelope& env) {
  if (env.has_refusal()) {
    const std::string reason = Printable(env.refusal().reason(), 4096);
    conn->MarkRefusedByPeer();
    conn->refusal_reported = true;
    conn->permanent_refusal = env.refusal().permanent();
    std::string id = conn->node_id.empty() ? conn->claimed_id : conn->node_id;
    LogLimited("refused by peer: " + reason, "refused by peer " + conn->remote_address() +
                                                 (id.empty() ? "" : " (node " + id + ")") + ": " +
                                                 reason);
    if (callbacks_.on_refused && !stopping_) {
      callbacks_.on_refused({conn->remote_address(), id, reason, true});
    }
    conn->Close(Status::PermissionDenied("refused by the peer: " + reason), false);
    return Status::OK();
  }
  if (!conn->node_id.empty()) {  // the link is up
    if (env.has_hello() || env.has_welcome()) {
      Refuse(conn, "protocol violation: a second Hello or Welcome", false);
      return Status::OK();
    }
    if (callbacks_.on_message && !stopping_) callbacks_.on_message(conn->node_id, env);
    return Status::OK();
  }
  if (env.has_hello()) {
    if (conn->hello_accepted || !conn->claimed_id.empty()) {
      Refuse(conn, "protocol violation: a second Hello", false);
      return Status::OK();
    }
    return OnHello(conn, env.hello());
  }
  if (env.has_welcome() && conn->hello_accepted && !conn->welcomed) {
    conn->welcomed = true;
    BecomeUp(conn);
    return Status::OK();
  }
  Refuse(conn,
         std::string("protocol violation: ") + (conn->hello_accepted
                                                    ? "a message before its Welcome"
                                                    : "the first message must be a Hello"),
         false);
  return Status::OK();
}

Status PeerTransport::OnHello(PeerConnection* conn, const pb::PeerHello& hello) {
  conn->claimed_id = Printable(hello.node_id());
  conn->listen_address = Printable(hello.listen_address());
  conn->incarnation = hello.incarnation();
  const std::string& id = hello.node_id();
  HelloIdentity ours{options_.cluster, options_.node_id, incarnation_, kPeerProtocolVersion};
  std::string reason;
  bool permanent = false;
  switch (CheckHello(hello, ours, &reason, &permanent)) {
    case HelloVerdict::kRefuse:
      Refuse(conn, reason, permanent);
      return Status::OK();
    case HelloVerdict::kSelf: {
      auto it = dialled_by_.find(conn);
      if (it != dialled_by_.end()) {
        it->second->self = true;
        Log("address " + it->second->address + " is this node itself; not dialling it");
      }
      conn->Close(Status::AlreadyExists("connected to ourselves"), false);
      return Status::OK();
    }
    case HelloVerdict::kAccept:
      break;
  }
  Status identity = CheckIdentity(conn, id, true, &permanent);
  if (!identity.ok()) {
    Refuse(conn, identity.message(), permanent);
    return Status::OK();
  }
  conn->hello_accepted = true;
  pb::PeerEnvelope welcome;
  welcome.mutable_welcome();
  conn->Send(welcome);
  if (conn->welcomed) BecomeUp(conn);
  return Status::OK();
}

void PeerTransport::BecomeUp(PeerConnection* conn) {
  const std::string& id = conn->claimed_id;
  auto dialer_it = dialled_by_.find(conn);
  Dialer* dialer = dialer_it == dialled_by_.end() ? nullptr : dialer_it->second;
  if (dialer) dialer->node_id = id;
  auto existing_it = peers_.find(id);
  if (existing_it != peers_.end()) {
    PeerConnection* existing = existing_it->second;
    if (existing->incarnation != conn->incarnation) {
      Refuse(conn,
             "node id '" + id + "' is already connected from " + existing->remote_address() +
                 ", a different live process: two live nodes must not share an id",
             false);
      return;
    }
    // The same process twice: both nodes dialled. Keep the connection dialled by the node
    // with the smaller id; both sides apply the same rule, so both keep the same one.
    const std::string& low = std::min(options_.node_id, id);
    auto dialler_of = [&](const PeerConnection* c) { return c->dialled() ? options_.node_id : id; };
    bool keep_new = dialler_of(conn) == low && dialler_of(existing) != low;
    conn->node_id = id;
    if (!keep_new) {
      conn->Close(Status::AlreadyExists("duplicate connection with node " + id), true);
      return;
    }
    peers_[id] = conn;  // `existing` closes without a peer-down: the peer stays up
    existing->Close(Status::AlreadyExists("duplicate connection with node " + id), true);
    conn->Established();
    ReleasePending(conn);
    if (dialer) dialer->failures = 0;
    return;
  }
  conn->node_id = id;
  conn->Established();
  ReleasePending(conn);
  peers_[id] = conn;
  if (dialer) dialer->failures = 0;
  PeerInfo info = Describe(conn);
  std::string how = conn->tls() ? ", " + info.tls_version + " " + info.cipher_suite +
                                      ", certificate " + info.fingerprint.ToCompact()
                                : ", no TLS";
  Log("peer " + id + " up (" + conn->remote_address() + (conn->dialled() ? ", dialled" : "") + how +
      ")");
  if (callbacks_.on_peer_up && !stopping_) callbacks_.on_peer_up(info);
}

Status PeerTransport::CheckIdentity(const PeerConnection* conn, const std::string& id, bool record,
                                    bool* permanent) const {
  *permanent = false;
  if (options_.tls.level == SecurityLevel::kNone) return Status::OK();
  const mbedtls_x509_crt* crt = conn->tls() ? conn->tls()->peer_certificate() : nullptr;
  if (crt == nullptr) return Status::PermissionDenied("the peer presented no certificate");
  if (options_.tls.level == SecurityLevel::kMutual) {
    std::string cn = PeerCommonName(*crt);
    if (cn != id) {
      *permanent = true;
      return Status::PermissionDenied(
          "certificate CN '" + cn + "' does not match the node id '" + id +
          "' the peer claims (--security mutual: each node's certificate must have CN = its "
          "node id)");
    }
    return Status::OK();
  }
  if (options_.tls.level != SecurityLevel::kTofu) return Status::OK();
  Fingerprint fp = Fingerprint::OfDer(crt->raw.p, crt->raw.len);
  if (allow_list_) {
    if (allow_list_->Contains(fp)) return Status::OK();
    *permanent = true;
    return Status::PermissionDenied("certificate fingerprint " + fp.ToCompact() + " of node " + id +
                                    " is not in --trusted-fingerprints " + allow_list_->path());
  }
  std::string path = KnownPeersPath(options_.data_dir);
  if (!record) {
    std::vector<KnownPeer> known;
    Status st = LoadKnownPeers(path, &known);
    if (!st.ok()) return Status::PermissionDenied("cannot check known_peers: " + st.ToString());
    for (const KnownPeer& k : known) {
      if (k.node_id == id && k.fingerprint != fp) {
        *permanent = true;
        return Status::PermissionDenied(FingerprintChangedMessage(id, k, fp, options_.data_dir));
      }
    }
    return Status::OK();
  }
  TofuVerdict verdict;
  KnownPeer stored;
  Status st =
      CheckAndRecordPeer(path, id, fp, static_cast<int64_t>(time(nullptr)), &verdict, &stored);
  if (!st.ok()) return Status::PermissionDenied("cannot check known_peers: " + st.ToString());
  if (verdict == TofuVerdict::kChanged) {
    *permanent = true;
    return Status::PermissionDenied(FingerprintChangedMessage(id, stored, fp, options_.data_dir));
  }
  if (verdict == TofuVerdict::kFirstContact) {
    Log("tofu: first contact with node " + id + " (" + conn->remote_address() +
        "): trusting certificate " + fp.ToCompact() + ", recorded in " + path);
  }
  return Status::OK();
}

void PeerTransport::Refuse(PeerConnection* conn, const std::string& reason, bool permanent) {
  std::string id = conn->node_id.empty() ? conn->claimed_id : conn->node_id;
  LogLimited("refused peer: " + reason, "refused peer " + conn->remote_address() +
                                            (id.empty() ? "" : " (node " + id + ")") + ": " +
                                            reason);
  conn->refusal_reported = true;
  conn->permanent_refusal = permanent;
  if (callbacks_.on_refused && !stopping_) {
    callbacks_.on_refused({conn->remote_address(), id, reason, false});
  }
  conn->Refuse(reason, permanent);
}

void PeerTransport::OnClosed(PeerConnection* conn, const Status& why) {
  connections_.erase(conn);
  ReleasePending(conn);
  Dialer* dialer = nullptr;
  auto d = dialled_by_.find(conn);
  if (d != dialled_by_.end()) {
    dialer = d->second;
    dialled_by_.erase(d);
    dialer->conn = nullptr;
  }
  if (stopping_) {
    MaybeFinishStop();
    return;
  }
  bool was_peer = false;
  if (!conn->node_id.empty()) {
    auto it = peers_.find(conn->node_id);
    if (it != peers_.end() && it->second == conn) {
      was_peer = true;
      peers_.erase(it);
    }
  }
  if (was_peer) {
    Log("peer " + conn->node_id + " down (" + conn->remote_address() + "): " + why.message());
    if (callbacks_.on_peer_down) callbacks_.on_peer_down(conn->node_id, why);
    // Redial at once any address of that node that is idle.
    for (auto& [address, other] : dialers_) {
      if (other.get() != dialer && other->node_id == conn->node_id && other->conn == nullptr &&
          !other->self) {
        other->failures = 0;
        ScheduleRedial(other.get(), false);
      }
    }
  } else if (why.code() == Status::Code::kAlreadyExists) {
    // A duplicate or a dial to ourselves: nothing to report.
  } else if (conn->connected() && !conn->refusal_reported && !why.ok()) {
    // Ended before becoming a peer: a refusal by TLS (ours or the peer's alert), hostile or
    // foreign input, or a peer that hung up.
    std::string id = conn->claimed_id;
    std::string who = conn->remote_address() + (id.empty() ? "" : " (node " + id + ")");
    if (conn->refused_by_peer()) {
      LogLimited("refused by peer: " + why.message(),
                 "refused by peer " + who + ": " + why.message());
    } else if (why.code() == Status::Code::kPermissionDenied) {
      LogLimited("refused peer: " + why.message(), "refused peer " + who + ": " + why.message());
    } else {
      LogLimited("closed connection: " + why.message(),
                 "closed connection with " + who + ": " + why.message());
    }
    if (callbacks_.on_refused) {
      callbacks_.on_refused({conn->remote_address(), id, why.message(), conn->refused_by_peer()});
    }
  } else if (!conn->connected() && dialer) {
    if (dialer->failures == 0 || dialer->failures % 10 == 9) {
      Log("cannot reach " + dialer->address + ": " + why.message() + " (retrying with backoff)");
    }
  }
  if (dialer && dialer->retired) {
    Retire(dialer->address);
  } else if (dialer && !dialer->self) {
    if (was_peer) {
      dialer->failures = 0;
    } else if (why.code() != Status::Code::kAlreadyExists) {
      dialer->failures++;
    }
    ScheduleRedial(dialer, conn->permanent_refusal);
  }
}

Status PeerTransport::Dial(const std::string& host_port) {
  if (!started_ || stopping_) return Status::InvalidArgument("the peer transport is not running");
  if (auto it = dialers_.find(host_port); it != dialers_.end()) {
    it->second->retired = false;
    return Status::OK();
  }
  auto d = std::make_unique<Dialer>();
  MESH_RETURN_IF_ERROR(ParseHostPort(host_port, false, &d->addr, nullptr, nullptr));
  d->owner = this;
  d->address = host_port;
  uv_timer_init(loop_, &d->timer);
  d->timer.data = d.get();
  Dialer* raw = d.get();
  dialers_[host_port] = std::move(d);
  DialNow(raw);
  return Status::OK();
}

void PeerTransport::Undial(const std::string& host_port) {
  auto it = dialers_.find(host_port);
  if (it == dialers_.end() || stopping_) return;
  if (it->second->conn != nullptr) {
    it->second->retired = true;  // OnClosed retires it
    return;
  }
  Retire(host_port);
}

void PeerTransport::Retire(const std::string& address) {
  auto it = dialers_.find(address);
  if (it == dialers_.end()) return;
  Dialer* d = it->second.release();
  dialers_.erase(it);
  uv_timer_stop(&d->timer);
  closing_handles_++;
  uv_close(reinterpret_cast<uv_handle_t*>(&d->timer), [](uv_handle_t* h) {
    auto* dialer = static_cast<Dialer*>(h->data);
    PeerTransport* owner = dialer->owner;
    delete dialer;
    owner->closing_handles_--;
    owner->MaybeFinishStop();
  });
}

void PeerTransport::DialNow(Dialer* d) {
  if (stopping_ || d->self || d->conn != nullptr) return;
  if (!d->node_id.empty() && peers_.count(d->node_id)) {
    // Already connected to that node (it dialled us): look again later.
    ScheduleRedial(d, true);
    return;
  }
  auto* conn = new PeerConnection(loop_, tls_, true, options_.max_frame_bytes,
                                  options_.handshake_timeout_ms);
  d->conn = conn;
  Adopt(conn, d);
  conn->Connect(reinterpret_cast<const sockaddr*>(&d->addr), d->address);
}

void PeerTransport::ScheduleRedial(Dialer* d, bool longest) {
  if (stopping_) return;
  // The delay sequence is core's (core/redial_backoff.h); the random draw is ours.
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const uint64_t delay = core::RedialDelayMs(options_.reconnect_min_ms, options_.reconnect_max_ms,
                                             d->failures, longest, unit(rng_));
  uv_timer_start(
      &d->timer,
      [](uv_timer_t* t) {
        auto* dialer = static_cast<Dialer*>(t->data);
        dialer->owner->DialNow(dialer);
      },
      delay, 0);
}

bool PeerTransport::Send(const std::string& node_id, const pb::PeerEnvelope& message) {
  auto it = peers_.find(node_id);
  if (it == peers_.end() || it->second->closing()) return false;
  it->second->Send(message);
  return true;
}

void PeerTransport::Disconnect(const std::string& node_id, const std::string& why) {
  auto it = peers_.find(node_id);
  if (it == peers_.end() || it->second->closing()) return;
  it->second->Close(Status::Unavailable(why), false);
}

bool PeerTransport::SendEncoded(const std::string& node_id, std::string_view frames) {
  auto it = peers_.find(node_id);
  if (it == peers_.end() || it->second->closing()) return false;
  it->second->SendFrames(frames);
  return true;
}

void PeerTransport::FlushQueued() {
  // Copied first: a failed write closes its connection, which may touch peers_.
  std::vector<PeerConnection*> open;
  for (auto& [id, conn] : peers_) {
    if (!conn->closing()) open.push_back(conn);
  }
  for (PeerConnection* conn : open) {
    if (!conn->closing()) conn->FlushNow();
  }
}

size_t PeerTransport::QueuedBytes(const std::string& node_id) const {
  auto it = peers_.find(node_id);
  return it == peers_.end() ? 0 : it->second->write_queue_bytes();
}

PeerInfo PeerTransport::Describe(const PeerConnection* conn) const {
  PeerInfo info;
  info.node_id = conn->node_id;
  info.address = conn->remote_address();
  info.listen_address = conn->listen_address;
  info.dialled = conn->dialled();
  if (const TlsSession* tls = conn->tls()) {
    info.tls_version = tls->version();
    info.cipher_suite = tls->cipher_suite();
    if (const mbedtls_x509_crt* crt = tls->peer_certificate()) {
      info.common_name = PeerCommonName(*crt);
      info.fingerprint = Fingerprint::OfDer(crt->raw.p, crt->raw.len);
    }
  }
  return info;
}

std::vector<PeerInfo> PeerTransport::Peers() const {
  std::vector<PeerInfo> out;
  for (const auto& [id, conn] : peers_) out.push_back(Describe(conn));
  return out;
}

Status PeerTransport::Reload(size_t* cut_off) {
  if (cut_off) *cut_off = 0;
  if (!started_ || stopping_) return Status::InvalidArgument("the peer transport is not running");
  if (options_.tls.level == SecurityLevel::kNone) {
    Log("reload: --security none has no certificates to reload");
    return Status::OK();
  }
  std::shared_ptr<const TlsContext> fresh;
  Status st = TlsContext::Create(options_.tls, &fresh);
  if (!st.ok()) {
    Log("reload failed, keeping the current certificates: " + st.message());
    return st.Annotate("reload");
  }
  std::unique_ptr<TrustedFingerprints> list;
  if (!options_.trusted_fingerprints_file.empty()) {
    list = std::make_unique<TrustedFingerprints>();
    st = TrustedFingerprints::Load(options_.trusted_fingerprints_file, list.get());
    if (!st.ok()) {
      Log("reload failed, keeping the current certificates: " + st.message());
      return st.Annotate("reload: --trusted-fingerprints");
    }
  }
  tls_ = std::move(fresh);
  if (list) allow_list_ = std::move(list);
  Log("reloaded certificates: now presenting " + tls_->own_fingerprint().ToCompact() +
      " on new connections");
  for (const std::string& w : CertificateWarnings(time(nullptr))) Log("warning: " + w);
  // Re-check the peers already in with the new rules.
  std::vector<PeerConnection*> doomed;
  std::vector<std::string> reasons;
  for (const auto& [id, conn] : peers_) {
    const mbedtls_x509_crt* crt = conn->tls() ? conn->tls()->peer_certificate() : nullptr;
    Status verdict = crt ? tls_->VerifyChain(*crt)
                         : Status::PermissionDenied("the peer presented no certificate");
    bool permanent = false;
    if (verdict.ok()) verdict = CheckIdentity(conn, id, false, &permanent);
    if (!verdict.ok()) {
      doomed.push_back(conn);
      reasons.push_back(
          "after a certificate reload this node no longer accepts the peer's "
          "certificate: " +
          verdict.message());
    }
  }
  for (size_t i = 0; i < doomed.size(); ++i) Refuse(doomed[i], reasons[i], false);
  if (cut_off) *cut_off = doomed.size();
  return Status::OK();
}

void PeerTransport::Stop(std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  stop_done_ = std::move(done);
  if (listening_) {
    closing_handles_++;
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), [](uv_handle_t* h) {
      auto* self = static_cast<PeerTransport*>(h->data);
      self->closing_handles_--;
      self->MaybeFinishStop();
    });
  }
  for (auto& [address, d] : dialers_) {
    closing_handles_++;
    uv_close(reinterpret_cast<uv_handle_t*>(&d->timer), [](uv_handle_t* h) {
      auto* dialer = static_cast<Dialer*>(h->data);
      dialer->owner->closing_handles_--;
      dialer->owner->MaybeFinishStop();
    });
  }
  std::vector<PeerConnection*> open(connections_.begin(), connections_.end());
  for (PeerConnection* conn : open) conn->Close(Status::OK(), true);
  // Last: the summaries of lines left out are written now (close callbacks log nothing).
  closing_handles_++;
  if (!rate_log_->Close([this] {
        closing_handles_--;
        MaybeFinishStop();
      })) {
    closing_handles_--;
  }
  MaybeFinishStop();
}

void PeerTransport::MaybeFinishStop() {
  if (!stopping_ || closing_handles_ > 0 || !connections_.empty() || !stop_done_) return;
  peers_.clear();
  auto done = std::move(stop_done_);
  stop_done_ = nullptr;
  done();
}

}  // namespace mesh::net
