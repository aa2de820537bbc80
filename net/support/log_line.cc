// net/support/log_line.h: the log line, its level, event and fields, and its JSON form.
#include "net/support/log_line.h"

#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/time_text.h"

namespace mesh::net {
namespace {

/// A message the node or the CLI writes. `pattern` is matched against the whole message:
/// literal text, `{name}` for a part kept as the field `name`, `*` for a part left out. A
/// part ends at the first occurrence of the literal text after it (the last literal must end
/// the message). Field names never repeat the keys of the record (time, level, event, msg,
/// pid). First match wins: specific patterns before general ones.
struct KnownMessage {
  const char* pattern;
  const char* event;
  LogLevel level;
};

constexpr LogLevel kE = LogLevel::kError;
constexpr LogLevel kW = LogLevel::kWarn;
constexpr LogLevel kI = LogLevel::kInfo;

// clang-format off
constexpr KnownMessage kKnownMessages[] = {
    // net/node/node.cc
    {"node {node_id} serving {socket}, data {data_dir}, log index {index}, fsync OFF", "node_serving", kI},
    {"node {node_id} serving {socket}, data {data_dir}, log index {index}", "node_serving", kI},
    {"node stopped", "node_stopped", kI},
    {"node stopped: {reason}", "node_stopped", kE},
    {"log recovery: {detail}", "log_recovery", kW},
    {"fatal: cannot claim client ids: {error}", "client_id_claim_failed", kE},
    {"fatal: {error}; stopping (clients lose their locks)", "fatal", kE},
    {"disk full: {error}; new locks are refused*", "disk_full", kE},
    {"disk space is back*", "disk_space_back", kI},
    {"certificates reloaded", "certificates_reloaded", kI},
    {"certificates reloaded, {cut_off} peer(s) cut off", "certificates_reloaded", kI},
    {"certificate reload failed, the old ones stay in force: {error}", "certificate_reload_failed", kE},
    {"refusing to start: {reason}", "start_refused", kE},
    {"refused client pid {client_pid}: {reason}", "client_refused", kW},
    {"closing client connection of pid {client_pid} (uid {client_uid}): {reason}", "client_connection_closing", kI},
    {"shutdown requested by pid {client_pid} *", "shutdown_requested", kI},
    {"client {client_id} (pid {client_pid}): {reason}; reopening its session under a new client id", "client_session_reopened", kW},
    {"cannot claim client ids: {error}", "client_id_claim_failed", kE},
    {"another client id claim for this node (epoch {epoch}, an earlier run's) was applied after ours (epoch {own_epoch}): claiming again", "client_id_claim_again", kI},
    {"cannot propose the withdrawal of lock {lock_id}: {error}", "withdrawal_not_proposed", kE},
    {"idle for {idle_ms} ms; exiting", "idle_exit", kI},
    {"closed client {client_id} (pid {client_pid}): {reason}", "client_closed", kI},
    // net/node/cluster.cc
    {"cannot dial {address}: {error}", "dial_failed", kW},
    {"error: another live node claims our node id {node_id} (beacons from {source})*", "duplicate_node_id", kE},
    {"warning: --session-ttl {session_ttl_ms} ms is less than*", "session_ttl_short", kW},
    {"warning: --security none: *", "security_none", kW},
    {"warning: --security encrypt: *", "security_encrypt", kW},
    {"--security tofu: *", "security_tofu", kI},
    {"--security mutual: *", "security_mutual", kI},
    {"mesh: cluster '{cluster}', listening for peers on port {port}, security {security}, *", "mesh_started", kI},
    {"refused from peer '{peer}' at {address} (certificate {fingerprint}): {reason}", "peer_refused", kW},
    {"lease lapsed: *", "lease_lapsed", kW},
    {"leader of cluster {cluster_id} in term {term}", "leader", kI},
    {"node {node} silent for the session ttl (*): expiring its sessions", "node_sessions_expiring", kW},
    {"cannot propose the expiry of {node}: {error}", "expiry_not_proposed", kE},
    {"not joining yet: {reason}", "join_waiting", kI},
    {"joining through '{target}': {reason}", "joining", kI},
    {"asking {target} to join cluster {cluster_id} as a learner", "join_asked", kI},
    {"cannot bootstrap a cluster: {error}", "bootstrap_failed", kE},
    {"bootstrapped cluster {cluster_id} ('{cluster}') with {fresh} other fresh node(s)*", "cluster_bootstrapped", kI},
    {"adding {node} ({address}) as a learner", "member_adding", kI},
    {"promoting learner {node} to voter*", "member_promoting", kI},
    {"removing voter {node}: *", "member_removing", kI},
    {"removing learner {node}: *", "member_removing", kI},
    {"cannot change membership ({step}): {error}", "membership_change_failed", kE},
    {"peer {peer} silent for {silent_ms} ms: closing the link to redial it", "peer_silent", kW},
    {"cannot hand over leadership: {error}", "leadership_handover_failed", kW},
    {"leaving: handing leadership to {peer}", "leadership_handover", kI},
    // net/node/command_log.cc
    {"snapshot at index {index} received and restored: *", "snapshot_restored", kI},
    {"snapshot at index {index}: *", "snapshot_taken", kI},
    // net/discovery/discovery.cc (warnings; its debug lines are not logged by a node)
    {"cannot send a beacon to {group}: {error}", "beacon_send_failed", kW},
    {"discovery receive error: {error}", "discovery_receive_failed", kW},
    {"discovery of cluster '{cluster}' as node {node_id}: *", "discovery_started", kI},
    {"discovery socket: {error}", "discovery_socket_failed", kW},
    {"* (that family is off)", "discovery_family_off", kW},
    {"another live process claims our node id {node_id}: its beacon came from {source}", "duplicate_node_id", kW},
    {"the beacon of node {node} from {source} names peer host {host}, not its own source address*", "beacon_foreign_host", kW},
    {"ignoring node {node}: already {count} peers known", "discovery_table_full", kW},
    {"cannot resolve --join {join}: {error}", "join_unresolved", kW},
    // net/peer/peer_transport.cc
    {"peer transport of node {node_id} (cluster {cluster}, security {security})*", "transport_started", kI},
    {"security none: peer links are not encrypted*", "transport_unencrypted", kW},
    {"closed connection from {address} at once: {reason}", "connection_refused", kW},
    {"refused by peer {address} (node {peer}): {reason}", "refused_by_peer", kW},
    {"refused by peer {address}: {reason}", "refused_by_peer", kW},
    {"address {address} is this node itself; not dialling it", "self_address", kI},
    {"peer {peer} up ({address}, *)", "peer_up", kI},
    {"tofu: first contact with node {peer} ({address}): trusting certificate {fingerprint}, recorded in {path}", "tofu_first_contact", kW},
    {"refused peer {address} (node {peer}): {reason}", "peer_refused", kW},
    {"refused peer {address}: {reason}", "peer_refused", kW},
    {"peer {peer} down ({address}): {reason}", "peer_down", kW},
    {"closed connection with {address}: {reason}", "connection_closed", kI},
    {"cannot reach {address}: {error} (retrying with backoff)", "peer_unreachable", kW},
    {"reload: --security none has no certificates to reload", "certificates_reload_skipped", kI},
    {"reload failed, keeping the current certificates: {error}", "certificate_reload_failed", kE},
    {"reloaded certificates: now presenting {fingerprint} on new connections", "certificates_presented", kI},
    // net/support/rate_limited_log.cc (core/log_rate_limiter.h's summary)
    {"suppressed {count} similar line* in {seconds} s: {key}", "lines_suppressed", kW},
    // apps/lockmesh/cmd_node.cc
    {"node settings: socket {socket}, data dir {data_dir}, cluster {cluster}, *", "node_settings", kI},
    {"warning: a local node (--local, or auto-started) has no peers: *", "cluster_flags_ignored", kW},
    {"warning: --tls-cert/--tls-key/--tls-ca are ignored with --security none", "tls_flags_ignored", kW},
    {"cannot start node: {error}", "start_failed", kE},
    {"SIGHUP: no certificates to reload*", "reload_ignored", kI},
    {"SIGHUP: reloading certificates", "reload_requested", kI},
    {"SIG{signal} again: already stopping", "signal_ignored", kI},
    {"SIG{signal}: stopping", "stopping", kI},
    {"log file rotated: {previous} holds the lines before", "log_rotated", kI},
};
// clang-format on

/// A compiled pattern: literal and hole parts, alternating from a literal (maybe empty).
struct Part {
  bool hole = false;
  std::string text;  // the literal, or the field name ("" for `*`)
};

std::vector<Part> Compile(std::string_view pattern) {
  std::vector<Part> parts;
  std::string literal;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '*' || c == '{') {
      std::string name;
      if (c == '{') {
        size_t end = pattern.find('}', i);
        name = std::string(pattern.substr(i + 1, end - i - 1));
        i = end;
        // A field must not repeat a key of the record (the JSON object would have it twice).
        for (const char* key : {"time", "level", "event", "msg", "pid"}) {
          if (name == key) abort();
        }
      }
      // Two parts in a row could not be told apart: every pattern separates them by text.
      if (!parts.empty() && parts.back().hole && literal.empty()) abort();
      parts.push_back({false, literal});
      literal.clear();
      parts.push_back({true, name});
    } else {
      literal += c;
    }
  }
  parts.push_back({false, literal});
  return parts;
}

