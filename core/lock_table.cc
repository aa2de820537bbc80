#include "core/lock_table.h"

#include <algorithm>
#include <charconv>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "core/timestamp_format.h"

namespace mesh::core {
namespace {

// (node_id, client_id): ordered, so that sessions of one node are adjacent.
using SessionId = std::pair<std::string, uint64_t>;

SessionId IdOf(const pb::SessionKey& key) { return {key.node_id(), key.client_id()}; }

pb::SessionKey KeyOf(const SessionId& id) {
  pb::SessionKey key;
  key.set_node_id(id.first);
  key.set_client_id(id.second);
  return key;
}

std::string Describe(const SessionId& id) { return id.first + "/" + std::to_string(id.second); }

// A lock: held (token != 0) or waiting.
struct Lock {
  uint64_t lock_id = 0;
  SessionId session;
  pb::LockMode mode = pb::EX;  // effective mode (EX for types that have only EX)
  uint32_t quantity = 1;       // effective quantity (1 for non-numeric types)
  uint64_t token = 0;
  std::string element;
  uint64_t seq = 0;
  bool no_create = false;
  int64_t stamp_unix_ns = 0;
  std::string resource;           // full name as requested
  std::vector<std::string> path;  // hierarchical components
};

bool IsPersistentType(ResourceType type) {
  return type == ResourceType::kSequence || type == ResourceType::kTransactionalSequence ||
         type == ResourceType::kTimestamp;
}

// One FIFO queue: a resource, or every node under one hierarchical root.
struct Resource {
  ResourceName name;            // parse of the queue key
  std::vector<Lock> holders;    // grant order
  std::vector<Lock> waiters;    // FIFO order
  std::vector<Lock> parked;     // no_create requests waiting for the queue to exist
  uint64_t next_sequence = 1;   // sequences: next fresh value
  std::set<uint64_t> recycled;  // _S_: values handed back
  uint32_t set_cursor = 0;      // sets: round-robin position
  int64_t last_stamp_ns = 0;    // timestamps: last value handed out ("" text: none yet)
  std::string last_stamp_text;

  // The resource "exists" (FLoM: has a locker) while it has holders or queued requests.
  bool Exists() const { return !holders.empty() || !waiters.empty(); }
  bool Idle() const { return holders.empty() && waiters.empty() && parked.empty(); }
};

struct Session {
  uint32_t pid = 0;
  uint32_t uid = 0;
  std::string client_name;
  uint64_t last_seq = 0;
  pb::CommandResult last_result;
  std::set<uint64_t> locks;  // held, waiting and parked
};

// Where a lock is.
enum class ListKind { kHolders, kWaiters, kParked };

// True if one path is a prefix of the other (same node, ancestor or descendant).
bool Overlaps(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  const size_t n = std::min(a.size(), b.size());
  return std::equal(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(n), b.begin());
}

// Whether `lock` cannot be granted next to the current holders of `r` (FIFO aside).
bool ConflictsWithHolders(const Resource& r, const Lock& lock) {
  switch (r.name.type) {
    case ResourceType::kSimple:
      return std::any_of(r.holders.begin(), r.holders.end(),
                         [&](const Lock& h) { return !ModesCompatible(h.mode, lock.mode); });
    case ResourceType::kHierarchical:
      return std::any_of(r.holders.begin(), r.holders.end(), [&](const Lock& h) {
        return Overlaps(h.path, lock.path) && !ModesCompatible(h.mode, lock.mode);
      });
    case ResourceType::kNumeric: {
      uint64_t used = 0;
      for (const Lock& h : r.holders) used += h.quantity;
      return used + lock.quantity > r.name.capacity;
    }
    case ResourceType::kSet:
      return r.holders.size() >= r.name.elements.size();  // one distinct element per holder
    case ResourceType::kSequence:
    case ResourceType::kTransactionalSequence:
    case ResourceType::kTimestamp:
      return r.holders.size() >= r.name.capacity;
  }
  return true;
}

// Whether one of the first `count` waiters of `r` must go before `lock` (strict FIFO; in a
// hierarchy only waiters on an overlapping path).
bool BlockedByEarlierWaiter(const Resource& r, size_t count, const Lock& lock) {
  if (r.name.type != ResourceType::kHierarchical) return count > 0;
  for (size_t i = 0; i < count; ++i) {
    if (Overlaps(r.waiters[i].path, lock.path)) return true;
  }
  return false;
}

bool ParseU64(std::string_view text, uint64_t* value) {
  if (text.empty()) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return ec == std::errc() && ptr == text.data() + text.size();
}

Grant MakeGrant(const Lock& lock) {
  Grant g;
  g.session = KeyOf(lock.session);
  g.lock_id = lock.lock_id;
  g.acquire_seq = lock.seq;
  g.token = lock.token;
  g.resource = lock.resource;
  g.element = lock.element;
  return g;
}

void SetResult(pb::CommandResult* result, pb::ResultCode code, std::string message) {
  result->set_code(code);
  result->set_message(std::move(message));
}

void ToProto(const Lock& lock, pb::LockEntryState* out) {
  out->set_lock_id(lock.lock_id);
  *out->mutable_session() = KeyOf(lock.session);
  out->set_mode(lock.mode);
  out->set_quantity(lock.quantity);
  out->set_token(lock.token);
  out->set_element(lock.element);
  out->set_seq(lock.seq);
  out->set_no_create(lock.no_create);
  out->set_stamp_unix_ns(lock.stamp_unix_ns);
  out->set_resource(lock.resource);
}

}  // namespace

bool ModesCompatible(pb::LockMode held, pb::LockMode requested) {
  // Row: held, column: requested (FLoM's src/flom_resource_simple.c, VMS DLM).
  static constexpr bool kMatrix[6][6] = {
      // NL     CR     CW     PR     PW     EX
      {true, true, true, true, true, true},       // NL
      {true, true, true, true, true, false},      // CR
      {true, true, true, false, false, false},    // CW
      {true, true, false, true, false, false},    // PR
      {true, true, false, false, false, false},   // PW
      {true, false, false, false, false, false},  // EX
  };
  const int h = static_cast<int>(held);
  const int r = static_cast<int>(requested);
  if (h < 0 || h > 5 || r < 0 || r > 5) return false;
  return kMatrix[h][r];
}

struct LockTable::Impl {
  uint64_t applied_index = 0;
  std::map<SessionId, Session> sessions;
  std::map<std::string, Resource> resources;   // by queue key
  std::map<uint64_t, std::string> lock_index;  // lock id -> queue key

