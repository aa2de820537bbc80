// net/peer/peer_connection.h: TCP + optional TLS + frames for one link between two nodes.
#include "net/peer/peer_connection.h"

#include <cstring>

#include "core/connection_limits.h"
#include "core/host_port.h"
#include "net/support/sigpipe.h"

namespace mesh::net {
namespace {

// After we decide to close, how long we keep reading (and discarding) so that our last
// bytes — a TLS alert, a PeerRefusal — reach the peer instead of being destroyed by the RST
// that closing a socket with unread input sends.
constexpr uint64_t kLingerMs = 2000;

// Most bytes a peer may make us buffer before its link is up (before its Hello and Welcome
// have been accepted): a Hello is a few hundred bytes, and an unauthenticated peer must not
// make us hold max_frame_bytes for every connection it opens.
constexpr size_t kMaxBytesBeforeUp = 64 * 1024;

// Buffers kept per connection for reuse (see spare_buffers_), and the largest capacity
// worth keeping: an idle link holds at most kMaxSpareBuffers * kMaxSpareCapacity.
constexpr size_t kMaxSpareBuffers = 4;
constexpr size_t kMaxSpareCapacity = 1 << 20;

// What libuv reads into, for every connection of this thread: OnRead copies the bytes out
// (into the TLS session or the frame decoder) before it returns, and libuv reads one
// connection at a time. A buffer per connection cost 64 KiB each.
constexpr size_t kReadBufferBytes = 64 * 1024;
thread_local char read_buffer[kReadBufferBytes];

// A uv_write request that owns the bytes it writes.
struct WriteRequest {
  uv_write_t req;
  std::string data;
};

std::string SockName(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    uv_ip4_name(in, host, sizeof host);
    port = ntohs(in->sin_port);
    return core::JoinHostPort(host, static_cast<uint16_t>(port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    uv_ip6_name(in6, host, sizeof host);
    port = ntohs(in6->sin6_port);
    return core::JoinHostPort(host, static_cast<uint16_t>(port));
  }
  return "?";
}

}  // namespace

PeerConnection::PeerConnection(uv_loop_t* loop, std::shared_ptr<const TlsContext> tls, bool dialled,
                               uint32_t max_frame_bytes, uint64_t deadline_ms)
    : loop_(loop),
      tls_context_(std::move(tls)),
      dialled_(dialled),
      deadline_ms_(deadline_ms),
      decoder_(max_frame_bytes) {
  IgnoreSigpipe();  // a peer hanging up mid-write must not end the process
  uv_tcp_init(loop, &tcp_);
  uv_timer_init(loop, &deadline_);
  uv_prepare_init(loop, &prepare_);
  tcp_.data = this;
  deadline_.data = this;
  prepare_.data = this;
  connect_req_.data = this;
  open_handles_ = 3;
}

void PeerConnection::SetHandlers(SecuredHandler on_secured, EnvelopeHandler on_envelope,
                                 ClosedHandler on_closed) {
  on_secured_ = std::move(on_secured);
  on_envelope_ = std::move(on_envelope);
  on_closed_ = std::move(on_closed);
}

Status PeerConnection::Accept(uv_stream_t* server) {
  int rc = uv_accept(server, reinterpret_cast<uv_stream_t*>(&tcp_));
  if (rc != 0) {
    Status st = Status::IOError(std::string("accept failed: ") + uv_strerror(rc));
    Close(st, false);
    return st;
  }
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    remote_address_ = SockName(ss);
    if (ss.ss_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
      source_key_ = core::ConnectionSourceKey(reinterpret_cast<const uint8_t*>(&in->sin_addr), 4);
    } else if (ss.ss_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
      source_key_ =
          core::ConnectionSourceKey(reinterpret_cast<const uint8_t*>(&in6->sin6_addr), 16);
    }
  }
  if (source_key_.empty()) source_key_ = "?";
  return Status::OK();
}

void PeerConnection::StartAccepted() {
  if (closing_) return;
  uv_timer_start(&deadline_, OnDeadline, deadline_ms_, 0);
  Begin();
}

void PeerConnection::Connect(const sockaddr* addr, const std::string& address) {
  remote_address_ = address;
  connecting_ = true;
  uv_timer_start(&deadline_, OnDeadline, deadline_ms_, 0);
  int rc = uv_tcp_connect(&connect_req_, &tcp_, addr, OnConnect);
  if (rc != 0) {
    connecting_ = false;
    Fail(Status::Unavailable("cannot connect to " + address + ": " + uv_strerror(rc)));
  }
}

void PeerConnection::OnConnect(uv_connect_t* req, int status) {
  auto* self = static_cast<PeerConnection*>(req->data);
  self->connecting_ = false;
  if (self->closing_) return;
  if (status != 0) {
    self->Fail(Status::Unavailable("cannot connect to " + self->remote_address_ + ": " +
                                   uv_strerror(status)));
    return;
  }
  self->Begin();
}

void PeerConnection::Begin() {
  began_ = true;
  uv_tcp_nodelay(&tcp_, 1);
  uv_tcp_keepalive(&tcp_, 1, 30);
  int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), OnAlloc, OnRead);
  if (rc != 0) {
    Fail(Status::IOError(std::string("cannot read: ") + uv_strerror(rc)));
    return;
  }
  if (!tls_context_) {
    secured_ = true;
    if (on_secured_) on_secured_(this);
    return;
  }
  // As the TLS server, the session waits for the first bytes (OnData).
  if (!dialled_) return;
  Status st = MakeTlsSession();
  if (!st.ok()) {
    Fail(st);
    return;
  }
  st = tls_->Handshake();  // the ClientHello
  WriteTlsOutput();
  if (!st.ok()) Fail(st);
}

