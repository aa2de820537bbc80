// core/raft/raft_validate: the checks that keep nonsense out of a Raft node — messages from
// the network (never trusted) and state recovered from storage — and small helpers on
// configurations. Pure functions; no state.
#ifndef LOCKMESH_CORE_RAFT_RAFT_VALIDATE_H_
#define LOCKMESH_CORE_RAFT_RAFT_VALIDATE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/raft/raft.h"
#include "mesh/status.h"
#include "raft.pb.h"

namespace mesh::core::raft {

/// Indexes and terms at or above this are refused (keeps index arithmetic far from overflow).
inline constexpr uint64_t kMaxIndex = uint64_t{1} << 62;

/// The member with `id`, or nullptr.
const pb::Member* FindMember(const pb::ClusterConfig& config, const std::string& id);
/// True if `id` is a voter of `config`.
bool FindVoter(const pb::ClusterConfig& config, const std::string& id);
/// Number of voters.
size_t CountVoters(const pb::ClusterConfig& config);

/// Ok if every member has a non-empty unique id and there is at least one voter;
/// InvalidArgument otherwise.
Status ValidateConfig(const pb::ClusterConfig& config);

/// True if the APPEND `m` is well formed: log_term <= term, entries contiguous after
/// m.index(), entry terms non-decreasing from log_term and <= term, known entry types, every
/// CONFIG entry a valid configuration (appended to `configs` as (index, config)).
bool ValidateAppend(const pb::RaftMessage& m,
                    std::vector<std::pair<uint64_t, pb::ClusterConfig>>* configs);

/// True if `meta` (received in a message of term `term`) is a possible snapshot.
bool ValidateSnapshotMeta(const pb::SnapshotMeta& meta, uint64_t term);

/// Checks recovered state (Corruption with the reason if inconsistent) and returns the
/// configurations of its CONFIG entries.
Status ValidatePersistentState(const PersistentState& state,
                               std::vector<std::pair<uint64_t, pb::ClusterConfig>>* configs);

}  // namespace mesh::core::raft

#endif  // LOCKMESH_CORE_RAFT_RAFT_VALIDATE_H_