  // ------------------------------------------------------------ helpers

  Resource& GetOrCreate(const ResourceName& rn) {
    auto it = resources.find(rn.queue_key);
    if (it != resources.end()) return it->second;
    Resource& r = resources[rn.queue_key];
    if (rn.type == ResourceType::kHierarchical) {
      // The queue key "/root" parses as a hierarchical name; nothing can fail here.
      ParseResourceName(rn.queue_key, &r.name);
    } else {
      r.name = rn;
    }
    return r;
  }

  void DropIfIdle(const std::string& key) {
    auto it = resources.find(key);
    if (it != resources.end() && it->second.Idle() && !IsPersistentType(it->second.name.type)) {
      resources.erase(it);
    }
  }

  // Finds lock `lock_id`: its queue, list and position.
  bool Locate(uint64_t lock_id, Resource** resource, ListKind* kind, size_t* pos) {
    auto it = lock_index.find(lock_id);
    if (it == lock_index.end()) return false;
    auto rit = resources.find(it->second);
    if (rit == resources.end()) return false;
    Resource& r = rit->second;
    const std::pair<ListKind, std::vector<Lock>*> lists[] = {{ListKind::kHolders, &r.holders},
                                                             {ListKind::kWaiters, &r.waiters},
                                                             {ListKind::kParked, &r.parked}};
    for (const auto& [k, list] : lists) {
      for (size_t i = 0; i < list->size(); ++i) {
        if ((*list)[i].lock_id == lock_id) {
          *resource = &r;
          *kind = k;
          *pos = i;
          return true;
        }
      }
    }
    return false;
  }

  static std::vector<Lock>& ListOf(Resource& r, ListKind kind) {
    switch (kind) {
      case ListKind::kHolders:
        return r.holders;
      case ListKind::kWaiters:
        return r.waiters;
      case ListKind::kParked:
        return r.parked;
    }
    return r.parked;
  }

  // Removes a lock from its list, the lock index and its session's set.
  Lock Take(Resource& r, ListKind kind, size_t pos) {
    std::vector<Lock>& list = ListOf(r, kind);
    Lock lock = std::move(list[pos]);
    list.erase(list.begin() + static_cast<std::ptrdiff_t>(pos));
    lock_index.erase(lock.lock_id);
    auto sit = sessions.find(lock.session);
    if (sit != sessions.end()) sit->second.locks.erase(lock.lock_id);
    return lock;
  }

