#include "net/local/framed_stream.h"

#include <google/protobuf/message_lite.h>

#include <cstring>
#include <memory>

#include "net/support/sigpipe.h"

namespace mesh::net {
namespace {

// A uv_write request that owns the bytes it writes.
struct WriteRequest {
  uv_write_t req;
  std::string data;
};

}  // namespace

FramedStream::FramedStream(uv_loop_t* loop, uint32_t max_frame_bytes) : decoder_(max_frame_bytes) {
  IgnoreSigpipe();  // a client hanging up mid-write must not end the process
  uv_pipe_init(loop, &pipe_, 0);
  pipe_.data = this;
  initialized_ = true;
}

void FramedStream::Start(FrameHandler on_frame, CloseHandler on_close) {
  on_frame_ = std::move(on_frame);
  on_close_ = std::move(on_close);
  int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&pipe_), OnAlloc, OnRead);
  if (rc != 0) Close(Status::IOError(std::string("cannot read: ") + uv_strerror(rc)));
}

void FramedStream::Send(const google::protobuf::MessageLite& message) {
  if (closing_) return;
  if (corked_) {
    AppendFrame(message, &corked_bytes_);
    return;
  }
  std::string bytes;
  AppendFrame(message, &bytes);
  Write(std::move(bytes));
}

void FramedStream::Uncork() {
  corked_ = false;
  if (corked_bytes_.empty() || closing_) return;
  std::string bytes;
  bytes.swap(corked_bytes_);
  Write(std::move(bytes));
}

void FramedStream::Write(std::string bytes) {
  auto* stream = reinterpret_cast<uv_stream_t*>(&pipe_);
  size_t offset = 0;
  if (pipe_.write_queue_size == 0) {
    uv_buf_t buf = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
    int n = uv_try_write(stream, &buf, 1);
    if (n == static_cast<int>(bytes.size())) return;
    if (n > 0) {
      offset = static_cast<size_t>(n);
    } else if (n != UV_EAGAIN) {
      Close(Status::IOError(std::string("write failed: ") + uv_strerror(n)));
      return;
    }
  }
  auto* w = new WriteRequest;
  w->req.data = w;
  w->data.assign(bytes, offset, std::string::npos);
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, stream, &buf, 1, OnWrite);
  if (rc != 0) {
    delete w;
    Close(Status::IOError(std::string("write failed: ") + uv_strerror(rc)));
  }
}

void FramedStream::Close(const Status& why) {
  if (closing_) return;
  if (why.ok() && !corked_bytes_.empty()) {
    Uncork();
    if (closing_) return;  // the write failed and closed the stream already
  }
  closing_ = true;
  close_reason_ = why;
  if (why.ok() && pipe_.write_queue_size > 0) {
    // A local close: let queued frames (e.g. a final unlock) reach the peer first.
    auto* req = new uv_shutdown_t;
    req->data = this;
    int rc = uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&pipe_), [](uv_shutdown_t* r, int) {
      auto* self = static_cast<FramedStream*>(r->data);
      delete r;
      uv_close(reinterpret_cast<uv_handle_t*>(&self->pipe_), OnClosed);
    });
    if (rc == 0) return;
    delete req;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), OnClosed);
}

void FramedStream::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<FramedStream*>(h->data);
  *buf = uv_buf_init(self->read_buffer_, sizeof self->read_buffer_);
}

void FramedStream::OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* self = static_cast<FramedStream*>(s->data);
  if (n < 0) {
    if (n == UV_EOF && self->decoder_.buffered() > 0) {
      // The peer hung up in the middle of a frame: a broken client, worth a log line.
      self->Close(Status::InvalidArgument("connection ended in the middle of a frame (" +
                                          std::to_string(self->decoder_.buffered()) +
                                          " bytes of an incomplete frame)"));
      return;
    }
    self->Close(n == UV_EOF ? Status::Unavailable("peer closed the connection")
                            : Status::IOError(std::string("read failed: ") + uv_strerror(n)));
    return;
  }
  if (n == 0 || self->closing_) return;
  self->decoder_.Feed(std::string_view(buf->base, static_cast<size_t>(n)));
  while (!self->closing_ && self->decoder_.Next(&self->frame_body_)) {
    Status st = self->on_frame_(self->frame_body_);
    if (!st.ok()) {
      self->Close(st);
      return;
    }
  }
  if (!self->decoder_.status().ok()) self->Close(self->decoder_.status());
}

void FramedStream::OnWrite(uv_write_t* req, int status) {
  auto* w = static_cast<WriteRequest*>(req->data);
  auto* self = static_cast<FramedStream*>(req->handle->data);
  delete w;
  if (status != 0 && status != UV_ECANCELED) {
    self->Close(Status::IOError(std::string("write failed: ") + uv_strerror(status)));
  }
}

void FramedStream::OnClosed(uv_handle_t* h) {
  auto* self = static_cast<FramedStream*>(h->data);
  CloseHandler cb = std::move(self->on_close_);
  Status why = self->close_reason_;
  delete self;
  if (cb) cb(why);
}

}  // namespace mesh::net
