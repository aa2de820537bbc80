#include "net/local/mesh_claim.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "core/path_text.h"
#include "net/local/local_dir.h"
#include "net/support/errno_text.h"
#include "net/support/posix_file_system.h"

namespace mesh::net {
namespace {

constexpr size_t kMaxClaimBytes = 64 * 1024;

}  // namespace

std::string SocketClaimPath(const std::string& socket) { return socket + ".mesh-claim"; }

std::string DataDirClaimPath(const std::string& data_dir) { return data_dir + "/mesh-claim"; }

core::FoundClaim ReadMeshClaim(const std::string& path) {
  core::FoundClaim found;
  found.path = path;
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return found;  // kAbsent
    found.state = core::FoundClaim::State::kUnreadable;
    found.error = err == ELOOP ? "it is a symbolic link" : ErrnoText(err);
    return found;
  }
  found.state = core::FoundClaim::State::kUnreadable;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    found.error = ErrnoText(errno);
  } else if (!S_ISREG(st.st_mode)) {
    found.error = "it is not a regular file";
  } else if (st.st_uid != geteuid() && st.st_uid != 0) {
    found.error = "it is owned by " + DescribeUid(st.st_uid) + ", not by you";
  } else if (static_cast<size_t>(st.st_size) > kMaxClaimBytes) {
    found.error = "it is " + std::to_string(st.st_size) + " bytes long";
  } else {
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0 && text.size() <= kMaxClaimBytes)
      text.append(buf, n);
    if (n < 0) {
      found.error = ErrnoText(errno);
    } else {
      Status st2 = core::DecodeMeshClaim(text, &found.claim);
      if (st2.ok()) {
        found.state = core::FoundClaim::State::kValid;
      } else {
        found.error = st2.message();
      }
    }
  }
  close(fd);
  return found;
}

std::vector<core::FoundClaim> ReadMeshClaims(const std::string& socket,
                                             const std::string& data_dir) {
  std::vector<core::FoundClaim> out;
  out.push_back(ReadMeshClaim(SocketClaimPath(socket)));
  if (!data_dir.empty()) out.push_back(ReadMeshClaim(DataDirClaimPath(data_dir)));
  return out;
}

Status WriteMeshClaim(const std::string& path, const core::MeshClaim& claim) {
  // Written under the node's locks (<socket>.lock, <data_dir>/node.lock): one writer.
  return PosixFileSystem()->WriteFileAtomic(path, core::EncodeMeshClaim(claim));
}

Status RemoveMeshClaim(const std::string& path) {
  if (unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::OK();
    return Status::IOError(ErrnoMessage("cannot remove " + path, errno));
  }
  return PosixFileSystem()->SyncDir(core::DirName(path));
}

}  // namespace mesh::net
