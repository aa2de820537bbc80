// net/peer/peer_connection: one TCP connection between two nodes, with TLS unless --security none,
// carrying length-prefixed PeerEnvelope frames. Internal to net/peer/peer_transport.
//
// The connection knows bytes, TLS and frames; it does not know who is allowed in: it reports
// "secured" (TLS handshake done, or TCP connected in plaintext), each decoded envelope, and
// its close with a reason, and the transport decides (Hello checks, duplicates, tofu).
//
// Lifetime: created with new, it owns its libuv handles (TCP socket, a timer for the
// connect/handshake/Hello deadline, a prepare handle that flushes queued frames once per loop
// iteration) and deletes itself after the last close callback, having called `on_closed`
// exactly once. The owner keeps a raw pointer until then and must not call anything after
// Close() but the accessors.
//
// Memory (15,000 bare connections must not cost the node hundreds of MB): an
// accepted connection that has sent nothing holds its handles and a few strings, about
// 1 KB. The read buffer is one per thread, shared by every connection (libuv hands it back
// before the next read of any connection, and every byte is copied out of it at once); an
// accepted connection's TLS session (mbedTLS's record buffers, about 35 KB) is made when its
// first bytes arrive, not at accept.
//
// Hostile input (a bad TLS record, an oversized frame, bytes that do not parse as a
// PeerEnvelope) closes only this connection, with the reason.
//
// Threading: the loop's thread only.
#ifndef LOCKMESH_NET_PEER_PEER_CONNECTION_H_
#define LOCKMESH_NET_PEER_PEER_CONNECTION_H_

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mesh/status.h"
#include "net/support/frame.h"
#include "net/tls/tls_session.h"
#include "peer.pb.h"

namespace mesh::net {

class PeerConnection {
 public:
  /// Called once the channel is secured (TLS handshake done, or TCP connected with no TLS).
  using SecuredHandler = std::function<void(PeerConnection* conn)>;
  /// Called with each envelope received. A non-ok Status closes the connection with it.
  using EnvelopeHandler = std::function<Status(PeerConnection* conn, pb::PeerEnvelope& env)>;
  /// Called once, from the close callback, with the reason (ok for a local Close(OK)).
  /// `refused_by_peer` is true if the peer ended it with a TLS alert.
  using ClosedHandler = std::function<void(PeerConnection* conn, const Status& why)>;

  /// A connection on `loop`. `tls` is null for --security none. `dialled` says whether we
  /// dial (TLS client) or accepted (TLS server). `deadline_ms` bounds connect + handshake +
  /// the transport's Hello exchange (the transport calls Established() to stop it).
  PeerConnection(uv_loop_t* loop, std::shared_ptr<const TlsContext> tls, bool dialled,
                 uint32_t max_frame_bytes, uint64_t deadline_ms);
  PeerConnection(const PeerConnection&) = delete;
  PeerConnection& operator=(const PeerConnection&) = delete;

  void SetHandlers(SecuredHandler on_secured, EnvelopeHandler on_envelope, ClosedHandler on_closed);

  /// For an accepted connection: uv_accept from `server` and learn the peer's address
  /// (remote_address, source_key). Reads nothing yet: the owner decides whether to keep it
  /// (StartAccepted) or to Close it. On failure it closes itself (on_closed follows).
  Status Accept(uv_stream_t* server);
  /// After Accept: arms the deadline and starts reading (the handshake as TLS server, once
  /// the first bytes arrive).
  void StartAccepted();
  /// For a dialled connection: connect to `addr`, then start (handshake as client).
  /// `address` is the text shown in logs. Failures arrive through on_closed.
  void Connect(const sockaddr* addr, const std::string& address);

  /// Queues `env` as one frame. Frames queued in one loop iteration leave together, in one
  /// TLS write and one socket write (the prepare handle flushes them before libuv polls).
  /// Ignored before secured() and once closing.
  void Send(const pb::PeerEnvelope& env);
  /// Queues pre-encoded frames (AppendFrame output), e.g. for benchmarks. Same rules.
  void SendFrames(std::string_view frames);

  /// Writes the frames queued so far now instead of before the next poll (a leader sends
  /// its appends this way before its fsync blocks the loop).
  void FlushNow() { Flush(); }

  /// Stops the deadline: the transport accepted the peer's Hello.
  void Established();

  /// Closes the connection: pending frames (and, with TLS, a close_notify) are written
  /// first when `why` is ok or `flush` is true, then the socket is shut down and closed.
  /// on_closed runs later with `why`. Idempotent.
  void Close(const Status& why, bool flush);
  /// Sends a PeerRefusal with `reason` and closes (flushing it first). on_closed gets
  /// PermissionDenied(reason).
  void Refuse(const std::string& reason, bool permanent);

