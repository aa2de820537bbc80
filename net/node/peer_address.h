// net/node/peer_address: the address text a Cluster (net/node/cluster.h) reads from its options
// and its peers' links, and writes to beacons, join requests and the status: "host:port" or
// "[v6]:port" (core/host_port.h), an IPv4-mapped IPv6 host unmapped.
#ifndef LOCKMESH_NET_NODE_PEER_ADDRESS_H_
#define LOCKMESH_NET_NODE_PEER_ADDRESS_H_

#include <string>

namespace mesh::net {

// Splits "host:port" / "[v6]:port" into host (without brackets) and port text
// (core/host_port.h); both empty if `text` is malformed.
void SplitHostPortOrEmpty(const std::string& text, std::string* host, std::string* port);

// "::ffff:10.0.0.1" (an IPv4 peer on a dual-stack listener) -> "10.0.0.1"; any other host as
// it is.
std::string UnmappedHost(const std::string& host);

// The same for "host:port" / "[host]:port"; `address` as it is if it has no port.
std::string UnmappedAddress(const std::string& address);

// True for a host that names no address to reach: "", "0.0.0.0" or "::".
bool IsUnspecifiedHost(const std::string& host);

// This host's first global address: IPv4 if it has one, else IPv6; "" if none (loopback and
// link-local addresses are skipped).
std::string FirstGlobalAddress();

}  // namespace mesh::net

#endif  // LOCKMESH_NET_NODE_PEER_ADDRESS_H_
