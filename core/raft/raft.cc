// core/raft/raft: see raft.h.
#include "core/raft/raft.h"

namespace mesh::core::raft {

Random::~Random() = default;

}  // namespace mesh::core::raft
