// net/local/protocol: constants of the local client API shared by mesh::Client and the node.
#ifndef LOCKMESH_NET_LOCAL_PROTOCOL_H_
#define LOCKMESH_NET_LOCAL_PROTOCOL_H_

#include <cstdint>

namespace mesh::net {

/// Version of the ClientRequest/ClientResponse protocol; a node refuses other versions.
inline constexpr uint32_t kClientProtocolVersion = 1;

}  // namespace mesh::net

#endif  // LOCKMESH_NET_LOCAL_PROTOCOL_H_
