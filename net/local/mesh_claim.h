// net/local/mesh_claim: the files of "one authority per host" (core/mesh_claim.h has the rule).
//
// A mesh node's claim lives at `<data_dir>/mesh-claim` and at `<socket>.mesh-claim` (in the
// socket's directory). Written atomically (a new file opened O_EXCL|O_NOFOLLOW, fsync,
// rename, fsync of the directory); read with O_NOFOLLOW, and only if it is a regular file
// owned by us (or root). Plain functions; thread-safe.
#ifndef LOCKMESH_NET_LOCAL_MESH_CLAIM_H_
#define LOCKMESH_NET_LOCAL_MESH_CLAIM_H_

#include <string>
#include <vector>

#include "core/mesh_claim.h"
#include "mesh/status.h"

namespace mesh::net {

/// `<socket>.mesh-claim` and `<data_dir>/mesh-claim`.
std::string SocketClaimPath(const std::string& socket);
std::string DataDirClaimPath(const std::string& data_dir);

/// Reads one claim file. Never fails: absent, valid, or unreadable with the reason (a
/// symlink, another owner, a damaged or truncated file, an I/O error).
core::FoundClaim ReadMeshClaim(const std::string& path);

/// Both claims of a node serving `socket` with `data_dir`.
std::vector<core::FoundClaim> ReadMeshClaims(const std::string& socket,
                                             const std::string& data_dir);

/// Writes `claim` to `path` atomically and durably (see above).
Status WriteMeshClaim(const std::string& path, const core::MeshClaim& claim);

/// Removes the claim at `path` (ok if there is none) and syncs its directory.
Status RemoveMeshClaim(const std::string& path);

}  // namespace mesh::net

#endif  // LOCKMESH_NET_LOCAL_MESH_CLAIM_H_
