// mesh::Node (mesh/node.h): the local client API server driving the command log.
#include "mesh/node.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "core/lock_table.h"
#include "lockmesh.pb.h"
#include "net/local/framed_stream.h"
#include "net/local/local_dir.h"
#include "net/local/lock_listing.h"
#include "net/local/mesh_claim.h"
#include "net/local/protocol.h"
#include "net/node/cluster.h"
#include "net/node/command_log.h"
#include "net/support/errno_text.h"
#include "net/support/heap_trim.h"
#include "net/support/lease_clock.h"
#include "net/support/log_line.h"
#include "net/support/posix_file_system.h"

namespace mesh {
namespace {

using net::FramedStream;

constexpr const char* kVersion = LOCKMESH_VERSION;  // from CMake's project version
// How long a try-lock, or a deadline's Cancel, may wait for the log before the client is
// answered anyway (no leader or quorum): a deadline holds without a quorum.
constexpr int64_t kCommitWaitMs = 1000;
// Requests a connection may send before its session opens (the node is claiming client ids):
// more are refused, so that one client cannot grow the node's memory while the log is stuck.
constexpr size_t kMaxEarlyRequests = 1024;

// The wall clock, for timestamp resources (`_t_`) only: nothing compared across restarts
// comes from it (client ids come from the log).
std::string DirName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// One connected local client.
struct Conn {
  FramedStream* stream = nullptr;  // null once closed
  uint64_t serial = 0;             // key in NodeImpl::conns_
  uint64_t client_id = 0;          // assigned when its OpenSession is proposed
  uint32_t pid = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string refused;             // non-empty: answer the hello with this and close
  bool hello_seen = false;
  bool session_open = false;       // OpenSession proposed; requests may follow
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

class NodeImpl final : public Node {
 public:
  NodeImpl(uv_loop_t* loop, NodeOptions options) : loop_(loop), options_(std::move(options)) {}

  ~NodeImpl() override {
    CloseLockFiles();
    if (dir_fd_ >= 0) close(dir_fd_);
  }

  Status Start() override {
    if (started_) return Status::InvalidArgument("node already started");
    if (options_.socket_path.empty()) options_.socket_path = DefaultSocketPath();
    if (options_.data_dir.empty()) options_.data_dir = DefaultDataDir(options_.socket_path);
    constexpr size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;
    if (options_.socket_path.size() > kMaxSocketPath) {
      return Status::InvalidArgument("socket path is too long (at most " +
                                     std::to_string(kMaxSocketPath) +
                                     " bytes): " + options_.socket_path);
    }
    // A node that is not a mesh node refuses a claimed socket or data dir before it takes the
    // socket's lock: holding it even briefly could fail the start of the mesh node it races
    // ("another node already serves"). ApplyMeshClaim decides again under both locks.
    if (!options_.mesh.enabled) MESH_RETURN_IF_ERROR(DecideStartHere());
    MESH_RETURN_IF_ERROR(LockSocket());
    if (options_.node_id.empty()) {
      Status made = net::PosixFileSystem()->CreateDirs(options_.data_dir);
      if (!made.ok()) return made.Annotate("cannot create the data dir");
      MESH_RETURN_IF_ERROR(UniqueId(options_.data_dir, &options_.node_id));
    }
    MESH_RETURN_IF_ERROR(ApplyMeshClaim());
    net::CommandLog::Options lo;
    lo.data_dir = options_.data_dir;
    lo.node_id = options_.node_id;
    lo.fsync = options_.fsync;
    lo.snapshot_every = options_.snapshot_every;
    lo.wal_segment_bytes = options_.wal_segment_bytes;
    lo.gather_us = options_.gather_us;
    lo.log = [this](const std::string& line) { Log(line); };
    const MeshOptions& mo = options_.mesh;
    if (mo.enabled) {
      lo.standalone = false;
      // Off the loop in a mesh of several nodes only (CommandLog checks the member
      // count): there the loop has peers to serve while the disk syncs (3 nodes in
      // namespaces, 32 clients: 7.3-7.8k cycles/s in the loop, 8.9-13k off it). A lone
      // node has nothing to overlap and would lose the pool thread's two wake-ups per
      // batch (bench distinct: 20-24k cycles/s in the loop, 12k off it).
      lo.sync_off_loop = true;
      lo.election_timeout_us = static_cast<uint64_t>(mo.election_timeout_ms) * 1000;
      lo.heartbeat_interval_us = lo.election_timeout_us / 10;
    }
    log_ = std::make_unique<net::CommandLog>(loop_, lo, net::PosixFileSystem());
    Status st = log_->Open();
    if (!st.ok()) {
      CloseLogHandles();
      return st;
    }
    for (const std::string& note : log_->recovery_notes()) Log("log recovery: " + note);
    log_->SetHandlers(
        [this](uint64_t index, const pb::Command& c, const core::ApplyResult& r) {
          heap_trimmer_.NoteApplied();
          OnApplied(index, c, r);
        },
        [this](const Status& why) {
          Log("fatal: " + why.ToString() + "; stopping (clients lose their locks)");
          StopWithReason(why);
        },
        [this] {
          UncorkAll();
          if (cluster_) cluster_->OnApplied();
        });
    log_->SetDiskHandler([this](const Status& full) {
      Log(full.ok() ? std::string("disk space is back: the log is written again, new locks "
                                  "are taken again")
                    : log_->disk_full());
    });
    if (mo.enabled) {
      st = StartCluster();
      if (!st.ok()) {
        StopClusterNow();
        CloseLogHandles();
        return st;
      }
    }
    st = Listen();
    if (!st.ok()) {
      StopClusterNow();
      CloseLogHandles();
      return st;
    }
    uv_timer_init(loop_, &deadline_timer_);
    deadline_timer_.data = this;
    uv_timer_init(loop_, &idle_timer_);
    idle_timer_.data = this;
    timers_ready_ = true;
    heap_trimmer_.Start(loop_);
    started_ms_ = uv_now(loop_);
    started_ = true;
    // Client ids must never repeat for this node id, whatever the clocks do: this run's
    // come from an epoch claimed through the log (core/lock_table.h, ClaimClientIds), and
    // the claim ends the sessions left by earlier runs of this node, which died with them.
    ClaimClientIds(/*expire_older=*/true);
    Log("node " + options_.node_id + " serving " + options_.socket_path + ", data " +
        options_.data_dir + ", log index " + std::to_string(log_->applied_index()) +
        (options_.fsync ? "" : ", fsync OFF"));
    ArmIdleTimer();
    return Status::OK();
  }

  void Stop(bool graceful, std::function<void()> done) override {
    stop_done_ = std::move(done);
    if (!started_) {
      if (stop_done_) stop_done_();
      return;
    }
    BeginStop(graceful, Status::OK());
  }

  void SetStoppedCallback(std::function<void(const Status& why)> stopped) override {
    stopped_ = std::move(stopped);
  }

  NodeStatus GetStatus() const override {
    NodeStatus s;
    s.node_id = options_.node_id;
    s.cluster = options_.cluster;
    const core::raft::Raft* raft = log_ ? log_->raft() : nullptr;
    if (raft) {
      s.role = core::raft::RoleName(raft->role());
      s.leader_id = raft->leader();
      s.term = raft->term();
      s.commit_index = raft->commit_index();
      s.applied_index = raft->applied_index();
    }
    s.clients = static_cast<uint32_t>(conns_.size());
    if (log_) {
      s.locks_held = static_cast<uint32_t>(log_->table().held_count());
      s.locks_waiting = static_cast<uint32_t>(log_->table().waiting_count());
    }
    s.data_dir = options_.data_dir;
    s.socket = options_.socket_path;
    s.security = "none";
    s.uptime_ms = started_ ? static_cast<int64_t>(uv_now(loop_) - started_ms_) : 0;
    s.version = kVersion;
    s.fsync = options_.fsync;
    if (raft) {
      for (const pb::Member& m : raft->config().members()) {
        std::string role = !m.voter()                   ? "learner"
                           : m.id() == raft->leader()  ? "leader"
                                                       : "follower";
        std::string address = m.id() == options_.node_id && m.address().empty()
                                  ? "unix:" + options_.socket_path
                                  : m.address();
        MemberInfo mi;
        mi.node_id = m.id();
        mi.role = role;
        mi.address = address;
        mi.voter = m.voter();
        mi.connected = m.id() == options_.node_id;
        s.members.push_back(std::move(mi));
      }
      s.cluster_id = raft->config().cluster_id();
    }
    if (cluster_) cluster_->FillStatus(&s);
    if (log_ && !log_->disk_full().empty()) s.warnings.push_back(log_->disk_full());
    return s;
  }

