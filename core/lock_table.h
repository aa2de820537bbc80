// core/lock_table: the replicated lock state machine of docs/design.md §3.
//
// LockTable is applied, in log order, to committed Commands (proto/lockmesh.proto). It is
// deterministic: the same commands at the same indexes give the same state and effects on
// every node. It never reads a clock (timestamp resources use the stamp inside Acquire),
// never does I/O, and never allocates ids of its own: a lock's id is the log index of its
// Acquire entry, and its fencing token is the log index of the entry whose application
// granted it, plus the table's token offset (0 unless a token floor raised it, below).
// Tokens are therefore strictly increasing per resource across leader changes and restarts,
// as long as log indexes are (compatible holders granted by one entry share that entry's
// token).
//
// Token floor (`lockmesh node --token-floor N`, for a cluster rebuilt after its state was
// lost: its tokens must stay above the old cluster's): a ClaimClientIds at index i with
// token_floor F > 0 raises the offset to at least F - i, so every token granted after it is
// above F. The offset only rises (a lower floor later changes nothing), is part of the
// replicated state (applied in log order on every member, kept in snapshots), and a node's
// own sessions all follow its claim, so every lock taken through a node started with a floor
// gets a token above it. A floor above kMaxTokenFloor is refused (ERROR, no effect).
//
// Semantics (docs/design.md §3):
//  - Resource types follow from the name (core/resource_name.h). Simple and hierarchical
//    resources honour the six modes; the other types use EX whatever was asked. Quantity is
//    read only for numeric resources (0 means 1).
//  - Requests on one queue (a resource; for hierarchical names, every path under one root)
//    are strictly FIFO: a request is granted only if it is compatible with every holder and
//    no earlier request is waiting (in a hierarchy: no earlier request on the same,
//    an ancestor or a descendant path). So later readers never starve a queued writer.
//  - A queue "exists" while it has holders or waiting requests, and, when the Acquire that
//    created it carried an idle_lifespan_ms (FLoM's -i), for that long after the Release or
//    Cancel that emptied it: until that command's stamp plus the lifespan, compared with a
//    later Acquire's stamp (a session's end carries no stamp and starts no lifespan). An
//    Acquire with no_create on a queue that does not exist is answered CANT_WAIT without
//    wait, and otherwise waits (QUEUED) until an Acquire without no_create creates the queue; that creator is handled
//    first, then the requests that waited join the queue behind it in arrival order.
//  - Sequences hand out 1, 2, ... never reusing a value; transactional sequences (_S_) hand
//    out the smallest recycled value first. A value is recycled when its holder releases
//    with rollback or its session/node ends; a plain release consumes it. Timestamps are
//    formatted from the Acquire's stamp (moved forward past the previous value when needed,
//    so a request granted from the queue gets the tick after the previous holder's value).
//    Sequence and timestamp counters outlive idle periods; other idle queues are dropped
//    (a set's round robin then restarts at its first element).
//  - Sessions: OpenSession creates one; every other command naming an unknown or closed
//    session is answered NO_SESSION and changes nothing. A node's client ids must rise: an
//    OpenSession at or below the highest id the node opened is refused (a late retry).
//  - Client ids come from the log, never from a clock: ClaimClientIds bumps a per-node
//    epoch E, and the node hands out (E << kClientIdEpochBits) | k, k = 1, 2, ... With
//    expire_older (a node's first claim of a run) the claim also ends, as LOST, every
//    session of the node below E << kClientIdEpochBits and refuses OpenSession below it from
//    then on. Its epoch is above the previous one and above every id the node opened, so a
//    node's ids never repeat, whatever its clocks did. The table remembers the nonces of a
//    node's last kRememberedClaims claims (in snapshots too): a retry of any of them, even
//    one applied after a newer claim, is answered with its epoch and ends nothing.
//  - Acquire, Release and Cancel carry (session, seq); each seq takes effect at most once
//    (see ApplyResult::result).
//
// Threading: not thread-safe; owned and used by one thread (the node's loop thread).
#ifndef LOCKMESH_CORE_LOCK_TABLE_H_
#define LOCKMESH_CORE_LOCK_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/resource_name.h"
#include "lockmesh.pb.h"
#include "mesh/status.h"

