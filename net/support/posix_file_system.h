// net/support/posix_file_system: the real core::FileSystem, on POSIX calls.
//
// OpenWritable opens with O_CLOEXEC (mode 0600) and preallocates by writing zeros in 1 MiB
// chunks, then fsync; WritableFile::WriteAt is a pwrite loop (EINTR and short writes
// handled), Sync is fdatasync; WriteFileAtomic creates `path.tmp` (O_EXCL|O_NOFOLLOW, the
// exact mode by fchmod), fsyncs it, renames (or links) it over `path` and fsyncs the
// directory; CreateDirs is MakeDirs with mode 0700; LockFile is flock(2). Errors are
// net::ErrnoStatus (net/support/errno_text.h): IOError, NotFound for a missing file or directory,
// core::NoSpaceError for ENOSPC and EDQUOT, with the path and the failing call.
//
// This lives in net/ because core/ must not make syscalls; the node hands this object to
// core::LogStore.
#ifndef LOCKMESH_NET_SUPPORT_POSIX_FILE_SYSTEM_H_
#define LOCKMESH_NET_SUPPORT_POSIX_FILE_SYSTEM_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "core/storage/file_system.h"

namespace mesh::net {

/// Returns the process-wide POSIX file system. The object is stateless, never destroyed
/// and owned by the library (do not delete it); it may be used from any thread at once.
/// Each WritableFile it creates belongs to the caller and is thread-compatible.
core::FileSystem* PosixFileSystem();

/// Creates `dir` and its missing parents (mkdir -p), each new one with `mode` (narrowed by
/// the umask); existing ones are left as they are. OK if `dir` is already a directory;
/// IOError "<path>: mkdir: Not a directory" if it or a component of it is something else.
/// Thread-safe.
Status MakeDirs(const std::string& dir, mode_t mode);

/// Locks the open file `fd` as FileSystem::LockFile does, for lock files that must be
/// opened another way (through a checked directory descriptor, net/local/local_dir.h). Takes
/// ownership of `fd`: it lives in `*lock`, or is closed on failure (Busy with kTry when
/// another process holds the lock). `path` is for messages.
Status LockOpenFile(int fd, const std::string& path, core::LockWait wait,
                    std::unique_ptr<core::FileLock>* lock);

}  // namespace mesh::net

#endif  // LOCKMESH_NET_SUPPORT_POSIX_FILE_SYSTEM_H_
