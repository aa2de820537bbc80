// net/support/sigpipe: keeps a write to a socket whose peer has gone from killing the process.
//
// libuv writes to TCP and UNIX sockets with write(2)/writev(2), not send(MSG_NOSIGNAL), so
// a write racing the peer's close raises SIGPIPE, whose default action ends the process.
// For a lock service that would let any peer or client kill a node (or the application
// embedding libmesh) by hanging up at the right moment. Every object of ours that writes to
// a socket calls IgnoreSigpipe() when it is made; the write then fails with EPIPE, which we
// already handle as a closed connection.
#ifndef LOCKMESH_NET_SUPPORT_SIGPIPE_H_
#define LOCKMESH_NET_SUPPORT_SIGPIPE_H_

namespace mesh::net {

/// Sets SIGPIPE's disposition to SIG_IGN if, and only if, it is still SIG_DFL: a handler
/// (or SIG_IGN) the application installed itself is left alone. SIGPIPE's disposition is
/// process-wide; this is checked on each call (cheap: one sigaction), so it also restores
/// the protection after an application resets SIGPIPE to SIG_DFL. Thread-safe.
void IgnoreSigpipe();

}  // namespace mesh::net

#endif  // LOCKMESH_NET_SUPPORT_SIGPIPE_H_