namespace mesh::core {

/// Client ids of epoch E (ClaimClientIds) are (E << kClientIdEpochBits) | k, with
/// 1 <= k <= kMaxClientIdInEpoch.
constexpr int kClientIdEpochBits = 32;
constexpr uint64_t kMaxClientIdInEpoch = (uint64_t{1} << kClientIdEpochBits) - 1;
/// The highest epoch a node may claim (E << kClientIdEpochBits must fit in 64 bits).
constexpr uint64_t kMaxClientIdEpoch = (uint64_t{1} << (64 - kClientIdEpochBits)) - 1;
/// How many of a node's latest ClaimClientIds the table remembers (nonce and epoch): a
/// retry of any of them is answered with its epoch and has no effect.
constexpr size_t kRememberedClaims = 16;
/// The highest token floor a ClaimClientIds may carry (tokens stay far from 2^64).
constexpr uint64_t kMaxTokenFloor = uint64_t{1} << 62;

/// A lock granted by an applied entry, to the issuer or to a waiter that was queued; also
/// used for the locks that an entry released because their session or node ended.
struct Grant {
  /// Who holds it now (or held it, in ApplyResult::released).
  pb::SessionKey session;
  /// Log index of the Acquire that asked for it.
  uint64_t lock_id = 0;
  /// The Acquire's per-session seq.
  uint64_t acquire_seq = 0;
  /// Fencing token: index of the entry that granted it. Several waiters granted by one
  /// entry (e.g. readers behind a released writer) share that entry's index.
  uint64_t token = 0;
  /// The resource as requested (for hierarchical resources the full path).
  std::string resource;
  /// Set element, sequence value (decimal) or timestamp text; "" for other types.
  std::string element;
};

/// A queued request that ended without a grant (session closed, node expired).
struct Withdrawal {
  /// The session that asked.
  pb::SessionKey session;
  /// Log index of the Acquire.
  uint64_t lock_id = 0;
  /// The Acquire's per-session seq.
  uint64_t acquire_seq = 0;
  /// CANCELLED (CloseSession) or LOST (ExpireNode).
  pb::ResultCode code = pb::CANCELLED;
};

/// Everything one applied entry did.
struct ApplyResult {
  /// The answer to the entry's issuer:
  ///  - OpenSession: GRANTED, meaning "the session is open" (also when it already was; an
  ///    existing session is left unchanged).
  ///  - Acquire: GRANTED (lock_id, token, element), QUEUED (lock_id; a Grant follows in a
  ///    later entry, or a Withdrawal), BUSY, IMPOSSIBLE, CANT_WAIT, INVALID (message says
  ///    why), NO_SESSION. lock_id is set to the entry's index in every answer.
  ///  - Release: RELEASED (with the released lock's token and element), CANCELLED (a queued
  ///    request was withdrawn), NOT_FOUND (unknown lock or another session's), NO_SESSION.
  ///  - Cancel: CANCELLED, or GRANTED with token and element when the grant came first;
  ///    NOT_FOUND, NO_SESSION.
  ///  - CloseSession: RELEASED, or NO_SESSION. ExpireNode: RELEASED (even with no session).
  ///  - ClaimClientIds: GRANTED with client_id_epoch; a retry (the nonce of one of the
  ///    node's last kRememberedClaims claims again, e.g. a duplicate proposal of an earlier
  ///    run applied late) gets that claim's epoch and has no effect: it ends no session.
  ///    ERROR for an empty node id, a token_floor above kMaxTokenFloor, or when the node's
  ///    epochs are used up (epoch above kMaxClientIdEpoch). A claim's token_floor is applied
  ///    (see "Token floor" above) by every claim that is not refused, retries included.
  ///  - Acquire/Release/Cancel whose seq is the session's last applied seq: the recorded
  ///    answer of that seq, with no effect. A lower seq: STALE_SEQ "stale sequence number"
  ///    (seq 0: ERROR), with no effect.
  ///  - An index <= applied_index(): ERROR, and nothing changes (not even applied_index).
  ///  - A Command without a body: ERROR.
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
  /// The resource as requested (hierarchical: the full path).
  std::string resource;
  /// True for a held lock, false for a queued request.
  bool held = false;
  /// Effective mode (EX for the types that have only EX).
  pb::LockMode mode = pb::EX;
  /// Units of a numeric resource (1 for other types).
  uint32_t quantity = 1;
  /// Log index of the Acquire.
  uint64_t lock_id = 0;
  /// Fencing token (0 while queued).
  uint64_t token = 0;
  /// Since when (Unix seconds, by the proposing nodes' clocks, alike on every replica):
  /// held, since its grant; queued, since its request. 0: unknown (no stamp seen yet).
  uint32_t since_unix_s = 0;
  /// Set element, sequence value or timestamp ("" otherwise or while queued).
  std::string element;
  /// The owning session.
  pb::SessionKey session;
  /// The session's client process id, user id and name (OpenSession).
  uint32_t pid = 0;
  uint32_t uid = 0;
  std::string client_name;
};

/// Where a paged listing resumes (LockTable::ListPage). Listing order is by queue key (a
/// resource's name; for hierarchical names "/" + the first component), then resource name,
/// then lock id. A cursor means "strictly after lock `lock_id` on `resource` in queue
/// `queue`"; {queue, "", 0} is the start of that queue, and the default cursor the start of
/// the listing. A cursor is only a position: any value is accepted, and a lock that went
/// away since does not matter.
struct ListCursor {
  std::string queue;
  std::string resource;
  uint64_t lock_id = 0;
};

/// One page request of a listing (LockTable::ListPage).
struct ListQuery {
  /// Rows strictly after this position (ListResult::next of the previous page).
  ListCursor after;
  /// Only resources whose name (as requested; hierarchical: the full path) starts with
  /// this; "" for all.
  std::string prefix;
  /// Only locks of sessions hosted by this node; "" for all.
  std::string node_id;
  /// At most this many rows (0 is taken as 1).
  size_t max_rows = 1000;
  /// At most this many bytes of rows, counted with ListRowBytes; a page always has at
  /// least one row if one matches, even one larger than this.
  size_t max_bytes = 32 * 1024;
  /// The page ends, with ListResult::more set, at the first queue boundary after this many
  /// locks and queues have been examined, even with fewer rows (none, if filters match
  /// nothing): this bounds the work of one page. Every page examines at least one queue.
  size_t max_examined = 64 * 1024;
};

/// One page of a listing.
struct ListResult {
  /// Held locks and queued requests, in listing order (ListCursor).
  std::vector<LockRow> rows;
  /// False: the listing is complete (no row after `next` matches). True: ask again with
  /// `after = next` (the next page may also be empty).
  bool more = false;
  /// Where the next page starts.
  ListCursor next;
};

/// Bytes that `row` takes in a listing page, an upper bound of its encoding as a
/// pb::LockInfo inside a pb::ListLocksReply (its strings plus kListRowOverheadBytes).
size_t ListRowBytes(const LockRow& row);
/// Upper bound of the bytes of a pb::LockInfo row beyond its strings (tags, lengths,
/// varints and the "held"/"waiting" state), for strings below 2 MiB.
constexpr size_t kListRowOverheadBytes = 96;

class LockTable {
 public:
  /// An empty table: no sessions, no resources, applied_index() == 0.
  LockTable();
  ~LockTable();
  LockTable(const LockTable&) = delete;
  LockTable& operator=(const LockTable&) = delete;

