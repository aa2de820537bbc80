// net/node/peer_address.h.
#include "net/node/peer_address.h"

#include <arpa/inet.h>
#include <uv.h>

#include "core/host_port.h"

namespace mesh::net {

void SplitHostPortOrEmpty(const std::string& text, std::string* host, std::string* port) {
  if (!core::SplitHostPort(text, host, port).ok()) {
    host->clear();
    port->clear();
  }
}

std::string UnmappedHost(const std::string& host) {
  static const std::string kPrefix = "::ffff:";
  if (host.size() > kPrefix.size() && host.compare(0, kPrefix.size(), kPrefix) == 0 &&
      host.find('.') != std::string::npos) {
    return host.substr(kPrefix.size());
  }
  return host;
}

std::string UnmappedAddress(const std::string& address) {
  std::string host, port;
  SplitHostPortOrEmpty(address, &host, &port);
  if (port.empty()) return address;
  return core::JoinHostPort(UnmappedHost(host), port);
}

bool IsUnspecifiedHost(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "::";
}

std::string FirstGlobalAddress() {
  uv_interface_address_t* list = nullptr;
  int count = 0;
  if (uv_interface_addresses(&list, &count) != 0) return "";
  std::string v4, v6;
  char text[INET6_ADDRSTRLEN] = {0};
  for (int i = 0; i < count; ++i) {
    const uv_interface_address_t& a = list[i];
    if (a.is_internal) continue;
    if (a.address.address4.sin_family == AF_INET && v4.empty()) {
      uint32_t ip = ntohl(a.address.address4.sin_addr.s_addr);
      if ((ip >> 16) == 0xA9FE) continue;  // 169.254/16: link-local
      uv_ip4_name(&a.address.address4, text, sizeof text);
      v4 = text;
    } else if (a.address.address6.sin6_family == AF_INET6 && v6.empty()) {
      const uint8_t* b = a.address.address6.sin6_addr.s6_addr;
      if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) continue;  // fe80::/10: link-local
      uv_ip6_name(&a.address.address6, text, sizeof text);
      v6 = text;
    }
  }
  uv_free_interface_addresses(list, count);
  return !v4.empty() ? v4 : v6;
}

}  // namespace mesh::net
