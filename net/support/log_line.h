// net/support/log_line: the one form of every log line the node and the CLI write, and its
// machine-readable twin.
//
// Text (what the node hands its embedder through mesh::NodeOptions::log, and what
// `lockmesh node` writes by default): "2026-11-23T17:40:00.123Z lockmesh[4242] <message>"
// (UTC wall clock, core/time_text.h). The message carries its own level: it starts with a
// marker ("error: ", "fatal: ", "warning: ", "info: ", "debug: ") or is one of the known
// messages of the table in log_line.cc (which also names its event and fields), else it is
// info ("cannot ..." and "refusing ..." are errors). So the node's API stays one text line
// per event, and a sink that wants levels or JSON (net/support/log_sink.h) reads them back from it:
// ParseLogLine and ClassifyLogMessage are the exact inverse of FormatLogLine.
//
// JSON: one object per line, {"time": "<the stamp>", "level": "warn", "event":
// "peer_down", "msg": "<message>", "pid": 4242, <fields>...}; fields are the parts of a known
// message (e.g. "peer", "address", "reason"), always strings. Keys and event names are
// stable; new ones may be added.
//
// Reads the wall clock (CLOCK_REALTIME) and the process id; pure otherwise; thread-safe.
#ifndef LOCKMESH_NET_SUPPORT_LOG_LINE_H_
#define LOCKMESH_NET_SUPPORT_LOG_LINE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mesh::net {

/// Severity of a log line, most severe first (a threshold shows its level and those above).
enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

/// How a sink writes lines.
enum class LogFormat { kText, kJson };

/// "error", "warn", "info", "debug".
const char* LogLevelName(LogLevel level);
/// Accepts LogLevelName's words (and "warning"); false for anything else.
bool ParseLogLevel(std::string_view text, LogLevel* level);
/// "text", "json".
const char* LogFormatName(LogFormat format);
/// Accepts "text" and "json"; false for anything else.
bool ParseLogFormat(std::string_view text, LogFormat* format);

/// The wall clock: nanoseconds since the epoch (CLOCK_REALTIME).
int64_t WallClockNs();

/// "<FormatLogTime(now)> lockmesh[<pid>] <message>", without a newline; the level is the
/// one the message implies (ClassifyLogMessage).
std::string FormatLogLine(const std::string& message);

/// The same at `level`: when the message does not already imply it, a marker
/// ("warning: ", ...) is put before it, so that the line reads back at `level`.
std::string FormatLogLine(const std::string& message, LogLevel level);

/// `message` as it reads back at `level`: unchanged when it already implies that level,
/// else with the level's marker before it (for call sites that know their level).
std::string MarkLogLevel(const std::string& message, LogLevel level);

/// What a message is, from its text.
struct LogEvent {
  LogLevel level = LogLevel::kInfo;
  /// A short stable name ("peer_up", "node_stopped"); "message" for a message the table
  /// does not know ("warning", "error", ... when it only has a marker).
  std::string event;
  /// Named parts of a known message, in the message's order ("peer" -> "n2").
  std::vector<std::pair<std::string, std::string>> fields;
};

/// Level, event and fields of `message` (a log line's message, without stamp and pid).
LogEvent ClassifyLogMessage(std::string_view message);

/// FormatLogLine's output split up.
struct LogRecord {
  std::string time;  // "2026-11-23T17:40:00.123Z"
  int64_t pid = 0;
  std::string message;  // as given to FormatLogLine
};

/// Splits a line FormatLogLine wrote. Any other text is taken whole as the message, stamped
/// now with our pid (returns false then).
bool ParseLogLine(std::string_view line, LogRecord* record);

/// `line` (FormatLogLine's form, or any text) in `format`: kText returns it as it is (a
/// foreign text is stamped now), kJson as one JSON object (no newline). Invalid UTF-8 bytes
/// become U+FFFD, so the object is always valid JSON.
std::string RenderLogLine(std::string_view line, LogFormat format);

/// `record` of `event` in `format`: kText is FormatLogLine's form again, kJson the object.
std::string RenderLogRecord(const LogRecord& record, const LogEvent& event, LogFormat format);

/// `text` as a JSON string literal, quotes included (control characters escaped, invalid
/// UTF-8 replaced by U+FFFD).
std::string JsonQuote(std::string_view text);

/// Every event name the table of known messages can give (for tests and docs).
std::vector<std::string> KnownLogEvents();

}  // namespace mesh::net

#endif  // LOCKMESH_NET_SUPPORT_LOG_LINE_H_
