#include "core/timestamp_format.h"

#include <locale.h>
#include <time.h>

#include <cstring>
#include <limits>
#include <string>

namespace mesh::core {
namespace {

constexpr int64_t kNanosPerSecond = 1000000000;
constexpr int64_t kSecondNs = kNanosPerSecond;
constexpr int64_t kMinuteNs = 60 * kSecondNs;
constexpr int64_t kHourNs = 60 * kMinuteNs;
constexpr int64_t kDayNs = 24 * kHourNs;
constexpr int kMaxFractionDigits = 6;
// Day steps cover the coarsest conversion (%C: a century, 36525 days) with room to spare.
constexpr int kMaxSearchSteps = 40000;

bool IsFormatChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '%' ||
         c == '#' || c == '.' || c == ':' || c == '_' || c == ' ' || c == '-';
}

bool IsFlag(char c) { return c == '_' || c == '-' || c == '0' || c == '^'; }

// Conversions that take the `E` and `O` modifiers: the POSIX ones (%Ec %EC %Ex %EX %Ey %EY;
// %Od %Oe %OH %OI %Om %OM %OS %Ou %OU %OV %Ow %OW %Oy) and those glibc also converts
// (FLoM passes the format to glibc's strftime). glibc prints any other combination as it
// is (`%Ea` stays "%Ea"), so those are refused.
constexpr const char kEConversions[] = "cCpPrRsTuxXyYzZ";
constexpr const char kOConversions[] = "bBCdegGhHIjklmMpPrRsSTuUVwWyzZ";

bool TakesModifier(char modifier, char conversion) {
  const char* allowed = modifier == 'E' ? kEConversions : kOConversions;
  return conversion != '\0' && std::strchr(allowed, conversion) != nullptr;
}

// One `%` conversion starting at format[i] == '%': `%[flag][E|O]c`, as glibc reads it (the
// flag comes before the modifier). Sets `*end` to the index of the conversion character
// and `*modifier` to 'E', 'O' or '\0'. Returns false if the format ends first (then `*end`
// is the last index read).
bool ParseConversion(std::string_view format, size_t i, size_t* end, char* modifier) {
  size_t j = i + 1;
  if (j < format.size() && IsFlag(format[j]) && j + 1 < format.size() && format[j] != '%') {
    ++j;
  }
  *modifier = '\0';
  if (j < format.size() && (format[j] == 'E' || format[j] == 'O') && j + 1 < format.size()) {
    *modifier = format[j];
    ++j;
  }
  *end = j;
  return j < format.size();
}

// Resolution of a conversion in nanoseconds; 0 for constant ones (%%, %z, %Z); -1 if the
// conversion is not accepted.
int64_t ConversionTick(char c) {
  switch (c) {
    case 'S':
    case 'T':
    case 's':
    case 'r':
    case 'X':
    case 'c':
      return kSecondNs;
    case 'M':
    case 'R':
      return kMinuteNs;
    case 'H':
    case 'I':
    case 'k':
    case 'l':
    case 'p':
    case 'P':
      return kHourNs;
    case 'a':
    case 'A':
    case 'b':
    case 'B':
    case 'C':
    case 'd':
    case 'D':
    case 'e':
    case 'F':
    case 'g':
    case 'G':
    case 'h':
    case 'j':
    case 'm':
    case 'u':
    case 'U':
    case 'V':
    case 'w':
    case 'W':
    case 'x':
    case 'y':
    case 'Y':
      return kDayNs;
    case 'z':
    case 'Z':
    case '%':
      return 0;
    default:
      return -1;
  }
}

// Number of consecutive 'f' at format[pos].
size_t CountF(std::string_view format, size_t pos) {
  size_t n = 0;
  while (pos + n < format.size() && format[pos + n] == 'f') ++n;
  return n;
}

int64_t Pow10(int n) {
  int64_t v = 1;
  for (int i = 0; i < n; ++i) v *= 10;
  return v;
}

// floor(a / b) for b > 0.
int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b < 0) --q;
  return q;
}

locale_t CLocale() {
  static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(0));
  return c_locale;
}

}  // namespace

