// net/log_line: the start of every log line the node and the CLI write,
// "2026-11-23T17:40:00.123Z lockmesh[4242] <message>" (UTC wall clock, core/time_text.h).
//
// Reads the wall clock (CLOCK_REALTIME) and the process id; thread-safe.
#ifndef LOCKMESH_NET_LOG_LINE_H_
#define LOCKMESH_NET_LOG_LINE_H_

#include <cstdint>
#include <string>

namespace mesh::net {

/// The wall clock: nanoseconds since the epoch (CLOCK_REALTIME).
int64_t WallClockNs();

/// "<FormatLogTime(now)> lockmesh[<pid>] <message>", without a newline.
std::string FormatLogLine(const std::string& message);

}  // namespace mesh::net

#endif  // LOCKMESH_NET_LOG_LINE_H_
