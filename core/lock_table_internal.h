// core/lock_table_internal: private to core/lock_table*.cc (not installed, not for other
// modules). The state of a LockTable: its sessions, its queues and the index of its locks.
#ifndef LOCKMESH_CORE_LOCK_TABLE_INTERNAL_H_
#define LOCKMESH_CORE_LOCK_TABLE_INTERNAL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/lock_id_index.h"
#include "core/lock_table.h"
#include "core/resource_name.h"

namespace mesh::core {
namespace lock_table_internal {

// (node_id, client_id): ordered, so that sessions of one node are adjacent.
using SessionId = std::pair<std::string, uint64_t>;

inline SessionId IdOf(const pb::SessionKey& key) { return {key.node_id(), key.client_id()}; }

inline pb::SessionKey KeyOf(const SessionId& id) {
  pb::SessionKey key;
  key.set_node_id(id.first);
  key.set_client_id(id.second);
  return key;
}

inline std::string Describe(const SessionId& id) {
  return id.first + "/" + std::to_string(id.second);
}

// A lock: held (token != 0) or waiting. Kept small, since a table may hold millions: its
// resource name is not stored (it is its queue's key, or for a hierarchical lock "/" and its
// path; see NameOf), and its session is a pointer to that session's key in
// LockTable::Impl::sessions (a lock never outlives its session: ending a session takes its
// locks first, and a restore loads the sessions before the locks).
//
// What only some locks have (an element: set, sequence and timestamp resources; a path:
// hierarchical ones; a request time: timestamp ones; a quantity above 65534) is kept apart,
// allocated only for them: a simple lock is 48 bytes.
struct Lock {
  uint64_t lock_id = 0;
  uint64_t token = 0;
  uint64_t seq = 0;
  const SessionId* session = nullptr;  // never null in a table
  // Since when (Unix seconds): a request, since it was made; a holder, since its grant. By
  // the table's clock (Impl::clock_unix_s: the stamp of the last command that carried one),
  // so alike on every replica. Shown in listings only; no decision reads it.
  uint32_t since_unix_s = 0;
  pb::LockMode mode : 8 = pb::EX;  // effective mode (EX for types that have only EX)
  bool no_create = false;

  /// Effective quantity (1 for non-numeric types). Up to 65534 is kept in the lock itself,
  /// more in its detail (rare: a numeric resource's big requests).
  uint32_t quantity() const { return quantity_ != kQuantityInDetail ? quantity_ : detail_->quantity; }
  void set_quantity(uint32_t quantity);

  /// The set element, sequence value or timestamp handed out ("" before a grant, and for
  /// other types).
  const std::string& element() const { return detail_ ? detail_->element : Empty().element; }
  void set_element(std::string element);
  /// Hierarchical components (empty for other types).
  const std::vector<std::string>& path() const { return detail_ ? detail_->path : Empty().path; }
  void set_path(std::vector<std::string> path);
  /// A timestamp resource's request: the wall clock of the node that proposed it, from which
  /// its timestamp is made at the grant (0 for other types: the table keeps it for these only).
  int64_t stamp_unix_ns() const { return detail_ ? detail_->stamp_unix_ns : 0; }
  void set_stamp_unix_ns(int64_t ns);

