#include "flom_config.h"

#include <ini.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include "config.h"
#include "core/resource_name.h"
#include "net/support/errno_text.h"

namespace lockmesh::cli {
namespace {

using mesh::Status;

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return out;
}

Status ParseInt(std::string_view text, int64_t* out) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) {
    return Status::InvalidArgument("'" + std::string(text) + "' is not an integer");
  }
  if (value < std::numeric_limits<int32_t>::min() || value > std::numeric_limits<int32_t>::max()) {
    return Status::InvalidArgument("'" + std::string(text) + "' is out of range (32-bit integer)");
  }
  *out = value;
  return Status::OK();
}

/// FLoM's yes/no (FLoM looks for "yes"/"no"/"y"/"n" anywhere in the text; lockmesh wants
/// the whole value to be one of yes, no, y, n, true, false, 1, 0, any case).
Status ParseBool(std::string_view text, bool* out) {
  std::string v = Lower(text);
  if (v == "yes" || v == "y" || v == "true" || v == "1") {
    *out = true;
  } else if (v == "no" || v == "n" || v == "false" || v == "0") {
    *out = false;
  } else {
    return Status::InvalidArgument("'" + std::string(text) + "' is not yes or no");
  }
  return Status::OK();
}

/// GLib key-file string escapes: \s \n \t \r \\.
Status Unescape(std::string_view text, std::string* out) {
  out->clear();
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out->push_back(text[i]);
      continue;
    }
    if (++i == text.size()) return Status::InvalidArgument("a value cannot end with '\\'");
    switch (text[i]) {
      case 's': out->push_back(' '); break;
      case 'n': out->push_back('\n'); break;
      case 't': out->push_back('\t'); break;
      case 'r': out->push_back('\r'); break;
      case '\\': out->push_back('\\'); break;
      default:
        return Status::InvalidArgument(std::string("unknown escape '\\") + text[i] + "'");
    }
  }
  return Status::OK();
}

Status SetPort(std::string_view text, int64_t* field) {
  int64_t port = 0;
  MESH_RETURN_IF_ERROR(ParseInt(text, &port));
  if (port < 1 || port > 65535) return Status::InvalidArgument("port must be 1-65535");
  *field = port;
  return Status::OK();
}

Status SetResourceName(std::string_view text, FlomSettings* s) {
  std::string name;
  MESH_RETURN_IF_ERROR(Unescape(text, &name));
  mesh::core::ResourceName parsed;
  MESH_RETURN_IF_ERROR(mesh::core::ParseResourceName(name, &parsed));
  s->resource_name = name;
  return Status::OK();
}

Status SetQuantity(std::string_view text, FlomSettings* s) {
  int64_t q = 0;
  MESH_RETURN_IF_ERROR(ParseInt(text, &q));
  if (q < 1) return Status::InvalidArgument("the quantity must be at least 1");
  s->resource_quantity = q;
  return Status::OK();
}

Status SetSocket(std::string_view text, FlomSettings* s) {
  std::string path;
  MESH_RETURN_IF_ERROR(Unescape(text, &path));
  if (path.empty()) return Status::InvalidArgument("the socket name is empty");
  if (path.size() > kMaxSocketPathBytes) {
    return Status::InvalidArgument("the socket name is longer than " +
                                   std::to_string(kMaxSocketPathBytes) + " bytes");
  }
  s->socket_name = path;
  return Status::OK();
}

Status SetSignals(std::string_view text, FlomSettings* s) {
  std::vector<int> signals;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find_first_of(";,", start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view item = text.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) {
      int sig = 0;
      MESH_RETURN_IF_ERROR(ParseFlomSignal(item, &sig));
      signals.push_back(sig);
    }
    start = end + 1;
  }
  s->ignored_signals = signals;
  return Status::OK();
}

template <std::string FlomSettings::*field>
Status Text(std::string_view text, FlomSettings* s) {
  return Unescape(text, &(s->*field));
}
template <int64_t FlomSettings::*field>
Status Int(std::string_view text, FlomSettings* s) {
  return ParseInt(text, &(s->*field));
}
template <bool FlomSettings::*field>
Status Bool(std::string_view text, FlomSettings* s) {
  return ParseBool(text, &(s->*field));
}
template <int64_t FlomSettings::*field>
Status Port(std::string_view text, FlomSettings* s) {
  return SetPort(text, &(s->*field));
}

