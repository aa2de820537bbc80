#include "net/local/local_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "core/path_text.h"
#include "net/support/errno_text.h"
#include "net/support/posix_file_system.h"

namespace mesh::net {
namespace {

std::string Octal(mode_t mode) {
  char buf[8];
  snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// The rule on one stat of the socket directory; "" = acceptable, else why not.
std::string Judge(const struct stat& st) {
  if (S_ISLNK(st.st_mode)) return "is a symbolic link";
  if (!S_ISDIR(st.st_mode)) return "is not a directory";
  const uid_t me = geteuid();
  const bool sticky_root = st.st_uid == 0 && (st.st_mode & S_ISVTX);
  if (st.st_uid != me && st.st_uid != 0) {
    return "is owned by " + DescribeUid(st.st_uid) + " (mode " + Octal(st.st_mode) +
           "), not by you (" + DescribeUid(me) + ")";
  }
  if ((st.st_mode & 022) != 0 && !sticky_root) {
    return "has mode " + Octal(st.st_mode) + " (owner " + DescribeUid(st.st_uid) +
           "): group or others can write to it";
  }
  return "";
}

Status Refuse(const std::string& dir, const std::string& why) {
  return Status::PermissionDenied(
      "refusing the socket directory " + dir + ": it " + why +
      ". Another user could replace the socket or read what clients send. A node serves only "
      "from a directory it owns that group and others cannot write (it creates one with mode "
      "0700, or 0750 with --socket-group); remove " +
      dir +
      " (or chmod go-w it if it is "
      "yours), or choose another --socket (or set XDG_RUNTIME_DIR)");
}

}  // namespace

std::string DescribeUid(uid_t uid) {
  std::string out = "uid " + std::to_string(uid);
  passwd pw;
  passwd* found = nullptr;
  char buf[1024];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found) {
    out += std::string(" (") + found->pw_name + ")";
  }
  return out;
}

Status OpenSocketDirectory(const std::string& dir, gid_t gid, int* dir_fd) {
  *dir_fd = -1;
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return Status::IOError("cannot stat the socket directory " + dir + ": " + ErrnoText(errno));
    }
    std::string parent = core::DirName(dir);
    if (parent != "." && parent != "/") {
      Status made = PosixFileSystem()->CreateDirs(parent);
      if (!made.ok()) return made.Annotate("cannot create the socket directory");
    }
    const mode_t mode = static_cast<int>(gid) >= 0 ? 0750 : 0700;
    if (mkdir(dir.c_str(), mode) == 0) {
      // Exactly that mode whatever the umask, and the socket's group when it has one.
      if (static_cast<int>(gid) >= 0 && chown(dir.c_str(), static_cast<uid_t>(-1), gid) != 0) {
        return Status::IOError("cannot give " + dir + " to its group: " + ErrnoText(errno));
      }
      if (chmod(dir.c_str(), mode) != 0) {
        return Status::IOError("cannot chmod " + dir + ": " + ErrnoText(errno));
      }
    } else if (errno != EEXIST) {
      return Status::IOError("cannot create the socket directory " + dir + ": " + ErrnoText(errno));
    }
    if (lstat(dir.c_str(), &st) != 0) {
      return Status::IOError("cannot stat the socket directory " + dir + ": " + ErrnoText(errno));
    }
  }
  std::string why = Judge(st);
  if (!why.empty()) return Refuse(dir, why);
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ELOOP || err == ENOTDIR) return Refuse(dir, "was replaced by a symbolic link");
    return Status::IOError("cannot open the socket directory " + dir + ": " + ErrnoText(err));
  }
  struct stat again;
  if (fstat(fd, &again) != 0 || again.st_dev != st.st_dev || again.st_ino != st.st_ino) {
    close(fd);
    return Refuse(dir, "changed while it was being checked");
  }
  why = Judge(again);
  if (!why.empty()) {
    close(fd);
    return Refuse(dir, why);
  }
  *dir_fd = fd;
  return Status::OK();
}

Status OpenOwnFile(int dir_fd, const std::string& name, int flags, bool create,
                   const std::string& shown, int* fd) {
  *fd = -1;
  int f =
      openat(dir_fd, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
  if (f < 0) {
    int err = errno;
    if (err == ENOENT && !create) return Status::NotFound(shown + " does not exist");
    if (err == ELOOP) {
      return Status::PermissionDenied(shown +
                                      " is a symbolic link; refusing to follow it "
                                      "(remove it)");
    }
    return Status::IOError("cannot open " + shown + ": " + ErrnoText(err));
  }
  struct stat st;
  if (fstat(f, &st) != 0) {
    int err = errno;
    close(f);
    return Status::IOError("cannot stat " + shown + ": " + ErrnoText(err));
  }
  if (!S_ISREG(st.st_mode)) {
    close(f);
    return Status::PermissionDenied(shown + " is not a regular file; refusing it (remove it)");
  }
  if (st.st_uid != geteuid() && st.st_uid != 0) {
    close(f);
    return Status::PermissionDenied(shown + " is owned by " + DescribeUid(st.st_uid) +
                                    ", not by you; refusing it (remove it)");
  }
  *fd = f;
  return Status::OK();
}

}  // namespace mesh::net
