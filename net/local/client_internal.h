// net/local/client_internal: private to net/local/client.cc and net/local/async_client.cc
// (not installed). What the connection state machine (async_client.cc) takes from the rest of
// the client (client.cc): the node's credential check and the translation of the node's
// answers into the public types of mesh/client.h.
//
// Pure functions of their arguments; CheckNodeCredentials reads the socket's peer
// credentials (getsockopt) and the environment.
#ifndef LOCKMESH_NET_LOCAL_CLIENT_INTERNAL_H_
#define LOCKMESH_NET_LOCAL_CLIENT_INTERNAL_H_

#include <uv.h>

#include "lockmesh.pb.h"
#include "mesh/client.h"
#include "mesh/status.h"

namespace mesh::net {

/// Ok if the node at the other end of the connected `pipe` runs as a uid this client trusts
/// (ClientOptions::trusted_node_uids); PermissionDenied saying which uid it runs as, or
/// IOError if that cannot be read.
Status CheckNodeCredentials(uv_pipe_t* pipe, const ClientOptions& options);

/// The Status callers see for the node's answer `r` (ok for GRANTED, RELEASED, CANCELLED).
Status StatusFromResult(const pb::CommandResult& r);

/// The public form of the node's status answer.
NodeStatus NodeStatusFromReply(const pb::StatusReply& reply);

/// The public form of one row of the node's lock listing.
LockInfo LockInfoFromReply(const pb::LockInfo& row);

}  // namespace mesh::net

#endif  // LOCKMESH_NET_LOCAL_CLIENT_INTERNAL_H_
