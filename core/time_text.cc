#include "core/time_text.h"

#include <cstdio>
#include <ctime>

namespace mesh::core {
namespace {

// Floor division, so that times before 1970 keep a fraction in [0, 1 s).
int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

bool ToUtc(int64_t unix_s, struct tm* tm) {
  time_t t = static_cast<time_t>(unix_s);
  return gmtime_r(&t, tm) != nullptr;
}

}  // namespace

std::string FormatIsoUtc(int64_t unix_s) {
  struct tm tm;
  if (!ToUtc(unix_s, &tm)) return "1970-01-01T00:00:00Z";
  char buffer[64];
  strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

bool ParseIsoUtc(std::string_view text, int64_t* unix_s) {
  std::string s(text);
  int year, mon, day, hour, min, sec;
  char z = 0;
  int consumed = 0;
  if (sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c%n", &year, &mon, &day, &hour, &min, &sec, &z,
             &consumed) != 7 ||
      z != 'Z' || static_cast<size_t>(consumed) != s.size()) {
    return false;
  }
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 || min < 0 || min > 59 ||
      sec < 0 || sec > 60) {
    return false;
  }
  *unix_s = UnixFromUtc(year, mon, day, hour, min, sec);
  return true;
}

int64_t UnixFromUtc(int year, int month, int day, int hour, int minute, int second) {
  struct tm tm = {};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return static_cast<int64_t>(timegm(&tm));
}

std::string FormatLogTime(int64_t unix_ns) {
  int64_t seconds = FloorDiv(unix_ns, 1000000000);
  int64_t millis = (unix_ns - seconds * 1000000000) / 1000000;
  struct tm tm;
  if (!ToUtc(seconds, &tm)) return "1970-01-01T00:00:00.000Z";
  char buffer[64];
  size_t n = strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buffer + n, sizeof buffer - n, ".%03dZ", static_cast<int>(millis));
  return buffer;
}

std::string FormatUtcText(int64_t unix_s) {
  struct tm tm;
  if (!ToUtc(unix_s, &tm)) return std::to_string(unix_s);
  char buffer[64];
  strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buffer;
}

}  // namespace mesh::core
