// libFuzzer target: the local client API decoder a node runs on every byte a client sends.
// Bytes go through FrameDecoder in arbitrary chunks (the first input byte picks the chunk
// size); every whole frame is parsed as a ClientRequest, and lock requests' resource names
// and modes are validated as the node does. Nothing here may crash, hang or leak; an
// oversized length must stop the decoder without buffering the announced size.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/resource_name.h"
#include "lockmesh.pb.h"
#include "net/support/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t chunk = 1 + data[0] % 64;
  mesh::net::FrameDecoder decoder(mesh::net::kMaxClientFrameBytes);
  std::string body;
  for (size_t at = 1; at < size; at += chunk) {
    size_t n = std::min(chunk, size - at);
    decoder.Feed(std::string_view(reinterpret_cast<const char*>(data + at), n));
    while (decoder.Next(&body)) {
      mesh::pb::ClientRequest req;
      if (!req.ParseFromString(body)) continue;
      if (req.has_lock()) {
        mesh::core::ResourceName name;
        (void)mesh::core::ParseResourceName(req.lock().resource(), &name);
        (void)mesh::pb::LockMode_IsValid(req.lock().mode());
      }
      // Re-encoding what parsed must give a frame the decoder accepts again.
      std::string again;
      mesh::net::AppendFrame(req, &again);
      mesh::net::FrameDecoder second(1u << 30);
      second.Feed(again);
      std::string out;
      if (!second.Next(&out)) __builtin_trap();
    }
    if (!decoder.status().ok()) {
      if (decoder.buffered() != 0) __builtin_trap();  // nothing kept after an error
      break;
    }
  }
  return 0;
}