Status SetLockMode(std::string_view text, FlomSettings* s) {
  return mesh::ParseLockMode(std::string(text), &s->lock_mode);
}

/// Legacy (FLoM < 1.3): Wait=no is Timeout=0.
Status SetWait(std::string_view text, FlomSettings* s) {
  bool wait = true;
  MESH_RETURN_IF_ERROR(ParseBool(text, &wait));
  if (!wait) s->resource_timeout_ms = 0;
  return Status::OK();
}

/// One FLoM setting: its group, key and setter.
struct KeyInfo {
  const char* group;
  const char* key;
  Status (*set)(std::string_view text, FlomSettings* s);
};

using S = FlomSettings;
constexpr KeyInfo kKeys[] = {
    {"Trace", "DaemonTraceFile", Text<&S::daemon_trace_file>},
    {"Trace", "CommandTraceFile", Text<&S::command_trace_file>},
    {"Trace", "AppendTraceFile", Bool<&S::append_trace_file>},
    {"Trace", "Verbose", Bool<&S::verbose>},
    {"Resource", "Name", SetResourceName},
    {"Resource", "Timeout", Int<&S::resource_timeout_ms>},
    {"Resource", "Quantity", SetQuantity},
    {"Resource", "LockMode", SetLockMode},
    {"Resource", "Create", Bool<&S::resource_create>},
    {"Resource", "IdleLifespan", Int<&S::resource_idle_lifespan_ms>},
    {"Resource", "Wait", SetWait},
    {"Daemon", "SocketName", SetSocket},
    {"Daemon", "Lifespan", Int<&S::daemon_lifespan_ms>},
    {"Daemon", "UnicastAddress", Text<&S::unicast_address>},
    {"Daemon", "UnicastPort", Port<&S::unicast_port>},
    {"Daemon", "MulticastAddress", Text<&S::multicast_address>},
    {"Daemon", "MulticastPort", Port<&S::multicast_port>},
    {"Daemon", "MountPointVFS", Text<&S::mount_point_vfs>},
    {"Monitor", "IgnoredSignals", SetSignals},
    {"Network", "NetworkInterface", Text<&S::network_interface>},
    {"Network", "DiscoveryAttempts", Int<&S::discovery_attempts>},
    {"Network", "DiscoveryTimeout", Int<&S::discovery_timeout_ms>},
    {"Network", "DiscoveryTTL", Int<&S::discovery_ttl>},
    {"Network", "TcpKeepaliveTime", Int<&S::tcp_keepalive_time>},
    {"Network", "TcpKeepaliveIntvl", Int<&S::tcp_keepalive_intvl>},
    {"Network", "TcpKeepaliveProbes", Int<&S::tcp_keepalive_probes>},
    {"TLS", "TlsCertificate", Text<&S::tls_certificate>},
    {"TLS", "TlsPrivateKey", Text<&S::tls_private_key>},
    {"TLS", "TlsCaCertificate", Text<&S::tls_ca_certificate>},
    {"TLS", "TlsCheckPeerId", Bool<&S::tls_check_peer_id>},
};

/// The libinih stream: hands the document to ini_parse_stream one line at a time, with
/// leading blanks removed (GLib ignores them; libinih would read an indented line as the
/// continuation of the previous value), and counts lines so that the handler knows where
/// it is.
struct IniStream {
  std::string_view text;
  size_t pos = 0;
  int line = 0;           // number of the line last handed out (1-based)
  int long_line = 0;      // first line longer than libinih's buffer, 0 if none
};

char* ReadIniLine(char* buffer, int size, void* opaque) {
  auto* stream = static_cast<IniStream*>(opaque);
  if (stream->pos >= stream->text.size()) return nullptr;
  size_t end = stream->text.find('\n', stream->pos);
  if (end == std::string_view::npos) end = stream->text.size();
  std::string_view line = stream->text.substr(stream->pos, end - stream->pos);
  stream->pos = end + 1;
  ++stream->line;
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  if (line.size() + 1 > static_cast<size_t>(size)) {
    if (stream->long_line == 0) stream->long_line = stream->line;
    line = line.substr(0, size - 1);
  }
  memcpy(buffer, line.data(), line.size());
  buffer[line.size()] = '\0';
  return buffer;
}

