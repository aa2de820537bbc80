#include "core/host_port.h"

namespace mesh::core {

std::string JoinHostPort(std::string_view host, std::string_view port) {
  std::string out;
  out.reserve(host.size() + port.size() + 3);
  if (host.find(':') != std::string_view::npos) {
    out.append("[").append(host).append("]");
  } else {
    out.append(host);
  }
  return out.append(":").append(port);
}

std::string JoinHostPort(std::string_view host, uint16_t port) {
  return JoinHostPort(host, std::to_string(port));
}

Status SplitHostPort(std::string_view text, std::string* host, std::string* port) {
  auto bad = [&](const char* why) {
    return Status::InvalidArgument("'" + std::string(text) + "': " + why);
  };
  std::string_view h = text;
  std::string_view p;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return bad("'[' without ']'");
    h = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("expected ':PORT' after ']'");
      p = rest.substr(1);
      if (p.empty()) return bad("empty port");
    }
  } else if (size_t colon = text.rfind(':'); colon != std::string_view::npos) {
    if (text.find(':') == colon) {  // exactly one ':' -> HOST:PORT
      h = text.substr(0, colon);
      p = text.substr(colon + 1);
      if (p.empty()) return bad("empty port");
    }  // else a bare IPv6 literal without a port
  }
  *host = std::string(h);
  *port = std::string(p);
  return Status::OK();
}

bool ParsePort(std::string_view text, bool allow_zero, uint16_t* port) {
  if (text.empty() || text.size() > 5) return false;
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535 || (value == 0 && !allow_zero)) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace mesh::core
