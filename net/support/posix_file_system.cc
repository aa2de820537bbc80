#include "net/support/posix_file_system.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/path_text.h"
#include "net/support/errno_text.h"

namespace mesh::net {
namespace {

constexpr size_t kZeroChunkBytes = 1 << 20;

Status PosixError(const std::string& path, const char* call, int err) {
  return ErrnoStatus(path + ": " + call, err);
}

Status WriteFully(int fd, const std::string& path, uint64_t offset, std::string_view data) {
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::pwrite(fd, p, left, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError(path, "pwrite", errno);
    }
    if (n == 0) return PosixError(path, "pwrite", EIO);
    p += n;
    left -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::OK();
}

// Extends the file to `size` with real zeros (not fallocate: overwriting allocated, written
// blocks later needs no metadata update, so fdatasync of a WAL write stays one device
// flush), then fsyncs the extension.
Status AllocateFd(int fd, const std::string& path, uint64_t size) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return PosixError(path, "fstat", errno);
  const uint64_t have = static_cast<uint64_t>(st.st_size);
  if (size <= have) return Status::OK();
  const std::string zeros(std::min<uint64_t>(kZeroChunkBytes, size - have), '\0');
  for (uint64_t at = have; at < size; at += zeros.size()) {
    uint64_t n = std::min<uint64_t>(zeros.size(), size - at);
    MESH_RETURN_IF_ERROR(WriteFully(fd, path, at, std::string_view(zeros).substr(0, n)));
  }
  if (::fsync(fd) != 0) return PosixError(path, "fsync", errno);
  return Status::OK();
}

Status CloseFd(int fd, const std::string& path) {
  // Linux always releases the descriptor, even on EINTR: never retry close.
  if (::close(fd) != 0 && errno != EINTR) return PosixError(path, "close", errno);
  return Status::OK();
}

Status FsyncPath(const std::string& path, int flags) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return PosixError(path, "open", errno);
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    return PosixError(path, "fsync", err);
  }
  return CloseFd(fd, path);
}

class PosixWritableFile : public core::WritableFile {
 public:
  PosixWritableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status WriteAt(uint64_t offset, std::string_view data) override {
    if (fd_ < 0) return Status::IOError(path_ + ": write on a closed file");
    return WriteFully(fd_, path_, offset, data);
  }

  Status Allocate(uint64_t size) override {
    if (fd_ < 0) return Status::IOError(path_ + ": allocate on a closed file");
    return AllocateFd(fd_, path_, size);
  }

  Status Sync() override {
    if (fd_ < 0) return Status::IOError(path_ + ": sync on a closed file");
    if (::fdatasync(fd_) != 0) return PosixError(path_, "fdatasync", errno);
    return Status::OK();
  }

  Status Close() override {
    if (fd_ < 0) return Status::OK();
    int fd = fd_;
    fd_ = -1;
    return CloseFd(fd, path_);
  }

 private:
  int fd_;
  std::string path_;
};

// An flock'ed open file; closing it releases the lock.
class PosixFileLock : public core::FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override { ::close(fd_); }

 private:
  int fd_;
};

class PosixFs : public core::FileSystem {
 public:
  Status OpenWritable(const std::string& path, uint64_t preallocate,
                      std::unique_ptr<core::WritableFile>* out) override {
    int fd;
    do {
      fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return PosixError(path, "open", errno);
    auto file = std::make_unique<PosixWritableFile>(fd, path);
    if (preallocate > 0) MESH_RETURN_IF_ERROR(AllocateFd(fd, path, preallocate));
    *out = std::move(file);
    return Status::OK();
  }

  Status ReadFile(const std::string& path, std::string* out) override {
    int fd;
    do {
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return PosixError(path, "open", errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return PosixError(path, "fstat", err);
    }
    out->clear();
    out->resize(static_cast<size_t>(st.st_size));
    size_t have = 0;
    while (true) {
      if (have == out->size()) {
        // The size fstat gave is read: probe for more (the file may have grown) with a
        // small buffer, not by growing the string (a copy and a memset of the whole file).
        char probe[4096];
        ssize_t n = ::pread(fd, probe, sizeof(probe), static_cast<off_t>(have));
        if (n < 0) {
          if (errno == EINTR) continue;
          int err = errno;
          ::close(fd);
          return PosixError(path, "pread", err);
        }
        if (n == 0) break;
        out->append(probe, static_cast<size_t>(n));
        have += static_cast<size_t>(n);
        continue;
      }
      ssize_t n = ::pread(fd, out->data() + have, out->size() - have, static_cast<off_t>(have));
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::close(fd);
        return PosixError(path, "pread", err);
      }
      if (n == 0) break;
      have += static_cast<size_t>(n);
    }
    out->resize(have);
    return CloseFd(fd, path);
  }

  Status WriteFileAtomic(const std::string& path, std::string_view data,
                         const core::AtomicWriteOptions& options) override {
    const std::string tmp =
        path + (options.unique_temp ? ".tmp." + std::to_string(::getpid()) : ".tmp");
    // A leftover of a crashed write (ours: the name is ours); if it is someone else's
    // file that reappears meanwhile, O_EXCL fails.
    ::unlink(tmp.c_str());
    const mode_t mode = static_cast<mode_t>(options.mode);
    int fd;
    do {
      fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0600);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return PosixError(tmp, "open", errno);
    // fchmod sets the mode exactly (the umask narrowed the open's), while only we can open it.
    Status s;
    if (::fchmod(fd, mode) != 0) {
      s = PosixError(tmp, "fchmod", errno);
    }
    if (s.ok()) s = WriteFully(fd, tmp, 0, data);
    if (s.ok() && ::fsync(fd) != 0) s = PosixError(tmp, "fsync", errno);
    Status c = CloseFd(fd, tmp);
    if (s.ok()) s = c;
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
    if (options.overwrite) {
      if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return PosixError(path, "rename", err);
      }
    } else {
      // link() fails with EEXIST if `path` exists, also if it appeared meanwhile.
      int rc = ::link(tmp.c_str(), path.c_str());
      int err = errno;
      ::unlink(tmp.c_str());
      if (rc != 0) {
        if (err == EEXIST) return Status::AlreadyExists(path + " already exists");
        return PosixError(path, "link", err);
      }
    }
    return SyncDir(core::DirName(path));
  }

