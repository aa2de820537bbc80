#include "net/support/frame.h"

#include <google/protobuf/message_lite.h>

namespace mesh::net {

void AppendFrame(const google::protobuf::MessageLite& message, std::string* out) {
  size_t size = message.ByteSizeLong();
  char header[kFrameHeaderBytes] = {static_cast<char>((size >> 24) & 0xff),
                                    static_cast<char>((size >> 16) & 0xff),
                                    static_cast<char>((size >> 8) & 0xff),
                                    static_cast<char>(size & 0xff)};
  out->append(header, kFrameHeaderBytes);
  size_t at = out->size();
  out->resize(at + size);
  message.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(out->data() + at));
}

bool FrameDecoder::Next(std::string* body) {
  if (!status_.ok()) return false;
  if (buffered() < kFrameHeaderBytes) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data() + offset_);
  uint32_t length = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
  if (length > max_frame_bytes_) {
    status_ = Status::InvalidArgument("frame of " + std::to_string(length) +
                                      " bytes exceeds the limit of " +
                                      std::to_string(max_frame_bytes_));
    buffer_.clear();
    offset_ = 0;
    return false;
  }
  if (buffered() < kFrameHeaderBytes + length) return false;
  body->assign(buffer_.data() + offset_ + kFrameHeaderBytes, length);
  offset_ += kFrameHeaderBytes + length;
  // Compact once the consumed prefix dominates, so the buffer does not grow forever.
  if (offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  } else if (offset_ > 4096 && offset_ * 2 > buffer_.size()) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  return true;
}

}  // namespace mesh::net
