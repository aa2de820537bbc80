// The C ABI (capi/lockmesh.h) over mesh::Client: each function converts its arguments, calls
// the synchronous client and turns the mesh::Status into a lockmesh_error code and the
// client's last-error text.
#include "capi/lockmesh.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "mesh/client.h"
#include "mesh/status.h"

struct lockmesh_lock {
  mesh::Lock lock;
  int mode = LOCKMESH_MODE_EX;
  bool lost = false;
  lockmesh_client* client = nullptr;  // null once the client is closed
};

struct lockmesh_client {
  std::unique_ptr<mesh::Client> client;
  std::string last_error;
  // The handles this client granted and the caller has not freed, by lock id: the lost
  // callback hands the caller's own handle back.
  std::unordered_map<uint64_t, lockmesh_lock*> locks;
  lockmesh_lost_fn lost_fn = nullptr;
  void* lost_user_data = nullptr;
  bool ended = false;  // the connection is gone (a lost notification said so)
};

namespace {

// mesh::Status::Code and lockmesh_error share their values (checked here).
static_assert(static_cast<int>(mesh::Status::Code::kNotFound) == LOCKMESH_NOT_FOUND);
static_assert(static_cast<int>(mesh::Status::Code::kBusy) == LOCKMESH_BUSY);
static_assert(static_cast<int>(mesh::Status::Code::kLost) == LOCKMESH_LOST);
static_assert(static_cast<int>(mesh::Status::Code::kUnavailable) == LOCKMESH_UNAVAILABLE);
static_assert(static_cast<int>(mesh::Status::Code::kInternal) == LOCKMESH_INTERNAL);
static_assert(static_cast<int>(mesh::LockMode::kEX) == LOCKMESH_MODE_EX);

thread_local std::string connect_error;

int Report(lockmesh_client* c, const mesh::Status& st) {
  if (st.ok()) {
    c->last_error.clear();
    return LOCKMESH_OK;
  }
  c->last_error = st.ToString();
  return static_cast<int>(st.code());
}

int Fail(lockmesh_client* c, int code, const char* why) {
  c->last_error = std::string(lockmesh_strerror(code)) + ": " + why;
  return code;
}

char* CopyOut(const std::string& text) {
  char* out = static_cast<char*>(std::malloc(text.size() + 1));
  if (out) std::memcpy(out, text.c_str(), text.size() + 1);
  return out;
}

bool ValidMode(int mode) { return mode >= LOCKMESH_MODE_NL && mode <= LOCKMESH_MODE_EX; }

void OnLost(lockmesh_client* c, const mesh::Lock& lock, const mesh::Status& why) {
  c->ended = c->ended || why.IsUnavailable() || why.IsLost();
  auto it = c->locks.find(lock.lock_id);
  if (it == c->locks.end()) return;  // freed by the caller already
  lockmesh_lock* handle = it->second;
  if (handle->lost) return;  // reported once per lock, however many paths notice it
  handle->lost = true;
  if (c->lost_fn) {
    c->lost_fn(handle, static_cast<int>(why.code()), why.ToString().c_str(), c->lost_user_data);
  }
}

}  // namespace