  // Gives a released _S_ value back.
  static void Recycle(Resource& r, const Lock& lock) {
    uint64_t value = 0;
    if (r.name.type == ResourceType::kTransactionalSequence && ParseU64(lock.element, &value) &&
        value > 0 && value < r.next_sequence) {
      r.recycled.insert(value);
    }
  }

  // Picks the element of a lock being granted, per type.
  static void AssignElement(Resource& r, Lock& lock) {
    switch (r.name.type) {
      case ResourceType::kSet: {
        const std::vector<std::string>& elements = r.name.elements;
        const size_t n = elements.size();
        std::set<std::string_view> used;
        for (const Lock& h : r.holders) used.insert(h.element);
        for (size_t k = 0; k < n; ++k) {
          const size_t idx = (r.set_cursor + k) % n;
          if (used.count(elements[idx]) == 0) {
            lock.element = elements[idx];
            r.set_cursor = static_cast<uint32_t>((idx + 1) % n);
            break;
          }
        }
        break;
      }
      case ResourceType::kSequence:
        lock.element = std::to_string(r.next_sequence++);
        break;
      case ResourceType::kTransactionalSequence:
        if (!r.recycled.empty()) {
          lock.element = std::to_string(*r.recycled.begin());
          r.recycled.erase(r.recycled.begin());
        } else {
          lock.element = std::to_string(r.next_sequence++);
        }
        break;
      case ResourceType::kTimestamp: {
        int64_t ns = 0;
        std::string text;
        NextUniqueTimestamp(r.name.format, lock.stamp_unix_ns, !r.last_stamp_text.empty(),
                            r.last_stamp_ns, r.last_stamp_text, &ns, &text);
        r.last_stamp_ns = ns;
        r.last_stamp_text = text;
        lock.element = std::move(text);
        break;
      }
      case ResourceType::kSimple:
      case ResourceType::kNumeric:
      case ResourceType::kHierarchical:
        break;
    }
  }

  // Makes `lock` a holder of `r` with token `index`; returns the grant.
  Grant GrantLock(Resource& r, Lock lock, uint64_t index) {
    lock.token = index;
    AssignElement(r, lock);
    Grant g = MakeGrant(lock);
    r.holders.push_back(std::move(lock));
    return g;
  }

  // Grants, in FIFO order, every waiter that has become grantable.
  void GrantFromQueue(Resource& r, uint64_t index, std::vector<Grant>* grants) {
    size_t i = 0;
    while (i < r.waiters.size()) {
      const Lock& w = r.waiters[i];
      if (!BlockedByEarlierWaiter(r, i, w) && !ConflictsWithHolders(r, w)) {
        Lock lock = std::move(r.waiters[i]);
        r.waiters.erase(r.waiters.begin() + static_cast<std::ptrdiff_t>(i));
        grants->push_back(GrantLock(r, std::move(lock), index));
      } else if (r.name.type == ResourceType::kHierarchical) {
        ++i;  // a later waiter on another branch may still go
      } else {
        break;
      }
    }
  }

  // Gate of the commands that carry (session, seq): the session if the command is new,
  // else nullptr with the answer in `result`.
  Session* Admit(const pb::SessionKey& key, uint64_t seq, pb::CommandResult* result) {
    auto it = sessions.find(IdOf(key));
    if (it == sessions.end()) {
      SetResult(result, pb::NO_SESSION,
                "session " + Describe(IdOf(key)) + " is not open (never opened or closed)");
      return nullptr;
    }
    Session& s = it->second;
    if (seq != 0 && seq == s.last_seq) {
      *result = s.last_result;
      return nullptr;
    }
    if (seq <= s.last_seq) {
      SetResult(result, pb::ERROR,
                seq == 0 ? std::string("stale sequence number 0 (sequence numbers start at 1)")
                         : "stale sequence number " + std::to_string(seq) + " (last applied " +
                               std::to_string(s.last_seq) + ")");
      return nullptr;
    }
    return &s;
  }

  // ------------------------------------------------------------ commands

  void DoOpenSession(const pb::OpenSession& cmd, ApplyResult* out) {
    const SessionId id = IdOf(cmd.session());
    if (sessions.count(id) != 0) {
      SetResult(&out->result, pb::GRANTED, "session already open");
      return;
    }
    Session& s = sessions[id];
    s.pid = cmd.pid();
    s.uid = cmd.uid();
    s.client_name = cmd.client_name();
    SetResult(&out->result, pb::GRANTED, "");
  }

