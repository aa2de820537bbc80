// core/timestamp_format: the formats of timestamp resources (`_t_<format>[N]`).
//
// A format is strftime text restricted to the characters `[%#.:A-Za-z0-9_ -]`, in which
// `#f` .. `#ffffff` stand for the first 1 .. 6 digits of the fraction of a second. Values
// are always computed in UTC and in the "C" locale, so every node formats a stamp alike.
//
// Pure functions (no clock, no time zone, no I/O); thread-safe.
#ifndef LOCKMESH_CORE_TIMESTAMP_FORMAT_H_
#define LOCKMESH_CORE_TIMESTAMP_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "mesh/status.h"

namespace mesh::core {

/// Checks a timestamp format (the text between `_t_` and `[N]`). Accepted: the characters
/// `[%#.:A-Za-z0-9_ -]`; `%` followed by an optional flag (`_`, `-`, `0`, `^`), an optional
/// modifier and one of the conversions `aAbBcCdDeFgGhHIjklmMpPrRsSTuUVwWxXyYzZ%`; `#`
/// followed by 1 to 6 `f`. The modifiers are strftime's: `E` (alternative era) before one of
/// `cCpPrRsTuxXyYzZ`, `O` (alternative digits) before one of `bBCdegGhHIjklmMpPrRsSTuUVwWyzZ`
/// (POSIX's and glibc's; in the "C" locale they format as the plain conversion); other
/// combinations, which strftime prints as they are, are refused.
/// At least one conversion that varies with time (anything but `%%`, `%z`, `%Z`) or one
/// fraction is required, since the values handed out must differ. InvalidArgument otherwise.
Status ValidateTimestampFormat(std::string_view format);

/// The smallest step, in nanoseconds, by which the text of a valid `format` can change:
/// 10^(9-d) for d fraction digits, 1 s with seconds, 60 s with minutes, 1 h with hours or
/// AM/PM, one day otherwise (coarser formats change at some day boundary).
int64_t TimestampTickNs(std::string_view format);

/// Formats `unix_ns` (nanoseconds since the epoch, UTC; negative is before 1970) with a
/// valid `format`. `%s` is printed as the seconds since the epoch (without the time zone
/// that strftime would apply); `#f..` as the truncated fraction digits.
std::string FormatTimestamp(std::string_view format, int64_t unix_ns);

/// Picks the value a timestamp resource hands out for a request stamped `stamp_ns`, given
/// the previous value (`has_last`, `last_ns`, `last_text`): the stamp, moved up to `last_ns`
/// if earlier, then to successive ticks of the format (TimestampTickNs) until its text
/// differs from `last_text`. Writes the chosen stamp and text. Returns false (and the last
/// candidate) only if no distinct text was found within a bounded search, which cannot
/// happen for valid formats unless stamps approach the end of int64 nanoseconds (2262).
bool NextUniqueTimestamp(std::string_view format, int64_t stamp_ns, bool has_last, int64_t last_ns,
                         const std::string& last_text, int64_t* out_ns, std::string* out_text);

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_TIMESTAMP_FORMAT_H_
