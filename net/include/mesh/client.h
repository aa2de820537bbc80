// mesh::Client — talk to a lockmesh node from an application.
//
// A Client holds one connection to one node (a UNIX socket, by default the one the
// `lockmesh` CLI uses) and one session on it: every lock it takes belongs to that
// session, and closing the connection (or the process dying) releases them all at once.
//
// Two forms share one implementation:
//  * AsyncClient runs on the caller's libuv loop; every call returns at once and its
//    callback runs later on that loop's thread.
//  * Client is synchronous: each call blocks until the node answers. It drives a private
//    libuv loop; lost-lock notifications are delivered during any call or Poll().
//
// Fencing: every grant carries a token (Lock::token), strictly increasing per resource
// across leader changes and restarts. Pass it to whatever the lock protects and have that
// refuse tokens older than the newest it has seen.
//
// Client lease (mesh nodes only; core/lease/client_lease.h, docs/mesh.md "Client-side
// leases"): the client does not rely on its node to say that a lock is lost, since a
// frozen node says nothing. It renews a lease of its own with the node (as often as the
// node renews its own, session ttl / 10), counted on this process's monotonic clock from
// the time each renewal was sent. When that lease ends while locks are held, every held
// lock is reported through the LostCallback (Status::Lost) and the connection is closed —
// before any other node can be granted those locks. A grant that arrives while the lease
// does not hold is handed over once a renewal makes it hold again (or fails TimedOut at
// the request's own deadline). A local node keeps no lease: nothing else can grant its
// locks. The lease cannot help when this process itself is stopped (the whole host
// paused): the fencing token is the protection then.
//
// Threading: an object is used from one thread (AsyncClient: its loop's thread).
//
// SIGPIPE: libuv writes to sockets with write(2), which raises SIGPIPE when the other end
// has gone. Every connection a client or node makes or accepts therefore sets SIGPIPE to
// SIG_IGN if it is still at its default (which would end the process); a handler the
// application installed is kept, and must then not end the process either.
#ifndef MESH_CLIENT_H_
#define MESH_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mesh/status.h"

typedef struct uv_loop_s uv_loop_t;