Status ValidateTimestampFormat(std::string_view format) {
  bool varies = false;
  for (size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if (!IsFormatChar(c)) {
      return Status::InvalidArgument(
          std::string("timestamp format may only contain letters, digits and `%#.:_ -`, not ") +
          (static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? std::string("a control character")
                                                             : "`" + std::string(1, c) + "`"));
    }
    if (c == '%') {
      size_t j = 0;
      char modifier = '\0';
      if (!ParseConversion(format, i, &j, &modifier)) {
        return Status::InvalidArgument("timestamp format ends with an incomplete `%` conversion");
      }
      const int64_t tick = ConversionTick(format[j]);
      if (tick < 0) {
        return Status::InvalidArgument(
            std::string("timestamp format has an unsupported conversion `%") +
            std::string(format.substr(i + 1, j - i)) +
            "` (accepted: aAbBcCdDeFgGhHIjklmMpPrRsSTuUVwWxXyYzZ%, with E before " + kEConversions +
            " and O before " + kOConversions + ")");
      }
      if (modifier != '\0' && !TakesModifier(modifier, format[j])) {
        return Status::InvalidArgument(
            std::string("timestamp format has an unsupported conversion `%") +
            std::string(format.substr(i + 1, j - i)) + "`: `" + modifier + "` modifies only " +
            (modifier == 'E' ? kEConversions : kOConversions) +
            " (strftime would print it as it is)");
      }
      if (tick > 0) varies = true;
      i = j;
    } else if (c == '#') {
      const size_t n = CountF(format, i + 1);
      if (n == 0 || n > kMaxFractionDigits) {
        return Status::InvalidArgument(
            "`#` in a timestamp format must start a fraction of a second, `#f` .. `#ffffff`");
      }
      varies = true;
      i += n;
    }
  }
  if (!varies) {
    return Status::InvalidArgument(
        "timestamp format needs at least one time conversion (e.g. %S) or fraction (#f)");
  }
  return Status::OK();
}

int64_t TimestampTickNs(std::string_view format) {
  int64_t tick = kDayNs;
  for (size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if (c == '%') {
      size_t j = 0;
      char modifier = '\0';
      if (!ParseConversion(format, i, &j, &modifier)) break;
      const int64_t t = ConversionTick(format[j]);
      if (t > 0 && t < tick) tick = t;
      i = j;
    } else if (c == '#') {
      const size_t n = CountF(format, i + 1);
      if (n >= 1 && n <= kMaxFractionDigits) {
        const int64_t t = Pow10(9 - static_cast<int>(n));
        if (t < tick) tick = t;
      }
      i += n;
    }
  }
  return tick;
}

std::string FormatTimestamp(std::string_view format, int64_t unix_ns) {
  const int64_t seconds = FloorDiv(unix_ns, kNanosPerSecond);
  const int64_t fraction = unix_ns - seconds * kNanosPerSecond;  // 0 .. 999999999

  // Replace what strftime must not compute itself (fractions, %s) by literal digits.
  std::string pattern;
  pattern.reserve(format.size() + 16);
  for (size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if (c == '%') {
      size_t j = 0;
      char modifier = '\0';
      if (!ParseConversion(format, i, &j, &modifier)) {
        pattern += std::string(format.substr(i));
        break;
      }
      if (format[j] == 's') {  // %s, %Es, %Os
        pattern += std::to_string(seconds);
      } else {
        pattern += std::string(format.substr(i, j - i + 1));
      }
      i = j;
    } else if (c == '#') {
      const size_t n = CountF(format, i + 1);
      if (n >= 1 && n <= kMaxFractionDigits) {
        std::string digits = std::to_string(fraction / Pow10(9 - static_cast<int>(n)));
        if (digits.size() < n) digits.insert(0, n - digits.size(), '0');
        pattern += digits;
      } else {
        pattern += std::string(format.substr(i, n + 1));
      }
      i += n;
    } else {
      pattern += c;
    }
  }

  struct tm tm_utc;
  std::memset(&tm_utc, 0, sizeof(tm_utc));
  const time_t t = static_cast<time_t>(seconds);
  if (gmtime_r(&t, &tm_utc) == nullptr) return pattern;

  std::string out(64 + 16 * pattern.size(), '\0');
  for (int attempt = 0; attempt < 4; ++attempt) {
    const locale_t loc = CLocale();
    const size_t n = loc != static_cast<locale_t>(0)
                         ? strftime_l(out.data(), out.size(), pattern.c_str(), &tm_utc, loc)
                         : strftime(out.data(), out.size(), pattern.c_str(), &tm_utc);
    if (n > 0) {
      out.resize(n);
      return out;
    }
    out.assign(out.size() * 2, '\0');
  }
  return std::string();
}

bool NextUniqueTimestamp(std::string_view format, int64_t stamp_ns, bool has_last, int64_t last_ns,
                         const std::string& last_text, int64_t* out_ns, std::string* out_text) {
  int64_t s = stamp_ns;
  if (has_last && s < last_ns) s = last_ns;
  std::string text = FormatTimestamp(format, s);
  if (!has_last || text != last_text) {
    *out_ns = s;
    *out_text = std::move(text);
    return true;
  }
  const int64_t tick = TimestampTickNs(format);
  for (int step = 0; step < kMaxSearchSteps; ++step) {
    const int64_t q = FloorDiv(s, tick);
    if (q >= std::numeric_limits<int64_t>::max() / tick - 1) break;  // end of int64 time
    s = (q + 1) * tick;
    text = FormatTimestamp(format, s);
    if (text != last_text) {
      *out_ns = s;
      *out_text = std::move(text);
      return true;
    }
  }
  *out_ns = s;
  *out_text = std::move(text);
  return false;
}

}  // namespace mesh::core