/// Matches the whole of `s`; appends the named holes to `fields`.
bool Match(const std::vector<Part>& parts, std::string_view s,
           std::vector<std::pair<std::string, std::string>>* fields) {
  size_t pos = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Part& p = parts[i];
    if (!p.hole) {
      if (s.substr(pos, p.text.size()) != p.text) return false;
      pos += p.text.size();
      continue;
    }
    const std::string& next = parts[i + 1].text;  // a hole is always followed by a literal
    size_t end;
    if (i + 2 == parts.size()) {  // the last literal ends the message
      if (s.size() < pos + next.size() || s.substr(s.size() - next.size()) != next) return false;
      end = s.size() - next.size();
    } else {
      end = s.find(next, pos);
      if (end == std::string_view::npos) return false;
    }
    if (!p.text.empty()) fields->emplace_back(p.text, std::string(s.substr(pos, end - pos)));
    pos = end + next.size();
    ++i;
  }
  return pos == s.size();
}

struct CompiledMessage {
  std::vector<Part> parts;
  const KnownMessage* known;
};

const std::vector<CompiledMessage>& Table() {
  static const std::vector<CompiledMessage>* table = [] {
    auto* t = new std::vector<CompiledMessage>;
    for (const KnownMessage& m : kKnownMessages) t->push_back({Compile(m.pattern), &m});
    return t;
  }();
  return *table;
}