  Status ListDir(const std::string& dir, std::vector<std::string>* names) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return PosixError(dir, "opendir", errno);
    names->clear();
    while (true) {
      errno = 0;
      struct dirent* e = ::readdir(d);
      if (e == nullptr) {
        int err = errno;
        ::closedir(d);
        if (err != 0) return PosixError(dir, "readdir", err);
        break;
      }
      if (::strcmp(e->d_name, ".") == 0 || ::strcmp(e->d_name, "..") == 0) continue;
      names->emplace_back(e->d_name);
    }
    std::sort(names->begin(), names->end());
    return Status::OK();
  }

  Status CreateDirs(const std::string& dir) override { return MakeDirs(dir, 0700); }

  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return PosixError(path, "unlink", errno);
    return Status::OK();
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return PosixError(from + " -> " + to, "rename", errno);
    }
    return Status::OK();
  }

  Status Truncate(const std::string& path, uint64_t size) override {
    int fd;
    do {
      fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return PosixError(path, "open", errno);
    Status s;
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
      s = PosixError(path, "ftruncate", errno);
    } else if (::fsync(fd) != 0) {
      s = PosixError(path, "fsync", errno);
    }
    Status c = CloseFd(fd, path);
    return s.ok() ? c : s;
  }

  Status SyncDir(const std::string& dir) override { return FsyncPath(dir, O_RDONLY | O_DIRECTORY); }

  bool Exists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  Status LockFile(const std::string& path, core::LockWait wait,
                  std::unique_ptr<core::FileLock>* lock) override {
    int fd;
    do {
      fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      if (errno == ELOOP) {
        return Status::PermissionDenied(path + " is a symbolic link; refusing it");
      }
      return PosixError(path, "open", errno);
    }
    return LockOpenFile(fd, path, wait, lock);
  }
};

}  // namespace

Status MakeDirs(const std::string& dir, mode_t mode) {
  if (dir.empty()) return Status::InvalidArgument("cannot create a directory with an empty path");
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    std::string part = dir.substr(0, pos);
    if (part.empty() || part.back() == '/') continue;
    if (::mkdir(part.c_str(), mode) != 0 && errno != EEXIST) {
      return PosixError(part, "mkdir", errno);
    }
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return PosixError(dir, "mkdir", errno);
  if (!S_ISDIR(st.st_mode)) return PosixError(dir, "mkdir", ENOTDIR);
  return Status::OK();
}

Status LockOpenFile(int fd, const std::string& path, core::LockWait wait,
                    std::unique_ptr<core::FileLock>* lock) {
  const int how = LOCK_EX | (wait == core::LockWait::kTry ? LOCK_NB : 0);
  while (::flock(fd, how) != 0) {
    if (errno == EINTR) continue;
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) return Status::Busy(path + " is locked by another process");
    return PosixError(path, "flock", err);
  }
  *lock = std::make_unique<PosixFileLock>(fd);
  return Status::OK();
}

core::FileSystem* PosixFileSystem() {
  static PosixFs* const fs = new PosixFs();  // never destroyed: usable during exit
  return fs;
}

}  // namespace mesh::net
