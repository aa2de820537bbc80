#include "net/mesh_claim.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "net/local_dir.h"

namespace mesh::net {
namespace {

constexpr size_t kMaxClaimBytes = 64 * 1024;

Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("cannot open " + dir + ": " + std::strerror(errno));
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return Status::IOError("cannot sync " + dir + ": " + std::strerror(err));
  return Status::OK();
}

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
    found.error = err == ELOOP ? "it is a symbolic link" : std::string(std::strerror(err));
    return found;
  }
  found.state = core::FoundClaim::State::kUnreadable;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    found.error = std::strerror(errno);
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
      found.error = std::strerror(errno);
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
  const std::string tmp = path + ".tmp";
  unlink(tmp.c_str());  // ours from a crash mid-write; if it is someone else's, O_EXCL fails
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError("cannot create " + tmp + ": " + std::strerror(errno));
  const std::string text = core::EncodeMeshClaim(claim);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      close(fd);
      unlink(tmp.c_str());
      return Status::IOError("cannot write " + tmp + ": " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    int err = errno;
    close(fd);
    unlink(tmp.c_str());
    return Status::IOError("cannot sync " + tmp + ": " + std::strerror(err));
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return Status::IOError("cannot rename " + tmp + " to " + path + ": " + std::strerror(err));
  }
  return SyncDir(DirPart(path));
}

Status RemoveMeshClaim(const std::string& path) {
  if (unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::OK();
    return Status::IOError("cannot remove " + path + ": " + std::strerror(errno));
  }
  return SyncDir(DirPart(path));
}

}  // namespace mesh::net