/// State of one ApplyFlomIniText call, seen by the libinih handler.
struct IniContext {
  IniStream* stream = nullptr;
  FlomSettings* settings = nullptr;
  const std::string* origin = nullptr;
  std::vector<std::string>* warnings = nullptr;
  int error_line = 0;  // line of the first error reported by HandleIniEntry
  std::string error;
};

int HandleIniEntry(void* opaque, const char* section, const char* name, const char* value) {
  auto* ctx = static_cast<IniContext*>(opaque);
  int line = ctx->stream->line;
  std::string where = *ctx->origin + ":" + std::to_string(line) + ": ";
  auto fail = [&](const std::string& message) {
    if (ctx->error_line == 0) {
      ctx->error_line = line;
      ctx->error = where + message;
    }
    return 0;
  };
  if (section[0] == '\0') return fail(std::string("key '") + name + "' outside of any [group]");
  Status st = SetFlomKey(section, name, value, ctx->settings);
  if (st.IsNotFound()) {
    if (ctx->warnings != nullptr) {
      ctx->warnings->push_back(where + "unknown key '" + name + "' in group [" + section +
                               "] (ignored, as FLoM does)");
    }
    return 1;
  }
  if (!st.ok()) return fail("[" + std::string(section) + "] " + name + ": " + st.message());
  return 1;
}

}  // namespace

Status ParseFlomInt(std::string_view text, int64_t* out) { return ParseInt(text, out); }

Status SetFlomKey(std::string_view group, std::string_view key, std::string_view text,
                  FlomSettings* settings) {
  for (const KeyInfo& info : kKeys) {
    if (group == info.group && key == info.key) return info.set(text, settings);
  }
  return Status::NotFound("unknown key");
}

Status ApplyFlomIniText(std::string_view text, const std::string& origin, FlomSettings* settings,
                        std::vector<std::string>* warnings) {
  IniStream stream;
  stream.text = text;
  IniContext ctx;
  ctx.stream = &stream;
  ctx.settings = settings;
  ctx.origin = &origin;
  ctx.warnings = warnings;
  int result = ini_parse_stream(ReadIniLine, &stream, HandleIniEntry, &ctx);
  if (stream.long_line != 0 && (result == 0 || stream.long_line <= result)) {
    return Status::InvalidArgument(origin + ":" + std::to_string(stream.long_line) +
                                   ": line longer than " + std::to_string(INI_MAX_LINE - 1) +
                                   " bytes");
  }
  if (result == 0) return Status::OK();
  if (result < 0) return Status::IOError(origin + ": cannot parse (out of memory)");
  if (ctx.error_line == result) return Status::InvalidArgument(ctx.error);
  return Status::InvalidArgument(origin + ":" + std::to_string(result) +
                                 ": syntax error: expected [Group], Key=Value or a # comment");
}

Status ApplyFlomIniFile(const std::string& path, bool must_exist, FlomSettings* settings,
                        std::vector<std::string>* warnings) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    if (err == ENOENT && !must_exist) return Status::OK();
    return Status::IOError(path + ": " + mesh::net::ErrnoText(err));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IOError(path + ": read error");
  MESH_RETURN_IF_ERROR(ApplyFlomIniText(text.str(), path, settings, warnings));
  settings->files.push_back(path);
  return Status::OK();
}

std::string FlomUserConfigPath() {
  const char* home = getenv("HOME");
  std::string dir = home != nullptr ? home : "";
  if (dir.empty()) {
    struct passwd* pw = getpwuid(getuid());
    if (pw != nullptr && pw->pw_dir != nullptr) dir = pw->pw_dir;
  }
  if (dir.empty()) return "";
  if (dir.back() != '/') dir += '/';
  return dir + kFlomUserConfigName;
}

Status LoadFlomConfig(const FlomConfigSources& sources, FlomSettings* settings,
                      std::vector<std::string>* warnings) {
  if (!sources.system_file.empty()) {
    MESH_RETURN_IF_ERROR(ApplyFlomIniFile(sources.system_file, false, settings, warnings));
  }
  if (!sources.user_file.empty()) {
    MESH_RETURN_IF_ERROR(ApplyFlomIniFile(sources.user_file, false, settings, warnings));
  }
  if (!sources.explicit_file.empty()) {
    MESH_RETURN_IF_ERROR(ApplyFlomIniFile(sources.explicit_file, true, settings, warnings));
  }
  return Status::OK();
}

