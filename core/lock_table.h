// core/lock_table: the replicated lock state machine of DESIGN.md §3.
//
// LockTable is applied, in log order, to committed Commands (proto/lockmesh.proto). It is
// deterministic: the same commands at the same indexes give the same state and effects on
// every node. It never reads a clock (timestamp resources use the stamp inside Acquire),
// never does I/O, and never allocates ids of its own: a lock's id is the log index of its
// Acquire entry, and its fencing token is the log index of the entry whose application
// granted it. Tokens are therefore strictly increasing per resource across leader changes
// and restarts, as long as log indexes are (compatible holders granted by one entry share
// that entry's index).
//
// Threading: not thread-safe; owned and used by one thread (the node's loop thread).
#ifndef LOCKMESH_CORE_LOCK_TABLE_H_
#define LOCKMESH_CORE_LOCK_TABLE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/resource_name.h"
#include "lockmesh.pb.h"
#include "mesh/status.h"

namespace mesh::core {

/// A lock granted by an applied entry, to the issuer or to a waiter that was queued.
struct Grant {
  pb::SessionKey session;  // who holds it now
  uint64_t lock_id = 0;    // log index of the Acquire that asked for it
  uint64_t acquire_seq = 0;  // the Acquire's per-session seq
  uint64_t token = 0;      // fencing token: index of the entry that granted it
  std::string resource;
  std::string element;     // set element, sequence value, timestamp; "" otherwise
};

/// A queued request that ended without a grant (session closed, cancelled).
struct Withdrawal {
  pb::SessionKey session;
  uint64_t lock_id = 0;
  uint64_t acquire_seq = 0;
  pb::ResultCode code = pb::CANCELLED;
};

/// Everything one applied entry did.
struct ApplyResult {
  /// The answer to the entry's issuer (for Acquire: GRANTED, QUEUED, BUSY, IMPOSSIBLE,
  /// CANT_WAIT, INVALID, NO_SESSION; Release: RELEASED, CANCELLED, NOT_FOUND; Cancel:
  /// CANCELLED, or GRANTED when the grant came first; a duplicate (seq already applied)
  /// repeats the recorded answer of that seq).
  pb::CommandResult result;
  /// Every lock this entry granted, in grant order, including one to the issuer.
  std::vector<Grant> grants;
  /// Every queued request this entry ended without a grant, other than the issuer's.
  std::vector<Withdrawal> withdrawals;
  /// Locks that this entry released because their session or node ended.
  std::vector<Grant> released;
};

/// One row of a listing (held locks and queued requests).
struct LockRow {
  std::string resource;
  bool held = false;
  pb::LockMode mode = pb::EX;
  uint32_t quantity = 1;
  uint64_t lock_id = 0;
  uint64_t token = 0;
  std::string element;
  pb::SessionKey session;
  uint32_t pid = 0;
  uint32_t uid = 0;
  std::string client_name;
};

class LockTable {
 public:
  LockTable();
  ~LockTable();
  LockTable(const LockTable&) = delete;
  LockTable& operator=(const LockTable&) = delete;

  /// Applies the entry at `index` (must be > applied_index()). Never fails: a command that
  /// cannot take effect is answered in ApplyResult::result.
  ApplyResult Apply(uint64_t index, const pb::Command& command);

  /// Index of the last applied entry (0 for an empty table).
  uint64_t applied_index() const;

  /// Writes the whole state (sessions, holders, queues, counters) into `out`.
  void Snapshot(pb::LockTableSnapshot* out) const;

  /// Replaces the whole state with `snapshot`. On error the table is unchanged.
  Status Restore(const pb::LockTableSnapshot& snapshot);

  /// Held locks then queued requests, sorted by resource then lock id.
  std::vector<LockRow> List() const;

  /// Counts for status output.
  size_t session_count() const;
  size_t held_count() const;
  size_t waiting_count() const;

  /// True if the session is open.
  bool HasSession(const pb::SessionKey& session) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The FLoM/VMS compatibility matrix: may `requested` be granted while `held` is held?
bool ModesCompatible(pb::LockMode held, pb::LockMode requested);

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_LOCK_TABLE_H_