Status PeerConnection::MakeTlsSession() {
  tls_ = std::make_unique<TlsSession>(tls_context_, dialled_ ? TlsRole::kClient : TlsRole::kServer);
  return tls_->Init();
}

void PeerConnection::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<PeerConnection*>(h->data);
  (void)self;
  *buf = uv_buf_init(read_buffer, kReadBufferBytes);
}

void PeerConnection::OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* self = static_cast<PeerConnection*>(s->data);
  if (self->closing_) {
    // Lingering after our last write: discard input until the peer closes too.
    if (n < 0) self->CloseHandles();
    return;
  }
  if (n < 0) {
    std::string where;
    if (self->tls_context_ && (!self->tls_ || !self->tls_->handshake_done())) {
      where =
          " during the TLS handshake (does the peer use TLS too? Both nodes need the same "
          "--security)";
    } else if (!self->node_id.empty()) {
      where = "";
    } else if (!self->tls_context_) {
      where =
          " before its Hello (does the peer require TLS? Both nodes need the same "
          "--security)";
    } else {
      where = " before its Hello";
    }
    if (n == UV_EOF) {
      if (self->decoder_.buffered() > 0) {
        self->Fail(Status::InvalidArgument("connection ended in the middle of a frame (" +
                                           std::to_string(self->decoder_.buffered()) +
                                           " bytes of an incomplete frame)"));
      } else {
        self->Fail(Status::Unavailable("the peer closed the connection" + where));
      }
    } else {
      self->Fail(Status::IOError(std::string("read failed") + where + ": " +
                                 uv_strerror(static_cast<int>(n))));
    }
    return;
  }
  if (n > 0) self->OnData(buf->base, static_cast<size_t>(n));
}

void PeerConnection::OnData(const char* data, size_t n) {
  if (!tls_context_) {
    if (!first_bytes_checked_) {
      first_bytes_checked_ = true;
      if (LooksLikeTlsHandshake(std::string_view(data, n))) {
        Fail(Status::InvalidArgument(
            "the peer speaks TLS but this node runs with --security none; both nodes need the "
            "same --security"));
        return;
      }
    }
    decoder_.Feed(std::string_view(data, n));
    DecodeFrames();
    return;
  }
  if (!tls_) {
    Status st = MakeTlsSession();
    if (!st.ok()) {
      Fail(st);
      return;
    }
  }
  tls_->Feed(std::string_view(data, n));
  if (!tls_->handshake_done()) {
    Status st = tls_->Handshake();
    WriteTlsOutput();
    if (closing_) return;
    if (!st.ok()) {
      refused_by_peer_ = tls_->peer_refused();
      Fail(st);
      return;
    }
    if (!tls_->handshake_done()) return;
    secured_ = true;
    if (on_secured_) on_secured_(this);
    if (closing_) return;
  }
  plaintext_.clear();
  Status st = tls_->Read(&plaintext_);
  if (!plaintext_.empty()) {
    decoder_.Feed(plaintext_);
    DecodeFrames();
  }
  if (closing_) return;
  WriteTlsOutput();
  if (!st.ok() && !closing_) {
    refused_by_peer_ = tls_->peer_refused();
    Fail(st);
  }
}

