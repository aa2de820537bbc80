// net/peer/peer_hello.h: the message-only checks of a PeerHello.
#include "net/peer/peer_hello.h"

#include "core/hex.h"

namespace mesh::net {
namespace {

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > kMaxPeerNameBytes) return false;
  for (unsigned char c : s) {
    if (c < 0x21 || c > 0x7e) return false;  // printable ASCII, no spaces
  }
  return true;
}

}  // namespace

std::string Printable(std::string_view text, size_t max) {
  std::string out;
  size_t n = text.size() < max ? text.size() : max;
  for (size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      core::AppendHexByte(&out, c);
    }
  }
  if (text.size() > max) out += "...";
  return out;
}

HelloVerdict CheckHello(const pb::PeerHello& hello, const HelloIdentity& ours, std::string* reason,
                        bool* permanent) {
  *permanent = true;
  const std::string id = Printable(hello.node_id());
  if (hello.protocol_version() != ours.protocol_version) {
    *reason = "peer protocol version " + std::to_string(hello.protocol_version()) +
              " is not ours (" + std::to_string(ours.protocol_version) +
              "): run the same lockmesh version on every node";
    return HelloVerdict::kRefuse;
  }
  if (!ValidName(hello.node_id())) {
    *reason = "the Hello's node id '" + id + "' is not 1-" + std::to_string(kMaxPeerNameBytes) +
              " printable characters without spaces";
    return HelloVerdict::kRefuse;
  }
  if (hello.cluster() != ours.cluster) {
    *reason = "cluster names differ: node " + id + " belongs to cluster '" +
              Printable(hello.cluster()) + "', node " + ours.node_id + " to cluster '" +
              ours.cluster + "' (--cluster)";
    return HelloVerdict::kRefuse;
  }
  if (hello.node_id() == ours.node_id) {
    if (hello.incarnation() == ours.incarnation) return HelloVerdict::kSelf;
    *reason = "the peer claims this node's own id '" + id +
              "': two live nodes must not share an id (give one of them another --node-id)";
    return HelloVerdict::kRefuse;
  }
  *permanent = false;
  return HelloVerdict::kAccept;
}

}  // namespace mesh::net
