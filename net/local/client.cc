// mesh/client.h: lock modes, the node's credential check, the translation of the node's
// answers into the public types (net/local/client_internal.h), and the synchronous Client,
// which runs an AsyncClient (async_client.cc) on a private libuv loop.
#include "mesh/client.h"

#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cctype>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lockmesh.pb.h"
#include "net/local/client_internal.h"
#include "net/support/errno_text.h"

namespace mesh {
namespace {

const char* const kModeNames[] = {"NL", "CR", "CW", "PR", "PW", "EX"};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Status ParseLockMode(const std::string& text, LockMode* mode) {
  static const std::pair<const char*, LockMode> kNames[] = {
      {"nl", LockMode::kNL},       {"nulllock", LockMode::kNL},
      {"cr", LockMode::kCR},       {"concurrentread", LockMode::kCR},
      {"cw", LockMode::kCW},       {"concurrentwrite", LockMode::kCW},
      {"pr", LockMode::kPR},       {"protectedread", LockMode::kPR},
      {"shared", LockMode::kPR},   {"pw", LockMode::kPW},
      {"protectedwrite", LockMode::kPW}, {"ex", LockMode::kEX},
      {"exclusive", LockMode::kEX},
  };
  std::string key = Lower(text);
  for (const auto& [name, value] : kNames) {
    if (key == name) {
      *mode = value;
      return Status::OK();
    }
  }
  return Status::InvalidArgument("unknown lock mode '" + text +
                                 "' (use NL, CR, CW, PR, PW, EX, shared or exclusive)");
}

const char* LockModeName(LockMode mode) {
  int i = static_cast<int>(mode);
  return (i >= 0 && i < 6) ? kModeNames[i] : "?";
}

namespace net {
namespace {

std::string UidName(uid_t uid) {
  passwd pw;
  passwd* found = nullptr;
  char buf[1024];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found) return found->pw_name;
  return "no such user";
}

// Whether a node running as `uid` may receive this client's requests (ClientOptions).
bool TrustedNodeUid(uid_t uid, const ClientOptions& options) {
  if (uid == geteuid() || uid == 0) return true;
  for (uint32_t t : options.trusted_node_uids) {
    if (t == uid) return true;
  }
  const char* env = std::getenv("LOCKMESH_TRUSTED_NODE_UIDS");
  std::string list = env ? env : "";
  size_t pos = 0;
  while (pos <= list.size() && !list.empty()) {
    size_t comma = list.find(',', pos);
    std::string item =
        list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!item.empty()) {
      char* end = nullptr;
      unsigned long v = std::strtoul(item.c_str(), &end, 10);
      if (end && *end == 0) {
        if (v == uid) return true;
      } else if (UidName(uid) == item) {
        return true;
      }
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return false;
}

}  // namespace

Status CheckNodeCredentials(uv_pipe_t* pipe, const ClientOptions& options) {
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(pipe), &fd) != 0) {
    return Status::IOError("cannot check the node's credentials on " + options.socket_path);
  }
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return Status::IOError("cannot check the node's credentials on " + options.socket_path +
                           " (SO_PEERCRED: " + ErrnoText(errno) + ")");
  }
  if (TrustedNodeUid(cred.uid, options)) return Status::OK();
  return Status::PermissionDenied(
      "the node on " + options.socket_path + " runs as uid " + std::to_string(cred.uid) + " (" +
      UidName(cred.uid) + "), not as you (uid " + std::to_string(geteuid()) +
      "); refusing to send it anything (a node of another user you mean to use: "
      "LOCKMESH_TRUSTED_NODE_UIDS=" +
      std::to_string(cred.uid) + ")");
}

