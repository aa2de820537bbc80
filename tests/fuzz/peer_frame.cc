// libFuzzer target: what a node runs on every plaintext byte a peer sends (after TLS, or
// straight from TCP with --security none). Bytes go through FrameDecoder with the peer limit
// scaled down (so that the limit is reachable) in arbitrary chunks (the first input byte
// picks the chunk size); every whole frame is parsed as a PeerEnvelope, as
// net/peer/peer_connection.cc does. Nothing may crash, hang or leak; an oversized length must stop
// the decoder without buffering the announced size; whatever parsed must re-encode to a
// frame that decodes to the same envelope.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "net/support/frame.h"
#include "peer.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  constexpr uint32_t kLimit = 4096;
  size_t chunk = 1 + data[0] % 64;
  mesh::net::FrameDecoder decoder(kLimit);
  std::string body;
  for (size_t at = 1; at < size; at += chunk) {
    size_t n = std::min(chunk, size - at);
    decoder.Feed(std::string_view(reinterpret_cast<const char*>(data + at), n));
    while (decoder.Next(&body)) {
      if (body.size() > kLimit) abort();
      mesh::pb::PeerEnvelope env;
      if (!env.ParseFromString(body)) continue;
      std::string frame;
      mesh::net::AppendFrame(env, &frame);
      mesh::net::FrameDecoder again(1u << 30);
      again.Feed(frame);
      std::string back;
      if (!again.Next(&back)) abort();
      mesh::pb::PeerEnvelope env2;
      if (!env2.ParseFromString(back) || env2.SerializeAsString() != env.SerializeAsString()) {
        abort();
      }
    }
    // Never more buffered than one frame in progress plus the last chunk.
    if (decoder.buffered() > mesh::net::kFrameHeaderBytes + kLimit + chunk) abort();
    if (!decoder.status().ok()) break;
  }
  return 0;
}
