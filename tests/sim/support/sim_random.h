// tests/sim/support/sim_random: the simulator's only source of randomness. One seed drives
// a whole schedule: the simulator derives one generator per purpose (network, faults,
// clients, each node's Raft) from it, so that adding a draw in one place does not reshuffle
// the others.
#ifndef LOCKMESH_TESTS_SIM_SUPPORT_SIM_RANDOM_H_
#define LOCKMESH_TESTS_SIM_SUPPORT_SIM_RANDOM_H_

#include <cstdint>

#include "core/raft/raft.h"

namespace mesh::sim {

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough for scheduling.
class SimRandom : public core::raft::Random {
 public:
  explicit SimRandom(uint64_t seed) : state_(seed) {}

  uint64_t Next() override {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, n); 0 when n == 0.
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  /// Uniform in [lo, hi].
  uint64_t Between(uint64_t lo, uint64_t hi) { return lo + Below(hi - lo + 1); }
  /// Uniform in [0, 1).
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  /// True with probability p.
  bool Chance(double p) { return Unit() < p; }
  /// A generator for another purpose, derived from this one's next value and `salt`.
  SimRandom Fork(uint64_t salt) { return SimRandom(Next() ^ (salt * 0xd6e8feb86659fd93ull)); }

 private:
  uint64_t state_;
};

}  // namespace mesh::sim

#endif  // LOCKMESH_TESTS_SIM_SUPPORT_SIM_RANDOM_H_
