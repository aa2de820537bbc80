#include "core/redial_backoff.h"

#include <algorithm>

namespace mesh::core {

uint64_t RedialDelayMs(uint64_t min_ms, uint64_t max_ms, int failures, bool longest, double unit) {
  uint64_t base = max_ms;  // B2
  if (!longest) {
    const int shift = std::clamp(failures, 0, 20);  // B1
    base = std::min(max_ms, min_ms << shift);
  }
  unit = std::clamp(unit, 0.0, 1.0);
  const double factor = unit * 0.5 + 0.5;  // B3: [0.5, 1)
  return static_cast<uint64_t>(static_cast<double>(base) * factor);
}

}  // namespace mesh::core
