// core/time_text: the one way to write times as text — ISO 8601 UTC for files and JSON,
// the log line's stamp, and the readable form in messages. (Timestamp *resources*,
// `_t_<format>[N]`, have their own formats: core/timestamp_format.h.)
//
// Pure functions: the caller reads the clock and passes the time; always UTC, never the
// local time zone. Thread-safe (gmtime_r / timegm).
#ifndef LOCKMESH_CORE_TIME_TEXT_H_
#define LOCKMESH_CORE_TIME_TEXT_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace mesh::core {

/// "2026-11-23T17:40:00Z": `unix_s` seconds since the epoch. A time gmtime cannot represent
/// is written "1970-01-01T00:00:00Z".
std::string FormatIsoUtc(int64_t unix_s);

/// Parses FormatIsoUtc's form, "YYYY-MM-DDTHH:MM:SSZ" (fields of one digit accepted; a leap
/// second 60 lands on the next minute's 00); false for anything else (a missing 'Z',
/// trailing text, a field out of range), `*unix_s` then unchanged.
bool ParseIsoUtc(std::string_view text, int64_t* unix_s);

/// The seconds since the epoch of a UTC calendar time (month 1-12, day 1-31); fields out of
/// range are normalised as timegm does (second 60 is the next minute's 00).
int64_t UnixFromUtc(int year, int month, int day, int hour, int minute, int second);

/// "2026-11-23T17:40:00.123Z": a log line's stamp, `unix_ns` nanoseconds since the epoch,
/// milliseconds truncated.
std::string FormatLogTime(int64_t unix_ns);

/// "2026-11-23 17:40:00 UTC", for messages (certificate validity); the plain number if
/// gmtime cannot represent it.
std::string FormatUtcText(int64_t unix_s);

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_TIME_TEXT_H_
