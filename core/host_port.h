// core/host_port: the one way to write and split "host:port" texts. An IPv6 host is
// written in brackets ("[fd00::1]:7000"), as in URLs (RFC 3986), so the port stays apart.
//
// Pure functions (no name resolution: a host is only text here); thread-safe.
#ifndef LOCKMESH_CORE_HOST_PORT_H_
#define LOCKMESH_CORE_HOST_PORT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "mesh/status.h"

namespace mesh::core {

/// "host:port", or "[host]:port" when the host holds a ':' (IPv6).
std::string JoinHostPort(std::string_view host, std::string_view port);
std::string JoinHostPort(std::string_view host, uint16_t port);

/// Splits "host:port", "[v6]:port", "host", "[v6]" or a bare IPv6 literal without a port
/// ("fd00::1": more than one ':' and no brackets) into the host, brackets removed, and the
/// port text ("" when there is none). Neither part is checked further (see ParsePort); the
/// host may be empty (":7000"). InvalidArgument, naming `text`, for '[' without ']',
/// anything but ":PORT" after ']', and an empty port after ':'.
Status SplitHostPort(std::string_view text, std::string* host, std::string* port);

/// Parses a decimal port, 1-65535 (0 too when `allow_zero`): digits only, no sign or
/// spaces. False for anything else, `*port` then unchanged.
bool ParsePort(std::string_view text, bool allow_zero, uint16_t* port);

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_HOST_PORT_H_