void PeerConnection::DecodeFrames() {
  while (!closing_ && decoder_.Next(&frame_)) {
    pb::PeerEnvelope env;
    if (!env.ParseFromString(frame_)) {
      Fail(Status::InvalidArgument("malformed frame: " + std::to_string(frame_.size()) +
                                   " bytes that do not parse as a PeerEnvelope"));
      return;
    }
    Status st = on_envelope_ ? on_envelope_(this, env) : Status::OK();
    if (!st.ok()) {
      Fail(st);
      return;
    }
  }
  if (!closing_ && !decoder_.status().ok()) {
    Fail(decoder_.status());
  } else if (!closing_ && node_id.empty() && decoder_.buffered() > kMaxBytesBeforeUp) {
    Fail(Status::InvalidArgument(
        "the peer sent more than " + std::to_string(kMaxBytesBeforeUp / 1024) +
        " KiB before its Hello and Welcome (limit before the link is up)"));
  }
}

void PeerConnection::Send(const pb::PeerEnvelope& env) {
  if (closing_ || !secured_) return;
  AppendFrame(env, &pending_);
  ScheduleFlush();
}

void PeerConnection::SendFrames(std::string_view frames) {
  if (closing_ || !secured_) return;
  pending_.append(frames.data(), frames.size());
  ScheduleFlush();
}

void PeerConnection::ScheduleFlush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  uv_prepare_start(&prepare_, OnPrepare);
}

void PeerConnection::OnPrepare(uv_prepare_t* p) { static_cast<PeerConnection*>(p->data)->Flush(); }

void PeerConnection::Flush() {
  if (flush_scheduled_) {
    flush_scheduled_ = false;
    uv_prepare_stop(&prepare_);
  }
  if (pending_.empty() || handles_closing_) return;
  if (!tls_context_) {
    std::string bytes = SpareBuffer();
    bytes.swap(pending_);  // pending_ keeps the spare's capacity for the next frames
    WriteRaw(std::move(bytes));
    return;
  }
  if (!tls_) {  // nothing is sent before the handshake (Send needs secured())
    pending_.clear();
    return;
  }
  Status st = tls_->Write(pending_);
  pending_.clear();
  WriteTlsOutput();
  if (!st.ok()) Fail(st);
}

void PeerConnection::WriteTlsOutput() {
  if (!tls_->has_output()) return;
  // The session gets the spare's capacity in exchange, so its next records are appended
  // without growing a buffer from nothing.
  std::string out = SpareBuffer();
  tls_->TakeOutput(&out);
  WriteRaw(std::move(out));
}

std::string PeerConnection::SpareBuffer() {
  if (spare_buffers_.empty()) return std::string();
  std::string buffer = std::move(spare_buffers_.back());
  spare_buffers_.pop_back();
  return buffer;
}

void PeerConnection::Recycle(std::string buffer) {
  if (buffer.capacity() > kMaxSpareCapacity || spare_buffers_.size() >= kMaxSpareBuffers) return;
  buffer.clear();
  spare_buffers_.push_back(std::move(buffer));
}

