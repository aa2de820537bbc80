// net/node/node_impl: mesh::Node (mesh/node.h), private to net/node. One class, NodeImpl,
// whose definitions are split over three files by job:
//  * node.cc: the lifecycle — Create, Start, Stop, the socket's and data dir's lock files, the
//    mesh claim, the cluster's start and stop, idleness and quiescing, and the close sequence;
//  * client_server.cc: the UNIX-socket server — listening, accepting (credentials, the hello
//    timer), decoding and dispatching client frames, answering them (corked per batch),
//    closed connections;
//  * session_router.cc: sessions and requests — locks and unlocks proposed for a session, the
//    log's applied entries answered to their clients, client id claims, reopened and
//    resequenced sessions, deadlines and their undo, lease lapse and deferred grants.
// Everything runs on the loop's thread. libuv handles are freed only in their close callbacks.
#ifndef LOCKMESH_NET_NODE_NODE_IMPL_H_
#define LOCKMESH_NET_NODE_NODE_IMPL_H_

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/lock_table.h"
#include "lockmesh.pb.h"
#include "mesh/node.h"
#include "net/local/framed_stream.h"
#include "net/node/cluster.h"
#include "net/node/command_log.h"
#include "net/support/heap_trim.h"

namespace mesh::net::node_impl {

// How long a try-lock, or a deadline's Cancel, may wait for the log before the client is
// answered anyway (no leader or quorum): a deadline holds without a quorum.
constexpr int64_t kCommitWaitMs = 1000;

// One connected local client (NodeImpl::conns_ owns it; the loop thread only).
struct Conn {
  FramedStream* stream = nullptr;  // null once closed
  uint64_t serial = 0;             // key in NodeImpl::conns_
  uint64_t client_id = 0;          // assigned when its OpenSession is proposed
  uint32_t pid = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string refused;  // non-empty: answer the hello with this and close
  bool hello_seen = false;
  bool session_open = false;  // OpenSession proposed; requests may follow
  // Hello answered while the node claims client ids: the session opens once it has them;
  // lock and unlock requests (encoded, with when they arrived: a lock's deadline runs from
  // then) wait in `early` until then, at most kMaxEarlyRequests of them.
  bool awaiting_ids = false;
  std::string client_name;
  struct EarlyRequest {
    std::string body;
    uint64_t request_id = 0;
    int64_t arrived_ms = 0;  // loop time
  };
  std::vector<EarlyRequest> early;
  uint64_t next_seq = 0;
  // seq of a proposed Acquire/Release -> the client's request id (and deadline for locks).
  struct Op {
    uint64_t request_id = 0;
    int64_t deadline_ms = -1;  // loop time; -1 none
    std::string resource;
    // The client was answered at the deadline although the log had not decided (no leader
    // or quorum): whatever the log decides later is undone, and nobody is told.
    bool given_up = false;
  };
  std::map<uint64_t, Op> ops;
  // Until the table has applied its OpenSession (open_applied), the session's commands by
  // seq: if the open is refused (another of this node's opens overtook it in the log), or
  // one of them was applied before it (and found no session), the session is reopened under
  // a new client id and these are proposed again (NodeImpl::Reopen).
  bool open_applied = false;
  std::map<uint64_t, pb::Command> unconfirmed;
  std::map<uint64_t, pb::Command> stalled;  // taken from `unconfirmed` by a reopen
  // Queued locks: lock id -> the LockRequest that is still waiting.
  std::map<uint64_t, Op> waiting;
  // Which locks the client holds is the table's (NodeImpl::ClientHolds asks it; a set here
  // repeated every held lock, 48 bytes each), less these: granted in the table after the
  // client was answered at its deadline, the grant being undone (a Release proposed). The
  // client is told nothing of them.
  std::set<uint64_t> untold;
  // The session lease lapsed and the client was told every lock lost: nothing more is said.
  bool locks_lost = false;
};

// A lock request's deadline: the request `request_id` of connection `serial`; cancel_grace:
// the second deadline, kCommitWaitMs after the first one's Cancel was proposed.
struct Deadline {
  uint64_t serial = 0;
  uint64_t request_id = 0;
  bool cancel_grace = false;
};

// The local client API server driving the command log (see the top of this file for which
// file defines what).
class NodeImpl final : public Node {
 public:
  // A node on `loop` (not owned; it must outlive the node) that Start will serve.
  NodeImpl(uv_loop_t* loop, NodeOptions options) : loop_(loop), options_(std::move(options)) {}

  // Releases the lock files if the stop did not, and closes the socket directory.
  ~NodeImpl() override;