  bool secured() const { return secured_; }
  bool closing() const { return closing_; }
  bool dialled() const { return dialled_; }
  /// "ip:port" of the other end ("" until known).
  const std::string& remote_address() const { return remote_address_; }
  /// Accepted connections: the peer's address as core::ConnectionSourceKey ("" otherwise).
  const std::string& source_key() const { return source_key_; }
  /// The TLS session (null with --security none, and on an accepted connection until its
  /// first bytes arrive). Valid until on_closed returns.
  const TlsSession* tls() const { return tls_.get(); }
  /// True if the failure came from the peer (a TLS alert it sent, or a PeerRefusal the
  /// transport recorded with MarkRefusedByPeer).
  bool refused_by_peer() const { return refused_by_peer_; }
  void MarkRefusedByPeer() { refused_by_peer_ = true; }
  /// Bytes written to libuv but not yet to the kernel (backpressure signal).
  size_t write_queue_bytes() const { return tcp_.write_queue_size; }

  /// True once the TCP connection exists (accepted, or the connect completed).
  bool connected() const { return began_; }

  // Slots for the owner (net/peer/peer_transport.cc); the connection never reads them.
  /// The node id, once the link is up (both Hellos accepted; "" before).
  std::string node_id;
  /// From the peer's Hello (accepted or not).
  std::string claimed_id;
  std::string listen_address;
  uint64_t incarnation = 0;
  /// We accepted the peer's Hello (and sent our Welcome).
  bool hello_accepted = false;
  /// We received the peer's Welcome (it accepted our Hello).
  bool welcomed = false;
  /// The transport already reported this connection's refusal (don't report it twice).
  bool refusal_reported = false;
  /// The refusal said retrying cannot help (redial at the longest backoff).
  bool permanent_refusal = false;
  /// Counted as pending in the transport's core::ConnectionLimits (released once).
  bool pending_counted = false;

 private:
  ~PeerConnection() = default;  // only from the last close callback
  void Begin();
  // Creates and initialises tls_ (client or server as dialled_).
  Status MakeTlsSession();
  void OnData(const char* data, size_t n);
  void DecodeFrames();
  void ScheduleFlush();
  void Flush();
  // Writes whatever ciphertext the TLS session produced (handshake, records, alerts).
  void WriteTlsOutput();
  // Writes `bytes` now if the socket takes them, else hands the buffer to libuv. Either
  // way the buffer comes back to Recycle once written.
  void WriteRaw(std::string bytes);
  // An empty buffer, with capacity if one was recycled.
  std::string SpareBuffer();
  // Keeps a written buffer's memory for the next TLS output or socket write.
  void Recycle(std::string buffer);
  void Fail(const Status& why);
  void CloseHandles();
  static void OnConnect(uv_connect_t* req, int status);
  static void OnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void OnWrite(uv_write_t* req, int status);
  static void OnDeadline(uv_timer_t* t);
  static void OnPrepare(uv_prepare_t* p);
  static void OnHandleClosed(uv_handle_t* h);

  uv_loop_t* loop_;
  std::shared_ptr<const TlsContext> tls_context_;
  std::unique_ptr<TlsSession> tls_;
  bool dialled_;
  uint64_t deadline_ms_;
  uv_tcp_t tcp_;
  uv_timer_t deadline_;
  uv_prepare_t prepare_;
  uv_connect_t connect_req_;
  int open_handles_ = 0;
  bool connecting_ = false;
  bool began_ = false;
  bool secured_ = false;
  bool closing_ = false;
  bool handles_closing_ = false;
  bool flush_scheduled_ = false;
  bool refused_by_peer_ = false;
  bool first_bytes_checked_ = false;
  std::string remote_address_;
  std::string source_key_;
  FrameDecoder decoder_;
  std::string pending_;  // plaintext frames not yet handed to TLS / the socket
  // Written buffers kept for reuse. A bulk sender's TLS output is 64 KiB or more per loop
  // iteration; growing a new buffer and freeing it after the write made glibc give the
  // heap top back to the kernel (brk) and fault it in again every iteration, each trim a
  // TLB shootdown on the other CPU: a third of the bulk benchmark's CPU time.
  std::vector<std::string> spare_buffers_;
  std::string plaintext_;  // scratch for TLS input
  std::string frame_;      // scratch for one frame body
  Status close_reason_;
  SecuredHandler on_secured_;
  EnvelopeHandler on_envelope_;
  ClosedHandler on_closed_;
};

}  // namespace mesh::net

#endif  // LOCKMESH_NET_PEER_PEER_CONNECTION_H_
