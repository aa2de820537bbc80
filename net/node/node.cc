// mesh::Node's lifecycle (net/node/node_impl.h): Create, Start and Stop, the socket's and the
// data dir's lock files, the mesh claim, the cluster's start and stop, idleness and quiescing,
// and the close sequence. The client socket is client_server.cc's, the sessions
// session_router.cc's.
#include <fcntl.h>
#include <grp.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "core/path_text.h"
#include "net/local/local_dir.h"
#include "net/local/mesh_claim.h"
#include "net/node/node_impl.h"
#include "net/support/log_line.h"
#include "net/support/posix_file_system.h"

namespace mesh {
namespace net::node_impl {
namespace {

constexpr const char* kVersion = LOCKMESH_VERSION;  // from CMake's project version

}  // namespace

NodeImpl::~NodeImpl() {
  CloseLockFiles();
  if (dir_fd_ >= 0) close(dir_fd_);
}

Status NodeImpl::Start() {
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

void NodeImpl::Stop(bool graceful, std::function<void()> done) {
  stop_done_ = std::move(done);
  if (!started_) {
    if (stop_done_) stop_done_();
    return;
  }
  BeginStop(graceful, Status::OK());
}

void NodeImpl::SetStoppedCallback(std::function<void(const Status& why)> stopped) {
  stopped_ = std::move(stopped);
}

NodeStatus NodeImpl::GetStatus() const {
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
      std::string role = !m.voter() ? "learner" : m.id() == raft->leader() ? "leader" : "follower";
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

Status NodeImpl::ReloadCertificates(size_t* cut_off) {
  if (!cluster_) return Status::Unavailable("a local node has no peer links to reload");
  if (options_.mesh.security == "none") {
    return Status::Unavailable("--security none: there are no certificates to reload");
  }
  Status st = cluster_->Reload(cut_off);
  Log(st.ok() ? "certificates reloaded" +
                    (cut_off ? ", " + std::to_string(*cut_off) + " peer(s) cut off" : std::string())
              : "certificate reload failed, the old ones stay in force: " + st.ToString());
  return st;
}

void NodeImpl::Log(const std::string& line) {
  std::string full = net::FormatLogLine(line);
  if (options_.log) {
    options_.log(full);
  } else {
    fprintf(stderr, "%s\n", full.c_str());
  }
}

// ------------------------------------------------------------ lock files and the mesh claim

Status NodeImpl::LockSocket() {
  std::string dir = core::DirName(options_.socket_path);
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
  MESH_RETURN_IF_ERROR(net::OpenOwnFile(dir_fd_, core::BaseName(lock_path), O_RDWR,
                                        /*create=*/true, lock_path, &lock_fd));
  Status locked = net::LockOpenFile(lock_fd, lock_path, core::LockWait::kTry, &socket_lock_);
  if (locked.IsBusy()) {
    return Status::AlreadyExists("another node already serves " + options_.socket_path +
                                 " (it holds " + lock_path + ")");
  }
  MESH_RETURN_IF_ERROR(locked);
  // We own the socket path: a file left there by a dead node is stale.
  unlinkat(dir_fd_, core::BaseName(options_.socket_path).c_str(), 0);
  return Status::OK();
}

Status NodeImpl::ApplyMeshClaim() {
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

Status NodeImpl::DecideStartHere() {
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

Status NodeImpl::LockDataDir() {
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

void NodeImpl::CloseLockFiles() {
  socket_lock_.reset();  // releases the lock: another node may start now
  data_lock_.reset();
}

// ------------------------------------------------------------ the mesh

Status NodeImpl::StartCluster() {
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
      mo.election_timeout_ms < 10 || mo.handshake_timeout_ms < 100 ||
      mo.max_pending_per_source < 1 || mo.max_pending_connections < 1) {
    return Status::InvalidArgument(
        "mesh options out of range: expect and voters must be >= 1, session ttl and "
        "dead-after >= 100 ms, election timeout >= 10 ms, handshake timeout >= 100 ms, "
        "pending connection limits >= 1");
  }
  co.handshake_timeout_ms = static_cast<uint64_t>(mo.handshake_timeout_ms);
  co.pending_limits.max_pending_per_source = mo.max_pending_per_source;
  co.pending_limits.max_pending_total = mo.max_pending_connections;
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

void NodeImpl::StopClusterNow() {
  if (!cluster_) return;
  bool done = false;
  cluster_->Stop([&done] { done = true; });
  while (!done) uv_run(loop_, UV_RUN_ONCE);
  cluster_.reset();
}

// ------------------------------------------------------------ idleness

bool NodeImpl::Idle() const {
  return conns_.empty() && log_->table().held_count() == 0 && log_->table().waiting_count() == 0;
}

void NodeImpl::ArmIdleTimer() {
  if (!timers_ready_ || stopping_ || options_.idle_exit_ms <= 0) return;
  if (!Idle()) {
    uv_timer_stop(&idle_timer_);
    return;
  }
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(&idle_timer_))) return;
  // The loop's cached time can be far behind (start-up: recovery, fsync): without this an
  // idle exit shorter than the start-up fires at once, before the first client connects.
  uv_update_time(loop_);
  uv_timer_start(
      &idle_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<NodeImpl*>(t->data);
        if (!self->Idle()) return;
        self->Log("idle for " + std::to_string(self->options_.idle_exit_ms) + " ms; exiting");
        self->StopWithReason(Status::OK());
      },
      static_cast<uint64_t>(options_.idle_exit_ms), 0);
}

void NodeImpl::MaybeQuiesce() {
  if (quiesce_ && !stopping_ && log_->table().held_count() == 0 &&
      log_->table().waiting_count() == 0) {
    StopWithReason(Status::OK());
  }
}

// ------------------------------------------------------------ stopping

void NodeImpl::StopWithReason(const Status& why) {
  if (stopping_) return;
  stop_reason_ = why;
  BeginStop(/*graceful=*/why.ok(), why);
}

void NodeImpl::BeginStop(bool graceful, const Status& why) {
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

void NodeImpl::CloseAll() {
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

void NodeImpl::MaybeFinishStop() {
  if (open_handles_ > 0 || !conns_.empty() || finished_) return;
  finished_ = true;
  unlinkat(dir_fd_, core::BaseName(options_.socket_path).c_str(), 0);
  CloseLockFiles();
  Log("node stopped" + (stop_reason_.ok() ? std::string() : ": " + stop_reason_.ToString()));
  auto done = std::move(stop_done_);
  auto stopped = std::move(stopped_);
  Status why = stop_reason_;
  if (done) done();
  if (stopped) stopped(why);
}

void NodeImpl::CloseLogHandles() {
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

}  // namespace net::node_impl

Status Node::Create(uv_loop_t* loop, NodeOptions options, std::unique_ptr<Node>* out) {
  if (!loop) return Status::InvalidArgument("no loop");
  *out = std::make_unique<net::node_impl::NodeImpl>(loop, std::move(options));
  return Status::OK();
}

}  // namespace mesh