  // mesh::Node (mesh/node.h), on the loop's thread (node.cc).
  Status Start() override;
  void Stop(bool graceful, std::function<void()> done) override;
  void SetStoppedCallback(std::function<void(const Status& why)> stopped) override;
  NodeStatus GetStatus() const override;
  Status ReloadCertificates(size_t* cut_off) override;

 private:
  // ------------------------------------------------------------ lifecycle (node.cc)

  // Writes `line` as one log line (net/support/log_line.h) to options_.log, or to stderr.
  void Log(const std::string& line);

  // Checks the socket's directory (net/local/local_dir.h) and takes <socket>.lock
  // (AlreadyExists if another node holds it); a socket file left by a dead node is removed.
  Status LockSocket();

  // One authority per host (core/mesh_claim.h): with the socket and the data dir locked and
  // the node id known, a mesh node claims its socket and data dir, and any other node
  // refuses them if claimed. The two flocks serialise racing starters on either.
  Status ApplyMeshClaim();

  // core::DecideStart on the claims of this node's socket and data dir, as they are now;
  // a refusal is logged.
  Status DecideStartHere();

  // An exclusive flock on <data_dir>/node.lock for the node's lifetime: two nodes never share
  // a data dir (whatever their sockets), and the claim is checked or written under it.
  Status LockDataDir();

  // Releases <socket>.lock and <data_dir>/node.lock: another node may start now.
  void CloseLockFiles();

  // Makes and starts cluster_ from options_.mesh (a mesh node only).
  Status StartCluster();

  // Start failed after the cluster was made: stop it, running the loop until it has.
  void StopClusterNow();

  // True if the node has no connections and no held or waiting locks (for idle_exit_ms).
  bool Idle() const;

  // Starts idle_timer_ (options_.idle_exit_ms) when the node is idle; stops it when not.
  void ArmIdleTimer();

  // After a shutdown "once idle" (quiesce_): stops once no lock is held or waiting.
  void MaybeQuiesce();

  // Stops the node, gracefully if `why` is OK; `why` goes to the stopped callback.
  void StopWithReason(const Status& why);

  // The stop: a graceful one closes the sessions through the log, flushes it and leaves the
  // cluster first; then CloseAll.
  void BeginStop(bool graceful, const Status& why);

  // Closes every connection and handle; the close callbacks count open_handles_ down and
  // MaybeFinishStop finishes the stop.
  void CloseAll();

  // Once every handle and connection is closed: removes the socket, releases the lock files,
  // logs, and calls the stop callbacks.
  void MaybeFinishStop();

  // Start failed after the log was made: closes its handles (and the server's), running the
  // loop until they are, and releases the lock files.
  void CloseLogHandles();

  // -------------------------------------------- the client socket (client_server.cc)

  // Binds and listens on options_.socket_path: mode 0600, or 0660 and the group with
  // --socket-group.
  Status Listen();

  // libuv: a client connected. Reads its credentials (SO_PEERCRED), refuses another user's
  // (at its hello) and starts its hello timer.
  static void OnConnection(uv_stream_t* server, int status);

  // A connection must say hello within options_.hello_timeout_ms, or it is closed (a local
  // process must not hold a connection slot, and keep an auto-started node alive, for free).
  void StartHelloTimer(uint64_t serial);

  // One request of `c`. `arrived_ms` (loop time): when it arrived, for an early request
  // replayed once the session opens (-1: now).
  Status OnFrame(Conn* c, std::string_view body, int64_t arrived_ms = -1);

  // How long this node's session lease still holds (us of the monotonic clock the cluster's
  // lease runs on); 0 if it does not, or if this is a local node.
  uint64_t LeaseRemainingUs() const;

  // Answers request `request_id` of `c` with a result `code` and `message` (nothing if `c` is
  // closed); returns OK.
  Status Reply(Conn* c, uint64_t request_id, pb::ResultCode code, const std::string& message);

  // GetStatus, in the client protocol's form.
  void FillStatus(pb::StatusReply* out) const;

  // Corks `c` until the end of the batch being applied (see FramedStream::Cork).
  void CorkForBatch(Conn* c);

  // Uncorks the connections CorkForBatch corked: the batch is applied.
  void UncorkAll();

  // Sends result `r` of request `request_id` to `c`, corked for the batch. A grant while the
  // session lease is not valid is held back in deferred_grants_ (FlushDeferredGrants).
  void SendResult(Conn* c, uint64_t request_id, const pb::CommandResult& r);

  // Connection `serial` closed (`why`): its session is closed through the log, its deadlines
  // dropped, and it is forgotten; during a stop it may finish the stop.
  void OnConnClosed(uint64_t serial, const Status& why);