void PeerConnection::WriteRaw(std::string bytes) {
  if (handles_closing_ || bytes.empty()) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  size_t offset = 0;
  if (tcp_.write_queue_size == 0) {
    uv_buf_t buf = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
    int n = uv_try_write(stream, &buf, 1);
    if (n == static_cast<int>(bytes.size())) {
      Recycle(std::move(bytes));
      return;
    }
    if (n > 0) {
      offset = static_cast<size_t>(n);
    } else if (n != UV_EAGAIN) {
      Fail(Status::IOError(std::string("write failed: ") + uv_strerror(n)));
      return;
    }
  }
  // libuv keeps the buffer until the write completes; the request owns it (no copy, the
  // written prefix is skipped).
  auto* w = new WriteRequest;
  w->req.data = w;
  w->data = std::move(bytes);
  uv_buf_t buf =
      uv_buf_init(w->data.data() + offset, static_cast<unsigned>(w->data.size() - offset));
  int rc = uv_write(&w->req, stream, &buf, 1, OnWrite);
  if (rc != 0) {
    delete w;
    Fail(Status::IOError(std::string("write failed: ") + uv_strerror(rc)));
  }
}

void PeerConnection::OnWrite(uv_write_t* req, int status) {
  auto* w = static_cast<WriteRequest*>(req->data);
  auto* self = static_cast<PeerConnection*>(req->handle->data);
  self->Recycle(std::move(w->data));
  delete w;
  if (status != 0 && status != UV_ECANCELED && !self->closing_) {
    self->Fail(Status::IOError(std::string("write failed: ") + uv_strerror(status)));
  }
}

void PeerConnection::Established() { uv_timer_stop(&deadline_); }

void PeerConnection::OnDeadline(uv_timer_t* t) {
  auto* self = static_cast<PeerConnection*>(t->data);
  if (self->closing_) {
    self->CloseHandles();  // the linger time is over
    return;
  }
  std::string seconds = std::to_string(self->deadline_ms_ / 1000.0);
  seconds.erase(seconds.find_last_not_of('0') + 1);
  if (!seconds.empty() && seconds.back() == '.') seconds.pop_back();
  if (self->connecting_) {
    self->Fail(Status::TimedOut("TCP connect to " + self->remote_address_ +
                                " did not complete within " + seconds +
                                " s (is a firewall dropping packets to that port?)"));
  } else if (self->tls_context_ && (!self->tls_ || !self->tls_->handshake_done())) {
    self->Fail(Status::TimedOut("TLS handshake did not complete within " + seconds +
                                " s (is the peer a lockmesh node with the same --security?)"));
  } else {
    self->Fail(Status::TimedOut("the peer did not complete the Hello/Welcome exchange within " +
                                seconds + " s"));
  }
}

void PeerConnection::Fail(const Status& why) {
  if (closing_) return;
  // An alert the TLS session queued for the peer goes out before the close.
  if (tls_ && tls_->has_output() && !handles_closing_) {
    WriteTlsOutput();
    if (closing_) return;
  }
  Close(why, false);
}

void PeerConnection::Refuse(const std::string& reason, bool permanent) {
  if (closing_) return;
  pb::PeerEnvelope env;
  env.mutable_refusal()->set_reason(reason);
  env.mutable_refusal()->set_permanent(permanent);
  Send(env);
  Close(Status::PermissionDenied(reason), true);
}

void PeerConnection::Close(const Status& why, bool flush) {
  if (closing_) return;
  closing_ = true;
  close_reason_ = why;
  if (connecting_ || uv_is_active(reinterpret_cast<uv_handle_t*>(&tcp_)) == 0) {
    CloseHandles();
    return;
  }
  if (why.ok() || flush) Flush();
  if (tls_ && !handles_closing_) {
    tls_->Close();
    WriteTlsOutput();
  }
  if (handles_closing_) return;
  uv_timer_stop(&deadline_);
  uv_timer_start(&deadline_, OnDeadline, kLingerMs, 0);
  auto* req = new uv_shutdown_t;
  if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&tcp_),
                  [](uv_shutdown_t* r, int) { delete r; }) != 0) {
    delete req;
    CloseHandles();
  }
}

void PeerConnection::CloseHandles() {
  if (handles_closing_) return;
  handles_closing_ = true;
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), OnHandleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&deadline_), OnHandleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), OnHandleClosed);
}

void PeerConnection::OnHandleClosed(uv_handle_t* h) {
  auto* self = static_cast<PeerConnection*>(h->data);
  if (--self->open_handles_ > 0) return;
  ClosedHandler cb = std::move(self->on_closed_);
  if (cb) cb(self, self->close_reason_);
  delete self;
}

}  // namespace mesh::net