namespace mesh {

/// The six VMS/DLM lock modes (FLoM's): null, concurrent read, concurrent write,
/// protected read (shared), protected write, exclusive.
enum class LockMode { kNL = 0, kCR = 1, kCW = 2, kPR = 3, kPW = 4, kEX = 5 };

/// Parses "NL".."EX", FLoM's long names ("Exclusive", "ProtectedRead", ...), "shared"
/// and "exclusive", case-insensitively.
Status ParseLockMode(const std::string& text, LockMode* mode);
/// "NL".."EX".
const char* LockModeName(LockMode mode);

/// How long past a lock request's deadline the node may take to answer it without a leader
/// or quorum (kNodeCommitWaitMs after the node read a try-lock, or after the deadline of a
/// queued request whose withdrawal it cannot commit): see LockOptions::timeout_ms.
inline constexpr int64_t kNodeCommitWaitMs = 1000;
/// How long past the node's own latest answer (above) a client still waits for it before it
/// gives up on the node (frozen, stuck, or its answer lost): the client's backstop. It leaves
/// the node room for its own, more precise answer on a loaded machine.
inline constexpr int64_t kLockAnswerGraceMs = 1000;

/// When a client gives up waiting for the node's answer to a lock request with
/// LockOptions::timeout_ms `timeout_ms`, in ms after the call: a try-lock (0) after
/// kNodeCommitWaitMs + kLockAnswerGraceMs (2 s), a timeout T > 0 after T + both (T + 2 s);
/// -1 for a request that waits forever (never given up).
inline constexpr int64_t LockGiveUpMs(int64_t timeout_ms) {
  return timeout_ms < 0 ? -1 : timeout_ms + kNodeCommitWaitMs + kLockAnswerGraceMs;
}

/// How to ask for a lock.
struct LockOptions {
  LockMode mode = LockMode::kEX;
  /// <0: wait forever; 0: try once (Status::Busy if held); >0: wait at most this long
  /// (Status::TimedOut). The deadline is enforced by the node, also without a leader or
  /// quorum: a request the log has not decided by then (a try-lock: within 1 s) fails with
  /// Status::Unavailable ("no leader or quorum: ..."), and one queued whose withdrawal cannot
  /// be committed fails with Status::TimedOut 1 s after the deadline; the node undoes what
  /// the log decides later.
  ///
  /// The client does not count on the node for this (a frozen node answers nothing): if the
  /// node has not answered LockGiveUpMs(timeout_ms) after the call (try-lock: 2 s; T: T + 2 s),
  /// the request fails with Status::Unavailable ("the node at SOCKET did not answer the lock
  /// request for R within N ms ...") and the client closes its connection. The node, when it
  /// runs again, ends the session: whatever it grants that request later is released, and
  /// so are the locks the session held (reported through the LostCallback). The client is no
  /// longer connected: every later call fails with Status::Unavailable until a new Connect.
  int64_t timeout_ms = -1;
  /// Units of a numeric resource `name[N]`; ignored by other types.
  uint32_t quantity = 1;
  /// FLoM's --resource-create=no: only lock a resource someone else holds or awaits (or
  /// that lingers, below).
  bool no_create = false;
  /// FLoM's --resource-idle-lifespan: if this request creates the resource, it still exists
  /// for no_create requests this many ms after its last holder or waiter released or
  /// withdrew (not after a session ends). 0: it ends with its last holder or waiter.
  int64_t idle_lifespan_ms = 0;
};

/// A granted lock.
struct Lock {
  uint64_t lock_id = 0;  // the node's name for it; pass back to Unlock
  uint64_t token = 0;    // fencing token
  std::string resource;
  std::string element;   // set element, sequence value or timestamp; "" for other types
};

/// Called when a granted lock is lost (the session expired, the node went away, or the
/// node did not renew this client's lease in time). After this the lock protects nothing;
/// stop the work it guards.
using LostCallback = std::function<void(const Lock& lock, const Status& why)>;

/// One row of `lockmesh locks`: a held lock or a queued request.
struct LockInfo {
  std::string resource;
  bool held = false;        // false: waiting in the queue
  LockMode mode = LockMode::kEX;
  uint32_t quantity = 1;
  uint64_t lock_id = 0;
  uint64_t token = 0;       // 0 while waiting
  std::string element;
  std::string node_id;      // node hosting the client
  uint64_t client_id = 0;
  uint32_t pid = 0;         // client process (SO_PEERCRED), 0 if unknown
  uint32_t uid = 0;
  std::string client_name;
  // Since when, Unix seconds by the proposing nodes' clocks: held, since the grant; waiting,
  // since the request. 0: unknown (a node before this field).
  uint32_t since_unix_s = 0;
};

/// The longest ListLocksOptions::prefix and ::node_id a node accepts, in bytes.
inline constexpr size_t kMaxListFilterBytes = 512;

/// Which rows a lock listing returns (AsyncClient::ListLocks, Client::ListLocks). The node
/// applies the filters; both together keep the rows that pass both.
struct ListLocksOptions {
  /// Only resources whose name starts with this (hierarchical: the full path, so "/a/b"
  /// also keeps "/a/b/c" and "/a/bc"); "" for all. At most kMaxListFilterBytes (else the
  /// listing fails with InvalidArgument).
  std::string prefix;
  /// Only locks (held or awaited) of clients hosted by the node with this id; "" for all.
  /// At most kMaxListFilterBytes.
  std::string node_id;
  /// Rows to ask for per page: 0 (default) or above 1000 means 1000. The node also ends a
  /// page at 32 KiB of rows, so a page always fits in one frame.
  uint32_t page_rows = 0;
};

/// Receives one page of a listing: rows in listing order, never empty. Return true to go
/// on, false to stop the listing there (its done callback then gets ok).
using ListPageCallback = std::function<bool(const std::vector<LockInfo>& page)>;

/// A cluster member as the node sees it.
struct MemberInfo {
  std::string node_id;
  std::string role;     // "leader", "follower", "learner"
  std::string address;  // advertised host:port ("unix:PATH" for a local node itself)
  bool voter = false;
  bool connected = false;   // link up now (true for the node itself)
  uint64_t match = 0;       // on the leader: highest index known replicated there
  uint64_t lag = 0;         // on the leader: commit index - match
  std::string found_at;     // ip:port of the connection to it ("" if none)
  std::string fingerprint;  // sha256$... of its certificate ("" without TLS)
};

/// What `lockmesh status` shows.
struct NodeStatus {
  std::string node_id;
  std::string cluster;
  std::string role;
  std::string leader_id;
  uint64_t term = 0;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  uint32_t clients = 0;
  uint32_t locks_held = 0;
  uint32_t locks_waiting = 0;
  std::string data_dir;
  std::string socket;
  std::string security;
  /// Whether the node fsyncs its log before acknowledging (NodeOptions::fsync). Added for
  /// `lockmesh bench` and `lockmesh status`, which must say whether fsync is on.
  bool fsync = true;
  int64_t uptime_ms = 0;
  std::string version;
  std::vector<MemberInfo> members;
  /// False for a local node (UNIX socket only, the only member of its own log).
  bool mesh = false;
  /// The Raft cluster id ("" until the node belongs to a cluster).
  std::string cluster_id;
  /// How long this node's session lease still holds, in ms; -1 if it holds none (a local
  /// node's never lapses: -1 there too).
  int64_t lease_ms = -1;
  /// Problems worth a human's attention (a second cluster of the same name, ...).
  std::vector<std::string> warnings;
};

/// Where and how to connect.
struct ClientOptions {
  /// UNIX socket of the node; "" = the default (see DefaultSocketPath()).
  std::string socket_path;
  /// Shown in `lockmesh locks`.
  std::string client_name;
  /// How long Connect waits for the node to answer. When nothing answers at the socket,
  /// Connect fails with Status::Unavailable; when a node accepted the connection but did not
  /// answer its hello in time (frozen or stuck), with Status::TimedOut.
  int64_t connect_timeout_ms = 5000;
  /// Right after connecting, before sending anything, the client checks the uid the node
  /// runs as (SO_PEERCRED): it must be the client's own uid, root, one of these, or one
  /// named in $LOCKMESH_TRUSTED_NODE_UIDS (comma-separated uids or user names; for a node
  /// of another user shared through --socket-group). Otherwise Connect fails with
  /// PermissionDenied and nothing is sent.
  std::vector<uint32_t> trusted_node_uids;
};

/// The default socket: $LOCKMESH_SOCKET, else $XDG_RUNTIME_DIR/lockmesh/node.sock if
/// XDG_RUNTIME_DIR is set, else /tmp/lockmesh-<uid>/node.sock.
std::string DefaultSocketPath();

class AsyncClient {
 public:
  using DoneCallback = std::function<void(const Status&)>;
  using LockCallback = std::function<void(const Status&, const Lock&)>;

