// mesh::Node's UNIX-socket server (net/node/node_impl.h): listening, accepting (credentials, the
// hello timer), decoding and dispatching the client frames, answering them (corked for the
// batch being applied), and closed connections.
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cmath>

#include "net/local/lock_listing.h"
#include "net/local/protocol.h"
#include "net/node/node_impl.h"
#include "net/support/errno_text.h"
#include "net/support/lease_clock.h"
#include "net/support/log_line.h"

namespace mesh::net::node_impl {
namespace {

// Requests a connection may send before its session opens (the node is claiming client ids):
// more are refused, so that one client cannot grow the node's memory while the log is stuck.
constexpr size_t kMaxEarlyRequests = 1024;

}  // namespace

// ------------------------------------------------------------ listening and accepting

Status NodeImpl::Listen() {
  uv_pipe_init(loop_, &server_, 0);
  server_.data = this;
  server_ready_ = true;
  mode_t old = umask(077);
  int rc = uv_pipe_bind(&server_, options_.socket_path.c_str());
  umask(old);
  if (rc != 0) {
    return Status::IOError("cannot bind " + options_.socket_path + ": " + uv_strerror(rc));
  }
  mode_t mode = 0600;
  if (!options_.socket_group.empty()) {
    group* g = getgrnam(options_.socket_group.c_str());
    if (!g) return Status::InvalidArgument("no such group: " + options_.socket_group);
    socket_gid_ = static_cast<int64_t>(g->gr_gid);
    if (chown(options_.socket_path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
      return Status::IOError("cannot give " + options_.socket_path + " to group " +
                             options_.socket_group + ": " + net::ErrnoText(errno));
    }
    mode = 0660;
  }
  if (chmod(options_.socket_path.c_str(), mode) != 0) {
    return Status::IOError("cannot chmod " + options_.socket_path + ": " + net::ErrnoText(errno));
  }
  rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server_), 128, OnConnection);
  if (rc != 0) {
    return Status::IOError("cannot listen on " + options_.socket_path + ": " + uv_strerror(rc));
  }
  return Status::OK();
}

void NodeImpl::OnConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<NodeImpl*>(server->data);
  if (status != 0 || self->stopping_) return;
  auto* stream = new FramedStream(self->loop_, net::kMaxClientFrameBytes);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(stream->pipe())) != 0) {
    stream->Close(Status::IOError("accept failed"));
    return;
  }
  auto conn = std::make_unique<Conn>();
  conn->stream = stream;
  conn->serial = ++self->conn_serial_;
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(stream->pipe()), &fd) == 0) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      conn->pid = static_cast<uint32_t>(cred.pid);
      conn->uid = cred.uid;
      conn->gid = cred.gid;
    }
  }
  uid_t me = geteuid();
  bool allowed = conn->uid == me || conn->uid == 0 ||
                 (self->socket_gid_ >= 0 && conn->gid == static_cast<uint32_t>(self->socket_gid_));
  if (!allowed) {
    conn->refused = "permission denied: uid " + std::to_string(conn->uid) +
                    " may not use the node of uid " + std::to_string(me) + " at " +
                    self->options_.socket_path;
    self->Log("refused client pid " + std::to_string(conn->pid) + ": " + conn->refused);
  }
  Conn* c = conn.get();
  uint64_t id = c->serial;
  self->conns_.emplace(id, std::move(conn));
  uv_timer_stop(&self->idle_timer_);
  self->StartHelloTimer(id);
  stream->Start([self, c](std::string_view body) { return self->OnFrame(c, body); },
                [self, id](const Status& why) { self->OnConnClosed(id, why); });
}