extern "C" {

const char* lockmesh_strerror(int code) {
  switch (code) {
    case LOCKMESH_OK: return "ok";
    case LOCKMESH_NOT_FOUND: return "not found";
    case LOCKMESH_CORRUPTION: return "corruption";
    case LOCKMESH_INVALID_ARGUMENT: return "invalid argument";
    case LOCKMESH_IO_ERROR: return "I/O error";
    case LOCKMESH_BUSY: return "busy";
    case LOCKMESH_TIMED_OUT: return "timed out";
    case LOCKMESH_IMPOSSIBLE: return "impossible";
    case LOCKMESH_CANT_WAIT: return "cannot wait";
    case LOCKMESH_LOST: return "lost";
    case LOCKMESH_UNAVAILABLE: return "unavailable";
    case LOCKMESH_PERMISSION_DENIED: return "permission denied";
    case LOCKMESH_ALREADY_EXISTS: return "already exists";
    case LOCKMESH_INTERNAL: return "internal error";
    default: return "unknown error";
  }
}

char* lockmesh_default_socket(void) { return CopyOut(mesh::DefaultSocketPath()); }

void lockmesh_client_options_init(lockmesh_client_options* options) {
  if (!options) return;
  options->socket_path = nullptr;
  options->client_name = nullptr;
  options->connect_timeout_ms = 5000;
}

void lockmesh_lock_options_init(lockmesh_lock_options* options) {
  if (!options) return;
  options->mode = LOCKMESH_MODE_EX;
  options->timeout_ms = -1;
  options->quantity = 1;
  options->no_create = 0;
  options->idle_lifespan_ms = 0;
}

int lockmesh_connect(const char* socket_or_null, lockmesh_client** out) {
  lockmesh_client_options options;
  lockmesh_client_options_init(&options);
  options.socket_path = socket_or_null;
  return lockmesh_connect_with(&options, out);
}

int lockmesh_connect_with(const lockmesh_client_options* options, lockmesh_client** out) {
  if (!out) {
    connect_error = "invalid argument: out is NULL";
    return LOCKMESH_INVALID_ARGUMENT;
  }
  *out = nullptr;
  mesh::ClientOptions opts;
  if (options) {
    if (options->socket_path) opts.socket_path = options->socket_path;
    if (options->client_name) opts.client_name = options->client_name;
    opts.connect_timeout_ms = options->connect_timeout_ms;
  }
  std::unique_ptr<mesh::Client> client;
  mesh::Status st = mesh::Client::Connect(opts, &client);
  if (!st.ok()) {
    connect_error = st.ToString();
    return static_cast<int>(st.code());
  }
  auto* c = new (std::nothrow) lockmesh_client;
  if (!c) {
    connect_error = "internal error: out of memory";
    return LOCKMESH_INTERNAL;
  }
  c->client = std::move(client);
  c->client->SetLostCallback(
      [c](const mesh::Lock& lock, const mesh::Status& why) { OnLost(c, lock, why); });
  connect_error.clear();
  *out = c;
  return LOCKMESH_OK;
}

const char* lockmesh_connect_error(void) { return connect_error.c_str(); }

void lockmesh_close(lockmesh_client* client) {
  if (!client) return;
  for (auto& [id, handle] : client->locks) handle->client = nullptr;
  client->client->SetLostCallback(nullptr);
  delete client;  // ~Client closes the connection
}

const char* lockmesh_last_error(const lockmesh_client* client) {
  return client ? client->last_error.c_str() : "invalid argument: client is NULL";
}

int lockmesh_lock_acquire(lockmesh_client* client, const char* resource, int64_t timeout_ms,
                          lockmesh_lock** out) {
  return lockmesh_lock_acquire_mode(client, resource, LOCKMESH_MODE_EX, timeout_ms, out);
}

int lockmesh_lock_acquire_mode(lockmesh_client* client, const char* resource, int mode,
                               int64_t timeout_ms, lockmesh_lock** out) {
  lockmesh_lock_options options;
  lockmesh_lock_options_init(&options);
  options.mode = mode;
  options.timeout_ms = timeout_ms;
  return lockmesh_lock_acquire_with(client, resource, &options, out);
}

int lockmesh_lock_acquire_with(lockmesh_client* client, const char* resource,
                               const lockmesh_lock_options* options, lockmesh_lock** out) {
  if (out) *out = nullptr;
  if (!client) return LOCKMESH_INVALID_ARGUMENT;
  if (!resource || !out) return Fail(client, LOCKMESH_INVALID_ARGUMENT, "resource or out is NULL");
  lockmesh_lock_options defaults;
  lockmesh_lock_options_init(&defaults);
  if (!options) options = &defaults;
  if (!ValidMode(options->mode)) return Fail(client, LOCKMESH_INVALID_ARGUMENT, "no such mode");
  mesh::LockOptions opts;
  opts.mode = static_cast<mesh::LockMode>(options->mode);
  opts.timeout_ms = options->timeout_ms;
  opts.quantity = options->quantity;
  opts.no_create = options->no_create != 0;
  opts.idle_lifespan_ms = options->idle_lifespan_ms;
  auto handle = std::make_unique<lockmesh_lock>();
  int rc = Report(client, client->client->Lock(resource, opts, &handle->lock));
  if (rc != LOCKMESH_OK) return rc;
  handle->mode = options->mode;
  handle->client = client;
  client->locks[handle->lock.lock_id] = handle.get();
  *out = handle.release();
  return LOCKMESH_OK;
}

int lockmesh_lock_try(lockmesh_client* client, const char* resource, int mode,
                      lockmesh_lock** out) {
  return lockmesh_lock_acquire_mode(client, resource, mode, 0, out);
}

int lockmesh_lock_release(lockmesh_client* client, lockmesh_lock* lock) {
  return lockmesh_lock_release_ex(client, lock, 0);
}

int lockmesh_lock_release_ex(lockmesh_client* client, lockmesh_lock* lock, int rollback) {
  if (!client) {
    lockmesh_lock_free(lock);
    return LOCKMESH_INVALID_ARGUMENT;
  }
  if (!lock) return Fail(client, LOCKMESH_INVALID_ARGUMENT, "lock is NULL");
  std::unique_ptr<lockmesh_lock> owned(lock);
  if (lock->client != client) {
    lockmesh_lock_free(owned.release());
    return Fail(client, LOCKMESH_INVALID_ARGUMENT, "the lock belongs to another client");
  }
  client->locks.erase(lock->lock.lock_id);
  if (lock->lost) {
    return Fail(client, LOCKMESH_LOST, "the lock was lost before it was released");
  }
  return Report(client, client->client->Unlock(lock->lock, rollback != 0));
}

void lockmesh_lock_free(lockmesh_lock* lock) {
  if (!lock) return;
  if (lock->client) lock->client->locks.erase(lock->lock.lock_id);
  delete lock;
}

uint64_t lockmesh_lock_token(const lockmesh_lock* lock) { return lock ? lock->lock.token : 0; }
uint64_t lockmesh_lock_id(const lockmesh_lock* lock) { return lock ? lock->lock.lock_id : 0; }
const char* lockmesh_lock_element(const lockmesh_lock* lock) {
  return lock ? lock->lock.element.c_str() : "";
}
const char* lockmesh_lock_resource(const lockmesh_lock* lock) {
  return lock ? lock->lock.resource.c_str() : "";
}
int lockmesh_lock_mode(const lockmesh_lock* lock) { return lock ? lock->mode : -1; }
int lockmesh_lock_is_lost(const lockmesh_lock* lock) { return lock && lock->lost ? 1 : 0; }

void lockmesh_set_lost_callback(lockmesh_client* client, lockmesh_lost_fn fn, void* user_data) {
  if (!client) return;
  client->lost_fn = fn;
  client->lost_user_data = user_data;
}

int lockmesh_fd(const lockmesh_client* client) { return client ? client->client->fd() : -1; }

int lockmesh_poll(lockmesh_client* client, int64_t timeout_ms) {
  if (!client) return LOCKMESH_INVALID_ARGUMENT;
  int rc = Report(client, client->client->Poll(timeout_ms));
  if (rc == LOCKMESH_OK && client->ended) {
    return Fail(client, LOCKMESH_UNAVAILABLE, "the connection to the node has ended");
  }
  return rc;
}

int lockmesh_status_json(lockmesh_client* client, char** out_json) {
  if (out_json) *out_json = nullptr;
  if (!client) return LOCKMESH_INVALID_ARGUMENT;
  if (!out_json) return Fail(client, LOCKMESH_INVALID_ARGUMENT, "out_json is NULL");
  mesh::NodeStatus s;
  int rc = Report(client, client->client->GetStatus(&s));
  if (rc != LOCKMESH_OK) return rc;
  nlohmann::json members = nlohmann::json::array();
  for (const mesh::MemberInfo& m : s.members) {
    members.push_back({{"node_id", m.node_id}, {"role", m.role}, {"address", m.address},
                       {"voter", m.voter}, {"connected", m.connected}, {"match", m.match},
                       {"lag", m.lag}, {"found_at", m.found_at},
                       {"fingerprint", m.fingerprint}});
  }
  nlohmann::json j = {
      {"node_id", s.node_id}, {"cluster", s.cluster}, {"role", s.role},
      {"leader_id", s.leader_id}, {"term", s.term}, {"commit_index", s.commit_index},
      {"applied_index", s.applied_index}, {"clients", s.clients},
      {"locks_held", s.locks_held}, {"locks_waiting", s.locks_waiting},
      {"data_dir", s.data_dir}, {"socket", s.socket}, {"security", s.security},
      {"fsync", s.fsync}, {"uptime_ms", s.uptime_ms}, {"version", s.version},
      {"members", members}, {"mesh", s.mesh}, {"cluster_id", s.cluster_id},
      {"lease_ms", s.lease_ms}, {"warnings", s.warnings}};
  *out_json = CopyOut(j.dump());
  return *out_json ? LOCKMESH_OK : Fail(client, LOCKMESH_INTERNAL, "out of memory");
}

int lockmesh_locks_json(lockmesh_client* client, const char* prefix_or_null, char** out_json) {
  if (out_json) *out_json = nullptr;
  if (!client) return LOCKMESH_INVALID_ARGUMENT;
  if (!out_json) return Fail(client, LOCKMESH_INVALID_ARGUMENT, "out_json is NULL");
  mesh::ListLocksOptions options;
  if (prefix_or_null) options.prefix = prefix_or_null;
  std::vector<mesh::LockInfo> rows;
  int rc = Report(client, client->client->ListLocks(options, &rows));
  if (rc != LOCKMESH_OK) return rc;
  nlohmann::json j = nlohmann::json::array();
  for (const mesh::LockInfo& r : rows) {
    j.push_back({{"resource", r.resource}, {"held", r.held},
                 {"mode", mesh::LockModeName(r.mode)}, {"quantity", r.quantity},
                 {"lock_id", r.lock_id}, {"token", r.token}, {"element", r.element},
                 {"node_id", r.node_id}, {"client_id", r.client_id}, {"pid", r.pid},
                 {"uid", r.uid}, {"client_name", r.client_name}});
  }
  *out_json = CopyOut(j.dump());
  return *out_json ? LOCKMESH_OK : Fail(client, LOCKMESH_INTERNAL, "out of memory");
}

void lockmesh_free(char* text) { std::free(text); }

int lockmesh_mode_parse(const char* text, int* mode) {
  if (!text || !mode) return LOCKMESH_INVALID_ARGUMENT;
  mesh::LockMode m;
  if (!mesh::ParseLockMode(text, &m).ok()) return LOCKMESH_INVALID_ARGUMENT;
  *mode = static_cast<int>(m);
  return LOCKMESH_OK;
}

const char* lockmesh_mode_name(int mode) {
  return ValidMode(mode) ? mesh::LockModeName(static_cast<mesh::LockMode>(mode)) : "?";
}

}  // extern "C"
