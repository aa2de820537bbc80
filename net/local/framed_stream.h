// net/local/framed_stream: one libuv stream (UNIX socket) carrying length-prefixed protobuf frames.
//
// Used by both ends of the local client API. The object owns its uv_pipe_t and deletes
// itself once libuv has closed the handle (libuv handles are freed only in their close
// callback): after Close(), or after the peer hangs up or sends a bad frame, `on_close`
// runs exactly once and then the object is gone. Owners keep a raw pointer until then.
//
// Threading: everything runs on the loop's thread.
#ifndef LOCKMESH_NET_LOCAL_FRAMED_STREAM_H_
#define LOCKMESH_NET_LOCAL_FRAMED_STREAM_H_

#include <uv.h>

#include <functional>
#include <string>
#include <string_view>

#include "mesh/status.h"
#include "net/support/frame.h"

namespace google::protobuf {
class MessageLite;
}

namespace mesh::net {

class FramedStream {
 public:
  /// Called with each whole frame body. Returning a non-ok Status closes the stream with
  /// that reason (a malformed message).
  using FrameHandler = std::function<Status(std::string_view body)>;
  /// Called once when the stream is closed, with the reason (ok for a local Close()).
  using CloseHandler = std::function<void(const Status& why)>;

  /// Creates an unconnected stream on `loop`.
  FramedStream(uv_loop_t* loop, uint32_t max_frame_bytes);
  FramedStream(const FramedStream&) = delete;
  FramedStream& operator=(const FramedStream&) = delete;

  /// The pipe handle, for uv_accept / uv_pipe_connect before Start().
  uv_pipe_t* pipe() { return &pipe_; }

  /// Starts reading. Handlers are kept until on_close has run.
  void Start(FrameHandler on_frame, CloseHandler on_close);
  /// Sets the close handler before Start (e.g. while connecting), so that the owner hears
  /// of a close that happens before reading ever starts.
  void SetCloseHandler(CloseHandler on_close) { on_close_ = std::move(on_close); }

  /// Queues `message` as one frame. Ignored once closing.
  void Send(const google::protobuf::MessageLite& message);

  /// While corked, Send only appends to a buffer; Uncork writes the buffer with one write.
  /// The node corks every connection it answers while it applies a batch of log entries,
  /// so a client gets all its answers of that batch in one write (one wake-up, not several).
  void Cork() { corked_ = true; }
  void Uncork();
  bool corked() const { return corked_; }

  /// Closes the stream; `on_close` runs later (from libuv's close callback) with `why`.
  /// With an ok `why` (a local close) frames already queued are written first.
  void Close(const Status& why);

  bool closing() const { return closing_; }
  /// Bytes queued in libuv but not yet written.
  size_t write_queue_size() const { return pipe_.write_queue_size; }

 private:
  ~FramedStream() = default;  // only via the close callback
  static void OnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void OnWrite(uv_write_t* req, int status);
  static void OnClosed(uv_handle_t* h);
  // Writes `bytes` now if the socket takes them, else queues the rest in libuv.
  void Write(std::string bytes);

  uv_pipe_t pipe_;
  FrameDecoder decoder_;
  FrameHandler on_frame_;
  CloseHandler on_close_;
  Status close_reason_;
  bool closing_ = false;
  bool initialized_ = false;
  bool corked_ = false;
  std::string corked_bytes_;
  char read_buffer_[64 * 1024];
  std::string frame_body_;
};

}  // namespace mesh::net

#endif  // LOCKMESH_NET_LOCAL_FRAMED_STREAM_H_
