// net/peer/peer_hello: the checks of a peer's Hello that depend on nothing but the message and
// our own identity (protocol version, cluster name, node id syntax, our own id). Pure logic,
// so that the fuzzer (tests/fuzz/peer_hello.cc) drives exactly what the transport runs; the
// checks that need the connection (certificate CN, tofu fingerprint, duplicates) stay in
// net/peer/peer_transport.cc. Thread-compatible.
#ifndef LOCKMESH_NET_PEER_PEER_HELLO_H_
#define LOCKMESH_NET_PEER_PEER_HELLO_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "peer.pb.h"

namespace mesh::net {

/// Longest node id and cluster name accepted in a Hello.
inline constexpr size_t kMaxPeerNameBytes = 128;

/// Who we are, for CheckHello.
struct HelloIdentity {
  std::string cluster;
  std::string node_id;
  uint64_t incarnation = 0;
  uint32_t protocol_version = 0;
};

/// What to do with a Hello.
enum class HelloVerdict {
  kAccept,  // go on with the connection-dependent checks
  kSelf,    // our own Hello came back (we dialled ourselves): hang up quietly
  kRefuse,  // refuse with `reason`
};

/// Checks `hello` against `ours`. On kRefuse, `*reason` says why in words (any text taken
/// from the message is made printable, so a hostile Hello cannot forge log lines) and
/// `*permanent` whether retrying can help.
HelloVerdict CheckHello(const pb::PeerHello& hello, const HelloIdentity& ours, std::string* reason,
                        bool* permanent);

/// `text` with every byte outside printable ASCII shown as \xNN, cut to `max` bytes (with
/// "..." appended when cut). For putting peer-supplied text into logs and messages.
std::string Printable(std::string_view text, size_t max = kMaxPeerNameBytes);

}  // namespace mesh::net

#endif  // LOCKMESH_NET_PEER_PEER_HELLO_H_