 private:
  struct Detail {
    std::string element;
    std::vector<std::string> path;
    int64_t stamp_unix_ns = 0;
    uint32_t quantity = 0;  // while quantity_ is kQuantityInDetail
  };
  static constexpr uint16_t kQuantityInDetail = 0xFFFF;
  static const Detail& Empty();
  uint16_t quantity_ = 1;
  std::unique_ptr<Detail> detail_;  // null while element, path and stamp are empty, and
                                    // the quantity fits in quantity_
};
static_assert(sizeof(Lock) <= 48, "a Lock is in every held lock: keep it small");

inline bool IsPersistentType(ResourceType type) {
  return type == ResourceType::kSequence || type == ResourceType::kTransactionalSequence ||
         type == ResourceType::kTimestamp;
}

// What a queue of a numeric, set, sequence or timestamp resource keeps beyond a simple
// one's (a simple or hierarchical queue, most of a table, is 56 bytes without it).
struct ResourceExtra {
  uint64_t capacity = 1;              // as ResourceName::capacity
  uint32_t set_cursor = 0;            // sets: round-robin position
  std::vector<std::string> elements;  // sets: the elements, in order
  std::string format;                 // timestamps: strftime format, with #f fractions
  uint64_t next_sequence = 1;         // sequences: next fresh value
  std::set<uint64_t> recycled;        // _S_: values handed back
  int64_t last_stamp_ns = 0;          // timestamps: last value handed out ("" text: none yet)
  std::string last_stamp_text;
};

// One FIFO queue: a resource, or every node under one hierarchical root. Its name is its key
// in LockTable::Impl::resources (queue_key()); a map node does not move, so `key` stays valid.
struct Resource {
  const std::string* key = nullptr;  // its key in Impl::resources
  ResourceType type = ResourceType::kSimple;
  std::vector<Lock> holders;  // grant order
  // Requests not yet granted: FIFO waiters, and no_create requests waiting for the queue
  // to exist. Apart, and allocated at the first one: most queues only ever have holders.
  // FLoM's idle lifespan lives here too (allocated only for a queue created with one).
  struct Queues {
    std::vector<Lock> waiters;
    std::vector<Lock> parked;
    int64_t idle_lifespan_ms = 0;
    int64_t lingers_until_ns = 0;
  };
  std::unique_ptr<Queues> queues;        // null while there has been no waiter nor parked request
  std::unique_ptr<ResourceExtra> extra;  // null for simple and hierarchical queues

  const std::string& queue_key() const { return *key; }
  // The resource "exists" (FLoM: has a locker) while it has holders or queued requests.
  bool Exists() const { return !holders.empty() || !waiters().empty(); }
  bool Idle() const { return holders.empty() && waiters().empty() && parked().empty(); }

  /// Waiters, in FIFO order.
  const std::vector<Lock>& waiters() const { return queues ? queues->waiters : NoQueues().waiters; }
  /// no_create requests waiting for the queue to exist, in arrival order.
  const std::vector<Lock>& parked() const { return queues ? queues->parked : NoQueues().parked; }
  /// The same, to change (allocating the queues if there are none yet).
  std::vector<Lock>& mutable_waiters() { return MutableQueues().waiters; }
  std::vector<Lock>& mutable_parked() { return MutableQueues().parked; }
  /// FLoM's idle lifespan (Acquire.idle_lifespan_ms of the request that created the queue):
  /// once empty, the queue lingers, and no_create requests stamped before lingers_until_ns()
  /// find it existing. 0: none / not lingering.
  int64_t idle_lifespan_ms() const { return queues ? queues->idle_lifespan_ms : 0; }
  int64_t lingers_until_ns() const { return queues ? queues->lingers_until_ns : 0; }
  void set_idle_lifespan_ms(int64_t ms) {
    if (ms != 0 || queues) MutableQueues().idle_lifespan_ms = ms;
  }
  void set_lingers_until_ns(int64_t ns) {
    if (ns != 0 || queues) MutableQueues().lingers_until_ns = ns;
  }