  /// Applies the entry at `index` (must be > applied_index()). Never fails: a command that
  /// cannot take effect is answered in ApplyResult::result.
  ApplyResult Apply(uint64_t index, const pb::Command& command);

  /// Index of the last applied entry (0 for an empty table).
  uint64_t applied_index() const;

  /// Writes the whole state (applied index, sessions with their last seq and answer,
  /// holders, queues including no_create requests waiting for creation, counters, cursors)
  /// into `out`, replacing its content. Sessions and resources are in key order, so equal
  /// tables give byte-identical snapshots.
  void Snapshot(pb::LockTableSnapshot* out) const;

  /// The encoded form of Snapshot(): the same bytes as `Snapshot(&s); s.SerializeAsString()`,
  /// written straight from the table without building the message (a snapshot of a million
  /// locks is built in a tenth of the time and without a second in-memory copy of the table).
  /// Replaces `out`'s content.
  void EncodeSnapshot(std::string* out) const;

  /// Replaces the whole state with `snapshot`, after which the table behaves exactly as the
  /// table that took it. Corruption (with the reason) if the snapshot does not describe a
  /// consistent table: unparsable resource names or answers, duplicate or out-of-range lock
  /// ids, unknown sessions, bad tokens, over-capacity or incompatible holders, a grantable
  /// request left waiting. On error the table is unchanged.
  Status Restore(const pb::LockTableSnapshot& snapshot);