/// Explicit level markers at the start of a message.
struct Marker {
  const char* text;
  LogLevel level;
  const char* event;  // for a message the table does not know
};
constexpr Marker kMarkers[] = {
    {"error: ", LogLevel::kError, "error"},    {"fatal: ", LogLevel::kError, "fatal"},
    {"warning: ", LogLevel::kWarn, "warning"}, {"info: ", LogLevel::kInfo, "message"},
    {"debug: ", LogLevel::kDebug, "message"},
};

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool FindKnown(std::string_view message, LogEvent* out) {
  for (const CompiledMessage& m : Table()) {
    std::vector<std::pair<std::string, std::string>> fields;
    if (Match(m.parts, message, &fields)) {
      out->level = m.known->level;
      out->event = m.known->event;
      out->fields = std::move(fields);
      return true;
    }
  }
  return false;
}

/// Appends the UTF-8 sequence at s[*i] (valid, not overlong, no surrogates) or U+FFFD for
/// one invalid byte; advances *i.
void AppendUtf8(std::string_view s, size_t* i, std::string* out) {
  const unsigned char c = static_cast<unsigned char>(s[*i]);
  size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
  if (c >= 0xF5) len = 0;
  bool ok = len > 0 && *i + len <= s.size();
  for (size_t k = 1; ok && k < len; ++k) {
    ok = (static_cast<unsigned char>(s[*i + k]) & 0xC0) == 0x80;
  }
  if (ok && len >= 3) {
    const unsigned char c1 = static_cast<unsigned char>(s[*i + 1]);
    if (c == 0xE0 && c1 < 0xA0) ok = false;   // overlong
    if (c == 0xED && c1 >= 0xA0) ok = false;  // surrogate
    if (c == 0xF0 && c1 < 0x90) ok = false;   // overlong
    if (c == 0xF4 && c1 >= 0x90) ok = false;  // above U+10FFFF
  }
  if (!ok) {
    *out += "\\ufffd";
    ++*i;
    return;
  }
  out->append(s.substr(*i, len));
  *i += len;
}

}  // namespace

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "error";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kDebug:
      return "debug";
  }
  return "info";
}

bool ParseLogLevel(std::string_view text, LogLevel* level) {
  for (LogLevel l : {LogLevel::kError, LogLevel::kWarn, LogLevel::kInfo, LogLevel::kDebug}) {
    if (text == LogLevelName(l)) {
      *level = l;
      return true;
    }
  }
  if (text == "warning") {
    *level = LogLevel::kWarn;
    return true;
  }
  return false;
}

const char* LogFormatName(LogFormat format) { return format == LogFormat::kJson ? "json" : "text"; }