 private:
  static const Queues& NoQueues();
  Queues& MutableQueues() {
    if (queues == nullptr) queues = std::make_unique<Queues>();
    return *queues;
  }
};

static_assert(sizeof(Resource) <= 56,
              "a Resource is in every simple lock's map node: keep it small");

// Makes `r` (fresh, `key` set) the queue of `rn`: its type, capacity and, for the types that
// have them, elements, format and counters.
void InitResource(const ResourceName& rn, Resource* r);

// The resource name a lock of queue `r` was requested under (hierarchical: the full path).
std::string NameOf(const Resource& r, const Lock& lock);

// A remembered ClaimClientIds: its nonce and the epoch it got.
struct ClaimRecord {
  uint64_t nonce = 0;
  uint64_t epoch = 0;
};

// What the table knows of one node's client ids (OpenSession, ClaimClientIds).
struct NodeIds {
  uint64_t max_client_id = 0;  // highest id opened, or below the latest expiring claim
  uint64_t epoch = 0;          // latest ClaimClientIds epoch (0: none)
  uint64_t epoch_nonce = 0;    // that claim's nonce
  // The claims before the latest, oldest first, at most kRememberedClaims - 1 of them: a
  // retry of any of them (a duplicate proposal applied late) is answered, not applied.
  std::vector<ClaimRecord> earlier_claims;
};

struct Session {
  uint32_t pid = 0;
  uint32_t uid = 0;
  std::string client_name;
  uint64_t last_seq = 0;
  pb::CommandResult last_result;
  // Its locks (held, waiting and parked): lock id -> the queue it is in. The only index of
  // locks by id: every command that names a lock names its session too.
  LockIdIndex<Resource> locks;
};

// Where a lock is.
enum class ListKind { kHolders, kWaiters, kParked };

// True if one path is a prefix of the other (same node, ancestor or descendant).
bool Overlaps(const std::vector<std::string>& a, const std::vector<std::string>& b);

// Whether `lock` cannot be granted next to the current holders of `r` (FIFO aside).
bool ConflictsWithHolders(const Resource& r, const Lock& lock);

// Whether one of the first `count` waiters of `r` must go before `lock` (strict FIFO; in a
// hierarchy only waiters on an overlapping path).
bool BlockedByEarlierWaiter(const Resource& r, size_t count, const Lock& lock);

// Parses a whole decimal uint64.
bool ParseU64(std::string_view text, uint64_t* value);

}  // namespace lock_table_internal

struct LockTable::Impl {
  using Grant = ::mesh::core::Grant;
  using ListKind = lock_table_internal::ListKind;
  using Lock = lock_table_internal::Lock;
  using NodeIds = lock_table_internal::NodeIds;
  using Resource = lock_table_internal::Resource;
  using Session = lock_table_internal::Session;
  using SessionId = lock_table_internal::SessionId;

  uint64_t applied_index = 0;                 // last applied entry
  uint64_t token_offset = 0;                  // token = granting index + this (token floor)
  // The stamp (proposer's wall clock, Unix seconds) of the last applied command that carried
  // one (Acquire, Release, Cancel); 0 before any. The time of Lock::since_unix_s, for
  // display only: a proposer's clock that jumps moves the times shown, never a decision.
  uint32_t clock_unix_s = 0;
  std::map<SessionId, Session> sessions;      // open sessions
  std::map<std::string, Resource> resources;  // by queue key
  // How many holders, and waiters plus parked requests, `resources` has in all: kept in step
  // where locks enter and leave those lists (GrantLock, Take, DoAcquire, GrantFromQueue,
  // Load), so held_count() and waiting_count(), read at every snapshot check and status,
  // cost no walk over a million queues.
  size_t held_locks = 0;
  size_t waiting_locks = 0;
  // node id -> its client-id watermark and epoch (see DoOpenSession, DoClaimClientIds).
  std::map<std::string, NodeIds> node_ids;