  Status ReloadCertificates(size_t* cut_off) override {
    if (!cluster_) return Status::Unavailable("a local node has no peer links to reload");
    if (options_.mesh.security == "none") {
      return Status::Unavailable("--security none: there are no certificates to reload");
    }
    Status st = cluster_->Reload(cut_off);
    Log(st.ok() ? "certificates reloaded" + (cut_off ? ", " + std::to_string(*cut_off) +
                                                           " peer(s) cut off"
                                                     : std::string())
                : "certificate reload failed, the old ones stay in force: " + st.ToString());
    return st;
  }

 private:
  void Log(const std::string& line) {
    std::string full = net::FormatLogLine(line);
    if (options_.log) {
      options_.log(full);
    } else {
      fprintf(stderr, "%s\n", full.c_str());
    }
  }

  // ------------------------------------------------------------ socket ownership

  Status LockSocket() {
    std::string dir = DirName(options_.socket_path);
    gid_t gid = static_cast<gid_t>(-1);
    if (!options_.socket_group.empty()) {
      group* g = getgrnam(options_.socket_group.c_str());
      if (!g) return Status::InvalidArgument("no such group: " + options_.socket_group);
      gid = g->gr_gid;
    }
    // The directory must be ours (docs/mesh.md "The local boundary"); the lock file in it is
    // opened through the checked descriptor, never through a symlink.
    MESH_RETURN_IF_ERROR(net::OpenSocketDirectory(dir, gid, &dir_fd_));
    std::string lock_path = options_.socket_path + ".lock";
    int lock_fd = -1;
    MESH_RETURN_IF_ERROR(net::OpenOwnFile(dir_fd_, net::BasePart(lock_path), O_RDWR,
                                          /*create=*/true, lock_path, &lock_fd));
    Status locked = net::LockOpenFile(lock_fd, lock_path, core::LockWait::kTry, &socket_lock_);
    if (locked.IsBusy()) {
      return Status::AlreadyExists("another node already serves " + options_.socket_path +
                                   " (it holds " + lock_path + ")");
    }
    MESH_RETURN_IF_ERROR(locked);
    // We own the socket path: a file left there by a dead node is stale.
    unlinkat(dir_fd_, net::BasePart(options_.socket_path).c_str(), 0);
    return Status::OK();
  }

  // One authority per host (core/mesh_claim.h): with the socket and the data dir locked and
  // the node id known, a mesh node claims its socket and data dir, and any other node
  // refuses them if claimed. The two flocks serialise racing starters on either.
  Status ApplyMeshClaim() {
    MESH_RETURN_IF_ERROR(LockDataDir());
    MESH_RETURN_IF_ERROR(DecideStartHere());
    if (!options_.mesh.enabled) return Status::OK();
    core::MeshClaim claim;
    claim.cluster = options_.cluster;
    claim.node_id = options_.node_id;
    claim.data_dir = options_.data_dir;
    claim.socket = options_.socket_path;
    claim.start_command = options_.start_command;
    Status made = net::PosixFileSystem()->CreateDirs(options_.data_dir);
    if (!made.ok()) return made.Annotate("cannot create the data dir");
    for (const std::string& path :
         {net::DataDirClaimPath(options_.data_dir), net::SocketClaimPath(options_.socket_path)}) {
      Status st = net::WriteMeshClaim(path, claim);
      if (!st.ok()) return st.Annotate("cannot write this mesh node's claim");
    }
    return Status::OK();
  }

  // core::DecideStart on the claims of this node's socket and data dir, as they are now;
  // a refusal is logged.
  Status DecideStartHere() {
    core::Starter who;
    who.mesh = options_.mesh.enabled;
    who.cluster = options_.cluster;
    who.node_id = options_.node_id;
    who.socket = options_.socket_path;
    who.data_dir = options_.data_dir;
    Status decided = core::DecideStart(who, net::ReadMeshClaims(who.socket, who.data_dir));
    if (!decided.ok()) Log("refusing to start: " + decided.message());
    return decided;
  }

  // An exclusive flock on <data_dir>/node.lock for the node's lifetime: two nodes never share
  // a data dir (whatever their sockets), and the claim is checked or written under it.
  Status LockDataDir() {
    Status made = net::PosixFileSystem()->CreateDirs(options_.data_dir);
    if (!made.ok()) return made.Annotate("cannot create the data dir");
    std::string path = options_.data_dir + "/node.lock";
    Status locked = net::PosixFileSystem()->LockFile(path, core::LockWait::kTry, &data_lock_);
    if (locked.IsBusy()) {
      return Status::Busy("another node already uses the data dir " + options_.data_dir +
                          " (it holds " + path + ")");
    }
    return locked;  // ok, or the path, the call and why (a symlink is PermissionDenied)
  }

  void CloseLockFiles() {
    socket_lock_.reset();  // releases the lock: another node may start now
    data_lock_.reset();
  }

  Status Listen() {
    uv_pipe_init(loop_, &server_, 0);
    server_.data = this;
    server_ready_ = true;
    mode_t old = umask(077);
    int rc = uv_pipe_bind(&server_, options_.socket_path.c_str());
    umask(old);
    if (rc != 0) {
      return Status::IOError("cannot bind " + options_.socket_path + ": " + uv_strerror(rc));
    }
    mode_t mode = 0600;
    if (!options_.socket_group.empty()) {
      group* g = getgrnam(options_.socket_group.c_str());
      if (!g) return Status::InvalidArgument("no such group: " + options_.socket_group);
      socket_gid_ = static_cast<int64_t>(g->gr_gid);
      if (chown(options_.socket_path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
        return Status::IOError("cannot give " + options_.socket_path + " to group " +
                               options_.socket_group + ": " + net::ErrnoText(errno));
      }
      mode = 0660;
    }
    if (chmod(options_.socket_path.c_str(), mode) != 0) {
      return Status::IOError("cannot chmod " + options_.socket_path + ": " + net::ErrnoText(errno));
    }
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server_), 128, OnConnection);
    if (rc != 0) {
      return Status::IOError("cannot listen on " + options_.socket_path + ": " + uv_strerror(rc));
    }
    return Status::OK();
  }