void NodeImpl::StartHelloTimer(uint64_t serial) {
  if (options_.hello_timeout_ms <= 0) return;
  // The deadline counts from now, not from the loop's cached time: after the node was stopped
  // (SIGSTOP, a stall), connections queued meanwhile are accepted with a cached time from
  // before the stop, and timers run before reads in an iteration, so every such client was
  // closed for "no hello" with its hello unread (FrozenNodeClientTest, under load).
  uv_update_time(loop_);
  auto* t = new uv_timer_t;
  uv_timer_init(loop_, t);
  t->data = this;
  hello_timers_.emplace(t, serial);
  uv_timer_start(
      t,
      [](uv_timer_t* timer) {
        auto* self = static_cast<NodeImpl*>(timer->data);
        auto it = self->hello_timers_.find(timer);
        uint64_t serial = it->second;
        self->hello_timers_.erase(it);
        uv_close(reinterpret_cast<uv_handle_t*>(timer),
                 [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
        auto conn = self->conns_.find(serial);
        if (conn == self->conns_.end() || conn->second->hello_seen || !conn->second->stream) return;
        Conn* c = conn->second.get();
        Status why = Status::TimedOut("no hello within " +
                                      std::to_string(self->options_.hello_timeout_ms) + " ms");
        self->Log("closing client connection of pid " + std::to_string(c->pid) + " (uid " +
                  std::to_string(c->uid) + "): " + why.message());
        c->stream->Close(why);
      },
      static_cast<uint64_t>(options_.hello_timeout_ms), 0);
}

// ------------------------------------------------------------ client requests

Status NodeImpl::OnFrame(Conn* c, std::string_view body, int64_t arrived_ms) {
  pb::ClientRequest req;
  if (!req.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return Status::InvalidArgument("malformed client request (" + std::to_string(body.size()) +
                                   " bytes that do not parse)");
  }
  if (!c->hello_seen) {
    if (!req.has_hello()) return Status::InvalidArgument("first request is not a hello");
    c->hello_seen = true;
    if (!c->refused.empty()) {
      pb::ClientResponse resp;
      resp.set_request_id(req.request_id());
      resp.set_error(c->refused);
      c->stream->Send(resp);
      return Status::PermissionDenied(c->refused);
    }
    if (req.hello().protocol_version() != net::kClientProtocolVersion) {
      pb::ClientResponse resp;
      resp.set_request_id(req.request_id());
      resp.set_error("client protocol version " + std::to_string(req.hello().protocol_version()) +
                     " is not supported (node speaks " +
                     std::to_string(net::kClientProtocolVersion) + ")");
      c->stream->Send(resp);
      return Status::InvalidArgument(resp.error());
    }
    c->client_name = req.hello().client_name().substr(0, 256);
    Status proposed = IdsAvailable() ? OpenSessionFor(c) : AwaitIds(c);
    if (!proposed.ok()) {
      pb::ClientResponse resp;
      resp.set_request_id(req.request_id());
      resp.set_error("node cannot open a session: " + proposed.ToString());
      c->stream->Send(resp);
      return Status::Unavailable(resp.error());
    }
    // The hello is answered as soon as the OpenSession is proposed, without waiting for
    // it to be durable: a session without locks loses nothing if a crash forgets it, and
    // every later command of the session is ordered after it in the log, so a grant that
    // is durable implies its session is. This saves an fsync per connection. (While the
    // node is claiming client ids the hello is answered with client id 0: the session
    // opens, and the requests that wait for it go on, once the claim is applied.)
    pb::ClientResponse resp;
    resp.set_request_id(req.request_id());
    resp.mutable_hello()->set_protocol_version(net::kClientProtocolVersion);
    resp.mutable_hello()->set_node_id(options_.node_id);
    resp.mutable_hello()->set_client_id(c->client_id);
    if (cluster_) {
      // The client keeps a lease of its own (core/lease/client_lease.h), renewed as often
      // as this node renews its own, with the cluster's drift bound and the node's margin.
      // A local node has no lease: no other node can grant its locks.
      const core::lease::LeaseOptions& lo = cluster_->lease_options();
      resp.mutable_hello()->set_lease_renew_ms(std::max<uint64_t>(1, lo.keepalive_interval / 1000));
      resp.mutable_hello()->set_lease_drift_ppm(
          static_cast<uint32_t>(std::ceil(std::max(0.0, lo.max_drift) * 1e6)));
      resp.mutable_hello()->set_lease_margin_us(lo.margin);
    }
    c->stream->Send(resp);
    return Status::OK();
  }
  if (!c->session_open) {
    if (!c->awaiting_ids) return Status::InvalidArgument("request before the session was open");
    if (req.has_lock() || req.has_unlock()) {
      if (c->early.size() >= kMaxEarlyRequests) {
        return Reply(c, req.request_id(), pb::UNAVAILABLE,
                     "too many requests before this connection's session opened (at most " +
                         std::to_string(kMaxEarlyRequests) + ")");
      }
      const int64_t now = static_cast<int64_t>(uv_now(loop_));
      c->early.push_back(Conn::EarlyRequest{std::string(body), req.request_id(), now});
      // The deadline holds while the node waits for its client ids too (without a quorum
      // they cannot be claimed): DeadlinePassed answers a request still in `early`.
      if (req.has_lock()) {
        const int64_t deadline = LockDeadline(req.lock(), now);
        if (deadline >= 0) {
          deadlines_.emplace(deadline, Deadline{c->serial, req.request_id(), false});
          ArmDeadlineTimer();
        }
      }
      return Status::OK();  // replayed by OnIdsClaimed
    }
  }
  switch (req.body_case()) {
    case pb::ClientRequest::kLock:
      return HandleLock(c, req, arrived_ms);
    case pb::ClientRequest::kUnlock: {
      pb::Command cmd;
      auto* rel = cmd.mutable_release();
      SetSession(c, rel->mutable_session());
      uint64_t seq = ++c->next_seq;
      rel->set_seq(seq);
      rel->set_lock_id(req.unlock().lock_id());
      rel->set_rollback(req.unlock().rollback());
      rel->set_stamp_unix_ns(net::WallClockNs());
      c->ops[seq] = Conn::Op{req.request_id(), -1, ""};
      return ProposeForSession(c, req.request_id(), seq, std::move(cmd));
    }
    case pb::ClientRequest::kStatus: {
      pb::ClientResponse resp;
      resp.set_request_id(req.request_id());
      FillStatus(resp.mutable_status());
      c->stream->Send(resp);
      return Status::OK();
    }
    case pb::ClientRequest::kListLocks: {
      pb::ClientResponse resp;
      resp.set_request_id(req.request_id());
      Status st = net::AnswerListLocks(log_->table(), req.list_locks(), resp.mutable_locks());
      if (!st.ok()) resp.set_error(st.message());
      c->stream->Send(resp);
      return Status::OK();
    }
    case pb::ClientRequest::kShutdown: {
      pb::ClientResponse resp;
      resp.set_request_id(req.request_id());
      resp.mutable_result()->set_code(pb::RELEASED);
      c->stream->Send(resp);
      Log(std::string("shutdown requested by pid ") + std::to_string(c->pid) +
          (req.shutdown().immediate() ? " (immediate)" : " (once idle)"));
      if (req.shutdown().immediate()) {
        StopWithReason(Status::OK());
      } else {
        quiesce_ = true;
        MaybeQuiesce();
      }
      return Status::OK();
    }
    case pb::ClientRequest::kLease: {
      // Answered at once: the client's lease counts from its own send time, so only the
      // time this node's lease still holds now matters (0 when it does not hold, which is
      // also when a grant would be held back).
      pb::ClientResponse resp;
      resp.set_request_id(req.request_id());
      resp.mutable_lease()->set_seq(req.lease().seq());
      resp.mutable_lease()->set_remaining_us(LeaseRemainingUs());
      c->stream->Send(resp);
      return Status::OK();
    }
    case pb::ClientRequest::kHello:
      return Status::InvalidArgument("second hello on one connection");
    default:
      return Status::InvalidArgument("request with no known body");
  }
}

uint64_t NodeImpl::LeaseRemainingUs() const {
  if (!cluster_) return 0;
  const uint64_t now = net::LeaseClockUs();
  const uint64_t until = cluster_->node_lease().valid_until();
  return until > now ? until - now : 0;
}

Status NodeImpl::Reply(Conn* c, uint64_t request_id, pb::ResultCode code,
                       const std::string& message) {
  pb::ClientResponse resp;
  resp.set_request_id(request_id);
  resp.mutable_result()->set_code(code);
  resp.mutable_result()->set_message(message);
  if (c->stream) c->stream->Send(resp);
  return Status::OK();
}

void NodeImpl::FillStatus(pb::StatusReply* out) const {
  NodeStatus s = GetStatus();
  out->set_node_id(s.node_id);
  out->set_cluster(s.cluster);
  out->set_role(s.role);
  out->set_leader_id(s.leader_id);
  out->set_term(s.term);
  out->set_commit_index(s.commit_index);
  out->set_applied_index(s.applied_index);
  out->set_clients(s.clients);
  out->set_locks_held(s.locks_held);
  out->set_locks_waiting(s.locks_waiting);
  out->set_data_dir(s.data_dir);
  out->set_socket(s.socket);
  out->set_security(s.security);
  out->set_uptime_ms(s.uptime_ms);
  out->set_version(s.version);
  out->set_fsync(s.fsync);
  out->set_mesh(s.mesh);
  out->set_cluster_id(s.cluster_id);
  out->set_lease_ms(s.lease_ms);
  for (const std::string& w : s.warnings) out->add_warnings(w);
  for (const auto& m : s.members) {
    auto* pm = out->add_members();
    pm->set_node_id(m.node_id);
    pm->set_role(m.role);
    pm->set_address(m.address);
    pm->set_voter(m.voter);
    pm->set_connected(m.connected);
    pm->set_match(m.match);
    pm->set_lag(m.lag);
    pm->set_found_at(m.found_at);
    pm->set_fingerprint(m.fingerprint);
  }
}

// ------------------------------------------------------------ answers

void NodeImpl::CorkForBatch(Conn* c) {
  if (!c->stream || c->stream->corked()) return;
  c->stream->Cork();
  corked_.push_back(c->serial);
}

void NodeImpl::UncorkAll() {
  for (uint64_t serial : corked_) {
    auto it = conns_.find(serial);
    if (it != conns_.end() && it->second->stream) it->second->stream->Uncork();
  }
  corked_.clear();
}

void NodeImpl::SendResult(Conn* c, uint64_t request_id, const pb::CommandResult& r) {
  if (!c->stream) return;
  if (cluster_ && r.code() == pb::GRANTED && !cluster_->LeaseValid()) {
    // Without a lease this node cannot vouch that the grant is still ours when the
    // client hears of it: hold it until an acknowledgement (which implies the log is
    // applied past any expiry of our sessions) makes the lease valid again.
    deferred_grants_.push_back({c->serial, request_id, r});
    cluster_->RequestLease();
    return;
  }
  CorkForBatch(c);
  pb::ClientResponse resp;
  resp.set_request_id(request_id);
  *resp.mutable_result() = r;
  c->stream->Send(resp);
}

// ------------------------------------------------------------ disconnects

void NodeImpl::OnConnClosed(uint64_t serial, const Status& why) {
  auto it = conns_.find(serial);
  if (it == conns_.end()) return;
  Conn* c = it->second.get();
  c->stream = nullptr;
  if (!why.ok() && !why.IsUnavailable() && why.code() != Status::Code::kPermissionDenied) {
    Log("closed client " + std::to_string(c->client_id) + " (pid " + std::to_string(c->pid) +
        "): " + why.ToString());
  }
  if (c->session_open && !stopping_) {
    pb::Command cmd;
    SetSession(c, cmd.mutable_close_session()->mutable_session());
    log_->Propose(std::move(cmd));  // its locks are released at once
  }
  if (c->client_id) sessions_.erase(c->client_id);
  for (const auto& [seq, op] : c->ops) ForgetDeadline(serial, op);
  for (const auto& [lock_id, op] : c->waiting) ForgetDeadline(serial, op);
  conns_.erase(it);
  if (stopping_) {
    MaybeFinishStop();
  } else {
    ArmIdleTimer();
  }
}

}  // namespace mesh::net::node_impl