  // ------------------------------------------------------------ helpers
  // The queue of `rn`, created empty if missing.
  Resource& GetOrCreate(const ResourceName& rn);
  // Once nothing holds or waits on queue `key`: with an idle lifespan and the stamp of the
  // command that emptied it (`stamp_ns` > 0), it lingers until stamp + lifespan; otherwise
  // it is forgotten unless it lingers still or keeps counters.
  void DropIfIdle(const std::string& key, int64_t stamp_ns);
  // Finds lock `lock_id` of `session`: its queue, list and position.
  static bool Locate(const Session& session, uint64_t lock_id, Resource** resource, ListKind* kind,
                     size_t* pos);
  // The list of `r` that `kind` names.
  static std::vector<Lock>& ListOf(Resource& r, ListKind kind);
  // Removes a lock from its list and from its session's locks.
  Lock Take(Resource& r, ListKind kind, size_t pos);
  // The grant (or release) report of `lock`, a lock of `r`.
  static Grant MakeGrant(const Resource& r, const Lock& lock);
  // Gives a released _S_ value back.
  static void Recycle(Resource& r, const Lock& lock);
  // Picks the element of a lock being granted, per type.
  static void AssignElement(Resource& r, Lock& lock);
  // Makes `lock` a holder of `r` with token `index`; returns the grant.
  Grant GrantLock(Resource& r, Lock lock, uint64_t index);
  // Grants, in FIFO order, every waiter that has become grantable.
  void GrantFromQueue(Resource& r, uint64_t index, std::vector<Grant>* grants);
  // Gate of the commands that carry (session, seq): the session if the command is new,
  // else nullptr with the answer in `result`.
  Session* Admit(const pb::SessionKey& key, uint64_t seq, pb::CommandResult* result);

  // ------------------------------------------------------------ commands
  // One method per command; each fills `out` (see ApplyResult in core/lock_table.h).
  void DoOpenSession(const pb::OpenSession& cmd, ApplyResult* out);
  void DoAcquire(uint64_t index, const pb::Acquire& cmd, Session& session, ApplyResult* out);
  void DoRelease(uint64_t index, const pb::Release& cmd, Session& session, ApplyResult* out);
  void DoCancel(uint64_t index, const pb::Cancel& cmd, Session& session, ApplyResult* out);
  // Releases (as rollback) every held lock of the session and withdraws its requests
  // with `code`, then forgets the session. Queues touched are added to `touched`.
  void EndSession(std::map<SessionId, Session>::iterator it, pb::ResultCode code, ApplyResult* out,
                  std::set<std::string>* touched);
  // Grants what became grantable on each of the `touched` queues, in key order.
  void Regrant(uint64_t index, const std::set<std::string>& touched, ApplyResult* out);
  void DoCloseSession(uint64_t index, const pb::CloseSession& cmd, ApplyResult* out);
  // Ends every session of `node` with a client id below `below` (0: all), as LOST; the
  // queues touched are added to `touched`. Returns how many ended.
  size_t EndNodeSessions(const std::string& node, uint64_t below, ApplyResult* out,
                         std::set<std::string>* touched);
  void DoExpireNode(uint64_t index, const pb::ExpireNode& cmd, ApplyResult* out);
  void DoClaimClientIds(uint64_t index, const pb::ClaimClientIds& cmd, ApplyResult* out);
  // Sets clock_unix_s from `command`'s stamp, if it carries one.
  void AdvanceClock(const pb::Command& command);
  // LockTable::Apply.
  ApplyResult Apply(uint64_t index, const pb::Command& command);

  // ------------------------------------------------------------ snapshots
  // LockTable::Snapshot.
  void Snapshot(pb::LockTableSnapshot* out) const;
  // What Load remembers from one lock to the next.
  struct LoadCache {
    std::map<SessionId, Session>::iterator session;  // the last lock's (sessions.end(): none)
    std::vector<uint64_t> lock_ids;                  // every lock's id so far
  };
  // Fills `lock` from `in`, checking it against the queue `r` it is listed in, whose name
  // parses to `queue_rn`.
  Status LoadLock(const pb::LockEntryState& in, const ResourceName& queue_rn, Resource& r,
                  bool held, LoadCache* cache, Lock* lock);
  // Checks what the holders of a queue hold together, and its counters.
  static Status CheckHolders(const Resource& r);
  // Builds this (empty) Impl from `snap`.
  Status Load(const pb::LockTableSnapshot& snap);
};

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_LOCK_TABLE_INTERNAL_H_
