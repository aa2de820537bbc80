// libFuzzer target: the Hello checks a node runs on the first message of every peer
// connection (net/peer/peer_hello.h). The input is parsed as a PeerEnvelope (the frame body); a
// Hello inside is checked against a fixed identity. Nothing may crash; a refusal's reason
// must be printable (a hostile Hello must not be able to forge log lines) and bounded; a
// Hello is accepted only if its id is printable and its cluster and version are ours.
#include "net/peer/peer_hello.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "peer.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mesh::pb::PeerEnvelope env;
  if (!env.ParseFromArray(data, static_cast<int>(size)) || !env.has_hello()) {
    // Printable() on raw bytes must yield printable ASCII only.
    std::string p =
        mesh::net::Printable(std::string_view(reinterpret_cast<const char*>(data), size), 64);
    for (unsigned char c : p) {
      if (c < 0x20 || c >= 0x7f) abort();
    }
    return 0;
  }
  const mesh::pb::PeerHello& hello = env.hello();
  mesh::net::HelloIdentity ours{"lockmesh", "node-a", 42, 1};
  std::string reason;
  bool permanent = false;
  mesh::net::HelloVerdict v = mesh::net::CheckHello(hello, ours, &reason, &permanent);
  switch (v) {
    case mesh::net::HelloVerdict::kAccept:
      if (hello.cluster() != ours.cluster || hello.protocol_version() != 1 ||
          hello.node_id() == ours.node_id || hello.node_id().empty() ||
          hello.node_id().size() > mesh::net::kMaxPeerNameBytes) {
        abort();
      }
      for (unsigned char c : hello.node_id()) {
        if (c <= 0x20 || c >= 0x7f) abort();
      }
      break;
    case mesh::net::HelloVerdict::kSelf:
      if (hello.node_id() != ours.node_id || hello.incarnation() != ours.incarnation) abort();
      break;
    case mesh::net::HelloVerdict::kRefuse:
      if (reason.empty() || reason.size() > 2048) abort();
      for (unsigned char c : reason) {
        if (c < 0x20 || c >= 0x7f) abort();
      }
      break;
  }
  return 0;
}
