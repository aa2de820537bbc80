#include "config.h"

#include <arpa/inet.h>
#include <strings.h>
#include <sys/stat.h>
#include <toml++/toml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <variant>

#include "core/host_port.h"
#include "mesh/node.h"
#include "net/support/errno_text.h"
#include "net/support/log_line.h"

namespace lockmesh::cli {
namespace {

using mesh::Status;

/// How a key's value is written.
enum class Kind { kString, kBool, kInt, kSeconds, kList };

/// A parsed value, before the key's own validation.
using Value = std::variant<std::string, bool, int64_t, double, std::vector<std::string>>;

/// One setting: its name, environment variable, type, and validating setter. The setter
/// returns InvalidArgument with a message that does not repeat the key (callers add it).
struct Key {
  const char* name;
  const char* env;
  Kind kind;
  std::function<Status(const Value&, Config*)> set;
};

const char* KindDescription(Kind kind) {
  switch (kind) {
    case Kind::kString:
      return "a string";
    case Kind::kBool:
      return "a boolean (true/false)";
    case Kind::kInt:
      return "an integer";
    case Kind::kSeconds:
      return "a number of seconds";
    case Kind::kList:
      return "a list of strings (or one comma-separated string)";
  }
  return "a value";
}

/// Letters, digits, '.', '_', '-'; 1..max bytes.
Status CheckName(const std::string& text, size_t max) {
  if (text.empty()) return Status::InvalidArgument("must not be empty");
  if (text.size() > max) {
    return Status::InvalidArgument("longer than " + std::to_string(max) + " bytes");
  }
  for (char c : text) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return Status::InvalidArgument("'" + text + "' may only contain A-Z a-z 0-9 . _ -");
  }
  return Status::OK();
}

Status NonEmpty(const std::string& text) {
  return text.empty() ? Status::InvalidArgument("must not be empty") : Status::OK();
}

const std::vector<Key>& Keys() {
  static const std::vector<Key>* keys = new std::vector<Key>{
      {"node.node_id", "LOCKMESH_NODE_ID", Kind::kString,
       [](const Value& v, Config* c) {
         const auto& s = std::get<std::string>(v);
         MESH_RETURN_IF_ERROR(CheckName(s, 128));
         c->node.node_id = s;
         return Status::OK();
       }},
      {"node.cluster", "LOCKMESH_CLUSTER", Kind::kString,
       [](const Value& v, Config* c) {
         const auto& s = std::get<std::string>(v);
         MESH_RETURN_IF_ERROR(CheckName(s, 64));
         c->node.cluster = s;
         return Status::OK();
       }},
      {"node.data_dir", "LOCKMESH_DATA_DIR", Kind::kString,
       [](const Value& v, Config* c) {
         const auto& s = std::get<std::string>(v);
         MESH_RETURN_IF_ERROR(NonEmpty(s));
         c->node.data_dir = s;
         return Status::OK();
       }},
      {"node.socket", "LOCKMESH_SOCKET", Kind::kString,
       [](const Value& v, Config* c) {
         const auto& s = std::get<std::string>(v);
         MESH_RETURN_IF_ERROR(NonEmpty(s));
         if (s.size() > kMaxSocketPathBytes) {
           return Status::InvalidArgument("path is " + std::to_string(s.size()) +
                                          " bytes; a UNIX socket path has at most " +
                                          std::to_string(kMaxSocketPathBytes));
         }
         c->node.socket = s;
         return Status::OK();
       }},
      {"node.socket_group", "LOCKMESH_SOCKET_GROUP", Kind::kString,
       [](const Value& v, Config* c) {
         c->node.socket_group = std::get<std::string>(v);
         return Status::OK();
       }},
      {"node.idle_exit", "LOCKMESH_IDLE_EXIT", Kind::kSeconds,
       [](const Value& v, Config* c) {
         double d = std::get<double>(v);
         if (d < 0) return Status::InvalidArgument("must be >= 0 (0 = never)");
         c->node.idle_exit = d;
         return Status::OK();
       }},
      {"node.fsync", "LOCKMESH_FSYNC", Kind::kBool,
       [](const Value& v, Config* c) {
         c->node.fsync = std::get<bool>(v);
         return Status::OK();
       }},
      {"node.expect", "LOCKMESH_EXPECT", Kind::kInt,
       [](const Value& v, Config* c) {
         int64_t n = std::get<int64_t>(v);
         if (n < 1 || n > 1000) return Status::InvalidArgument("must be between 1 and 1000");
         c->node.expect = n;
         return Status::OK();
       }},
      {"node.voters", "LOCKMESH_VOTERS", Kind::kInt,
       [](const Value& v, Config* c) {
         int64_t n = std::get<int64_t>(v);
         if (n < 1 || n > 9) return Status::InvalidArgument("must be between 1 and 9");
         c->node.voters = n;
         return Status::OK();
       }},
      {"node.listen", "LOCKMESH_LISTEN", Kind::kString,
       [](const Value& v, Config* c) {
         const auto& s = std::get<std::string>(v);
         MESH_RETURN_IF_ERROR(ValidateHostPort(s));
         c->node.listen = s;
         return Status::OK();
       }},
      {"node.join", "LOCKMESH_JOIN", Kind::kList,
       [](const Value& v, Config* c) {
         const auto& list = std::get<std::vector<std::string>>(v);
         for (const auto& s : list) MESH_RETURN_IF_ERROR(ValidateHostPort(s));
         c->node.join = list;
         return Status::OK();
       }},
      {"node.security", "LOCKMESH_SECURITY", Kind::kString,
       [](const Value& v, Config* c) {
         const auto& s = std::get<std::string>(v);
         if (s != "none" && s != "encrypt" && s != "mutual" && s != "tofu") {
           return Status::InvalidArgument("'" + s + "' is not one of none, encrypt, mutual, tofu");
         }
         c->node.security = s;
         return Status::OK();
       }},
      {"node.tls_cert", "LOCKMESH_TLS_CERT", Kind::kString,
       [](const Value& v, Config* c) {
         c->node.tls_cert = std::get<std::string>(v);
         return Status::OK();
       }},
      {"node.tls_key", "LOCKMESH_TLS_KEY", Kind::kString,
       [](const Value& v, Config* c) {
         c->node.tls_key = std::get<std::string>(v);
         return Status::OK();
       }},
      {"node.tls_ca", "LOCKMESH_TLS_CA", Kind::kString,
       [](const Value& v, Config* c) {
         c->node.tls_ca = std::get<std::string>(v);
         return Status::OK();
       }},
      {"node.local", "LOCKMESH_LOCAL", Kind::kBool,
       [](const Value& v, Config* c) {
         c->node.local = std::get<bool>(v);
         return Status::OK();
       }},
      {"node.advertise", "LOCKMESH_ADVERTISE", Kind::kString,
       [](const Value& v, Config* c) {
         const auto& s = std::get<std::string>(v);
         MESH_RETURN_IF_ERROR(ValidateHostPort(s));
         c->node.advertise = s;
         return Status::OK();
       }},
      {"node.trusted_fingerprints", "LOCKMESH_TRUSTED_FINGERPRINTS", Kind::kString,
       [](const Value& v, Config* c) {
         c->node.trusted_fingerprints = std::get<std::string>(v);
         return Status::OK();
       }},
      {"node.multicast", "LOCKMESH_MULTICAST", Kind::kBool,
       [](const Value& v, Config* c) {
         c->node.multicast = std::get<bool>(v);
         return Status::OK();
       }},
      {"node.discovery_port", "LOCKMESH_DISCOVERY_PORT", Kind::kInt,
       [](const Value& v, Config* c) {
         int64_t n = std::get<int64_t>(v);
         if (n < 1 || n > 65535) return Status::InvalidArgument("must be between 1 and 65535");
         c->node.discovery_port = n;
         return Status::OK();
       }},
      {"node.discovery_group4", "LOCKMESH_DISCOVERY_GROUP4", Kind::kString,
       [](const Value& v, Config* c) {
         const auto& s = std::get<std::string>(v);
         in_addr a{};
         if (inet_pton(AF_INET, s.c_str(), &a) != 1 || (ntohl(a.s_addr) >> 28) != 0xE) {
           return Status::InvalidArgument("'" + s + "' is not an IPv4 multicast address");
         }
         c->node.discovery_group4 = s;
         return Status::OK();
       }},
      {"node.discovery_group6", "LOCKMESH_DISCOVERY_GROUP6", Kind::kString,
       [](const Value& v, Config* c) {
         const auto& s = std::get<std::string>(v);
         in6_addr a{};
         if (inet_pton(AF_INET6, s.c_str(), &a) != 1 || a.s6_addr[0] != 0xff) {
           return Status::InvalidArgument("'" + s + "' is not an IPv6 multicast address");
         }
         c->node.discovery_group6 = s;
         return Status::OK();
       }},
      {"node.discovery_interface", "LOCKMESH_DISCOVERY_INTERFACE", Kind::kString,
       [](const Value& v, Config* c) {
         c->node.discovery_interface = std::get<std::string>(v);
         return Status::OK();
       }},
      {"node.discovery_ttl", "LOCKMESH_DISCOVERY_TTL", Kind::kInt,
       [](const Value& v, Config* c) {
         int64_t n = std::get<int64_t>(v);
         if (n < 1 || n > 255) return Status::InvalidArgument("must be between 1 and 255");
         c->node.discovery_ttl = n;
         return Status::OK();
       }},
      {"node.session_ttl", "LOCKMESH_SESSION_TTL", Kind::kSeconds,
       [](const Value& v, Config* c) {
         double d = std::get<double>(v);
         if (d < 0.5 || d > 86400) {
           return Status::InvalidArgument("must be between 0.5 and 86400 seconds");
         }
         c->node.session_ttl = d;
         return Status::OK();
       }},
      {"node.dead_after", "LOCKMESH_DEAD_AFTER", Kind::kSeconds,
       [](const Value& v, Config* c) {
         double d = std::get<double>(v);
         if (d < 1 || d > 30 * 86400) {
           return Status::InvalidArgument("must be between 1 and 2592000 seconds");
         }
         c->node.dead_after = d;
         return Status::OK();
       }},
      {"node.election_timeout_ms", "LOCKMESH_ELECTION_TIMEOUT_MS", Kind::kInt,
       [](const Value& v, Config* c) {
         int64_t n = std::get<int64_t>(v);
         if (n < 50 || n > 60000) return Status::InvalidArgument("must be between 50 and 60000");
         c->node.election_timeout_ms = n;
         return Status::OK();
       }},
      {"node.handshake_timeout", "LOCKMESH_HANDSHAKE_TIMEOUT", Kind::kSeconds,
       [](const Value& v, Config* c) {
         double d = std::get<double>(v);
         if (d < 0.1 || d > 3600) return Status::InvalidArgument("must be between 0.1 and 3600 seconds");
         c->node.handshake_timeout = d;
         return Status::OK();
       }},
      {"node.max_pending_per_source", "LOCKMESH_MAX_PENDING_PER_SOURCE", Kind::kInt,
       [](const Value& v, Config* c) {
         int64_t n = std::get<int64_t>(v);
         if (n < 1 || n > 65536) return Status::InvalidArgument("must be between 1 and 65536");
         c->node.max_pending_per_source = n;
         return Status::OK();
       }},
      {"node.max_pending_connections", "LOCKMESH_MAX_PENDING_CONNECTIONS", Kind::kInt,
       [](const Value& v, Config* c) {
         int64_t n = std::get<int64_t>(v);
         if (n < 1 || n > 65536) return Status::InvalidArgument("must be between 1 and 65536");
         c->node.max_pending_connections = n;
         return Status::OK();
       }},
      {"node.snapshot_every", "LOCKMESH_SNAPSHOT_EVERY", Kind::kInt,
       [](const Value& v, Config* c) {
         int64_t n = std::get<int64_t>(v);
         if (n < 10 || n > 1'000'000'000) {
           return Status::InvalidArgument("must be between 10 and 1000000000");
         }
         c->node.snapshot_every = n;
         return Status::OK();
       }},
      {"node.token_floor", "LOCKMESH_TOKEN_FLOOR", Kind::kInt,
       [](const Value& v, Config* c) {
         int64_t n = std::get<int64_t>(v);
         if (n < 0 || static_cast<uint64_t>(n) > mesh::kMaxTokenFloor) {
           return Status::InvalidArgument("must be between 0 and " +
                                          std::to_string(mesh::kMaxTokenFloor));
         }
         c->node.token_floor = n;
         return Status::OK();
       }},
      {"node.log_level", "LOCKMESH_LOG_LEVEL", Kind::kString,
       [](const Value& v, Config* c) {
         const auto& s = std::get<std::string>(v);
         mesh::net::LogLevel level;
         if (!mesh::net::ParseLogLevel(s, &level)) {
           return Status::InvalidArgument("'" + s + "' is not one of error, warn, info, debug");
         }
         c->node.log_level = mesh::net::LogLevelName(level);
         return Status::OK();
       }},
      {"node.log_format", "LOCKMESH_LOG_FORMAT", Kind::kString,
       [](const Value& v, Config* c) {
         const auto& s = std::get<std::string>(v);
         mesh::net::LogFormat format;
         if (!mesh::net::ParseLogFormat(s, &format)) {
           return Status::InvalidArgument("'" + s + "' is not one of text, json");
         }
         c->node.log_format = s;
         return Status::OK();
       }},
      {"node.log_max_bytes", "LOCKMESH_LOG_MAX_BYTES", Kind::kInt,
       [](const Value& v, Config* c) {
         int64_t n = std::get<int64_t>(v);
         if (n != 0 && (n < kMinLogMaxBytes || n > kMaxLogMaxBytes)) {
           return Status::InvalidArgument("must be 0 (no cap) or between " +
                                          std::to_string(kMinLogMaxBytes) + " and " +
                                          std::to_string(kMaxLogMaxBytes));
         }
         c->node.log_max_bytes = n;
         return Status::OK();
       }},
      {"lock.mode", "LOCKMESH_MODE", Kind::kString,
       [](const Value& v, Config* c) {
         const auto& s = std::get<std::string>(v);
         mesh::LockMode mode;
         Status st = mesh::ParseLockMode(s, &mode);
         if (!st.ok()) {
           return Status::InvalidArgument(
               "'" + s +
               "' is not a lock mode (NL CR CW PR PW EX, NullLock ... Exclusive, shared, "
               "exclusive)");
         }
         c->lock.mode = mode;
         return Status::OK();
       }},
      {"lock.wait", "LOCKMESH_WAIT", Kind::kSeconds,
       [](const Value& v, Config* c) {
         c->lock.wait = std::get<double>(v);
         return Status::OK();
       }},
      {"lock.quantity", "LOCKMESH_QUANTITY", Kind::kInt,
       [](const Value& v, Config* c) {
         int64_t n = std::get<int64_t>(v);
         if (n < 1 || n > UINT32_MAX) {
           return Status::InvalidArgument("must be between 1 and 4294967295");
         }
         c->lock.quantity = n;
         return Status::OK();
       }},
      {"lock.create", "LOCKMESH_CREATE", Kind::kBool,
       [](const Value& v, Config* c) {
         c->lock.create = std::get<bool>(v);
         return Status::OK();
       }},
      {"lock.on_lost", "LOCKMESH_ON_LOST", Kind::kString,
       [](const Value& v, Config* c) {
         const auto& s = std::get<std::string>(v);
         if (s == "term") {
           c->lock.on_lost = OnLost::kTerm;
         } else if (s == "kill") {
           c->lock.on_lost = OnLost::kKill;
         } else if (s == "ignore") {
           c->lock.on_lost = OnLost::kIgnore;
         } else {
           return Status::InvalidArgument("'" + s + "' is not one of term, kill, ignore");
         }
         return Status::OK();
       }},
      {"lock.grace", "LOCKMESH_GRACE", Kind::kSeconds,
       [](const Value& v, Config* c) {
         double d = std::get<double>(v);
         if (d < 0) return Status::InvalidArgument("must be >= 0");
         c->lock.grace = d;
         return Status::OK();
       }},
      {"lock.autostart", "LOCKMESH_AUTOSTART", Kind::kBool,
       [](const Value& v, Config* c) {
         c->lock.autostart = std::get<bool>(v);
         return Status::OK();
       }},
  };
  return *keys;
}

const Key* FindKey(std::string_view name) {
  for (const Key& key : Keys()) {
    if (name == key.name) return &key;
  }
  return nullptr;
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

/// Parses text (environment or flag) as `kind`.
Status ParseText(Kind kind, std::string_view text, Value* out) {
  std::string s(text);
  switch (kind) {
    case Kind::kString:
      *out = s;
      return Status::OK();
    case Kind::kBool: {
      const char* t = s.c_str();
      if (!strcasecmp(t, "true") || !strcasecmp(t, "yes") || !strcasecmp(t, "on") || s == "1") {
        *out = true;
      } else if (!strcasecmp(t, "false") || !strcasecmp(t, "no") || !strcasecmp(t, "off") ||
                 s == "0") {
        *out = false;
      } else {
        return Status::InvalidArgument("'" + s + "' is not a boolean (true/false/yes/no/1/0)");
      }
      return Status::OK();
    }
    case Kind::kInt: {
      std::string t = Trim(s);
      char* end = nullptr;
      errno = 0;
      long long n = std::strtoll(t.c_str(), &end, 10);
      if (t.empty() || *end != '\0' || errno == ERANGE) {
        return Status::InvalidArgument("'" + s + "' is not an integer");
      }
      *out = static_cast<int64_t>(n);
      return Status::OK();
    }
    case Kind::kSeconds: {
      std::string t = Trim(s);
      char* end = nullptr;
      errno = 0;
      // Decimal only ("2.5", "-1"): strtod alone would also read "0x10" as 16, "1e3", "inf".
      bool decimal = t.find_first_not_of("+-.0123456789") == std::string::npos &&
                     t.find_first_of("0123456789") != std::string::npos;
      double d = std::strtod(t.c_str(), &end);
      if (!decimal || *end != '\0' || errno == ERANGE || !std::isfinite(d)) {
        return Status::InvalidArgument("'" + s +
                                       "' is not a number of seconds (decimal, e.g. 2.5)");
      }
      *out = d;
      return Status::OK();
    }
    case Kind::kList: {
      std::vector<std::string> list;
      std::stringstream in(s);
      std::string item;
      while (std::getline(in, item, ',')) {
        item = Trim(item);
        if (!item.empty()) list.push_back(item);
      }
      *out = list;
      return Status::OK();
    }
  }
  return Status::Internal("unknown kind");
}

/// Converts a TOML value to `kind`; a type mismatch is InvalidArgument.
Status FromToml(Kind kind, const toml::node& node, Value* out) {
  switch (kind) {
    case Kind::kString:
      if (auto v = node.value_exact<std::string>()) {
        *out = *v;
        return Status::OK();
      }
      break;
    case Kind::kBool:
      if (auto v = node.value_exact<bool>()) {
        *out = *v;
        return Status::OK();
      }
      break;
    case Kind::kInt:
      if (auto v = node.value_exact<int64_t>()) {
        *out = *v;
        return Status::OK();
      }
      break;
    case Kind::kSeconds:
      if (node.is_integer() || node.is_floating_point()) {
        double d = *node.value<double>();
        if (!std::isfinite(d)) return Status::InvalidArgument("must be a finite number");
        *out = d;
        return Status::OK();
      }
      break;
    case Kind::kList:
      if (auto v = node.value_exact<std::string>()) return ParseText(kind, *v, out);
      if (const toml::array* array = node.as_array()) {
        std::vector<std::string> list;
        for (const toml::node& item : *array) {
          auto s = item.value_exact<std::string>();
          if (!s) break;
          list.push_back(*s);
        }
        if (list.size() == array->size()) {
          *out = list;
          return Status::OK();
        }
      }
      break;
  }
  std::ostringstream type;
  type << node.type();
  return Status::InvalidArgument(std::string("expected ") + KindDescription(kind) + ", got " +
                                 type.str());
}

std::string Where(const std::string& origin, const toml::source_region& source) {
  std::string where = origin;
  if (source.begin.line > 0) where += ":" + std::to_string(source.begin.line);
  return where;
}

/// Returns the contents of an existing file or NotFound/IOError.
Status ReadFile(const std::string& path, std::string* out) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return Status::IOError(path + ": is a directory, not a TOML file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    if (err == ENOENT) return Status::NotFound(path + ": no such file");
    return Status::IOError(path + ": " + mesh::net::ErrnoText(err));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return Status::IOError(path + ": read failed");
  *out = buffer.str();
  return Status::OK();
}

}  // namespace

const char* OnLostName(OnLost on_lost) {
  switch (on_lost) {
    case OnLost::kTerm:
      return "term";
    case OnLost::kKill:
      return "kill";
    case OnLost::kIgnore:
      return "ignore";
  }
  return "?";
}

Status ValidateHostPort(std::string_view text) {
  const std::string s(text);
  std::string host, port;
  const bool split = mesh::core::SplitHostPort(s, &host, &port).ok();
  if (!s.empty() && s.front() == '[' && (!split || host.empty() || port.empty())) {
    return Status::InvalidArgument("'" + s + "': an IPv6 host is written [ADDRESS]:PORT");
  }
  if (split && port.empty() && host.find(':') != std::string::npos) {
    return Status::InvalidArgument("'" + s + "': write an IPv6 host in brackets, [ADDRESS]:PORT");
  }
  if (!split || host.empty() || port.empty()) {
    return Status::InvalidArgument("'" + s + "' is not HOST:PORT");
  }
  uint16_t number = 0;
  if (!mesh::core::ParsePort(port, /*allow_zero=*/false, &number)) {
    return Status::InvalidArgument("'" + s + "': port must be 1-65535");
  }
  return Status::OK();
}

std::string DefaultUserConfigPath(const GetEnvFunction& getenv) {
  if (!getenv) return "";
  const char* xdg = getenv("XDG_CONFIG_HOME");
  if (xdg != nullptr && xdg[0] == '/') return std::string(xdg) + "/lockmesh/lockmesh.toml";
  const char* home = getenv("HOME");
  if (home != nullptr && home[0] != '\0') {
    return std::string(home) + "/.config/lockmesh/lockmesh.toml";
  }
  return "";
}

ConfigSources DefaultConfigSources(const std::string& explicit_file) {
  ConfigSources sources;
  sources.getenv = [](const char* name) -> const char* { return std::getenv(name); };
  sources.user_file = DefaultUserConfigPath(sources.getenv);
  sources.explicit_file = explicit_file;
  return sources;
}

Status ApplyText(std::string_view key_name, std::string_view text, const std::string& origin,
                 Config* config) {
  const Key* key = FindKey(key_name);
  if (key == nullptr) return Status::Internal("no configuration key " + std::string(key_name));
  Value value;
  Status st = ParseText(key->kind, text, &value);
  if (st.ok()) st = key->set(value, config);
  if (!st.ok()) return Status::InvalidArgument(origin + ": " + st.message());
  return Status::OK();
}

Status ApplyTomlText(std::string_view text, const std::string& origin, Config* config) {
  toml::table root;
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    return Status::InvalidArgument(Where(origin, e.source()) +
                                   ": TOML syntax error: " + std::string(e.description()));
  } catch (const std::exception& e) {
    return Status::InvalidArgument(origin + ": " + e.what());
  }
  for (auto&& [section_key, section] : root) {
    std::string section_name(section_key.str());
    const toml::table* table = section.as_table();
    if (table == nullptr || (section_name != "node" && section_name != "lock")) {
      return Status::InvalidArgument(Where(origin, section_key.source()) + ": unknown key '" +
                                     section_name + "' (known tables: [node], [lock])");
    }
    for (auto&& [key, node] : *table) {
      std::string name = section_name + "." + std::string(key.str());
      const Key* spec = FindKey(name);
      if (spec == nullptr) {
        return Status::InvalidArgument(Where(origin, key.source()) + ": unknown key '" + name +
                                       "'");
      }
      Value value;
      Status st = FromToml(spec->kind, node, &value);
      if (st.ok()) st = spec->set(value, config);
      if (!st.ok()) {
        return Status::InvalidArgument(Where(origin, key.source()) + ": " + name + ": " +
                                       st.message());
      }
    }
  }
  config->files.push_back(origin);
  return Status::OK();
}

