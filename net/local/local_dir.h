// net/local/local_dir: the node's local boundary (docs/mesh.md "The local boundary") — the socket
// directory must belong to us, and the files we open in it must be ours and never symlinks.
//
// Used by the node (net/node/node.cc) and by the CLI's auto-start (apps/lockmesh/autostart.cc).
// Plain functions; thread-safe (they touch only the file system and their arguments).
#ifndef LOCKMESH_NET_LOCAL_LOCAL_DIR_H_
#define LOCKMESH_NET_LOCAL_LOCAL_DIR_H_

#include <sys/types.h>

#include <string>

#include "mesh/status.h"

namespace mesh::net {

/// Opens the directory `dir` that holds a node's socket, creating it (mode 0700, or 0750 and
/// group `gid` when gid >= 0) if it is missing, and checks it twice — with lstat on the path
/// and with fstat on the opened descriptor (O_DIRECTORY|O_NOFOLLOW), which must be the same
/// directory. Accepted: a directory (not a symlink) owned by this process's euid or by root
/// that neither group nor others can write, or a root-owned sticky directory such as /tmp
/// (where every file opened with OpenOwnFile must then still be ours). Anything else is
/// PermissionDenied naming the directory, its owner and mode, and what to do.
/// On success `*dir_fd` is the open descriptor (O_CLOEXEC), owned by the caller.
Status OpenSocketDirectory(const std::string& dir, gid_t gid, int* dir_fd);

/// Opens (creating with mode 0600 when `create`) the file `name` inside the directory
/// `dir_fd` with O_NOFOLLOW|O_CLOEXEC and `flags` (O_RDWR, O_RDONLY...), and checks that it
/// is a regular file owned by this process's euid (or root). `shown` is the path used in
/// error messages. A symlink is refused (ELOOP) and never followed. NotFound if it does not
/// exist and !create.
Status OpenOwnFile(int dir_fd, const std::string& name, int flags, bool create,
                   const std::string& shown, int* fd);

/// "uid 65534 (nobody)".
std::string DescribeUid(uid_t uid);

}  // namespace mesh::net

#endif  // LOCKMESH_NET_LOCAL_LOCAL_DIR_H_
