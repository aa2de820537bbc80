// Addresses and blocking sockets for `lockmesh tls-debug` (cmd_tls_debug.cc): what kind of
// address a peer has (loopback, private, public...), hints when a connection to it fails, and
// connect / send / receive with a deadline. Plain functions on plain file descriptors: the tool
// makes one connection at a time and wants a timeout per step, not an event loop.
// Thread-compatible (no shared state).
#ifndef LOCKMESH_APPS_LOCKMESH_TLS_DEBUG_NET_H_
#define LOCKMESH_APPS_LOCKMESH_TLS_DEBUG_NET_H_

#include <sys/socket.h>

#include <chrono>
#include <string>

#include "mesh/status.h"

namespace lockmesh::cli::tls_debug {

using Clock = std::chrono::steady_clock;

/// "loopback", "private (RFC 1918)", "private (IPv6 unique local)", "link-local",
/// "shared (carrier-grade NAT, RFC 6598)", "unspecified" or "public", for a numeric IPv4 or
/// IPv6 address (IPv4-mapped IPv6 addresses are judged as IPv4).
std::string AddressKind(const sockaddr_storage& address);

/// True for the private, shared (CGNAT) and link-local kinds of AddressKind.
bool IsPrivateKind(const std::string& kind);

/// "1.2.3.4:80" or "[::1]:80".
std::string AddressText(const sockaddr_storage& address);

/// A sentence (starting with "; ") about private vs public addresses for a connection to
/// `target` that failed: a private target from a host that has no private address, or a public
/// target from a host that has one (no hairpin NAT). "" when neither applies. Reads the host's
/// interfaces (getifaddrs).
std::string AddressHint(const sockaddr_storage& target);

/// Splits "host:port" or "[v6]:port" (port 0-65535, host non-empty). False on a bad form.
bool SplitHostPort(const std::string& text, std::string* host, std::string* port);

/// Writes all of `data` to the blocking socket `fd` (MSG_NOSIGNAL). False on error (errno set).
bool SendAll(int fd, const std::string& data);

/// Waits until `deadline` for input on `fd` and appends what one recv() returns to `*out`.
/// TimedOut when nothing came; Unavailable when the peer closed or reset the connection.
mesh::Status ReceiveSome(int fd, Clock::time_point deadline, std::string* out);

/// Connects a TCP socket to `target` within `timeout_s` seconds; on success `*fd_out` is a
/// blocking socket with TCP_NODELAY, owned by the caller. On failure `*timed_out` says whether
/// the time ran out and `*error` holds the errno of a refused or failed connect.
mesh::Status ConnectWithTimeout(const sockaddr_storage& target, double timeout_s, int* fd_out,
                                bool* timed_out, int* error);

}  // namespace lockmesh::cli::tls_debug

#endif  // LOCKMESH_APPS_LOCKMESH_TLS_DEBUG_NET_H_
