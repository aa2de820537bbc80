#include "core/hex.h"

namespace mesh::core {
namespace {

constexpr char kLowerDigits[] = "0123456789abcdef";
constexpr char kUpperDigits[] = "0123456789ABCDEF";

}  // namespace

int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendHexByte(std::string* out, uint8_t byte, HexCase letters) {
  const char* digits = letters == HexCase::kUpper ? kUpperDigits : kLowerDigits;
  out->push_back(digits[byte >> 4]);
  out->push_back(digits[byte & 15]);
}

std::string HexEncode(std::string_view bytes, HexCase letters) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) AppendHexByte(&out, static_cast<uint8_t>(c), letters);
  return out;
}

Status HexDecode(std::string_view hex, std::string* bytes) {
  if (hex.size() % 2 != 0) {
    return Status::InvalidArgument("odd number of hex digits (" + std::to_string(hex.size()) + ")");
  }
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int high = HexDigitValue(hex[i]);
    int low = HexDigitValue(hex[i + 1]);
    if (high < 0 || low < 0) {
      size_t at = high < 0 ? i : i + 1;
      return Status::InvalidArgument("'" + std::string(1, hex[at]) + "' at position " +
                                     std::to_string(at) + " is not a hex digit");
    }
    out.push_back(static_cast<char>(high * 16 + low));
  }
  *bytes = std::move(out);
  return Status::OK();
}

std::string HexUint64(uint64_t v) {
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[i] = kLowerDigits[v & 15];
  return out;
}

bool ParseHexUint64(std::string_view hex, uint64_t* v) {
  if (hex.empty() || hex.size() > 16) return false;
  uint64_t value = 0;
  for (char c : hex) {
    int d = HexDigitValue(c);
    if (d < 0) return false;
    value = (value << 4) | static_cast<uint64_t>(d);
  }
  *v = value;
  return true;
}

}  // namespace mesh::core