  void DoAcquire(uint64_t index, const pb::Acquire& cmd, Session& session, ApplyResult* out) {
    pb::CommandResult& res = out->result;
    res.set_lock_id(index);
    ResourceName rn;
    const Status parsed = ParseResourceName(cmd.resource(), &rn);
    if (!parsed.ok()) {
      SetResult(&res, pb::INVALID, parsed.message());
      return;
    }
    if (!pb::LockMode_IsValid(cmd.mode())) {
      SetResult(&res, pb::INVALID,
                "unknown lock mode " + std::to_string(static_cast<int>(cmd.mode())) +
                    " (NL=0 CR=1 CW=2 PR=3 PW=4 EX=5)");
      return;
    }
    Lock lock;
    lock.lock_id = index;
    lock.session = IdOf(cmd.session());
    const bool all_modes =
        rn.type == ResourceType::kSimple || rn.type == ResourceType::kHierarchical;
    lock.mode = all_modes ? cmd.mode() : pb::EX;
    lock.quantity = rn.type == ResourceType::kNumeric ? std::max<uint32_t>(1, cmd.quantity()) : 1;
    lock.seq = cmd.seq();
    lock.no_create = cmd.no_create();
    lock.stamp_unix_ns = cmd.stamp_unix_ns();
    lock.resource = cmd.resource();
    lock.path = rn.path;
    if (rn.type == ResourceType::kNumeric && lock.quantity > rn.capacity) {
      SetResult(&res, pb::IMPOSSIBLE,
                "asked for " + std::to_string(lock.quantity) + " units of " + rn.name +
                    ", which has " + std::to_string(rn.capacity));
      return;
    }

    auto existing = resources.find(rn.queue_key);
    const bool exists = existing != resources.end() && existing->second.Exists();
    if (cmd.no_create() && !exists) {
      if (!cmd.wait()) {
        SetResult(&res, pb::CANT_WAIT,
                  "resource " + rn.queue_key + " does not exist and the request may not wait");
        return;
      }
      Resource& r = GetOrCreate(rn);
      r.parked.push_back(std::move(lock));
      lock_index[index] = rn.queue_key;
      session.locks.insert(index);
      SetResult(&res, pb::QUEUED, "waiting for the resource to be created");
      return;
    }

    Resource& r = GetOrCreate(rn);
    if (!BlockedByEarlierWaiter(r, r.waiters.size(), lock) && !ConflictsWithHolders(r, lock)) {
      Grant g = GrantLock(r, std::move(lock), index);
      res.set_code(pb::GRANTED);
      res.set_token(g.token);
      res.set_element(g.element);
      out->grants.push_back(std::move(g));
    } else if (!cmd.wait()) {
      SetResult(&res, pb::BUSY, "resource " + rn.name + " is busy");
      DropIfIdle(rn.queue_key);
      return;
    } else {
      r.waiters.push_back(std::move(lock));
      res.set_code(pb::QUEUED);
    }
    lock_index[index] = rn.queue_key;
    session.locks.insert(index);

    // The resource exists now: requests that waited for its creation join the queue.
    if (!r.parked.empty() && r.Exists()) {
      for (Lock& p : r.parked) r.waiters.push_back(std::move(p));
      r.parked.clear();
      GrantFromQueue(r, index, &out->grants);
    }
  }

  void DoRelease(uint64_t index, const pb::Release& cmd, ApplyResult* out) {
    pb::CommandResult& res = out->result;
    res.set_lock_id(cmd.lock_id());
    Resource* r = nullptr;
    ListKind kind = ListKind::kHolders;
    size_t pos = 0;
    if (!Locate(cmd.lock_id(), &r, &kind, &pos) ||
        ListOf(*r, kind)[pos].session != IdOf(cmd.session())) {
      SetResult(&res, pb::NOT_FOUND,
                "no lock " + std::to_string(cmd.lock_id()) + " in this session");
      return;
    }
    const std::string key = r->name.queue_key;
    Lock lock = Take(*r, kind, pos);
    if (kind == ListKind::kHolders) {
      if (cmd.rollback()) Recycle(*r, lock);
      res.set_code(pb::RELEASED);
      res.set_token(lock.token);
      res.set_element(lock.element);
    } else {
      SetResult(&res, pb::CANCELLED, "request withdrawn before it was granted");
    }
    GrantFromQueue(*r, index, &out->grants);
    DropIfIdle(key);
  }

