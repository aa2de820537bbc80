// net/posix_file_system: the real core::FileSystem, on POSIX calls.
//
// OpenWritable opens with O_CLOEXEC (mode 0600) and preallocates by writing zeros in 1 MiB
// chunks, then fsync; WritableFile::WriteAt is a pwrite loop (EINTR and short writes
// handled), Sync is fdatasync; WriteFileAtomic writes `path.tmp`, fsyncs it, renames it over
// `path` and fsyncs the directory; CreateDirs uses mode 0700. Errors are IOError (NotFound
// for a missing file or directory) with the path, the failing call and strerror(errno);
// ENOSPC and EDQUOT are core::NoSpaceError, so core::IsNoSpace recognises them.
//
// This lives in net/ because core/ must not make syscalls; the node hands this object to
// core::LogStore.
#ifndef LOCKMESH_NET_POSIX_FILE_SYSTEM_H_
#define LOCKMESH_NET_POSIX_FILE_SYSTEM_H_

#include "core/storage/file_system.h"

namespace mesh::net {

/// Returns the process-wide POSIX file system. The object is stateless, never destroyed
/// and owned by the library (do not delete it); it may be used from any thread at once.
/// Each WritableFile it creates belongs to the caller and is thread-compatible.
core::FileSystem* PosixFileSystem();

}  // namespace mesh::net

#endif  // LOCKMESH_NET_POSIX_FILE_SYSTEM_H_