std::string DefaultFlomSocket() {
  struct passwd* pw = getpwuid(getuid());
  std::string login = (pw != nullptr && pw->pw_name != nullptr) ? pw->pw_name : "nobody";
  return "/tmp/flom-" + login;
}

std::string FlomSignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

std::vector<int> IgnorableSignals() {
  std::vector<int> out;
  for (int sig = 1; sig < 32; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP || sig == SIGCHLD) continue;
    if (sigabbrev_np(sig) != nullptr) out.push_back(sig);
  }
  return out;
}

Status ParseFlomSignal(std::string_view text, int* sig) {
  int found = 0;
  int64_t number = 0;
  if (ParseInt(text, &number).ok()) {
    found = static_cast<int>(number);
  } else {
    std::string name = Lower(text);
    if (name.rfind("sig", 0) == 0) name = name.substr(3);
    for (int s = 1; s < 32; ++s) {
      const char* abbrev = sigabbrev_np(s);
      if (abbrev != nullptr && Lower(abbrev) == name) found = s;
    }
  }
  for (int s : IgnorableSignals()) {
    if (s == found) {
      *sig = s;
      return Status::OK();
    }
  }
  return Status::InvalidArgument("'" + std::string(text) +
                                 "' is not a signal that can be ignored (see --signal-list)");
}

std::string FormatFlomSettings(const FlomSettings& s) {
  std::string out;
  auto str = [&](const char* group, const char* key, const std::string& value) {
    out += std::string("[") + group + "]/" + key + "='" + value + "'\n";
  };
  auto num = [&](const char* group, const char* key, int64_t value) {
    out += std::string("[") + group + "]/" + key + "=" + std::to_string(value) + "\n";
  };
  std::string signals;
  for (int sig : s.ignored_signals) signals += (signals.empty() ? "" : ";") + FlomSignalName(sig);
  str("Trace", "DaemonTraceFile", s.daemon_trace_file);
  str("Trace", "CommandTraceFile", s.command_trace_file);
  num("Trace", "AppendTraceFile", s.append_trace_file);
  num("Trace", "Verbose", s.verbose);
  str("Resource", "Name", s.resource_name);
  num("Resource", "Timeout", s.resource_timeout_ms);
  num("Resource", "Quantity", s.resource_quantity);
  num("Resource", "LockMode", static_cast<int>(s.lock_mode));
  num("Resource", "Create", s.resource_create);
  num("Resource", "IdleLifespan", s.resource_idle_lifespan_ms);
  str("Daemon", "SocketName", s.socket_name);
  num("Daemon", "Lifespan", s.daemon_lifespan_ms);
  str("Daemon", "UnicastAddress", s.unicast_address);
  num("Daemon", "UnicastPort", s.unicast_port);
  str("Daemon", "MulticastAddress", s.multicast_address);
  num("Daemon", "MulticastPort", s.multicast_port);
  str("Daemon", "MountPointVFS", s.mount_point_vfs);
  str("Monitor", "IgnoredSignals", signals);
  str("Network", "NetworkInterface", s.network_interface);
  num("Network", "DiscoveryAttempts", s.discovery_attempts);
  num("Network", "DiscoveryTimeout", s.discovery_timeout_ms);
  num("Network", "DiscoveryTTL", s.discovery_ttl);
  num("Network", "TcpKeepaliveTime", s.tcp_keepalive_time);
  num("Network", "TcpKeepaliveIntvl", s.tcp_keepalive_intvl);
  num("Network", "TcpKeepaliveProbes", s.tcp_keepalive_probes);
  str("TLS", "TlsCertificate", s.tls_certificate);
  str("TLS", "TlsPrivateKey", s.tls_private_key);
  str("TLS", "TlsCaCertificate", s.tls_ca_certificate);
  num("TLS", "TlsCheckPeerId", s.tls_check_peer_id);
  return out;
}

}  // namespace lockmesh::cli