  void DoCancel(uint64_t index, const pb::Cancel& cmd, ApplyResult* out) {
    pb::CommandResult& res = out->result;
    res.set_lock_id(cmd.lock_id());
    Resource* r = nullptr;
    ListKind kind = ListKind::kHolders;
    size_t pos = 0;
    if (!Locate(cmd.lock_id(), &r, &kind, &pos) ||
        ListOf(*r, kind)[pos].session != IdOf(cmd.session())) {
      SetResult(&res, pb::NOT_FOUND,
                "no lock " + std::to_string(cmd.lock_id()) + " in this session");
      return;
    }
    if (kind == ListKind::kHolders) {
      const Lock& held = r->holders[pos];
      SetResult(&res, pb::GRANTED, "granted before the cancel");
      res.set_token(held.token);
      res.set_element(held.element);
      return;
    }
    const std::string key = r->name.queue_key;
    Take(*r, kind, pos);
    SetResult(&res, pb::CANCELLED, "request withdrawn before it was granted");
    GrantFromQueue(*r, index, &out->grants);
    DropIfIdle(key);
  }

  // Releases (as rollback) every held lock of the session and withdraws its requests
  // with `code`, then forgets the session. Queues touched are added to `touched`.
  void EndSession(std::map<SessionId, Session>::iterator it, pb::ResultCode code, ApplyResult* out,
                  std::set<std::string>* touched) {
    const std::vector<uint64_t> ids(it->second.locks.begin(), it->second.locks.end());
    for (uint64_t id : ids) {
      Resource* r = nullptr;
      ListKind kind = ListKind::kHolders;
      size_t pos = 0;
      if (!Locate(id, &r, &kind, &pos)) continue;
      touched->insert(r->name.queue_key);
      Lock lock = Take(*r, kind, pos);
      if (kind == ListKind::kHolders) {
        Recycle(*r, lock);
        out->released.push_back(MakeGrant(lock));
      } else {
        Withdrawal w;
        w.session = KeyOf(lock.session);
        w.lock_id = lock.lock_id;
        w.acquire_seq = lock.seq;
        w.code = code;
        out->withdrawals.push_back(std::move(w));
      }
    }
    sessions.erase(it);
  }

  void Regrant(uint64_t index, const std::set<std::string>& touched, ApplyResult* out) {
    for (const std::string& key : touched) {
      auto it = resources.find(key);
      if (it == resources.end()) continue;
      GrantFromQueue(it->second, index, &out->grants);
      DropIfIdle(key);
    }
  }

  void DoCloseSession(uint64_t index, const pb::CloseSession& cmd, ApplyResult* out) {
    auto it = sessions.find(IdOf(cmd.session()));
    if (it == sessions.end()) {
      SetResult(&out->result, pb::NO_SESSION,
                "session " + Describe(IdOf(cmd.session())) + " is not open");
      return;
    }
    std::set<std::string> touched;
    EndSession(it, pb::CANCELLED, out, &touched);
    Regrant(index, touched, out);
    SetResult(&out->result, pb::RELEASED, "");
  }

  void DoExpireNode(uint64_t index, const pb::ExpireNode& cmd, ApplyResult* out) {
    std::set<std::string> touched;
    auto it = sessions.lower_bound(SessionId(cmd.node_id(), 0));
    size_t ended = 0;
    while (it != sessions.end() && it->first.first == cmd.node_id()) {
      auto next = std::next(it);
      EndSession(it, pb::LOST, out, &touched);
      it = next;
      ++ended;
    }
    Regrant(index, touched, out);
    SetResult(&out->result, pb::RELEASED,
              std::to_string(ended) + " session(s) of node " + cmd.node_id() + " ended");
  }

  ApplyResult Apply(uint64_t index, const pb::Command& command) {
    ApplyResult out;
    if (index <= applied_index) {
      SetResult(&out.result, pb::ERROR,
                "entry " + std::to_string(index) + " is not above the applied index " +
                    std::to_string(applied_index));
      return out;
    }
    applied_index = index;
    switch (command.body_case()) {
      case pb::Command::kOpenSession:
        DoOpenSession(command.open_session(), &out);
        break;
      case pb::Command::kAcquire: {
        const pb::Acquire& cmd = command.acquire();
        Session* s = Admit(cmd.session(), cmd.seq(), &out.result);
        if (s == nullptr) break;
        DoAcquire(index, cmd, *s, &out);
        s->last_seq = cmd.seq();
        s->last_result = out.result;
        break;
      }
      case pb::Command::kRelease: {
        const pb::Release& cmd = command.release();
        Session* s = Admit(cmd.session(), cmd.seq(), &out.result);
        if (s == nullptr) break;
        DoRelease(index, cmd, &out);
        s->last_seq = cmd.seq();
        s->last_result = out.result;
        break;
      }
      case pb::Command::kCancel: {
        const pb::Cancel& cmd = command.cancel();
        Session* s = Admit(cmd.session(), cmd.seq(), &out.result);
        if (s == nullptr) break;
        DoCancel(index, cmd, &out);
        s->last_seq = cmd.seq();
        s->last_result = out.result;
        break;
      }
      case pb::Command::kCloseSession:
        DoCloseSession(index, command.close_session(), &out);
        break;
      case pb::Command::kExpireNode:
        DoExpireNode(index, command.expire_node(), &out);
        break;
      case pb::Command::BODY_NOT_SET:
        SetResult(&out.result, pb::ERROR, "empty command");
        break;
    }
    return out;
  }