bool ParseLogFormat(std::string_view text, LogFormat* format) {
  if (text == "text") {
    *format = LogFormat::kText;
  } else if (text == "json") {
    *format = LogFormat::kJson;
  } else {
    return false;
  }
  return true;
}

int64_t WallClockNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string FormatLogLine(const std::string& message) {
  return core::FormatLogTime(WallClockNs()) + " lockmesh[" + std::to_string(getpid()) + "] " +
         message;
}

std::string MarkLogLevel(const std::string& message, LogLevel level) {
  if (ClassifyLogMessage(message).level == level) return message;
  const char* marker = level == LogLevel::kError  ? "error: "
                       : level == LogLevel::kWarn ? "warning: "
                       : level == LogLevel::kInfo ? "info: "
                                                  : "debug: ";
  return marker + message;
}

std::string FormatLogLine(const std::string& message, LogLevel level) {
  return FormatLogLine(MarkLogLevel(message, level));
}

LogEvent ClassifyLogMessage(std::string_view message) {
  LogEvent e;
  const Marker* marker = nullptr;
  for (const Marker& m : kMarkers) {
    if (StartsWith(message, m.text)) marker = &m;
  }
  bool known = FindKnown(message, &e) ||
               (marker != nullptr && FindKnown(message.substr(strlen(marker->text)), &e));
  if (marker != nullptr) {
    e.level = marker->level;  // an explicit marker wins over the table
    if (!known) e.event = marker->event;
    return e;
  }
  if (known) return e;
  e.event = "message";
  e.level = StartsWith(message, "cannot ") || StartsWith(message, "refusing ") ? LogLevel::kError
                                                                               : LogLevel::kInfo;
  return e;
}

bool ParseLogLine(std::string_view line, LogRecord* record) {
  // "YYYY-MM-DDTHH:MM:SS.mmmZ lockmesh[PID] "
  constexpr size_t kStamp = 24;
  constexpr std::string_view kTag = " lockmesh[";
  bool ok = line.size() > kStamp + kTag.size() && line[kStamp - 1] == 'Z' && line[4] == '-' &&
            line[10] == 'T' && line.substr(kStamp, kTag.size()) == kTag;
  size_t close = ok ? line.find("] ", kStamp + kTag.size()) : std::string_view::npos;
  int64_t pid = 0;
  if (close != std::string_view::npos) {
    for (size_t i = kStamp + kTag.size(); i < close && ok; ++i) {
      ok = line[i] >= '0' && line[i] <= '9' && pid < (int64_t{1} << 40);
      pid = pid * 10 + (line[i] - '0');
    }
    ok = ok && close > kStamp + kTag.size();
  } else {
    ok = false;
  }
  if (!ok) {
    record->time = core::FormatLogTime(WallClockNs());
    record->pid = getpid();
    record->message = std::string(line);
    return false;
  }
  record->time = std::string(line.substr(0, kStamp));
  record->pid = pid;
  record->message = std::string(line.substr(close + 2));
  return true;
}

std::string JsonQuote(std::string_view text) {
  std::string out = "\"";
  out.reserve(text.size() + 2);
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      AppendUtf8(text, &i, &out);
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buffer[8];
          snprintf(buffer, sizeof buffer, "\\u%04x", c);
          out += buffer;
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
  return out;
}

std::string RenderLogRecord(const LogRecord& record, const LogEvent& event, LogFormat format) {
  if (format == LogFormat::kText) {
    return record.time + " lockmesh[" + std::to_string(record.pid) + "] " + record.message;
  }
  std::string out = "{\"time\":" + JsonQuote(record.time) + ",\"level\":\"" +
                    LogLevelName(event.level) + "\",\"event\":" + JsonQuote(event.event) +
                    ",\"msg\":" + JsonQuote(record.message) +
                    ",\"pid\":" + std::to_string(record.pid);
  for (const auto& [name, value] : event.fields) {
    out += "," + JsonQuote(name) + ":" + JsonQuote(value);
  }
  out += "}";
  return out;
}

std::string RenderLogLine(std::string_view line, LogFormat format) {
  LogRecord record;
  ParseLogLine(line, &record);
  return RenderLogRecord(record, ClassifyLogMessage(record.message), format);
}

std::vector<std::string> KnownLogEvents() {
  std::vector<std::string> events;
  for (const KnownMessage& m : kKnownMessages) events.push_back(m.event);
  for (const Marker& m : kMarkers) events.push_back(m.event);
  return events;
}

}  // namespace mesh::net
