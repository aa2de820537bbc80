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
// Durability (ground truth the nodes cannot see: what each node's FaultFileSystem holds
// synced, reported by the driver model after every sync that left no write unsynced and
// after every recovery):
//  - durable quorum: when an entry is applied for the first time anywhere (on the leader,
//    in the step that commits it), it is durable on a quorum of the voters of the applying
//    node's configuration (the one its commit counted). An acknowledgement sent before the
//    fsync, or a leader counting its own unsynced copy, commits what a crash can still
//    lose, and fails here even when no crash follows;
//  - durable means durable: a restarted node's recovered log holds every committed entry
//    its disk was recorded to hold durably before the crash.
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
  /// `node` applied `entry` with `config` its configuration (the latest in its log); for
  /// COMMAND entries `command` and `result` are what its lock table did (nullptr otherwise).
  void OnApplied(const std::string& node, const pb::Entry& entry, const pb::ClusterConfig& config,
                 const pb::Command* command, const core::ApplyResult* result);

  /// `node`'s disk holds durably what `store` holds: called after a sync when its file
  /// system has no write left unsynced (so the store's log, snapshot and entries, is
  /// exactly what survives a crash).
  void OnDurable(const std::string& node, const core::LogStore& store);
  /// `node` reopened `store` from its disk after a crash (or for the first time): every
  /// committed entry recorded durable on it must be there; then its durable log is `store`'s.
  void OnRecovered(const std::string& node, const core::LogStore& store);
  /// While off, first applies are not checked for a durable quorum: the bootstrap
  /// configuration entry, which every initial voter writes and applies before any sync.
  void set_check_durable_quorum(bool on) { check_durable_quorum_ = on; }

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
  // What a node's disk holds durably: a snapshot through `snapshot` and the terms of the
  // entries after it (terms[k] is the term of entry snapshot + 1 + k).
  struct DurableLog {
    uint64_t snapshot = 0;
    uint64_t snapshot_term = 0;
    std::vector<uint64_t> terms;
    bool Holds(uint64_t index, uint64_t term) const;
    void Assign(const core::LogStore& store);
  };
  void CheckDurableQuorum(const std::string& node, const pb::Entry& entry,
                          const pb::ClusterConfig& config);
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
  bool check_durable_quorum_ = true;
  std::unordered_map<std::string, DurableLog> durable_;  // node id -> its disk's durable log
};

}  // namespace mesh::sim

#endif  // LOCKMESH_TESTS_SIM_SUPPORT_SIM_CHECKER_H_