Status ApplyTomlFile(const std::string& path, bool must_exist, Config* config) {
  std::string text;
  Status st = ReadFile(path, &text);
  if (st.IsNotFound() && !must_exist) return Status::OK();
  if (!st.ok()) return st;
  return ApplyTomlText(text, path, config);
}

Status ApplyEnvironment(const GetEnvFunction& getenv, Config* config) {
  if (!getenv) return Status::OK();
  for (const Key& key : Keys()) {
    const char* value = getenv(key.env);
    if (value == nullptr) continue;
    MESH_RETURN_IF_ERROR(
        ApplyText(key.name, value, std::string("environment ") + key.env + "=" + value, config));
  }
  return Status::OK();
}

Status LoadConfig(const ConfigSources& sources, Config* config) {
  if (!sources.system_file.empty()) {
    MESH_RETURN_IF_ERROR(ApplyTomlFile(sources.system_file, false, config));
  }
  if (!sources.user_file.empty()) {
    MESH_RETURN_IF_ERROR(ApplyTomlFile(sources.user_file, false, config));
  }
  if (!sources.explicit_file.empty()) {
    Status st = ApplyTomlFile(sources.explicit_file, true, config);
    if (!st.ok()) return st.IsNotFound() || st.IsIOError() ? st.Annotate("--config") : st;
  }
  return ApplyEnvironment(sources.getenv, config);
}

std::vector<ConfigKeyInfo> ConfigKeys() {
  std::vector<ConfigKeyInfo> out;
  for (const Key& key : Keys()) out.push_back({key.name, key.env});
  return out;
}

}  // namespace lockmesh::cli
