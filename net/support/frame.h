// net/support/frame: length-prefixed frames on a byte stream.
//
// A frame is a 4-byte big-endian length followed by that many bytes of an encoded protobuf
// message. FrameDecoder is fed whatever bytes arrived and yields whole frames; a length
// above the limit is an error that must close the connection (it is never buffered).
// Pure logic (no I/O), so the fuzzer drives it directly. Thread-compatible.
#ifndef LOCKMESH_NET_SUPPORT_FRAME_H_
#define LOCKMESH_NET_SUPPORT_FRAME_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "mesh/status.h"

namespace google::protobuf {
class MessageLite;
}

namespace mesh::net {

/// Largest frame body accepted on the local client API.
inline constexpr uint32_t kMaxClientFrameBytes = 64 * 1024;
inline constexpr size_t kFrameHeaderBytes = 4;

/// Appends a frame holding `message` to `out`.
void AppendFrame(const google::protobuf::MessageLite& message, std::string* out);

class FrameDecoder {
 public:
  explicit FrameDecoder(uint32_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {}

  /// Adds received bytes. After an error (oversized frame) further input is ignored.
  void Feed(std::string_view bytes) {
    if (status_.ok()) buffer_.append(bytes.data(), bytes.size());
  }
  /// Sets `body` to the next whole frame and returns true, or returns false if none is
  /// complete yet or the stream is bad (see status()).
  bool Next(std::string* body);
  /// Not ok once a frame header announced more than the limit.
  const Status& status() const { return status_; }
  /// Bytes buffered but not yet returned.
  size_t buffered() const { return buffer_.size() - offset_; }

 private:
  uint32_t max_frame_bytes_;
  std::string buffer_;
  size_t offset_ = 0;
  Status status_;
};

}  // namespace mesh::net

#endif  // LOCKMESH_NET_SUPPORT_FRAME_H_