  /// Held locks then queued requests, each part sorted by resource then lock id.
  std::vector<LockRow> List() const;

  /// One bounded page of the listing (held locks and queued requests together), filtered
  /// by `query` (see ListQuery, ListCursor). Paging through with each page's `next` lists
  /// every lock that exists throughout exactly once, in order, even while the table
  /// changes between pages; locks taken or ended meanwhile may or may not appear. Work is
  /// bounded by query.max_examined plus the size of the queue the page starts in (a queue
  /// is examined whole, as Apply does for a request on it).
  ListResult ListPage(const ListQuery& query) const;

  /// What every token is above from now on: the token an entry granting at
  /// applied_index() would get, i.e. applied_index() plus the token offset.
  uint64_t token_watermark() const;

  /// Number of open sessions.
  size_t session_count() const;
  /// The highest client id that has opened a session on `node_id`, or E << 32 minus one
  /// after an expiring ClaimClientIds of epoch E if that is higher (0 if none): OpenSession
  /// of a session at or below it is refused (a closed session is never re-opened).
  uint64_t MaxClientId(const std::string& node_id) const;
  /// The epoch of the latest ClaimClientIds applied for `node_id` (0 if none); `*nonce`, if
  /// given, receives that claim's nonce (0 if none).
  uint64_t ClientIdEpoch(const std::string& node_id, uint64_t* nonce = nullptr) const;
  /// Number of held locks. O(1): a count kept in step with the table.
  size_t held_count() const;
  /// Number of queued requests (including no_create requests waiting for creation). O(1).
  size_t waiting_count() const;

  /// True if the session is open.
  bool HasSession(const pb::SessionKey& session) const;
  /// True if node `node_id` has at least one open session.
  bool HasNodeSessions(const std::string& node_id) const;
  /// True if `session` holds lock `lock_id` (granted, not yet released or ended; a queued
  /// request is not held). O(log n) plus the size of the lock's queue.
  bool Holds(const pb::SessionKey& session, uint64_t lock_id) const;
  /// The ids of the locks `session` holds, ascending (none if the session is not open).
  std::vector<uint64_t> HeldLockIds(const pb::SessionKey& session) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The FLoM/VMS compatibility matrix: may `requested` be granted while `held` is held?
bool ModesCompatible(pb::LockMode held, pb::LockMode requested);

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_LOCK_TABLE_H_
