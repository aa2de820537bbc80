// Addresses and blocking sockets for tls-debug (see tls_debug_net.h).
#include "tls_debug_net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/host_port.h"
#include "net/support/errno_text.h"

namespace lockmesh::cli::tls_debug {

using mesh::Status;

// ------------------------------------------------------------------------------ addresses

/// "private (RFC 1918)", "loopback", "link-local", "shared (CGNAT, RFC 6598)",
/// "unique local (IPv6 ULA)" or "public", for a numeric address.
std::string AddressKind(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET6) {
    const auto& a6 = reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&a6)) return "loopback";
    if (IN6_IS_ADDR_LINKLOCAL(&a6)) return "link-local";
    if ((a6.s6_addr[0] & 0xfe) == 0xfc) return "private (IPv6 unique local)";
    if (!IN6_IS_ADDR_V4MAPPED(&a6)) return "public";
    sockaddr_storage v4 = {};
    auto& in = reinterpret_cast<sockaddr_in&>(v4);
    in.sin_family = AF_INET;
    memcpy(&in.sin_addr, &a6.s6_addr[12], 4);
    return AddressKind(v4);
  }
  uint32_t a = ntohl(reinterpret_cast<const sockaddr_in&>(ss).sin_addr.s_addr);
  if ((a >> 24) == 127) return "loopback";
  if ((a >> 24) == 10 || (a >> 20) == (172u << 4 | 1) || (a >> 16) == (192u << 8 | 168)) {
    return "private (RFC 1918)";
  }
  if ((a >> 16) == (169u << 8 | 254)) return "link-local";
  if ((a >> 22) == (100u << 2 | 1)) return "shared (carrier-grade NAT, RFC 6598)";
  if (a == 0) return "unspecified";
  return "public";
}

bool IsPrivateKind(const std::string& kind) {
  return kind.rfind("private", 0) == 0 || kind.rfind("shared", 0) == 0 || kind == "link-local";
}

std::string AddressText(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (ss.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(ss);
    inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof host);
    port = ntohs(in6.sin6_port);
    return mesh::core::JoinHostPort(host, port);
  }
  const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
  inet_ntop(AF_INET, &in.sin_addr, host, sizeof host);
  port = ntohs(in.sin_port);
  return mesh::core::JoinHostPort(host, port);
}

namespace {

/// Does any local interface have an address of the same kind (private/public) and family?
bool HaveLocalAddressOfKind(int family, bool private_kind) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return false;
  bool found = false;
  for (ifaddrs* i = list; i != nullptr && !found; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != family) continue;
    sockaddr_storage ss = {};
    memcpy(&ss, i->ifa_addr, family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
    std::string kind = AddressKind(ss);
    if (kind == "loopback" || kind == "link-local") continue;
    found = IsPrivateKind(kind) == private_kind;
  }
  freeifaddrs(list);
  return found;
}

}  // namespace

std::string AddressHint(const sockaddr_storage& target) {
  std::string kind = AddressKind(target);
  if (IsPrivateKind(kind) && !HaveLocalAddressOfKind(target.ss_family, true)) {
    return "; " + AddressText(target) + " is a " + kind +
           " address but this host has no private address: the peer is probably in another "
           "network, reachable only through its public address (or a VPN)";
  }
  if (kind == "public" && HaveLocalAddressOfKind(target.ss_family, true)) {
    return "; " + AddressText(target) +
           " is a public address: if the peer is in this host's local network, use its "
           "private address (many routers do not loop public addresses back inside)";
  }
  return "";
}

/// Splits "host:port" / "[v6]:port" (core/host_port.h). False on a bad form.
bool SplitHostPort(const std::string& text, std::string* host, std::string* port) {
  uint16_t number = 0;
  return mesh::core::SplitHostPort(text, host, port).ok() && !host->empty() &&
         mesh::core::ParsePort(*port, /*allow_zero=*/true, &number);
}

// ------------------------------------------------------------------------------ sockets

/// Writes all of `data`; false on error (errno set).
bool SendAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

/// Waits for input until `deadline`; reads what is there. OK with bytes appended; TimedOut;
/// Unavailable when the peer closed the connection.
Status ReceiveSome(int fd, Clock::time_point deadline, std::string* out) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Status::TimedOut("timed out");
    pollfd p = {fd, POLLIN, 0};
    int rc = poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0) return Status::TimedOut("timed out");
    char buffer[16384];
    ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return Status::Unavailable(std::string("the connection failed: ") +
                                 mesh::net::ErrnoText(errno));
    }
    if (n == 0) return Status::Unavailable("the peer closed the connection");
    out->append(buffer, static_cast<size_t>(n));
    return Status::OK();
  }
}

/// Connects to `target` with a timeout; the failure message says what it means.
Status ConnectWithTimeout(const sockaddr_storage& target, double timeout_s, int* fd_out,
                          bool* timed_out, int* error) {
  *timed_out = false;
  *error = 0;
  int fd = socket(target.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::IOError(std::string("socket: ") + mesh::net::ErrnoText(errno));
  socklen_t len = target.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  int rc = connect(fd, reinterpret_cast<const sockaddr*>(&target), len);
  int err = rc == 0 ? 0 : errno;
  if (rc != 0 && err == EINPROGRESS) {
    pollfd p = {fd, POLLOUT, 0};
    int pr;
    do {
      pr = poll(&p, 1, static_cast<int>(timeout_s * 1000));
    } while (pr < 0 && errno == EINTR);
    if (pr == 0) {
      close(fd);
      *timed_out = true;
      return Status::TimedOut("timeout");
    }
    socklen_t elen = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  }
  if (err != 0) {
    close(fd);
    *error = err;
    return Status::Unavailable(mesh::net::ErrnoText(err));
  }
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  *fd_out = fd;
  return Status::OK();
}

}  // namespace lockmesh::cli::tls_debug
