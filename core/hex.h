// core/hex: the one hex encoder and decoder (fingerprints, ids, segment names, escapes).
//
// Pure functions; thread-safe.
#ifndef LOCKMESH_CORE_HEX_H_
#define LOCKMESH_CORE_HEX_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "mesh/status.h"

namespace mesh::core {

/// Which digits HexEncode writes for 10..15.
enum class HexCase { kLower, kUpper };

/// The value of one hex digit, either case ('a' and 'A' are 10); -1 for anything else.
int HexDigitValue(char c);

/// Appends the two hex digits of `byte` to `*out`.
void AppendHexByte(std::string* out, uint8_t byte, HexCase letters = HexCase::kLower);

/// Two hex digits a byte: HexEncode("\x01\xab") == "01ab".
std::string HexEncode(std::string_view bytes, HexCase letters = HexCase::kLower);

/// Decodes an even number of hex digits (either case) into `*bytes`. InvalidArgument for an
/// odd length or a character that is not a hex digit (named with its position); `*bytes` is
/// then unchanged.
Status HexDecode(std::string_view hex, std::string* bytes);

/// `v` as exactly 16 lowercase hex digits, zero-padded: "00000000000000ff".
std::string HexUint64(uint64_t v);

/// Parses 1 to 16 hex digits (either case) into `*v`; false for anything else (empty, too
/// long, a sign, spaces), `*v` then unchanged.
bool ParseHexUint64(std::string_view hex, uint64_t* v);

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_HEX_H_