  /// Creates a client on `loop` (not owned; must outlive the client's Close callback).
  static std::unique_ptr<AsyncClient> Create(uv_loop_t* loop, ClientOptions options);
  virtual ~AsyncClient() = default;

  /// Connects and opens a session. `done` runs once.
  virtual void Connect(DoneCallback done) = 0;
  /// Asks for `resource`; `done` gets ok + the lock, or Busy / TimedOut / Impossible /
  /// CantWait / InvalidArgument / Unavailable with the node's reason.
  virtual void Lock(const std::string& resource, const LockOptions& options,
                    LockCallback done) = 0;
  /// Releases a lock; rollback=true recycles a transactional sequence value.
  virtual void Unlock(const mesh::Lock& lock, bool rollback, DoneCallback done) = 0;
  virtual void SetLostCallback(LostCallback lost) = 0;
  /// The node's status.
  virtual void GetStatus(std::function<void(const Status&, const NodeStatus&)> done) = 0;
  /// The node's whole lock listing (held locks and queued requests of every client it
  /// knows: on a mesh node, of the whole mesh as far as it has applied the log), read page
  /// by page and handed to `done` in one vector, in listing order: by queue (a resource;
  /// for hierarchical names, its root "/" + first component), then resource, then lock
  /// id, held and waiting rows together. The vector holds every row in memory: for large
  /// tables use the paged form below. The listing is not a snapshot: a lock that exists
  /// throughout is listed exactly once, one taken or ended meanwhile may or may not be.
  virtual void ListLocks(
      std::function<void(const Status&, const std::vector<LockInfo>&)> done) = 0;
  /// The listing filtered by `options` (copied), streamed: `page` runs once per page, in
  /// listing order, on the loop's thread, and then `done` runs once, with ok when the
  /// listing is complete or `page` returned false, else with the error (Unavailable if
  /// the connection ended, InvalidArgument if the node refused the request); pages
  /// already delivered stay delivered. The client keeps one page in memory at a time,
  /// and one request of the listing is outstanding at a time. `page` may close the client
  /// (return false then, or `done` gets Unavailable).
  virtual void ListLocks(const ListLocksOptions& options, ListPageCallback page,
                         DoneCallback done) = 0;
  /// Asks the node to stop: at once (FLoM -X), or once no lock is held or awaited (-x).
  virtual void Shutdown(bool immediate, DoneCallback done) = 0;
  /// Closes the connection (the node releases this session's locks). Requests already
  /// issued are still delivered to the node first, in order, so `Unlock(...); Close(...)`
  /// unlocks without waiting for the acknowledgement. Callbacks of calls
  /// still pending run with Status::Unavailable before `done`. Call at most once; after
  /// `done` the object may be destroyed.
  virtual void Close(std::function<void()> done) = 0;
  /// True between a successful Connect and Close or a lost connection.
  virtual bool connected() const = 0;
};

class Client {
 public:
  /// Connects to a node and opens a session.
  static Status Connect(const ClientOptions& options, std::unique_ptr<Client>* out);
  ~Client();

