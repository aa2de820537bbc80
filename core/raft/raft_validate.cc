// core/raft/raft_validate: see raft_validate.h.
#include "core/raft/raft_validate.h"

#include <set>

namespace mesh::core::raft {
namespace {

bool KnownEntryType(int type) {
  return type == pb::ENTRY_COMMAND || type == pb::ENTRY_CONFIG || type == pb::ENTRY_NOOP;
}

bool ParseConfig(const std::string& data, pb::ClusterConfig* config) {
  return config->ParseFromString(data) && ValidateConfig(*config).ok();
}

}  // namespace

const pb::Member* FindMember(const pb::ClusterConfig& config, const std::string& id) {
  for (const pb::Member& m : config.members()) {
    if (m.id() == id) return &m;
  }
  return nullptr;
}

bool FindVoter(const pb::ClusterConfig& config, const std::string& id) {
  const pb::Member* m = FindMember(config, id);
  return m != nullptr && m->voter();
}

size_t CountVoters(const pb::ClusterConfig& config) {
  size_t n = 0;
  for (const pb::Member& m : config.members()) n += m.voter() ? 1 : 0;
  return n;
}

Status ValidateConfig(const pb::ClusterConfig& config) {
  std::set<std::string> ids;
  for (const pb::Member& m : config.members()) {
    if (m.id().empty()) return Status::InvalidArgument("raft config: a member has no id");
    if (!ids.insert(m.id()).second) {
      return Status::InvalidArgument("raft config: member " + m.id() + " appears twice");
    }
  }
  if (CountVoters(config) == 0) return Status::InvalidArgument("raft config: no voter");
  return Status::OK();
}

bool ValidateAppend(const pb::RaftMessage& m,
                    std::vector<std::pair<uint64_t, pb::ClusterConfig>>* configs) {
  if (m.log_term() > m.term() || m.index() >= kMaxIndex || m.term() >= kMaxIndex) return false;
  if (static_cast<uint64_t>(m.entries_size()) >= kMaxIndex - m.index()) return false;
  uint64_t term = m.log_term();
  for (int i = 0; i < m.entries_size(); ++i) {
    const pb::Entry& e = m.entries(i);
    if (e.index() != m.index() + 1 + i || e.term() < term || e.term() > m.term() ||
        !KnownEntryType(e.type())) {
      return false;
    }
    term = e.term();
    if (e.type() == pb::ENTRY_CONFIG) {
      pb::ClusterConfig config;
      if (!ParseConfig(e.data(), &config)) return false;
      configs->emplace_back(e.index(), std::move(config));
    }
  }
  return true;
}

bool ValidateSnapshotMeta(const pb::SnapshotMeta& meta, uint64_t term) {
  return meta.index() > 0 && meta.index() < kMaxIndex && meta.term() > 0 && meta.term() <= term &&
         ValidateConfig(meta.config()).ok();
}

Status ValidatePersistentState(const PersistentState& state,
                               std::vector<std::pair<uint64_t, pb::ClusterConfig>>* configs) {
  const pb::SnapshotMeta& snap = state.snapshot;
  if (snap.index() >= kMaxIndex || state.hard_state.term >= kMaxIndex) {
    return Status::Corruption("raft state: index or term out of range");
  }
  if (snap.index() > 0 && (snap.term() == 0 || !ValidateConfig(snap.config()).ok())) {
    return Status::Corruption("raft state: snapshot at index " + std::to_string(snap.index()) +
                              " has no term or no valid configuration");
  }
  if (snap.index() == 0 && snap.term() != 0) {
    return Status::Corruption("raft state: snapshot of index 0 with a term");
  }
  uint64_t term = snap.term();
  for (size_t i = 0; i < state.entries.size(); ++i) {
    const pb::Entry& e = state.entries[i];
    if (e.index() != snap.index() + 1 + i) {
      return Status::Corruption("raft state: entry " + std::to_string(e.index()) + " where " +
                                std::to_string(snap.index() + 1 + i) + " was expected");
    }
    if (e.term() < term || e.term() >= kMaxIndex) {
      return Status::Corruption("raft state: entry " + std::to_string(e.index()) + " has term " +
                                std::to_string(e.term()) + " after term " + std::to_string(term));
    }
    if (!KnownEntryType(e.type())) {
      return Status::Corruption("raft state: entry " + std::to_string(e.index()) +
                                " has an unknown type");
    }
    term = e.term();
    if (e.type() == pb::ENTRY_CONFIG) {
      pb::ClusterConfig config;
      if (!ParseConfig(e.data(), &config)) {
        return Status::Corruption("raft state: entry " + std::to_string(e.index()) +
                                  " is not a valid configuration");
      }
      configs->emplace_back(e.index(), std::move(config));
    }
  }
  return Status::OK();
}

}  // namespace mesh::core::raft
