#include "net/support/errno_text.h"

#include <errno.h>
#include <string.h>

#include "core/storage/file_system.h"

namespace mesh::net {

std::string ErrnoText(int err) {
  char buf[256];
  // GNU strerror_r: returns the message (possibly a static string, not `buf`).
  return std::string(strerror_r(err, buf, sizeof(buf)));
}

std::string ErrnoMessage(const std::string& what, int err) { return what + ": " + ErrnoText(err); }

Status ErrnoStatus(const std::string& what, int err) {
  if (err == ENOSPC) return core::NoSpaceError(what);
  if (err == EDQUOT) return core::NoSpaceError(what + " (disk quota exceeded)");
  if (err == ENOENT) return Status::NotFound(ErrnoMessage(what, err));
  return Status::IOError(ErrnoMessage(what, err));
}

}  // namespace mesh::net