  // ------------------------------------------------------------ snapshots

  void Snapshot(pb::LockTableSnapshot* out) const {
    out->Clear();
    out->set_applied_index(applied_index);
    for (const auto& [id, s] : sessions) {
      pb::SessionState* ss = out->add_sessions();
      *ss->mutable_session() = KeyOf(id);
      ss->set_pid(s.pid);
      ss->set_uid(s.uid);
      ss->set_client_name(s.client_name);
      ss->set_last_seq(s.last_seq);
      ss->set_last_result(s.last_result.SerializeAsString());
    }
    for (const auto& [key, r] : resources) {
      pb::ResourceState* rs = out->add_resources();
      rs->set_name(key);
      for (const Lock& l : r.holders) ToProto(l, rs->add_holders());
      for (const Lock& l : r.waiters) ToProto(l, rs->add_waiters());
      for (const Lock& l : r.parked) ToProto(l, rs->add_waiters());
      switch (r.name.type) {
        case ResourceType::kSequence:
        case ResourceType::kTransactionalSequence:
          rs->set_next_sequence(r.next_sequence);
          for (uint64_t v : r.recycled) rs->add_recycled(v);
          break;
        case ResourceType::kSet:
          rs->set_set_cursor(r.set_cursor);
          break;
        case ResourceType::kTimestamp:
          rs->set_last_stamp_unix_ns(r.last_stamp_ns);
          rs->set_last_stamp_text(r.last_stamp_text);
          break;
        default:
          break;
      }
    }
  }

  // Fills `lock` from `in`, checking it against the queue `r` it is listed in.
  Status LoadLock(const pb::LockEntryState& in, const Resource& r, bool held, Lock* lock) {
    const std::string where = "snapshot lock " + std::to_string(in.lock_id()) + ": ";
    if (in.lock_id() == 0 || in.lock_id() > applied_index) {
      return Status::Corruption(where + "lock id outside 1.." + std::to_string(applied_index));
    }
    if (lock_index.count(in.lock_id()) != 0) {
      return Status::Corruption(where + "lock id listed twice");
    }
    const SessionId sid = IdOf(in.session());
    auto sit = sessions.find(sid);
    if (sit == sessions.end()) {
      return Status::Corruption(where + "unknown session " + Describe(sid));
    }
    if (in.seq() == 0 || in.seq() > sit->second.last_seq) {
      return Status::Corruption(where + "seq beyond its session's last seq");
    }
    ResourceName rn;
    const Status parsed = ParseResourceName(in.resource(), &rn);
    if (!parsed.ok()) return Status::Corruption(where + parsed.message());
    if (rn.queue_key != r.name.queue_key) {
      return Status::Corruption(where + "resource " + in.resource() + " listed under " +
                                r.name.queue_key);
    }
    if (!pb::LockMode_IsValid(in.mode())) return Status::Corruption(where + "bad mode");
    const bool all_modes =
        rn.type == ResourceType::kSimple || rn.type == ResourceType::kHierarchical;
    if (!all_modes && in.mode() != pb::EX) {
      return Status::Corruption(where + "mode other than EX on a " + ResourceTypeName(rn.type) +
                                " resource");
    }
    const uint64_t max_quantity = rn.type == ResourceType::kNumeric ? rn.capacity : 1;
    if (in.quantity() < 1 || in.quantity() > max_quantity) {
      return Status::Corruption(where + "bad quantity");
    }
    if (held ? (in.token() < in.lock_id() || in.token() > applied_index)
             : (in.token() != 0 || !in.element().empty())) {
      return Status::Corruption(where + (held ? "bad token" : "waiter with a token or element"));
    }
    lock->lock_id = in.lock_id();
    lock->session = sid;
    lock->mode = in.mode();
    lock->quantity = in.quantity();
    lock->token = in.token();
    lock->element = in.element();
    lock->seq = in.seq();
    lock->no_create = in.no_create();
    lock->stamp_unix_ns = in.stamp_unix_ns();
    lock->resource = in.resource();
    lock->path = rn.path;
    lock_index[lock->lock_id] = r.name.queue_key;
    sit->second.locks.insert(lock->lock_id);
    return Status::OK();
  }

