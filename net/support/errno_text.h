// net/support/errno_text: the one way to turn an errno value into text or a Status.
//
// Every message about a failed system call reads "<what>: <strerror text>", where `what`
// names the call and the path or peer ("cannot open /x/y", "/x/y: fsync"). Plain functions;
// thread-safe (strerror_r, never strerror's shared buffer).
#ifndef LOCKMESH_NET_SUPPORT_ERRNO_TEXT_H_
#define LOCKMESH_NET_SUPPORT_ERRNO_TEXT_H_

#include <string>

#include "mesh/status.h"

namespace mesh::net {

/// The C library's text for `err` ("No such file or directory"); "Unknown error N" for a
/// value it does not know.
std::string ErrnoText(int err);

/// "<what>: <ErrnoText(err)>".
std::string ErrnoMessage(const std::string& what, int err);

/// The Status of a failed call: NotFound for ENOENT; core::NoSpaceError for ENOSPC and
/// EDQUOT ("(disk quota exceeded)" added), so core::IsNoSpace recognises both;
/// IOError for the rest. The message is ErrnoMessage(what, err).
Status ErrnoStatus(const std::string& what, int err);

}  // namespace mesh::net

#endif  // LOCKMESH_NET_SUPPORT_ERRNO_TEXT_H_