  // ---------------------------------------- sessions and requests (session_router.cc)

  // When a lock request that arrived at `arrived_ms` (loop time) is answered anyway: a
  // try-lock (-n) within kCommitWaitMs even if the log cannot decide it, one with a timeout
  // at its timeout; -1 for one that waits forever.
  static int64_t LockDeadline(const pb::LockRequest& l, int64_t arrived_ms);

  // `arrived_ms`: see OnFrame; a replayed early request's deadline is registered already.
  Status HandleLock(Conn* c, const pb::ClientRequest& req, int64_t arrived_ms = -1);

  // Proposes command `seq` of `c`'s session, kept in `unconfirmed` while its OpenSession
  // is not applied yet (see Conn::unconfirmed).
  Status ProposeForSession(Conn* c, uint64_t request_id, uint64_t seq, pb::Command cmd);

  // Fills `key` with `c`'s session: this node's id and `c`'s client id.
  void SetSession(const Conn* c, pb::SessionKey* key);

  // True if `c`'s client holds lock `lock_id` as far as it was told: granted in the table,
  // not being undone, and not declared lost.
  bool ClientHolds(const Conn* c, uint64_t lock_id);

  // The connection of session `s` if the session is this node's and open, else null.
  Conn* OwnConn(const pb::SessionKey& s);

  // The log applied `cmd` (at `index`) with `r`: answers the requests of this node's clients
  // it decides, and tells them of the grants, withdrawals and releases it made.
  void OnApplied(uint64_t index, const pb::Command& cmd, const core::ApplyResult& r);

  // Closes the connections of this node's sessions with client ids below `below` (0: all),
  // which the cluster has ended: their clients must reconnect to get new ones.
  void CloseEndedSessions(uint64_t below);

  // A command of `c` applied with `result` found no session while its open was not yet
  // applied: reopens, and returns true (the result is not the client's to see).
  bool ReopenIfAhead(Conn* c, const pb::CommandResult& result);

  // Gives up `c`'s session (`why` is logged) and reopens it under a new client id, proposing
  // its unconfirmed commands again; open_refused: its open was refused, so the old id is not
  // closed.
  void Reopen(Conn* c, const std::string& why, bool open_refused);

  // A command of `c`'s session that the log ordered after a later one of the session
  // (STALE_SEQ: its first copy was lost with a leader and the retry came late). It took no
  // effect and never will under its seq: proposes it again under a new one if still wanted
  // — an Acquire still awaited (its op moves to the new seq; one answered at its deadline
  // is dropped), and every Release and Cancel (if their lock is gone already, the copy is
  // answered NOT_FOUND or with the grant, and changes nothing).
  void Resequence(Conn* c, pb::Command cmd);

  // Proposes `c`'s stalled commands again, in their order, under its current session.
  void ProposeStalled(Conn* c);

  // Proposes a claim of a new epoch, recognised when applied by its random nonce.
  void ClaimClientIds(bool expire_older);

  // True if a hello can be given a client id at once.
  bool IdsAvailable() const;

  // Gives `c` the next client id and proposes its OpenSession (IdsAvailable() must hold).
  Status OpenSessionFor(Conn* c);

  // `c` waits for the claim under way (one is proposed if the epoch is used up).
  Status AwaitIds(Conn* c);

  // A ClaimClientIds for this node id was applied with `result`.
  void OnOwnIdClaim(const pb::ClaimClientIds& claim, const pb::CommandResult& result);

  // The claim is applied: the connections that waited get their sessions, in hello order,
  // and their early requests go on in order.
  void OnIdsClaimed();

  // The cluster: this node's session lease lapsed. Every client is told its locks lost and its
  // connection is closed.
  void OnLeaseLapsed();

  // The cluster: the session lease is valid again. Sends the held-back grants whose locks
  // are still held.
  void FlushDeferredGrants();

  // Arms deadline_timer_ for the first of deadlines_, or stops it.
  void ArmDeadlineTimer();

  // libuv: deadline_timer_ fired. Handles every deadline that passed.
  static void OnDeadline(uv_timer_t* t);

  // The deadline of lock request `d` passed: deadlines hold without a quorum.
  //  * Answered already: nothing.
  //  * Still in `early` (the node could not claim client ids, so the session never opened):
  //    answered UNAVAILABLE, and dropped.
  //  * Not applied yet (no leader, no quorum, or a commit slower than the deadline):
  //    answered UNAVAILABLE now, and undone when the log applies it (Op::given_up).
  //  * Queued: a Cancel is proposed and answers TIMED_OUT when it applies; if it has not
  //    applied kCommitWaitMs later, TIMED_OUT is answered anyway and the request is undone
  //    when the log gets to it.
  //  * Granted, but the grant held back for want of a session lease (deferred_grants_):
  //    answered UNAVAILABLE, and released.
  // The client never runs anything on a lock it was told it did not get, and the lock is
  // given back as soon as the cluster can commit again.
  void DeadlinePassed(const Deadline& d, int64_t now);

