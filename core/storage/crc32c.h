// core/storage/crc32c: CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78),
// the checksum of WAL records and snapshot files.
//
// Debian 12 ships no C/C++ CRC-32C library (no libcrc32c-dev), so this is our own: the
// SSE4.2 `crc32` instruction when the CPU has it (checked once with cpuid, no syscall),
// else slicing-by-8 tables. Both give identical results (RFC 3720 check value:
// Value("123456789") == 0xE3069283). Pure functions; thread-safe.
#ifndef LOCKMESH_CORE_STORAGE_CRC32C_H_
#define LOCKMESH_CORE_STORAGE_CRC32C_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mesh::core::crc32c {

/// Returns the CRC-32C of the concatenation A+data, where `crc` is the CRC-32C of A
/// (0 for the empty string). `data` may be null when `n` is 0.
uint32_t Extend(uint32_t crc, const void* data, size_t n);

/// Returns the CRC-32C of `data`.
inline uint32_t Value(std::string_view data) { return Extend(0, data.data(), data.size()); }

/// The portable table-driven implementation, exposed so tests can compare it with the
/// hardware path. Same contract as Extend().
uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n);

/// True if Extend() uses the SSE4.2 instruction on this CPU.
bool HardwareAccelerated();

}  // namespace mesh::core::crc32c

#endif  // LOCKMESH_CORE_STORAGE_CRC32C_H_
