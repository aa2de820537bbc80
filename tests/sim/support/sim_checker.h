// tests/sim/support/sim_checker: the invariants the simulator checks after every step.
//
// Raft (Ongaro's thesis, figure 3.2), each checked incrementally so that a check costs O(1)
// per entry:
//  - election safety: at most one leader per term;
//  - log matching: every persisted entry is remembered by (index, term) with a digest of its
//    type and data and the term of the entry before it on that node; any node persisting the
//    same (index, term) must have the same digest and the same previous term (by induction
//    the logs are then identical up to that index);
//  - leader completeness: a node that becomes leader of term T holds the highest entry of a
//    term below T that any node has applied, with its term (log matching covers the entries
//    before it);
//  - state machine safety: every node applies the same entry at each index.
// Locks (docs/design.md §3, §4), against a reference LockTable fed with the committed log in
// order:
//  - every node's ApplyResult for an entry equals the reference's (no acknowledged grant or
//    release is lost or changed, also across snapshots and restarts);
//  - fencing tokens strictly increase per resource in log order;
//  - no grant to a session opened before its node's latest ExpireNode;
//  - never two incompatible holders at one virtual instant, where a client holds a lock
//    from the moment its node applied the grant (and its lease was valid) until it issued the
//    release or its node declared the lock lost; a new holder's token is above every token
//    handed out earlier for an incompatible mode.
// The first violation is kept (with the virtual time); the simulator stops there.
#ifndef LOCKMESH_TESTS_SIM_SUPPORT_SIM_CHECKER_H_
#define LOCKMESH_TESTS_SIM_SUPPORT_SIM_CHECKER_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/lock_table.h"
#include "core/storage/log_store.h"
#include "raft.pb.h"

namespace mesh::sim {

class Checker {
 public:
  Checker();

  /// The virtual time stamped on violations found by the calls that follow.
  void set_now(uint64_t now) { now_ = now; }

  /// `node` is leader of `term` (called whenever a node is seen in that role).
  void OnLeader(uint64_t now, const std::string& node, uint64_t term);
  /// `node` has persisted `entries` into `store` (their predecessors are in `store` too).
  void OnPersisted(const std::string& node, const core::LogStore& store,
                   const std::vector<pb::Entry>& entries);
  /// `node` just became leader of `leader_term` with its log in `store`: it must hold every entry
  /// applied anywhere whose term is below `leader_term` (a leader of an old term, elected late —
  /// its vote grants waited while it was frozen —, need not hold what later terms committed).
  void CheckLeaderCompleteness(const std::string& node, const core::LogStore& store,
                               uint64_t leader_term);
  /// `node` applied `entry`; for COMMAND entries `command` and `result` are what its lock
  /// table did (nullptr otherwise).
  void OnApplied(const std::string& node, const pb::Entry& entry, const pb::Command* command,
                 const core::ApplyResult* result);

  /// `client` (a unique name) starts holding `lock_id` on `resource` in `mode`.
  void BeginHold(uint64_t now, const std::string& client, const std::string& resource,
                 pb::LockMode mode, uint64_t lock_id, uint64_t token);
  /// `client` stops holding `lock_id` on `resource` (`why`: released, lost, crashed...).
  void EndHold(uint64_t now, const std::string& client, const std::string& resource,
               uint64_t lock_id);

  /// Records a violation found elsewhere (the first one wins).
  void Fail(uint64_t now, const std::string& what);

  bool failed() const { return !violation_.empty(); }
  const std::string& violation() const { return violation_; }
  /// Highest index applied by any node.
  uint64_t max_applied() const { return committed_.empty() ? 0 : committed_.size() - 1; }
  /// Grants handed to clients (BeginHold calls).
  uint64_t holds() const { return holds_begun_; }
  /// Number of distinct leaders (terms with a leader) seen.
  size_t leader_terms() const { return leader_of_term_.size(); }

 private:
  struct Digest {
    uint64_t term = 0;
    uint64_t hash = 0;
    bool set = false;
  };
  struct Hold {
    std::string client;
    pb::LockMode mode;
    uint64_t lock_id;
    uint64_t token;
  };
  static uint64_t HashEntry(const pb::Entry& e);
  static uint64_t HashResult(const core::ApplyResult& r);
  void ApplyReference(uint64_t now, const pb::Entry& entry, const pb::Command* command);

  uint64_t now_ = 0;
  std::string violation_;
  std::map<uint64_t, std::string> leader_of_term_;
  // (index, term) -> (digest of type+data, previous entry's term).
  std::unordered_map<uint64_t, std::vector<std::pair<uint64_t, std::pair<uint64_t, uint64_t>>>>
      persisted_;
  std::vector<Digest> committed_;      // by index; [0] unused
  std::vector<uint64_t> ref_results_;  // by index: hash of the reference ApplyResult (0: none)
  core::LockTable reference_;
  std::map<std::string, uint64_t> last_grant_token_;  // resource -> token, log order
  std::map<std::string, uint64_t> expired_at_;        // node -> index of last ExpireNode
  std::map<std::pair<std::string, uint64_t>, uint64_t> opened_at_;  // session -> index
  std::map<std::string, std::vector<Hold>> holders_;                 // resource -> holds
  std::map<std::string, std::map<int, uint64_t>> max_token_by_mode_;
  uint64_t holds_begun_ = 0;
};

}  // namespace mesh::sim

#endif  // LOCKMESH_TESTS_SIM_SUPPORT_SIM_CHECKER_H_