  // `c`'s queued request `w` has its outcome (granted, cancelled, withdrawn): takes it out of
  // `waiting`, with its deadline, and returns it. If it is given_up, the client was answered
  // at its deadline and is told nothing more (the caller undoes a grant).
  Conn::Op Settle(Conn* c, std::map<uint64_t, Conn::Op>::iterator w);

  // Drops the (first) deadline of `op`, a request of connection `serial` that has its answer
  // or will never need one: deadlines_ holds only requests still waiting for theirs.
  void ForgetDeadline(uint64_t serial, const Conn::Op& op);

  // "no leader or quorum: <what> within the deadline (...)", for the answers above.
  std::string NoQuorum(const std::string& what) const;

  // Proposes the Cancel (kCancel) or Release (kRelease) of `c`'s lock `lock_id`, undoing a
  // request the client no longer waits for. Its result answers nobody.
  void ProposeUndo(Conn* c, pb::Command::BodyCase kind, uint64_t lock_id);

  // ------------------------------------------------------------ state

  uv_loop_t* loop_;                        // not owned
  NodeOptions options_;                    // as given, with the defaults Start filled in
  std::unique_ptr<net::CommandLog> log_;   // made by Start
  std::unique_ptr<net::Cluster> cluster_;  // mesh only; declared after log_: destroyed first
  // A grant held back while the session lease is not valid (SendResult).
  struct DeferredGrant {
    uint64_t serial;      // Conn::serial
    uint64_t request_id;  // the client's request
    pb::CommandResult result;
  };
  std::vector<DeferredGrant> deferred_grants_;  // mesh: grants held while the lease is invalid
  uv_pipe_t server_;                            // the listening socket (Listen); closed by CloseAll
  uv_timer_t deadline_timer_;                   // fires at the first of deadlines_
  uv_timer_t idle_timer_;                       // idle_exit_ms (ArmIdleTimer)
  net::HeapTrimmer heap_trimmer_;               // started with the timers, closed with them
  bool server_ready_ = false;                   // server_ is initialised (it needs a close)
  bool timers_ready_ = false;                   // the two timers are initialised
  std::unique_ptr<core::FileLock> socket_lock_;  // <socket>.lock
  int dir_fd_ = -1;  // the checked socket directory (net/local/local_dir.h)
  std::unique_ptr<core::FileLock> data_lock_;     // <data_dir>/node.lock
  std::map<uv_timer_t*, uint64_t> hello_timers_;  // pending hello deadlines -> Conn::serial
  int64_t socket_gid_ = -1;             // --socket-group's gid, whose members may connect; -1 none
  uint64_t id_epoch_ = 0;               // this run's client id epoch (see ClaimClientIds)
  uint64_t next_client_k_ = 1;          // next client id: (id_epoch_ << 32) | next_client_k_
  bool claim_pending_ = false;          // a claim is proposed and not applied yet
  uint64_t claim_nonce_ = 0;            // the latest claim's nonce
  std::vector<uint64_t> awaiting_ids_;  // serials of connections waiting for the claim
  std::set<uint64_t> abandoned_ids_;    // client ids given up by Reopen before their open applied
  uint64_t conn_serial_ = 0;            // the last Conn::serial given
  uint64_t started_ms_ = 0;             // loop time Start finished, for the uptime
  bool started_ = false;                // Start succeeded
  bool stopping_ = false;               // BeginStop ran
  bool finished_ = false;               // MaybeFinishStop finished the stop
  bool quiesce_ = false;                // a shutdown "once idle" is pending (MaybeQuiesce)
  int open_handles_ = 0;                // handles CloseAll is still waiting for
  Status stop_reason_;                  // why the node stops (OK: asked to, or idle)
  std::function<void()> stop_done_;     // Stop's callback
  std::function<void(const Status&)> stopped_;       // SetStoppedCallback's
  std::map<uint64_t, std::unique_ptr<Conn>> conns_;  // by Conn::serial
  std::map<uint64_t, Conn*> sessions_;               // by client id; entries point into conns_
  std::vector<uint64_t> corked_;                     // serials corked in the current batch
  std::multimap<int64_t, Deadline> deadlines_;       // lock requests' deadlines, by loop time
};

}  // namespace mesh::net::node_impl

#endif  // LOCKMESH_NET_NODE_NODE_IMPL_H_