  /// Blocking lock; see LockOptions for waiting, trying and deadlines.
  Status Lock(const std::string& resource, const LockOptions& options, mesh::Lock* out);
  /// Try once: ok or Status::Busy.
  Status TryLock(const std::string& resource, LockMode mode, mesh::Lock* out);
  Status Unlock(const mesh::Lock& lock, bool rollback = false);
  /// Sets the callback for lost locks; it runs inside Lock/Unlock/Poll on this thread.
  /// With a mesh node the client's lease is renewed only while a call or Poll runs: hold a
  /// lock and call Poll at least every session ttl / 10, or the lease ends and the next
  /// call reports the lock lost (it may really be lost: nothing renewed it).
  void SetLostCallback(LostCallback lost);
  Status GetStatus(NodeStatus* out);
  /// Every row of the node's listing, replacing `*out` (see AsyncClient::ListLocks for
  /// order and consistency; paged transparently, all rows end up in memory).
  Status ListLocks(std::vector<LockInfo>* out);
  /// The rows that pass `options`' filters, replacing `*out`.
  Status ListLocks(const ListLocksOptions& options, std::vector<LockInfo>* out);
  /// The filtered listing, streamed: `page` runs on this thread, inside this call, once
  /// per page in listing order (one page in memory at a time); return false from it to
  /// stop (the call then returns ok). Returns ok once the listing is complete, else the
  /// error (rows already passed to `page` stay passed). Lost-lock notifications may run
  /// between pages.
  Status ListLocks(const ListLocksOptions& options, const ListPageCallback& page);
  Status Shutdown(bool immediate);
  /// Processes notifications for up to `timeout_ms` (0: only what has arrived).
  Status Poll(int64_t timeout_ms);
  /// A descriptor that becomes readable when Poll has work; for poll()/select() loops.
  int fd() const;

 private:
  Client();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mesh

#endif  // MESH_CLIENT_H_