  static void OnConnection(uv_stream_t* server, int status) {
    auto* self = static_cast<NodeImpl*>(server->data);
    if (status != 0 || self->stopping_) return;
    auto* stream = new FramedStream(self->loop_, net::kMaxClientFrameBytes);
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(stream->pipe())) != 0) {
      stream->Close(Status::IOError("accept failed"));
      return;
    }
    auto conn = std::make_unique<Conn>();
    conn->stream = stream;
    conn->serial = ++self->conn_serial_;
    uv_os_fd_t fd;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(stream->pipe()), &fd) == 0) {
      ucred cred{};
      socklen_t len = sizeof cred;
      if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
        conn->pid = static_cast<uint32_t>(cred.pid);
        conn->uid = cred.uid;
        conn->gid = cred.gid;
      }
    }
    uid_t me = geteuid();
    bool allowed = conn->uid == me || conn->uid == 0 ||
                   (self->socket_gid_ >= 0 && conn->gid == static_cast<uint32_t>(self->socket_gid_));
    if (!allowed) {
      conn->refused = "permission denied: uid " + std::to_string(conn->uid) +
                      " may not use the node of uid " + std::to_string(me) + " at " +
                      self->options_.socket_path;
      self->Log("refused client pid " + std::to_string(conn->pid) + ": " + conn->refused);
    }
    Conn* c = conn.get();
    uint64_t id = c->serial;
    self->conns_.emplace(id, std::move(conn));
    uv_timer_stop(&self->idle_timer_);
    self->StartHelloTimer(id);
    stream->Start([self, c](std::string_view body) { return self->OnFrame(c, body); },
                  [self, id](const Status& why) { self->OnConnClosed(id, why); });
  }

  // A connection must say hello within options_.hello_timeout_ms, or it is closed (a local
  // process must not hold a connection slot, and keep an auto-started node alive, for free).
  void StartHelloTimer(uint64_t serial) {
    if (options_.hello_timeout_ms <= 0) return;
    auto* t = new uv_timer_t;
    uv_timer_init(loop_, t);
    t->data = this;
    hello_timers_.emplace(t, serial);
    uv_timer_start(
        t,
        [](uv_timer_t* timer) {
          auto* self = static_cast<NodeImpl*>(timer->data);
          auto it = self->hello_timers_.find(timer);
          uint64_t serial = it->second;
          self->hello_timers_.erase(it);
          uv_close(reinterpret_cast<uv_handle_t*>(timer),
                   [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
          auto conn = self->conns_.find(serial);
          if (conn == self->conns_.end() || conn->second->hello_seen || !conn->second->stream)
            return;
          Conn* c = conn->second.get();
          Status why = Status::TimedOut("no hello within " +
                                        std::to_string(self->options_.hello_timeout_ms) + " ms");
          self->Log("closing client connection of pid " + std::to_string(c->pid) + " (uid " +
                    std::to_string(c->uid) + "): " + why.message());
          c->stream->Close(why);
        },
        static_cast<uint64_t>(options_.hello_timeout_ms), 0);
  }

  // ------------------------------------------------------------ requests

  // One request of `c`. `arrived_ms` (loop time): when it arrived, for an early request
  // replayed once the session opens (-1: now).
  Status OnFrame(Conn* c, std::string_view body, int64_t arrived_ms = -1) {
    pb::ClientRequest req;
    if (!req.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
      return Status::InvalidArgument("malformed client request (" + std::to_string(body.size()) +
                                     " bytes that do not parse)");
    }
    if (!c->hello_seen) {
      if (!req.has_hello()) return Status::InvalidArgument("first request is not a hello");
      c->hello_seen = true;
      if (!c->refused.empty()) {
        pb::ClientResponse resp;
        resp.set_request_id(req.request_id());
        resp.set_error(c->refused);
        c->stream->Send(resp);
        return Status::PermissionDenied(c->refused);
      }
      if (req.hello().protocol_version() != net::kClientProtocolVersion) {
        pb::ClientResponse resp;
        resp.set_request_id(req.request_id());
        resp.set_error("client protocol version " + std::to_string(req.hello().protocol_version()) +
                       " is not supported (node speaks " +
                       std::to_string(net::kClientProtocolVersion) + ")");
        c->stream->Send(resp);
        return Status::InvalidArgument(resp.error());
      }
      c->client_name = req.hello().client_name().substr(0, 256);
      Status proposed = IdsAvailable() ? OpenSessionFor(c) : AwaitIds(c);
      if (!proposed.ok()) {
        pb::ClientResponse resp;
        resp.set_request_id(req.request_id());
        resp.set_error("node cannot open a session: " + proposed.ToString());
        c->stream->Send(resp);
        return Status::Unavailable(resp.error());
      }
      // The hello is answered as soon as the OpenSession is proposed, without waiting for
      // it to be durable: a session without locks loses nothing if a crash forgets it, and
      // every later command of the session is ordered after it in the log, so a grant that
      // is durable implies its session is. This saves an fsync per connection. (While the
      // node is claiming client ids the hello is answered with client id 0: the session
      // opens, and the requests that wait for it go on, once the claim is applied.)
      pb::ClientResponse resp;
      resp.set_request_id(req.request_id());
      resp.mutable_hello()->set_protocol_version(net::kClientProtocolVersion);
      resp.mutable_hello()->set_node_id(options_.node_id);
      resp.mutable_hello()->set_client_id(c->client_id);
      if (cluster_) {
        // The client keeps a lease of its own (core/lease/client_lease.h), renewed as often
        // as this node renews its own, with the cluster's drift bound and the node's margin.
        // A local node has no lease: no other node can grant its locks.
        const core::lease::LeaseOptions& lo = cluster_->lease_options();
        resp.mutable_hello()->set_lease_renew_ms(
            std::max<uint64_t>(1, lo.keepalive_interval / 1000));
        resp.mutable_hello()->set_lease_drift_ppm(
            static_cast<uint32_t>(std::ceil(std::max(0.0, lo.max_drift) * 1e6)));
        resp.mutable_hello()->set_lease_margin_us(lo.margin);
      }
      c->stream->Send(resp);
      return Status::OK();
    }
    if (!c->session_open) {
      if (!c->awaiting_ids) return Status::InvalidArgument("request before the session was open");
      if (req.has_lock() || req.has_unlock()) {
        if (c->early.size() >= kMaxEarlyRequests) {
          return Reply(c, req.request_id(), pb::UNAVAILABLE,
                       "too many requests before this connection's session opened (at most " +
                           std::to_string(kMaxEarlyRequests) + ")");
        }
        const int64_t now = static_cast<int64_t>(uv_now(loop_));
        c->early.push_back(Conn::EarlyRequest{std::string(body), req.request_id(), now});
        // The deadline holds while the node waits for its client ids too (without a quorum
        // they cannot be claimed): DeadlinePassed answers a request still in `early`.
        if (req.has_lock()) {
          const int64_t deadline = LockDeadline(req.lock(), now);
          if (deadline >= 0) {
            deadlines_.emplace(deadline, Deadline{c->serial, req.request_id(), false});
            ArmDeadlineTimer();
          }
        }
        return Status::OK();  // replayed by OnIdsClaimed
      }
    }
    switch (req.body_case()) {
      case pb::ClientRequest::kLock: return HandleLock(c, req, arrived_ms);
      case pb::ClientRequest::kUnlock: {
        pb::Command cmd;
        auto* rel = cmd.mutable_release();
        SetSession(c, rel->mutable_session());
        uint64_t seq = ++c->next_seq;
        rel->set_seq(seq);
        rel->set_lock_id(req.unlock().lock_id());
        rel->set_rollback(req.unlock().rollback());
        rel->set_stamp_unix_ns(net::WallClockNs());
        c->ops[seq] = Conn::Op{req.request_id(), -1, ""};
        return ProposeForSession(c, req.request_id(), seq, std::move(cmd));
      }
      case pb::ClientRequest::kStatus: {
        pb::ClientResponse resp;
        resp.set_request_id(req.request_id());
        FillStatus(resp.mutable_status());
        c->stream->Send(resp);
        return Status::OK();
      }
      case pb::ClientRequest::kListLocks: {
        pb::ClientResponse resp;
        resp.set_request_id(req.request_id());
        Status st = net::AnswerListLocks(log_->table(), req.list_locks(), resp.mutable_locks());
        if (!st.ok()) resp.set_error(st.message());
        c->stream->Send(resp);
        return Status::OK();
      }
      case pb::ClientRequest::kShutdown: {
        pb::ClientResponse resp;
        resp.set_request_id(req.request_id());
        resp.mutable_result()->set_code(pb::RELEASED);
        c->stream->Send(resp);
        Log(std::string("shutdown requested by pid ") + std::to_string(c->pid) +
            (req.shutdown().immediate() ? " (immediate)" : " (once idle)"));
        if (req.shutdown().immediate()) {
          StopWithReason(Status::OK());
        } else {
          quiesce_ = true;
          MaybeQuiesce();
        }
        return Status::OK();
      }
      case pb::ClientRequest::kLease: {
        // Answered at once: the client's lease counts from its own send time, so only the
        // time this node's lease still holds now matters (0 when it does not hold, which is
        // also when a grant would be held back).
        pb::ClientResponse resp;
        resp.set_request_id(req.request_id());
        resp.mutable_lease()->set_seq(req.lease().seq());
        resp.mutable_lease()->set_remaining_us(LeaseRemainingUs());
        c->stream->Send(resp);
        return Status::OK();
      }
      case pb::ClientRequest::kHello:
        return Status::InvalidArgument("second hello on one connection");
      default:
        return Status::InvalidArgument("request with no known body");
    }
  }

  // How long this node's session lease still holds (us of the monotonic clock the cluster's
  // lease runs on); 0 if it does not, or if this is a local node.
  uint64_t LeaseRemainingUs() const {
    if (!cluster_) return 0;
    const uint64_t now = net::LeaseClockUs();
    const uint64_t until = cluster_->node_lease().valid_until();
    return until > now ? until - now : 0;
  }

  // When a lock request that arrived at `arrived_ms` (loop time) is answered anyway: a
  // try-lock (-n) within kCommitWaitMs even if the log cannot decide it, one with a timeout
  // at its timeout; -1 for one that waits forever.
  static int64_t LockDeadline(const pb::LockRequest& l, int64_t arrived_ms) {
    if (l.timeout_ms() > 0) return arrived_ms + l.timeout_ms();
    if (l.timeout_ms() == 0) return arrived_ms + kCommitWaitMs;
    return -1;
  }

  // `arrived_ms`: see OnFrame; a replayed early request's deadline is registered already.
  Status HandleLock(Conn* c, const pb::ClientRequest& req, int64_t arrived_ms = -1) {
    const pb::LockRequest& l = req.lock();
    if (quiesce_) {
      return Reply(c, req.request_id(), pb::UNAVAILABLE, "node is shutting down");
    }
    if (!pb::LockMode_IsValid(l.mode())) {
      return Reply(c, req.request_id(), pb::INVALID, "unknown lock mode " + std::to_string(l.mode()));
    }
    pb::Command cmd;
    auto* acq = cmd.mutable_acquire();
    SetSession(c, acq->mutable_session());
    uint64_t seq = ++c->next_seq;
    acq->set_seq(seq);
    acq->set_resource(l.resource());
    acq->set_mode(l.mode());
    acq->set_quantity(l.quantity());
    acq->set_wait(l.timeout_ms() != 0);
    acq->set_no_create(l.no_create());
    acq->set_idle_lifespan_ms(std::max<int64_t>(0, l.idle_lifespan_ms()));
    acq->set_stamp_unix_ns(net::WallClockNs());
    const bool replayed = arrived_ms >= 0;
    const int64_t deadline =
        LockDeadline(l, replayed ? arrived_ms : static_cast<int64_t>(uv_now(loop_)));
    c->ops[seq] = Conn::Op{req.request_id(), deadline, l.resource()};
    if (deadline >= 0 && !replayed) {
      deadlines_.emplace(deadline, Deadline{c->serial, req.request_id(), false});
      ArmDeadlineTimer();
    }
    return ProposeForSession(c, req.request_id(), seq, std::move(cmd));
  }

  Status Reply(Conn* c, uint64_t request_id, pb::ResultCode code, const std::string& message) {
    pb::ClientResponse resp;
    resp.set_request_id(request_id);
    resp.mutable_result()->set_code(code);
    resp.mutable_result()->set_message(message);
    if (c->stream) c->stream->Send(resp);
    return Status::OK();
  }

  // Proposes command `seq` of `c`'s session, kept in `unconfirmed` while its OpenSession
  // is not applied yet (see Conn::unconfirmed).
  Status ProposeForSession(Conn* c, uint64_t request_id, uint64_t seq, pb::Command cmd) {
    if (!c->open_applied) c->unconfirmed[seq] = cmd;
    Status st = log_->Propose(std::move(cmd));
    if (st.ok()) return Status::OK();
    c->unconfirmed.erase(seq);  // refused (e.g. disk full): answered now, never re-proposed
    return Reply(c, request_id, pb::UNAVAILABLE, st.ToString());
  }

  void SetSession(const Conn* c, pb::SessionKey* key) {
    key->set_node_id(options_.node_id);
    key->set_client_id(c->client_id);
  }

  // True if `c`'s client holds lock `lock_id` as far as it was told: granted in the table,
  // not being undone, and not declared lost.
  bool ClientHolds(const Conn* c, uint64_t lock_id) {
    if (c->locks_lost || c->untold.count(lock_id) != 0) return false;
    pb::SessionKey key;
    SetSession(c, &key);
    return log_->table().Holds(key, lock_id);
  }

  void FillStatus(pb::StatusReply* out) const {
    NodeStatus s = GetStatus();
    out->set_node_id(s.node_id);
    out->set_cluster(s.cluster);
    out->set_role(s.role);
    out->set_leader_id(s.leader_id);
    out->set_term(s.term);
    out->set_commit_index(s.commit_index);
    out->set_applied_index(s.applied_index);
    out->set_clients(s.clients);
    out->set_locks_held(s.locks_held);
    out->set_locks_waiting(s.locks_waiting);
    out->set_data_dir(s.data_dir);
    out->set_socket(s.socket);
    out->set_security(s.security);
    out->set_uptime_ms(s.uptime_ms);
    out->set_version(s.version);
    out->set_fsync(s.fsync);
    out->set_mesh(s.mesh);
    out->set_cluster_id(s.cluster_id);
    out->set_lease_ms(s.lease_ms);
    for (const std::string& w : s.warnings) out->add_warnings(w);
    for (const auto& m : s.members) {
      auto* pm = out->add_members();
      pm->set_node_id(m.node_id);
      pm->set_role(m.role);
      pm->set_address(m.address);
      pm->set_voter(m.voter);
      pm->set_connected(m.connected);
      pm->set_match(m.match);
      pm->set_lag(m.lag);
      pm->set_found_at(m.found_at);
      pm->set_fingerprint(m.fingerprint);
    }
  }

  // ------------------------------------------------------------ applied entries

  Conn* OwnConn(const pb::SessionKey& s) {
    if (s.node_id() != options_.node_id) return nullptr;
    auto it = sessions_.find(s.client_id());
    return it == sessions_.end() ? nullptr : it->second;
  }

  // Corks `c` until the end of the batch being applied (see FramedStream::Cork).
  void CorkForBatch(Conn* c) {
    if (!c->stream || c->stream->corked()) return;
    c->stream->Cork();
    corked_.push_back(c->serial);
  }

  void UncorkAll() {
    for (uint64_t serial : corked_) {
      auto it = conns_.find(serial);
      if (it != conns_.end() && it->second->stream) it->second->stream->Uncork();
    }
    corked_.clear();
  }

  void SendResult(Conn* c, uint64_t request_id, const pb::CommandResult& r) {
    if (!c->stream) return;
    if (cluster_ && r.code() == pb::GRANTED && !cluster_->LeaseValid()) {
      // Without a lease this node cannot vouch that the grant is still ours when the
      // client hears of it: hold it until an acknowledgement (which implies the log is
      // applied past any expiry of our sessions) makes the lease valid again.
      deferred_grants_.push_back({c->serial, request_id, r});
      cluster_->RequestLease();
      return;
    }
    CorkForBatch(c);
    pb::ClientResponse resp;
    resp.set_request_id(request_id);
    *resp.mutable_result() = r;
    c->stream->Send(resp);
  }

  void OnApplied(uint64_t index, const pb::Command& cmd, const core::ApplyResult& r) {
    switch (cmd.body_case()) {
      case pb::Command::kOpenSession: {
        const pb::SessionKey& key = cmd.open_session().session();
        if (key.node_id() != options_.node_id) break;
        if (abandoned_ids_.erase(key.client_id()) != 0) {
          // A session given up before its open was applied (Reopen): nobody uses it.
          if (r.result.code() == pb::GRANTED) {
            pb::Command close;
            *close.mutable_close_session()->mutable_session() = key;
            log_->Propose(std::move(close));
          }
          break;
        }
        Conn* c = OwnConn(key);
        if (!c || c->open_applied) break;
        if (r.result.code() == pb::GRANTED) {
          c->open_applied = true;
          c->unconfirmed.clear();
        } else {
          Reopen(c, "its session open was refused (" + r.result.message() + ")",
                 /*open_refused=*/true);
        }
        break;
      }
      case pb::Command::kAcquire: {
        const pb::Acquire& a = cmd.acquire();
        Conn* c = OwnConn(a.session());
        if (!c) break;
        if (ReopenIfAhead(c, r.result)) break;
        if (r.result.code() == pb::STALE_SEQ) {
          Resequence(c, cmd);
          break;
        }
        auto it = c->ops.find(a.seq());
        if (it == c->ops.end()) break;
        Conn::Op op = it->second;
        c->ops.erase(it);
        if (op.given_up) {
          // Answered at its deadline before the log decided: undone now.
          if (r.result.code() == pb::GRANTED) {
            c->untold.insert(r.result.lock_id());
            ProposeUndo(c, pb::Command::kRelease, r.result.lock_id());
          }
          if (r.result.code() == pb::QUEUED) {
            c->waiting[r.result.lock_id()] = op;
            ProposeUndo(c, pb::Command::kCancel, r.result.lock_id());
          }
          break;
        }
        if (r.result.code() == pb::QUEUED) {
          c->waiting[r.result.lock_id()] = op;
        } else {
          ForgetDeadline(c->serial, op);
          SendResult(c, op.request_id, r.result);
        }
        break;
      }
      case pb::Command::kRelease: {
        const pb::Release& rel = cmd.release();
        Conn* c = OwnConn(rel.session());
        if (!c) break;
        if (ReopenIfAhead(c, r.result)) break;
        if (r.result.code() == pb::STALE_SEQ) {
          Resequence(c, cmd);
          break;
        }
        c->untold.erase(rel.lock_id());
        auto it = c->ops.find(rel.seq());
        if (it != c->ops.end()) {
          SendResult(c, it->second.request_id, r.result);
          c->ops.erase(it);
        }
        // An unlock naming one of this client's own queued requests withdrew it: that lock
        // request must still get its (one) answer.
        if (auto w = c->waiting.find(rel.lock_id());
            w != c->waiting.end() && r.result.code() == pb::CANCELLED) {
          const Conn::Op op = Settle(c, w);
          if (op.given_up) break;
          pb::CommandResult withdrawn;
          withdrawn.set_code(pb::CANCELLED);
          withdrawn.set_lock_id(rel.lock_id());
          withdrawn.set_message("request withdrawn by an unlock before it was granted");
          SendResult(c, op.request_id, withdrawn);
        }
        break;
      }
      case pb::Command::kCancel: {
        const pb::Cancel& can = cmd.cancel();
        Conn* c = OwnConn(can.session());
        if (!c) break;
        if (r.result.code() == pb::STALE_SEQ) {
          Resequence(c, cmd);
          break;
        }
        auto it = c->waiting.find(can.lock_id());
        if (it != c->waiting.end() && r.result.code() == pb::CANCELLED) {
          const Conn::Op op = Settle(c, it);
          if (op.given_up) break;
          pb::CommandResult timed_out;
          timed_out.set_code(pb::TIMED_OUT);
          timed_out.set_lock_id(can.lock_id());
          timed_out.set_message("timed out waiting for " + op.resource);
          SendResult(c, op.request_id, timed_out);
        }
        break;
      }
      default:
        break;
    }
    // Grants to queued requests of our clients (the issuer's own grant was answered above).
    for (const core::Grant& g : r.grants) {
      Conn* c = OwnConn(g.session);
      if (!c) continue;
      auto it = c->waiting.find(g.lock_id);
      if (it == c->waiting.end()) continue;
      const Conn::Op op = Settle(c, it);
      if (op.given_up) {
        c->untold.insert(g.lock_id);
        ProposeUndo(c, pb::Command::kRelease, g.lock_id);
        continue;
      }
      pb::CommandResult granted;
      granted.set_code(pb::GRANTED);
      granted.set_lock_id(g.lock_id);
      granted.set_token(g.token);
      granted.set_element(g.element);
      SendResult(c, op.request_id, granted);
    }
    for (const core::Withdrawal& w : r.withdrawals) {
      Conn* c = OwnConn(w.session);
      if (!c) continue;
      auto it = c->waiting.find(w.lock_id);
      if (it == c->waiting.end()) continue;
      const Conn::Op op = Settle(c, it);
      if (op.given_up) continue;
      pb::CommandResult res;
      res.set_code(w.code);
      res.set_lock_id(w.lock_id);
      res.set_message("request withdrawn");
      SendResult(c, op.request_id, res);
    }
    for (const core::Grant& g : r.released) {
      Conn* c = OwnConn(g.session);
      // Locks the client was not told of, or was told lost already, end in silence.
      if (!c || c->untold.erase(g.lock_id) != 0 || c->locks_lost || !c->stream) continue;
      pb::ClientResponse resp;
      auto* ev = resp.mutable_event();
      ev->set_lock_id(g.lock_id);
      ev->set_code(pb::LOST);
      ev->set_token(g.token);
      ev->set_message("session of this client was ended by the cluster");
      c->stream->Send(resp);
    }
    (void)index;
    if (cmd.has_expire_node() && cmd.expire_node().node_id() == options_.node_id) {
      // The cluster ended sessions of ours (a lapsed lease, or the leader's expiry): their
      // clients must reconnect to get new ones.
      CloseEndedSessions(cmd.expire_node().below_client_id());
    }
    if (cmd.has_claim_client_ids() && cmd.claim_client_ids().node_id() == options_.node_id) {
      OnOwnIdClaim(cmd.claim_client_ids(), r.result);
    }
    MaybeQuiesce();
    ArmIdleTimer();
  }

  // Closes the connections of this node's sessions with client ids below `below` (0: all),
  // which the cluster has ended: their clients must reconnect to get new ones.
  void CloseEndedSessions(uint64_t below) {
    std::vector<Conn*> ended;
    for (auto& [id, c] : sessions_) {
      if (below == 0 || id < below) ended.push_back(c);
    }
    for (Conn* c : ended) {
      // session_open stays true: closing proposes a CloseSession, which is a no-op for an
      // ended session but stops the retries of its commands (a late retried OpenSession
      // is refused by the table anyway).
      if (c->stream) {
        c->stream->Close(Status::Unavailable("the cluster expired this node's sessions"));
      }
    }
  }

  // ------------------------------------------------------------ reopened sessions
  //
  // The hello is answered, and the session's first commands proposed, without waiting for
  // the OpenSession to be applied (see OnFrame, the hello). The table applies an OpenSession only
  // above every client id this node opened before, and a command only after its open, so
  // when the log orders them otherwise (a proposal lost with a leader, or on a link, and
  // retried after newer ones) the session never opens. The client must not pay for that:
  // its session is reopened under a new client id and its commands proposed again, in
  // order, under the new id with new sequence numbers. The old id is given up (closed, if
  // its open is applied after all), so a late copy of an old command grants nothing that
  // stays held.

  // A command of `c` applied with `result` found no session while its open was not yet
  // applied: reopens, and returns true (the result is not the client's to see).
  bool ReopenIfAhead(Conn* c, const pb::CommandResult& result) {
    if (c->open_applied || result.code() != pb::NO_SESSION) return false;
    Reopen(c, "a command was ordered before its session open", /*open_refused=*/false);
    return true;
  }

  void Reopen(Conn* c, const std::string& why, bool open_refused) {
    const uint64_t old = c->client_id;
    if (!open_refused) abandoned_ids_.insert(old);
    sessions_.erase(old);
    for (auto& [seq, cmd] : c->unconfirmed) c->stalled.emplace(seq, std::move(cmd));
    c->unconfirmed.clear();
    Log("client " + std::to_string(old) + " (pid " + std::to_string(c->pid) + "): " + why +
        "; reopening its session under a new client id");
    if (!c->stream) return;
    if (!IdsAvailable()) {
      c->session_open = false;
      AwaitIds(c);  // OnIdsClaimed opens it and proposes the stalled commands
      return;
    }
    Status st = OpenSessionFor(c);
    if (!st.ok()) {
      c->stream->Close(Status::Unavailable("node cannot open a session: " + st.ToString()));
      return;
    }
    ProposeStalled(c);
  }

  // A command of `c`'s session that the log ordered after a later one of the session
  // (STALE_SEQ: its first copy was lost with a leader and the retry came late). It took no
  // effect and never will under its seq: proposes it again under a new one if still wanted
  // — an Acquire still awaited (its op moves to the new seq; one answered at its deadline
  // is dropped), and every Release and Cancel (if their lock is gone already, the copy is
  // answered NOT_FOUND or with the grant, and changes nothing).
  void Resequence(Conn* c, pb::Command cmd) {
    uint64_t old_seq = 0;
    const uint64_t seq = ++c->next_seq;
    switch (cmd.body_case()) {
      case pb::Command::kAcquire:
        old_seq = cmd.acquire().seq();
        cmd.mutable_acquire()->set_seq(seq);
        break;
      case pb::Command::kRelease:
        old_seq = cmd.release().seq();
        cmd.mutable_release()->set_seq(seq);
        break;
      case pb::Command::kCancel:
        old_seq = cmd.cancel().seq();
        cmd.mutable_cancel()->set_seq(seq);
        break;
      default:
        return;
    }
    uint64_t request_id = 0;
    auto op = c->ops.find(old_seq);
    if (op != c->ops.end()) {
      if (op->second.given_up) {
        c->ops.erase(op);  // answered at its deadline; the log never took it
        return;
      }
      request_id = op->second.request_id;
      c->ops.emplace(seq, op->second);
      c->ops.erase(op);
    } else if (cmd.has_acquire()) {
      return;  // a duplicate of one already answered
    }
    ProposeForSession(c, request_id, seq, std::move(cmd));
  }

  // Proposes `c`'s stalled commands again, in their order, under its current session.
  void ProposeStalled(Conn* c) {
    std::map<uint64_t, pb::Command> stalled;
    stalled.swap(c->stalled);
    for (auto& [old_seq, cmd] : stalled) {
      const uint64_t seq = ++c->next_seq;
      pb::SessionKey* key = nullptr;
      switch (cmd.body_case()) {
        case pb::Command::kAcquire:
          key = cmd.mutable_acquire()->mutable_session();
          cmd.mutable_acquire()->set_seq(seq);
          break;
        case pb::Command::kRelease:
          key = cmd.mutable_release()->mutable_session();
          cmd.mutable_release()->set_seq(seq);
          break;
        default:
          continue;  // only locks and unlocks are kept (ProposeForSession)
      }
      auto op = c->ops.find(old_seq);
      if (op != c->ops.end() && op->second.given_up) {
        c->ops.erase(op);  // answered at its deadline: not proposed again
        continue;
      }
      SetSession(c, key);
      uint64_t request_id = 0;
      if (op != c->ops.end()) {
        request_id = op->second.request_id;
        c->ops.emplace(seq, op->second);
        c->ops.erase(op);
      }
      ProposeForSession(c, request_id, seq, std::move(cmd));
    }
  }

  // ------------------------------------------------------------ client ids
  //
  // A node's client ids are (E << 32) | k for an epoch E claimed through the log
  // (core/lock_table.h, ClaimClientIds), never taken from a clock: a node restarted with its
  // wall clock stepped back must still end its earlier runs' sessions and open new ones.
  // Start claims with expire_older; a new epoch is claimed without it when k runs out, and
  // again when another claim for this node id (an earlier run's, applied late) overtook ours.
  // Connections that say hello meanwhile wait for the claim (AwaitIds, OnIdsClaimed).

  // Proposes a claim of a new epoch, recognised when applied by its random nonce.
  void ClaimClientIds(bool expire_older) {
    std::random_device random;  // a CSPRNG where the platform has one (getrandom on Linux)
    uint64_t nonce = 0;
    while (nonce == 0) nonce = (static_cast<uint64_t>(random()) << 32) ^ random();
    claim_nonce_ = nonce;
    claim_pending_ = true;
    pb::Command cmd;
    pb::ClaimClientIds* claim = cmd.mutable_claim_client_ids();
    claim->set_node_id(options_.node_id);
    claim->set_expire_older(expire_older);
    claim->set_nonce(nonce);
    claim->set_token_floor(options_.token_floor);
    Status st = log_->Propose(std::move(cmd));
    if (!st.ok()) Log("cannot claim client ids: " + st.ToString());
  }

  // True if a hello can be given a client id at once.
  bool IdsAvailable() const {
    return !claim_pending_ && next_client_k_ <= core::kMaxClientIdInEpoch;
  }

  // Gives `c` the next client id and proposes its OpenSession (IdsAvailable() must hold).
  Status OpenSessionFor(Conn* c) {
    c->client_id = (id_epoch_ << core::kClientIdEpochBits) | next_client_k_++;
    sessions_[c->client_id] = c;
    pb::Command cmd;
    auto* open = cmd.mutable_open_session();
    SetSession(c, open->mutable_session());
    open->set_pid(c->pid);
    open->set_uid(c->uid);
    open->set_client_name(c->client_name);
    MESH_RETURN_IF_ERROR(log_->Propose(std::move(cmd)));
    c->session_open = true;
    c->awaiting_ids = false;
    return Status::OK();
  }

  // `c` waits for the claim under way (one is proposed if the epoch is used up).
  Status AwaitIds(Conn* c) {
    c->awaiting_ids = true;
    awaiting_ids_.push_back(c->serial);
    if (!claim_pending_) ClaimClientIds(/*expire_older=*/false);
    return Status::OK();
  }

  // A ClaimClientIds for this node id was applied with `result`.
  void OnOwnIdClaim(const pb::ClaimClientIds& claim, const pb::CommandResult& result) {
    if (claim.nonce() == claim_nonce_) {
      if (!claim_pending_) return;  // a retry of ours applied once more: the same epoch
      if (result.code() != pb::GRANTED) {
        Log("fatal: cannot claim client ids: " + result.message());
        StopWithReason(Status::Unavailable("cannot claim client ids: " + result.message()));
        return;
      }
      claim_pending_ = false;
      id_epoch_ = result.client_id_epoch();
      next_client_k_ = 1;
      OnIdsClaimed();
      return;
    }
    // Another claim for this node id: an earlier run's, applied late (its proposal outlived
    // it). It ended our sessions below its epoch (with expire_older) and the table refuses
    // our ids below it: close those sessions' clients, and claim ids above it.
    if (result.code() != pb::GRANTED) return;
    const uint64_t epoch = result.client_id_epoch();
    if (claim.expire_older()) CloseEndedSessions(epoch << core::kClientIdEpochBits);
    if (!claim_pending_ && epoch > id_epoch_) {
      Log("another client id claim for this node (epoch " + std::to_string(epoch) +
          ", an earlier run's) was applied after ours (epoch " + std::to_string(id_epoch_) +
          "): claiming again");
      ClaimClientIds(/*expire_older=*/false);
    }
  }

  // The claim is applied: the connections that waited get their sessions, in hello order,
  // and their early requests go on in order.
  void OnIdsClaimed() {
    std::vector<uint64_t> serials;
    serials.swap(awaiting_ids_);
    for (size_t i = 0; i < serials.size(); ++i) {
      auto it = conns_.find(serials[i]);
      if (it == conns_.end() || !it->second->stream) continue;
      Conn* c = it->second.get();
      if (!IdsAvailable()) {  // used up again: the rest wait for the next claim
        awaiting_ids_.insert(awaiting_ids_.end(), serials.begin() + static_cast<std::ptrdiff_t>(i),
                             serials.end());
        if (!claim_pending_) ClaimClientIds(/*expire_older=*/false);
        return;
      }
      Status st = OpenSessionFor(c);
      if (!st.ok()) {
        c->stream->Close(Status::Unavailable("node cannot open a session: " + st.ToString()));
        continue;
      }
      ProposeStalled(c);  // a reopened session's commands (Reopen), before any newer one
      std::vector<Conn::EarlyRequest> early;
      early.swap(c->early);
      for (const Conn::EarlyRequest& e : early) {
        Status handled = OnFrame(c, e.body, e.arrived_ms);
        if (!c->stream) break;
        if (!handled.ok()) {
          c->stream->Close(handled);
          break;
        }
      }
    }
  }

  // ------------------------------------------------------------ the mesh

  Status StartCluster() {
    const MeshOptions& mo = options_.mesh;
    net::ClusterOptions co;
    co.cluster = options_.cluster;
    co.node_id = options_.node_id;
    co.data_dir = options_.data_dir;
    co.expect = mo.expect;
    co.voters = mo.voters;
    co.listen = mo.listen;
    co.advertise = mo.advertise;
    co.join = mo.join;
    MESH_RETURN_IF_ERROR(net::ParseSecurityLevel(mo.security, &co.tls.level));
    co.tls.cert_file = mo.tls_cert;
    co.tls.key_file = mo.tls_key;
    co.tls.ca_file = mo.tls_ca;
    co.trusted_fingerprints_file = mo.trusted_fingerprints;
    co.multicast = mo.multicast;
    co.discovery_port = mo.discovery_port;
    co.discovery_group4 = mo.discovery_group4;
    co.discovery_group6 = mo.discovery_group6;
    co.discovery_interface = mo.discovery_interface;
    co.discovery_ttl = mo.discovery_ttl;
    if (mo.expect < 1 || mo.voters < 1 || mo.session_ttl_ms < 100 || mo.dead_after_ms < 100 ||
        mo.election_timeout_ms < 10) {
      return Status::InvalidArgument(
          "mesh options out of range: expect and voters must be >= 1, session ttl and "
          "dead-after >= 100 ms, election timeout >= 10 ms");
    }
    co.session_ttl_us = static_cast<uint64_t>(mo.session_ttl_ms) * 1000;
    co.dead_after_us = static_cast<uint64_t>(mo.dead_after_ms) * 1000;
    co.election_timeout_us = static_cast<uint64_t>(mo.election_timeout_ms) * 1000;
    co.log = [this](const std::string& line) { Log(line); };
    net::Cluster::Callbacks cb;
    cb.on_lease_lapsed = [this] { OnLeaseLapsed(); };
    cb.on_lease_valid = [this] { FlushDeferredGrants(); };
    cluster_ = std::make_unique<net::Cluster>(loop_, co, log_.get(), cb);
    return cluster_->Start();
  }

  // Start failed after the cluster was made: stop it, running the loop until it has.
  void StopClusterNow() {
    if (!cluster_) return;
    bool done = false;
    cluster_->Stop([&done] { done = true; });
    while (!done) uv_run(loop_, UV_RUN_ONCE);
    cluster_.reset();
  }

  void OnLeaseLapsed() {
    deferred_grants_.clear();
    std::vector<Conn*> all;
    for (auto& [serial, c] : conns_) all.push_back(c.get());
    for (Conn* c : all) {
      if (!c->stream || c->locks_lost) continue;
      pb::SessionKey key;
      SetSession(c, &key);
      for (uint64_t lock_id : log_->table().HeldLockIds(key)) {
        if (c->untold.count(lock_id) != 0) continue;
        pb::ClientResponse resp;
        auto* ev = resp.mutable_event();
        ev->set_lock_id(lock_id);
        ev->set_code(pb::LOST);
        ev->set_message(
            "this node lost contact with the cluster's leader for the session lease; another "
            "node may be granted the lock");
        c->stream->Send(resp);
      }
      c->locks_lost = true;
      // Closing proposes the session's CloseSession: its locks are released through the log
      // as soon as the cluster is reachable again — the leader expires this node only if it
      // stays silent for the whole ttl, and it may come back before that.
      c->stream->Close(Status::Unavailable("session lease lapsed"));
    }
  }

  void FlushDeferredGrants() {
    std::vector<DeferredGrant> grants;
    grants.swap(deferred_grants_);
    for (const DeferredGrant& g : grants) {
      auto it = conns_.find(g.serial);
      if (it == conns_.end() || !it->second->stream) continue;
      Conn* c = it->second.get();
      if (!ClientHolds(c, g.result.lock_id())) continue;  // released or lost meanwhile
      SendResult(c, g.request_id, g.result);
    }
    UncorkAll();
  }

  // ------------------------------------------------------------ deadlines and idleness

  void ArmDeadlineTimer() {
    if (deadlines_.empty() || stopping_) {
      if (timers_ready_) uv_timer_stop(&deadline_timer_);
      return;
    }
    int64_t now = static_cast<int64_t>(uv_now(loop_));
    int64_t wait = std::max<int64_t>(0, deadlines_.begin()->first - now);
    uv_timer_start(&deadline_timer_, OnDeadline, static_cast<uint64_t>(wait), 0);
  }

  static void OnDeadline(uv_timer_t* t) {
    auto* self = static_cast<NodeImpl*>(t->data);
    int64_t now = static_cast<int64_t>(uv_now(self->loop_));
    while (!self->deadlines_.empty() && self->deadlines_.begin()->first <= now) {
      const Deadline d = self->deadlines_.begin()->second;
      self->deadlines_.erase(self->deadlines_.begin());
      self->DeadlinePassed(d, now);
    }
    self->UncorkAll();
    self->ArmDeadlineTimer();
  }

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
  void DeadlinePassed(const Deadline& d, int64_t now) {
    auto conn = conns_.find(d.serial);
    if (conn == conns_.end() || !conn->second->stream) return;  // closing ends the session
    Conn* c = conn->second.get();
    for (auto e = c->early.begin(); e != c->early.end(); ++e) {
      if (e->request_id != d.request_id) continue;
      c->early.erase(e);
      Reply(c, d.request_id, pb::UNAVAILABLE,
            NoQuorum("this node could not claim the client ids that open a session"));
      return;
    }
    for (auto& [seq, op] : c->ops) {
      if (op.request_id != d.request_id || op.given_up) continue;
      op.given_up = true;
      Reply(c, d.request_id, pb::UNAVAILABLE,
            NoQuorum("the lock request for " + op.resource + " was not committed"));
      return;
    }
    for (auto& [lock_id, op] : c->waiting) {
      if (op.request_id != d.request_id || op.given_up) continue;
      if (!d.cancel_grace) {
        ProposeUndo(c, pb::Command::kCancel, lock_id);
        deadlines_.emplace(now + kCommitWaitMs, Deadline{d.serial, d.request_id, true});
        return;
      }
      op.given_up = true;
      Reply(c, d.request_id, pb::TIMED_OUT,
            "timed out waiting for " + op.resource + "; " +
                NoQuorum("its cancel was not committed") +
                " (the request is withdrawn when the cluster commits again)");
      return;
    }
    for (auto g = deferred_grants_.begin(); g != deferred_grants_.end(); ++g) {
      if (g->serial != d.serial || g->request_id != d.request_id) continue;
      const uint64_t lock_id = g->result.lock_id();
      deferred_grants_.erase(g);
      if (!ClientHolds(c, lock_id)) return;  // released or lost meanwhile
      c->untold.insert(lock_id);
      ProposeUndo(c, pb::Command::kRelease, lock_id);
      Reply(c, d.request_id, pb::UNAVAILABLE,
            NoQuorum("the lock was granted, but this node's session lease was not confirmed") +
                " (the lock is released)");
      return;
    }
  }

  // `c`'s queued request `w` has its outcome (granted, cancelled, withdrawn): takes it out of
  // `waiting`, with its deadline, and returns it. If it is given_up, the client was answered
  // at its deadline and is told nothing more (the caller undoes a grant).
  Conn::Op Settle(Conn* c, std::map<uint64_t, Conn::Op>::iterator w) {
    Conn::Op op = std::move(w->second);
    c->waiting.erase(w);
    ForgetDeadline(c->serial, op);
    return op;
  }

  // Drops the (first) deadline of `op`, a request of connection `serial` that has its answer
  // or will never need one: deadlines_ holds only requests still waiting for theirs.
  void ForgetDeadline(uint64_t serial, const Conn::Op& op) {
    if (op.deadline_ms < 0 || op.given_up) return;
    auto [lo, hi] = deadlines_.equal_range(op.deadline_ms);
    for (auto d = lo; d != hi; ++d) {
      if (d->second.serial == serial && d->second.request_id == op.request_id &&
          !d->second.cancel_grace) {
        deadlines_.erase(d);
        return;
      }
    }
  }

  // "no leader or quorum: <what> within the deadline (...)", for the answers above.
  std::string NoQuorum(const std::string& what) const {
    // A full disk holds this node's log: that, not the quorum, is why (see CommandLog).
    if (log_ && !log_->disk_full().empty()) {
      return log_->disk_full() + ": " + what + " within the deadline";
    }
    const std::string leader = cluster_ ? GetStatus().leader_id : "";
    return "no leader or quorum: " + what + " within the deadline (" +
           (leader.empty() ? "this node knows no leader"
                           : "leader " + leader + " did not commit it") +
           ")";
  }

  // Proposes the Cancel (kCancel) or Release (kRelease) of `c`'s lock `lock_id`, undoing a
  // request the client no longer waits for. Its result answers nobody.
  void ProposeUndo(Conn* c, pb::Command::BodyCase kind, uint64_t lock_id) {
    pb::Command cmd;
    if (kind == pb::Command::kCancel) {
      auto* can = cmd.mutable_cancel();
      SetSession(c, can->mutable_session());
      can->set_seq(++c->next_seq);
      can->set_lock_id(lock_id);
      can->set_stamp_unix_ns(net::WallClockNs());
    } else {
      auto* rel = cmd.mutable_release();
      SetSession(c, rel->mutable_session());
      rel->set_seq(++c->next_seq);
      rel->set_lock_id(lock_id);
      rel->set_stamp_unix_ns(net::WallClockNs());
    }
    Status st = log_->Propose(std::move(cmd));
    if (!st.ok()) Log("cannot propose the withdrawal of lock " + std::to_string(lock_id) + ": " + st.ToString());
  }

  bool Idle() const {
    return conns_.empty() && log_->table().held_count() == 0 && log_->table().waiting_count() == 0;
  }

  void ArmIdleTimer() {
    if (!timers_ready_ || stopping_ || options_.idle_exit_ms <= 0) return;
    if (!Idle()) {
      uv_timer_stop(&idle_timer_);
      return;
    }
    if (uv_is_active(reinterpret_cast<uv_handle_t*>(&idle_timer_))) return;
    // The loop's cached time can be far behind (start-up: recovery, fsync): without this an
    // idle exit shorter than the start-up fires at once, before the first client connects.
    uv_update_time(loop_);
    uv_timer_start(&idle_timer_, [](uv_timer_t* t) {
      auto* self = static_cast<NodeImpl*>(t->data);
      if (!self->Idle()) return;
      self->Log("idle for " + std::to_string(self->options_.idle_exit_ms) + " ms; exiting");
      self->StopWithReason(Status::OK());
    }, static_cast<uint64_t>(options_.idle_exit_ms), 0);
  }

  void MaybeQuiesce() {
    if (quiesce_ && !stopping_ && log_->table().held_count() == 0 &&
        log_->table().waiting_count() == 0) {
      StopWithReason(Status::OK());
    }
  }

  // ------------------------------------------------------------ disconnects and stopping

  void OnConnClosed(uint64_t serial, const Status& why) {
    auto it = conns_.find(serial);
    if (it == conns_.end()) return;
    Conn* c = it->second.get();
    c->stream = nullptr;
    if (!why.ok() && !why.IsUnavailable() && why.code() != Status::Code::kPermissionDenied) {
      Log("closed client " + std::to_string(c->client_id) + " (pid " + std::to_string(c->pid) +
          "): " + why.ToString());
    }
    if (c->session_open && !stopping_) {
      pb::Command cmd;
      SetSession(c, cmd.mutable_close_session()->mutable_session());
      log_->Propose(std::move(cmd));  // its locks are released at once
    }
    if (c->client_id) sessions_.erase(c->client_id);
    for (const auto& [seq, op] : c->ops) ForgetDeadline(serial, op);
    for (const auto& [lock_id, op] : c->waiting) ForgetDeadline(serial, op);
    conns_.erase(it);
    if (stopping_) {
      MaybeFinishStop();
    } else {
      ArmIdleTimer();
    }
  }

  void StopWithReason(const Status& why) {
    if (stopping_) return;
    stop_reason_ = why;
    BeginStop(/*graceful=*/why.ok(), why);
  }

  void BeginStop(bool graceful, const Status& why) {
    if (stopping_) return;
    stopping_ = true;
    stop_reason_ = why;
    if (graceful && !log_->failed()) {
      for (auto& [id, c] : conns_) {
        if (!c->session_open) continue;
        pb::Command cmd;
        SetSession(c.get(), cmd.mutable_close_session()->mutable_session());
        log_->Propose(std::move(cmd));
      }
      log_->Flush();
      if (cluster_) {
        // Leave gracefully: the session closes above reach the cluster, and a leader
        // hands over first. Nothing may finish the stop meanwhile.
        open_handles_ = 1;
        cluster_->Leave([this] { CloseAll(); });
        return;
      }
    }
    CloseAll();
  }

  void CloseAll() {
    for (auto& [id, c] : conns_) {
      if (c->stream) c->stream->Close(Status::OK());
    }
    // server, two timers, the heap trimmer, the log's handles (counted as one), the cluster
    // (as one), and the pending hello timers
    open_handles_ = (cluster_ ? 6 : 5) + static_cast<int>(hello_timers_.size());
    auto on_closed = [](uv_handle_t* h) {
      auto* self = static_cast<NodeImpl*>(h->data);
      --self->open_handles_;
      self->MaybeFinishStop();
    };
    for (auto& [timer, serial] : hello_timers_) {
      uv_close(reinterpret_cast<uv_handle_t*>(timer), [](uv_handle_t* h) {
        auto* self = static_cast<NodeImpl*>(h->data);
        delete reinterpret_cast<uv_timer_t*>(h);
        --self->open_handles_;
        self->MaybeFinishStop();
      });
    }
    hello_timers_.clear();
    uv_close(reinterpret_cast<uv_handle_t*>(&server_), on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&deadline_timer_), on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&idle_timer_), on_closed);
    heap_trimmer_.Close([this] {
      --open_handles_;
      MaybeFinishStop();
    });
    if (cluster_) {
      cluster_->Stop([this] {
        --open_handles_;
        MaybeFinishStop();
      });
    }
    log_->Close([this] {
      --open_handles_;
      MaybeFinishStop();
    });
  }

  void MaybeFinishStop() {
    if (open_handles_ > 0 || !conns_.empty() || finished_) return;
    finished_ = true;
    unlinkat(dir_fd_, net::BasePart(options_.socket_path).c_str(), 0);
    CloseLockFiles();
    Log("node stopped" + (stop_reason_.ok() ? std::string() : ": " + stop_reason_.ToString()));
    auto done = std::move(stop_done_);
    auto stopped = std::move(stopped_);
    Status why = stop_reason_;
    if (done) done();
    if (stopped) stopped(why);
  }

  void CloseLogHandles() {
    // Start failed after the log was created: close its handles (and the server's).
    bool closed = false;
    int pending = 1 + (server_ready_ ? 1 : 0);
    auto* counter = new std::pair<int*, bool*>(&pending, &closed);
    log_->Close([counter] {
      if (--*counter->first == 0) *counter->second = true;
    });
    if (server_ready_) {
      server_.data = counter;
      uv_close(reinterpret_cast<uv_handle_t*>(&server_), [](uv_handle_t* h) {
        auto* p = static_cast<std::pair<int*, bool*>*>(h->data);
        if (--*p->first == 0) *p->second = true;
      });
    }
    while (!closed) uv_run(loop_, UV_RUN_ONCE);
    delete counter;
    CloseLockFiles();
  }

  uv_loop_t* loop_;
  NodeOptions options_;
  std::unique_ptr<net::CommandLog> log_;
  std::unique_ptr<net::Cluster> cluster_;  // mesh only; declared after log_: destroyed first
  struct DeferredGrant {
    uint64_t serial;
    uint64_t request_id;
    pb::CommandResult result;
  };
  std::vector<DeferredGrant> deferred_grants_;  // mesh: grants held while the lease is invalid
  uv_pipe_t server_;
  uv_timer_t deadline_timer_;
  uv_timer_t idle_timer_;
  net::HeapTrimmer heap_trimmer_;  // started with the timers, closed with them
  bool server_ready_ = false;
  bool timers_ready_ = false;
  std::unique_ptr<core::FileLock> socket_lock_;   // <socket>.lock
  int dir_fd_ = -1;                               // the checked socket directory (net/local/local_dir.h)
  std::unique_ptr<core::FileLock> data_lock_;     // <data_dir>/node.lock
  std::map<uv_timer_t*, uint64_t> hello_timers_;  // pending hello deadlines -> Conn::serial
  int64_t socket_gid_ = -1;
  uint64_t id_epoch_ = 0;               // this run's client id epoch (see ClaimClientIds)
  uint64_t next_client_k_ = 1;          // next client id: (id_epoch_ << 32) | next_client_k_
  bool claim_pending_ = false;          // a claim is proposed and not applied yet
  uint64_t claim_nonce_ = 0;            // the latest claim's nonce
  std::vector<uint64_t> awaiting_ids_;  // serials of connections waiting for the claim
  std::set<uint64_t> abandoned_ids_;    // client ids given up by Reopen before their open applied
  uint64_t conn_serial_ = 0;
  uint64_t started_ms_ = 0;
  bool started_ = false;
  bool stopping_ = false;
  bool finished_ = false;
  bool quiesce_ = false;
  int open_handles_ = 0;
  Status stop_reason_;
  std::function<void()> stop_done_;
  std::function<void(const Status&)> stopped_;
  std::map<uint64_t, std::unique_ptr<Conn>> conns_;  // by Conn::serial
  std::map<uint64_t, Conn*> sessions_;               // by client id; entries point into conns_
  std::vector<uint64_t> corked_;                     // serials corked in the current batch
  std::multimap<int64_t, Deadline> deadlines_;       // lock requests' deadlines, by loop time
};

}  // namespace

Status Node::Create(uv_loop_t* loop, NodeOptions options, std::unique_ptr<Node>* out) {
  if (!loop) return Status::InvalidArgument("no loop");
  *out = std::make_unique<NodeImpl>(loop, std::move(options));
  return Status::OK();
}

}  // namespace mesh
