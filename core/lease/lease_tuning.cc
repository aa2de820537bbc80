#include "core/lease/lease_tuning.h"

#include <algorithm>

namespace mesh::core::lease {

LeaseOptions MeshLeaseOptions(uint64_t session_ttl_us, double max_drift,
                              uint64_t election_timeout_us) {
  LeaseOptions lo;
  lo.session_ttl = session_ttl_us;
  lo.max_drift = max_drift;
  lo.margin = std::max<uint64_t>(10'000, std::min<uint64_t>(100'000, lo.session_ttl / 20));
  lo.keepalive_interval = std::max<uint64_t>(50'000, lo.session_ttl / 10);
  lo.election_timeout = election_timeout_us;
  return lo;
}

}  // namespace mesh::core::lease