Status StatusFromResult(const pb::CommandResult& r) {
  const std::string& m = r.message();
  switch (r.code()) {
    case pb::GRANTED:
    case pb::RELEASED:
    case pb::CANCELLED: return Status::OK();
    case pb::BUSY: return Status::Busy(m.empty() ? "resource is busy" : m);
    case pb::TIMED_OUT: return Status::TimedOut(m.empty() ? "timed out waiting for the lock" : m);
    case pb::IMPOSSIBLE: return Status::Impossible(m.empty() ? "request can never be granted" : m);
    case pb::CANT_WAIT: return Status::CantWait(m.empty() ? "resource does not exist" : m);
    case pb::INVALID: return Status::InvalidArgument(m);
    case pb::NOT_FOUND: return Status::NotFound(m.empty() ? "no such lock" : m);
    case pb::NO_SESSION: return Status::Lost(m.empty() ? "session is gone" : m);
    case pb::LOST: return Status::Lost(m.empty() ? "lock lost" : m);
    case pb::UNAVAILABLE: return Status::Unavailable(m);
    default: return Status::Internal("unexpected answer code " + std::to_string(r.code()) + ": " + m);
  }
}

NodeStatus NodeStatusFromReply(const pb::StatusReply& s) {
  NodeStatus out;
  out.node_id = s.node_id();
  out.cluster = s.cluster();
  out.role = s.role();
  out.leader_id = s.leader_id();
  out.term = s.term();
  out.commit_index = s.commit_index();
  out.applied_index = s.applied_index();
  out.clients = s.clients();
  out.locks_held = s.locks_held();
  out.locks_waiting = s.locks_waiting();
  out.data_dir = s.data_dir();
  out.socket = s.socket();
  out.security = s.security();
  out.uptime_ms = s.uptime_ms();
  out.version = s.version();
  out.fsync = s.fsync();
  for (const auto& m : s.members()) {
    MemberInfo mi;
    mi.node_id = m.node_id();
    mi.role = m.role();
    mi.address = m.address();
    mi.voter = m.voter();
    mi.connected = m.connected();
    mi.match = m.match();
    mi.lag = m.lag();
    mi.found_at = m.found_at();
    mi.fingerprint = m.fingerprint();
    out.members.push_back(std::move(mi));
  }
  out.mesh = s.mesh();
  out.cluster_id = s.cluster_id();
  out.lease_ms = s.lease_ms();
  out.warnings.assign(s.warnings().begin(), s.warnings().end());
  return out;
}

LockInfo LockInfoFromReply(const pb::LockInfo& l) {
  LockInfo i;
  i.resource = l.resource();
  i.held = l.state() == "held";
  i.mode = static_cast<LockMode>(l.mode());
  i.quantity = l.quantity();
  i.lock_id = l.lock_id();
  i.token = l.token();
  i.element = l.element();
  i.node_id = l.node_id();
  i.client_id = l.client_id();
  i.pid = l.pid();
  i.uid = l.uid();
  i.client_name = l.client_name();
  i.since_unix_s = l.since_unix_s();
  return i;
}

}  // namespace net

// ---------------------------------------------------------------- synchronous client

struct Client::Impl {
  uv_loop_t loop;
  std::unique_ptr<AsyncClient> async;
  bool loop_ready = false;

  // Runs the private loop until `done` is true.
  void RunUntil(const bool& done) {
    while (!done) {
      if (uv_run(&loop, UV_RUN_ONCE) == 0 && !done) break;
    }
  }
};

Client::Client() : impl_(new Impl) {}

Client::~Client() {
  if (impl_->async) {
    bool closed = false;
    impl_->async->Close([&closed] { closed = true; });
    impl_->RunUntil(closed);
    impl_->async.reset();
  }
  if (impl_->loop_ready) {
    uv_run(&impl_->loop, UV_RUN_DEFAULT);
    uv_loop_close(&impl_->loop);
  }
}