  // Checks what the holders of a queue hold together, and its counters.
  static Status CheckHolders(const Resource& r) {
    const std::string where = "snapshot resource " + r.name.queue_key + ": ";
    std::set<std::string> elements;
    uint64_t used = 0;
    for (size_t i = 0; i < r.holders.size(); ++i) {
      const Lock& h = r.holders[i];
      for (size_t j = 0; j < i; ++j) {
        const Lock& o = r.holders[j];
        const bool overlap =
            r.name.type == ResourceType::kSimple ||
            (r.name.type == ResourceType::kHierarchical && Overlaps(o.path, h.path));
        if (overlap && !ModesCompatible(o.mode, h.mode)) {
          return Status::Corruption(where + "incompatible holders");
        }
      }
      used += h.quantity;
      switch (r.name.type) {
        case ResourceType::kSet:
          if (std::find(r.name.elements.begin(), r.name.elements.end(), h.element) ==
                  r.name.elements.end() ||
              !elements.insert(h.element).second) {
            return Status::Corruption(where + "bad set element " + h.element);
          }
          break;
        case ResourceType::kSequence:
        case ResourceType::kTransactionalSequence: {
          uint64_t v = 0;
          if (!ParseU64(h.element, &v) || v == 0 || v >= r.next_sequence ||
              r.recycled.count(v) != 0 || !elements.insert(h.element).second) {
            return Status::Corruption(where + "bad sequence value " + h.element);
          }
          break;
        }
        case ResourceType::kTimestamp:
          if (h.element.empty()) return Status::Corruption(where + "empty timestamp");
          break;
        default:
          if (!h.element.empty()) return Status::Corruption(where + "unexpected element");
          break;
      }
    }
    const bool over = r.name.type == ResourceType::kNumeric ? used > r.name.capacity
                      : r.name.type == ResourceType::kSet
                          ? r.holders.size() > r.name.elements.size()
                      : IsPersistentType(r.name.type) ? r.holders.size() > r.name.capacity
                                                      : false;
    if (over) return Status::Corruption(where + "more held than the capacity");
    if (r.holders.empty() && !r.waiters.empty()) {
      return Status::Corruption(where + "waiters without holders");
    }
    // A consistent table never leaves a grantable request waiting.
    for (size_t i = 0; i < r.waiters.size(); ++i) {
      if (!BlockedByEarlierWaiter(r, i, r.waiters[i]) && !ConflictsWithHolders(r, r.waiters[i])) {
        return Status::Corruption(where + "grantable request left waiting");
      }
      if (r.name.type != ResourceType::kHierarchical) break;
    }
    return Status::OK();
  }

  // Builds this (empty) Impl from `snap`.
  Status Load(const pb::LockTableSnapshot& snap) {
    applied_index = snap.applied_index();
    for (const pb::SessionState& ss : snap.sessions()) {
      const SessionId id = IdOf(ss.session());
      if (sessions.count(id) != 0) {
        return Status::Corruption("snapshot lists session " + Describe(id) + " twice");
      }
      Session s;
      s.pid = ss.pid();
      s.uid = ss.uid();
      s.client_name = ss.client_name();
      s.last_seq = ss.last_seq();
      if (!s.last_result.ParseFromString(ss.last_result())) {
        return Status::Corruption("snapshot session " + Describe(id) +
                                  ": last result does not parse");
      }
      sessions.emplace(id, std::move(s));
    }
    for (const pb::ResourceState& rs : snap.resources()) {
      ResourceName rn;
      const Status parsed = ParseResourceName(rs.name(), &rn);
      if (!parsed.ok()) return Status::Corruption("snapshot resource: " + parsed.message());
      if (rn.queue_key != rs.name()) {
        return Status::Corruption("snapshot resource " + rs.name() + " is not a queue key");
      }
      if (resources.count(rs.name()) != 0) {
        return Status::Corruption("snapshot lists resource " + rs.name() + " twice");
      }
      Resource& r = resources[rs.name()];
      r.name = rn;
      const std::string where = "snapshot resource " + rs.name() + ": ";
      switch (rn.type) {
        case ResourceType::kSequence:
        case ResourceType::kTransactionalSequence:
          if (rs.next_sequence() == 0) return Status::Corruption(where + "next sequence 0");
          r.next_sequence = rs.next_sequence();
          for (uint64_t v : rs.recycled()) {
            if (rn.type != ResourceType::kTransactionalSequence || v == 0 || v >= r.next_sequence ||
                !r.recycled.insert(v).second) {
              return Status::Corruption(where + "bad recycled value " + std::to_string(v));
            }
          }
          break;
        case ResourceType::kSet:
          if (rs.set_cursor() >= rn.elements.size()) {
            return Status::Corruption(where + "set cursor out of range");
          }
          r.set_cursor = rs.set_cursor();
          break;
        case ResourceType::kTimestamp:
          r.last_stamp_ns = rs.last_stamp_unix_ns();
          r.last_stamp_text = rs.last_stamp_text();
          break;
        default:
          break;
      }
      for (const pb::LockEntryState& in : rs.holders()) {
        Lock lock;
        MESH_RETURN_IF_ERROR(LoadLock(in, r, /*held=*/true, &lock));
        r.holders.push_back(std::move(lock));
      }
      for (const pb::LockEntryState& in : rs.waiters()) {
        Lock lock;
        MESH_RETURN_IF_ERROR(LoadLock(in, r, /*held=*/false, &lock));
        r.waiters.push_back(std::move(lock));
      }
      if (r.holders.empty() && !r.waiters.empty()) {
        // Without holders, waiters can only be no_create requests waiting for creation.
        for (const Lock& w : r.waiters) {
          if (!w.no_create) {
            return Status::Corruption(where + "request " + std::to_string(w.lock_id) +
                                      " waits on a resource nobody holds");
          }
        }
        r.parked = std::move(r.waiters);
        r.waiters.clear();
      }
      MESH_RETURN_IF_ERROR(CheckHolders(r));
      if (r.Idle() && !IsPersistentType(rn.type)) resources.erase(rs.name());
    }
    return Status::OK();
  }
};

LockTable::LockTable() : impl_(std::make_unique<Impl>()) {}

LockTable::~LockTable() = default;

ApplyResult LockTable::Apply(uint64_t index, const pb::Command& command) {
  return impl_->Apply(index, command);
}

uint64_t LockTable::applied_index() const { return impl_->applied_index; }

void LockTable::Snapshot(pb::LockTableSnapshot* out) const { impl_->Snapshot(out); }

Status LockTable::Restore(const pb::LockTableSnapshot& snapshot) {
  auto fresh = std::make_unique<Impl>();
  MESH_RETURN_IF_ERROR(fresh->Load(snapshot));
  impl_ = std::move(fresh);
  return Status::OK();
}

std::vector<LockRow> LockTable::List() const {
  std::vector<LockRow> held;
  std::vector<LockRow> waiting;
  auto add = [&](const Lock& l, bool is_held, std::vector<LockRow>* rows) {
    LockRow row;
    row.resource = l.resource;
    row.held = is_held;
    row.mode = l.mode;
    row.quantity = l.quantity;
    row.lock_id = l.lock_id;
    row.token = l.token;
    row.element = l.element;
    row.session = KeyOf(l.session);
    auto it = impl_->sessions.find(l.session);
    if (it != impl_->sessions.end()) {
      row.pid = it->second.pid;
      row.uid = it->second.uid;
      row.client_name = it->second.client_name;
    }
    rows->push_back(std::move(row));
  };
  for (const auto& [key, r] : impl_->resources) {
    for (const Lock& l : r.holders) add(l, true, &held);
    for (const Lock& l : r.waiters) add(l, false, &waiting);
    for (const Lock& l : r.parked) add(l, false, &waiting);
  }
  auto by_resource = [](const LockRow& a, const LockRow& b) {
    return std::tie(a.resource, a.lock_id) < std::tie(b.resource, b.lock_id);
  };
  std::sort(held.begin(), held.end(), by_resource);
  std::sort(waiting.begin(), waiting.end(), by_resource);
  held.insert(held.end(), std::make_move_iterator(waiting.begin()),
              std::make_move_iterator(waiting.end()));
  return held;
}

size_t LockTable::session_count() const { return impl_->sessions.size(); }

size_t LockTable::held_count() const {
  size_t n = 0;
  for (const auto& [key, r] : impl_->resources) n += r.holders.size();
  return n;
}

size_t LockTable::waiting_count() const {
  size_t n = 0;
  for (const auto& [key, r] : impl_->resources) n += r.waiters.size() + r.parked.size();
  return n;
}

bool LockTable::HasSession(const pb::SessionKey& session) const {
  return impl_->sessions.count(IdOf(session)) != 0;
}

}  // namespace mesh::core