Status Client::Connect(const ClientOptions& options, std::unique_ptr<Client>* out) {
  std::unique_ptr<Client> c(new Client);
  if (int rc = uv_loop_init(&c->impl_->loop); rc != 0) {
    return Status::IOError(std::string("uv_loop_init: ") + uv_strerror(rc));
  }
  c->impl_->loop_ready = true;
  c->impl_->async = AsyncClient::Create(&c->impl_->loop, options);
  bool done = false;
  Status result;
  c->impl_->async->Connect([&](const Status& st) {
    result = st;
    done = true;
  });
  c->impl_->RunUntil(done);
  if (!done) return Status::Internal("connect did not complete");
  if (!result.ok()) return result;
  *out = std::move(c);
  return Status::OK();
}

Status Client::Lock(const std::string& resource, const LockOptions& options, mesh::Lock* out) {
  bool done = false;
  Status result;
  impl_->async->Lock(resource, options, [&](const Status& st, const mesh::Lock& lock) {
    result = st;
    if (out) *out = lock;
    done = true;
  });
  impl_->RunUntil(done);
  return done ? result : Status::Unavailable("connection closed");
}

Status Client::TryLock(const std::string& resource, LockMode mode, mesh::Lock* out) {
  LockOptions options;
  options.mode = mode;
  options.timeout_ms = 0;
  return Lock(resource, options, out);
}

Status Client::Unlock(const mesh::Lock& lock, bool rollback) {
  bool done = false;
  Status result;
  impl_->async->Unlock(lock, rollback, [&](const Status& st) {
    result = st;
    done = true;
  });
  impl_->RunUntil(done);
  return done ? result : Status::Unavailable("connection closed");
}

void Client::SetLostCallback(LostCallback lost) { impl_->async->SetLostCallback(std::move(lost)); }

Status Client::GetStatus(NodeStatus* out) {
  bool done = false;
  Status result;
  impl_->async->GetStatus([&](const Status& st, const NodeStatus& s) {
    result = st;
    *out = s;
    done = true;
  });
  impl_->RunUntil(done);
  return done ? result : Status::Unavailable("connection closed");
}

Status Client::ListLocks(std::vector<LockInfo>* out) { return ListLocks(ListLocksOptions{}, out); }

Status Client::ListLocks(const ListLocksOptions& options, std::vector<LockInfo>* out) {
  std::vector<LockInfo> rows;
  Status st = ListLocks(options, [&rows](const std::vector<LockInfo>& page) {
    rows.insert(rows.end(), page.begin(), page.end());
    return true;
  });
  if (st.ok()) *out = std::move(rows);
  return st;
}

Status Client::ListLocks(const ListLocksOptions& options, const ListPageCallback& page) {
  bool done = false;
  Status result;
  impl_->async->ListLocks(options, page, [&](const Status& st) {
    result = st;
    done = true;
  });
  impl_->RunUntil(done);
  return done ? result : Status::Unavailable("connection closed");
}

Status Client::Shutdown(bool immediate) {
  bool done = false;
  Status result;
  impl_->async->Shutdown(immediate, [&](const Status& st) {
    result = st;
    done = true;
  });
  impl_->RunUntil(done);
  return done ? result : Status::OK();  // the node may close before answering
}

Status Client::Poll(int64_t timeout_ms) {
  if (timeout_ms <= 0) {
    uv_run(&impl_->loop, UV_RUN_NOWAIT);
    return Status::OK();
  }
  uv_timer_t timer;
  uv_timer_init(&impl_->loop, &timer);
  bool fired = false;
  timer.data = &fired;
  uv_timer_start(&timer, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; },
                 static_cast<uint64_t>(timeout_ms), 0);
  impl_->RunUntil(fired);
  bool closed = false;
  timer.data = &closed;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer),
           [](uv_handle_t* h) { *static_cast<bool*>(h->data) = true; });
  impl_->RunUntil(closed);
  return impl_->async->connected() ? Status::OK() : Status::Unavailable("not connected");
}

int Client::fd() const { return uv_backend_fd(&impl_->loop); }

}  // namespace mesh
