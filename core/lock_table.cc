#include "core/lock_table.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "core/lock_table_internal.h"
#include "core/timestamp_format.h"

namespace mesh::core {
namespace lock_table_internal {

// True if one path is a prefix of the other (same node, ancestor or descendant).
bool Overlaps(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  const size_t n = std::min(a.size(), b.size());
  return std::equal(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(n), b.begin());
}

void InitResource(const ResourceName& rn, Resource* r) {
  r->type = rn.type;
  switch (rn.type) {
    case ResourceType::kNumeric:
    case ResourceType::kSet:
    case ResourceType::kSequence:
    case ResourceType::kTransactionalSequence:
    case ResourceType::kTimestamp:
      r->extra = std::make_unique<ResourceExtra>();
      r->extra->elements = rn.elements;
      r->extra->format = rn.format;
      r->extra->capacity = rn.capacity;
      break;
    case ResourceType::kSimple:
    case ResourceType::kHierarchical:
      break;
  }
}

const Resource::Queues& Resource::NoQueues() {
  static const Queues* none = new Queues();  // never destroyed: no exit-order hazard
  return *none;
}

const Lock::Detail& Lock::Empty() {
  static const Detail* empty = new Detail();  // never destroyed: no exit-order hazard
  return *empty;
}

void Lock::set_element(std::string element) {
  if (element.empty() && detail_ == nullptr) return;
  if (detail_ == nullptr) detail_ = std::make_unique<Detail>();
  detail_->element = std::move(element);
}

void Lock::set_path(std::vector<std::string> path) {
  if (path.empty() && detail_ == nullptr) return;
  if (detail_ == nullptr) detail_ = std::make_unique<Detail>();
  detail_->path = std::move(path);
}

void Lock::set_quantity(uint32_t quantity) {
  if (quantity < kQuantityInDetail) {
    quantity_ = static_cast<uint16_t>(quantity);
    return;
  }
  if (detail_ == nullptr) detail_ = std::make_unique<Detail>();
  detail_->quantity = quantity;
  quantity_ = kQuantityInDetail;
}

void Lock::set_stamp_unix_ns(int64_t ns) {
  if (ns == 0 && detail_ == nullptr) return;
  if (detail_ == nullptr) detail_ = std::make_unique<Detail>();
  detail_->stamp_unix_ns = ns;
}

std::string NameOf(const Resource& r, const Lock& lock) {
  if (r.type != ResourceType::kHierarchical) return r.queue_key();
  std::string name;
  for (const std::string& part : lock.path()) name.append("/").append(part);
  return name;
}

// Whether `lock` cannot be granted next to the current holders of `r` (FIFO aside).
bool ConflictsWithHolders(const Resource& r, const Lock& lock) {
  switch (r.type) {
    case ResourceType::kSimple:
      return std::any_of(r.holders.begin(), r.holders.end(),
                         [&](const Lock& h) { return !ModesCompatible(h.mode, lock.mode); });
    case ResourceType::kHierarchical:
      return std::any_of(r.holders.begin(), r.holders.end(), [&](const Lock& h) {
        return Overlaps(h.path(), lock.path()) && !ModesCompatible(h.mode, lock.mode);
      });
    case ResourceType::kNumeric: {
      uint64_t used = 0;
      for (const Lock& h : r.holders) used += h.quantity();
      return used + lock.quantity() > r.extra->capacity;
    }
    case ResourceType::kSet:
      return r.holders.size() >= r.extra->elements.size();  // one distinct element per holder
    case ResourceType::kSequence:
    case ResourceType::kTransactionalSequence:
    case ResourceType::kTimestamp:
      return r.holders.size() >= r.extra->capacity;
  }
  return true;
}

// Whether one of the first `count` waiters of `r` must go before `lock` (strict FIFO; in a
// hierarchy only waiters on an overlapping path).
bool BlockedByEarlierWaiter(const Resource& r, size_t count, const Lock& lock) {
  if (r.type != ResourceType::kHierarchical) return count > 0;
  for (size_t i = 0; i < count; ++i) {
    if (Overlaps(r.waiters()[i].path(), lock.path())) return true;
  }
  return false;
}

bool ParseU64(std::string_view text, uint64_t* value) {
  if (text.empty()) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace lock_table_internal

using lock_table_internal::BlockedByEarlierWaiter;
using lock_table_internal::ConflictsWithHolders;
using lock_table_internal::Describe;
using lock_table_internal::IdOf;
using lock_table_internal::IsPersistentType;
using lock_table_internal::KeyOf;
using lock_table_internal::ListKind;
using lock_table_internal::Lock;
using lock_table_internal::NameOf;
using lock_table_internal::ParseU64;
using lock_table_internal::Resource;
using lock_table_internal::ResourceExtra;
using lock_table_internal::Session;
using lock_table_internal::SessionId;

namespace {

void SetResult(pb::CommandResult* result, pb::ResultCode code, std::string message) {
  result->set_code(code);
  result->set_message(std::move(message));
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

Grant LockTable::Impl::MakeGrant(const Resource& r, const Lock& lock) {
  Grant g;
  g.session = KeyOf(*lock.session);
  g.lock_id = lock.lock_id;
  g.acquire_seq = lock.seq;
  g.token = lock.token;
  g.resource = NameOf(r, lock);
  g.element = lock.element();
  return g;
}

Resource& LockTable::Impl::GetOrCreate(const ResourceName& rn) {
  auto [it, created] = resources.try_emplace(rn.queue_key);
  Resource& r = it->second;
  if (created) {
    r.key = &it->first;
    InitResource(rn, &r);  // a hierarchical queue keeps only its type from `rn`
  }
  return r;
}

void LockTable::Impl::DropIfIdle(const std::string& key, int64_t stamp_ns) {
  auto it = resources.find(key);
  if (it == resources.end() || !it->second.Idle()) return;
  Resource& r = it->second;
  if (r.idle_lifespan_ms() > 0 && stamp_ns > 0) {
    // FLoM's idle lifespan: the queue outlives its last holder or waiter.
    constexpr int64_t kNsPerMs = 1000000;
    const int64_t lifespan_ns =
        r.idle_lifespan_ms() > (std::numeric_limits<int64_t>::max() - stamp_ns) / kNsPerMs
            ? std::numeric_limits<int64_t>::max() - stamp_ns
            : r.idle_lifespan_ms() * kNsPerMs;
    r.set_lingers_until_ns(stamp_ns + lifespan_ns);
    return;
  }
  if (r.lingers_until_ns() != 0) return;  // lingering still
  if (!IsPersistentType(r.type)) resources.erase(it);
}

// Finds lock `lock_id` of `session`: its queue, list and position.
bool LockTable::Impl::Locate(const Session& session, uint64_t lock_id, Resource** resource,
                             ListKind* kind, size_t* pos) {
  Resource* found = session.locks.Find(lock_id);
  if (found == nullptr) return false;
  Resource& r = *found;
  const std::pair<ListKind, const std::vector<Lock>*> lists[] = {{ListKind::kHolders, &r.holders},
                                                                 {ListKind::kWaiters, &r.waiters()},
                                                                 {ListKind::kParked, &r.parked()}};
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

std::vector<Lock>& LockTable::Impl::ListOf(Resource& r, ListKind kind) {
  switch (kind) {
    case ListKind::kHolders:
      return r.holders;
    case ListKind::kWaiters:
      return r.mutable_waiters();
    case ListKind::kParked:
      return r.mutable_parked();
  }
  return r.mutable_parked();
}

// Removes a lock from its list, the lock index and its session's set.
Lock LockTable::Impl::Take(Resource& r, ListKind kind, size_t pos) {
  std::vector<Lock>& list = ListOf(r, kind);
  Lock lock = std::move(list[pos]);
  list.erase(list.begin() + static_cast<std::ptrdiff_t>(pos));
  --(kind == ListKind::kHolders ? held_locks : waiting_locks);
  auto sit = sessions.find(*lock.session);
  if (sit != sessions.end()) sit->second.locks.Erase(lock.lock_id);
  return lock;
}

// Gives a released _S_ value back.
void LockTable::Impl::Recycle(Resource& r, const Lock& lock) {
  uint64_t value = 0;
  if (r.type == ResourceType::kTransactionalSequence && ParseU64(lock.element(), &value) &&
      value > 0 && value < r.extra->next_sequence) {
    r.extra->recycled.insert(value);
  }
}

// Picks the element of a lock being granted, per type.
void LockTable::Impl::AssignElement(Resource& r, Lock& lock) {
  switch (r.type) {
    case ResourceType::kSet: {
      const std::vector<std::string>& elements = r.extra->elements;
      const size_t n = elements.size();
      std::set<std::string_view> used;
      for (const Lock& h : r.holders) used.insert(h.element());
      for (size_t k = 0; k < n; ++k) {
        const size_t idx = (r.extra->set_cursor + k) % n;
        if (used.count(elements[idx]) == 0) {
          lock.set_element(elements[idx]);
          r.extra->set_cursor = static_cast<uint32_t>((idx + 1) % n);
          break;
        }
      }
      break;
    }
    case ResourceType::kSequence:
      lock.set_element(std::to_string(r.extra->next_sequence++));
      break;
    case ResourceType::kTransactionalSequence:
      if (!r.extra->recycled.empty()) {
        lock.set_element(std::to_string(*r.extra->recycled.begin()));
        r.extra->recycled.erase(r.extra->recycled.begin());
      } else {
        lock.set_element(std::to_string(r.extra->next_sequence++));
      }
      break;
    case ResourceType::kTimestamp: {
      ResourceExtra& x = *r.extra;
      int64_t ns = 0;
      std::string text;
      NextUniqueTimestamp(x.format, lock.stamp_unix_ns(), !x.last_stamp_text.empty(),
                          x.last_stamp_ns, x.last_stamp_text, &ns, &text);
      x.last_stamp_ns = ns;
      x.last_stamp_text = text;
      lock.set_element(std::move(text));
      break;
    }
    case ResourceType::kSimple:
    case ResourceType::kNumeric:
    case ResourceType::kHierarchical:
      break;
  }
}

// Makes `lock` a holder of `r` with token `index`; returns the grant.
Grant LockTable::Impl::GrantLock(Resource& r, Lock lock, uint64_t index) {
  lock.token = index + token_offset;
  lock.since_unix_s = clock_unix_s;
  AssignElement(r, lock);
  Grant g = MakeGrant(r, lock);
  r.holders.push_back(std::move(lock));
  ++held_locks;
  return g;
}

// Grants, in FIFO order, every waiter that has become grantable.
void LockTable::Impl::GrantFromQueue(Resource& r, uint64_t index, std::vector<Grant>* grants) {
  size_t i = 0;
  while (i < r.waiters().size()) {
    const Lock& w = r.waiters()[i];
    if (!BlockedByEarlierWaiter(r, i, w) && !ConflictsWithHolders(r, w)) {
      std::vector<Lock>& waiters = r.mutable_waiters();
      Lock lock = std::move(waiters[i]);
      waiters.erase(waiters.begin() + static_cast<std::ptrdiff_t>(i));
      --waiting_locks;  // GrantLock counts it held
      grants->push_back(GrantLock(r, std::move(lock), index));
    } else if (r.type == ResourceType::kHierarchical) {
      ++i;  // a later waiter on another branch may still go
    } else {
      break;
    }
  }
}

// Gate of the commands that carry (session, seq): the session if the command is new,
// else nullptr with the answer in `result`.
Session* LockTable::Impl::Admit(const pb::SessionKey& key, uint64_t seq,
                                pb::CommandResult* result) {
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
  if (seq == 0) {
    SetResult(result, pb::ERROR, "stale sequence number 0 (sequence numbers start at 1)");
    return nullptr;
  }
  if (seq < s.last_seq) {
    SetResult(result, pb::STALE_SEQ,
              "stale sequence number " + std::to_string(seq) + " (last applied " +
                  std::to_string(s.last_seq) + ")");
    return nullptr;
  }
  return &s;
}

void LockTable::Impl::DoOpenSession(const pb::OpenSession& cmd, ApplyResult* out) {
  const SessionId id = IdOf(cmd.session());
  if (sessions.count(id) != 0) {
    SetResult(&out->result, pb::GRANTED, "session already open");
    return;
  }
  // A node hands out client ids in increasing order, so an OpenSession at or below the
  // highest one seen is a late copy (a retry) of a session that has since been closed or
  // expired: re-opening it would leave a session, and maybe a lock, nobody will release.
  uint64_t& high = node_ids[id.first].max_client_id;
  if (id.second <= high) {
    SetResult(&out->result, pb::NO_SESSION,
              "session " + Describe(id) + " was closed or superseded; it cannot be re-opened");
    return;
  }
  high = id.second;
  Session& s = sessions[id];
  s.pid = cmd.pid();
  s.uid = cmd.uid();
  s.client_name = cmd.client_name();
  SetResult(&out->result, pb::GRANTED, "");
}

void LockTable::Impl::DoAcquire(uint64_t index, const pb::Acquire& cmd, Session& session,
                                ApplyResult* out) {
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
  lock.session = &sessions.find(IdOf(cmd.session()))->first;  // Admit found it
  const bool all_modes = rn.type == ResourceType::kSimple || rn.type == ResourceType::kHierarchical;
  lock.mode = all_modes ? cmd.mode() : pb::EX;
  lock.set_quantity(rn.type == ResourceType::kNumeric ? std::max<uint32_t>(1, cmd.quantity()) : 1);
  lock.since_unix_s = clock_unix_s;
  lock.seq = cmd.seq();
  lock.no_create = cmd.no_create();
  // Only a timestamp is made from it (at the grant); kept for no other lock.
  if (rn.type == ResourceType::kTimestamp) lock.set_stamp_unix_ns(cmd.stamp_unix_ns());
  lock.set_path(rn.path);
  if (rn.type == ResourceType::kNumeric && lock.quantity() > rn.capacity) {
    SetResult(&res, pb::IMPOSSIBLE,
              "asked for " + std::to_string(lock.quantity()) + " units of " + rn.name +
                  ", which has " + std::to_string(rn.capacity));
    return;
  }

  auto existing = resources.find(rn.queue_key);
  bool exists = existing != resources.end() && existing->second.Exists();
  if (!exists && existing != resources.end() && existing->second.lingers_until_ns() != 0) {
    // An empty queue in its idle lifespan exists until its time, by the requests' stamps.
    if (cmd.stamp_unix_ns() < existing->second.lingers_until_ns()) {
      exists = true;
    } else {
      existing->second.set_lingers_until_ns(0);  // over: dropped below unless it is used
    }
  }
  if (cmd.no_create() && !exists) {
    if (!cmd.wait()) {
      SetResult(&res, pb::CANT_WAIT,
                "resource " + rn.queue_key + " does not exist and the request may not wait");
      DropIfIdle(rn.queue_key, 0);
      return;
    }
    Resource& r = GetOrCreate(rn);
    r.mutable_parked().push_back(std::move(lock));
    ++waiting_locks;
    session.locks.Add(index, &r);  // ids grow with the log: a push_back
    SetResult(&res, pb::QUEUED, "waiting for the resource to be created");
    return;
  }

  Resource& r = GetOrCreate(rn);
  // The request that creates the queue gives its idle lifespan (FLoM's locker takes it from
  // the request that started it); a lingering queue in use again keeps its own.
  if (!exists) r.set_idle_lifespan_ms(std::max<int64_t>(0, cmd.idle_lifespan_ms()));
  r.set_lingers_until_ns(0);
  if (!BlockedByEarlierWaiter(r, r.waiters().size(), lock) && !ConflictsWithHolders(r, lock)) {
    Grant g = GrantLock(r, std::move(lock), index);
    res.set_code(pb::GRANTED);
    res.set_token(g.token);
    res.set_element(g.element);
    out->grants.push_back(std::move(g));
  } else if (!cmd.wait()) {
    SetResult(&res, pb::BUSY, "resource " + rn.name + " is busy");
    DropIfIdle(rn.queue_key, 0);
    return;
  } else {
    r.mutable_waiters().push_back(std::move(lock));
    ++waiting_locks;
    res.set_code(pb::QUEUED);
  }
  session.locks.Add(index, &r);  // ids grow with the log: a push_back

  // The resource exists now: requests that waited for its creation join the queue.
  if (!r.parked().empty() && r.Exists()) {
    std::vector<Lock>& parked = r.mutable_parked();
    for (Lock& p : parked) r.mutable_waiters().push_back(std::move(p));
    parked.clear();
    GrantFromQueue(r, index, &out->grants);
  }
}

void LockTable::Impl::DoRelease(uint64_t index, const pb::Release& cmd, Session& session,
                                ApplyResult* out) {
  pb::CommandResult& res = out->result;
  res.set_lock_id(cmd.lock_id());
  Resource* r = nullptr;
  ListKind kind = ListKind::kHolders;
  size_t pos = 0;
  if (!Locate(session, cmd.lock_id(), &r, &kind, &pos)) {
    SetResult(&res, pb::NOT_FOUND, "no lock " + std::to_string(cmd.lock_id()) + " in this session");
    return;
  }
  const std::string key = r->queue_key();
  Lock lock = Take(*r, kind, pos);
  if (kind == ListKind::kHolders) {
    if (cmd.rollback()) Recycle(*r, lock);
    res.set_code(pb::RELEASED);
    res.set_token(lock.token);
    res.set_element(lock.element());
  } else {
    SetResult(&res, pb::CANCELLED, "request withdrawn before it was granted");
  }
  GrantFromQueue(*r, index, &out->grants);
  DropIfIdle(key, cmd.stamp_unix_ns());
}

void LockTable::Impl::DoCancel(uint64_t index, const pb::Cancel& cmd, Session& session,
                               ApplyResult* out) {
  pb::CommandResult& res = out->result;
  res.set_lock_id(cmd.lock_id());
  Resource* r = nullptr;
  ListKind kind = ListKind::kHolders;
  size_t pos = 0;
  if (!Locate(session, cmd.lock_id(), &r, &kind, &pos)) {
    SetResult(&res, pb::NOT_FOUND, "no lock " + std::to_string(cmd.lock_id()) + " in this session");
    return;
  }
  if (kind == ListKind::kHolders) {
    const Lock& held = r->holders[pos];
    SetResult(&res, pb::GRANTED, "granted before the cancel");
    res.set_token(held.token);
    res.set_element(held.element());
    return;
  }
  const std::string key = r->queue_key();
  Take(*r, kind, pos);
  SetResult(&res, pb::CANCELLED, "request withdrawn before it was granted");
  GrantFromQueue(*r, index, &out->grants);
  DropIfIdle(key, cmd.stamp_unix_ns());
}

// Releases (as rollback) every held lock of the session and withdraws its requests
// with `code`, then forgets the session. Queues touched are added to `touched`.
void LockTable::Impl::EndSession(std::map<SessionId, Session>::iterator it, pb::ResultCode code,
                                 ApplyResult* out, std::set<std::string>* touched) {
  const std::vector<uint64_t> ids = it->second.locks.Ids();
  for (uint64_t id : ids) {
    Resource* r = nullptr;
    ListKind kind = ListKind::kHolders;
    size_t pos = 0;
    if (!Locate(it->second, id, &r, &kind, &pos)) continue;
    touched->insert(r->queue_key());
    Lock lock = Take(*r, kind, pos);
    if (kind == ListKind::kHolders) {
      Recycle(*r, lock);
      out->released.push_back(MakeGrant(*r, lock));
    } else {
      Withdrawal w;
      w.session = KeyOf(*lock.session);
      w.lock_id = lock.lock_id;
      w.acquire_seq = lock.seq;
      w.code = code;
      out->withdrawals.push_back(std::move(w));
    }
  }
  sessions.erase(it);
}

void LockTable::Impl::Regrant(uint64_t index, const std::set<std::string>& touched,
                              ApplyResult* out) {
  for (const std::string& key : touched) {
    auto it = resources.find(key);
    if (it == resources.end()) continue;
    GrantFromQueue(it->second, index, &out->grants);
    DropIfIdle(key, 0);  // a session's end carries no stamp: its queues do not linger
  }
}

void LockTable::Impl::DoCloseSession(uint64_t index, const pb::CloseSession& cmd,
                                     ApplyResult* out) {
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

size_t LockTable::Impl::EndNodeSessions(const std::string& node, uint64_t below, ApplyResult* out,
                                        std::set<std::string>* touched) {
  auto it = sessions.lower_bound(SessionId(node, 0));
  size_t ended = 0;
  while (it != sessions.end() && it->first.first == node) {
    auto next = std::next(it);
    if (below != 0 && it->first.second >= below) break;
    EndSession(it, pb::LOST, out, touched);
    it = next;
    ++ended;
  }
  return ended;
}

void LockTable::Impl::DoExpireNode(uint64_t index, const pb::ExpireNode& cmd, ApplyResult* out) {
  std::set<std::string> touched;
  const size_t ended = EndNodeSessions(cmd.node_id(), cmd.below_client_id(), out, &touched);
  Regrant(index, touched, out);
  SetResult(&out->result, pb::RELEASED,
            std::to_string(ended) + " session(s) of node " + cmd.node_id() + " ended");
}

void LockTable::Impl::DoClaimClientIds(uint64_t index, const pb::ClaimClientIds& cmd,
                                       ApplyResult* out) {
  if (cmd.node_id().empty()) {
    SetResult(&out->result, pb::ERROR, "client id claim without a node id");
    return;
  }
  if (cmd.token_floor() > kMaxTokenFloor) {
    SetResult(&out->result, pb::ERROR,
              "token floor " + std::to_string(cmd.token_floor()) + " is above " +
                  std::to_string(kMaxTokenFloor));
    return;
  }
  // Every token granted after this entry (index + 1 + offset at least) is above the floor.
  if (cmd.token_floor() > index) {
    token_offset = std::max(token_offset, cmd.token_floor() - index);
  }
  auto found = node_ids.find(cmd.node_id());
  if (found != node_ids.end() && found->second.epoch != 0) {
    // A retry of one of the node's remembered claims (the latest, or an earlier one whose
    // duplicate proposal was applied late): the same answer, no effect. Above all it must
    // not end the sessions of the node's current run, whose lease still holds.
    uint64_t retried = found->second.epoch_nonce == cmd.nonce() ? found->second.epoch : 0;
    for (const auto& claim : found->second.earlier_claims) {
      if (retried == 0 && claim.nonce == cmd.nonce()) retried = claim.epoch;
    }
    if (retried != 0) {
      SetResult(&out->result, pb::GRANTED, "client ids already claimed by this claim");
      out->result.set_client_id_epoch(retried);
      return;
    }
  }
  const NodeIds current = found == node_ids.end() ? NodeIds() : found->second;
  // Above the previous epoch and above every id the node ever opened (ids of runs that took
  // them from elsewhere, e.g. older versions' wall-clock ids), so ids never repeat.
  const uint64_t epoch = std::max(current.epoch, current.max_client_id >> kClientIdEpochBits) + 1;
  if (epoch > kMaxClientIdEpoch) {
    SetResult(&out->result, pb::ERROR,
              "node " + cmd.node_id() + " has used up its client id epochs");
    return;
  }
  NodeIds& ids = node_ids[cmd.node_id()];
  if (ids.epoch != 0) {
    ids.earlier_claims.push_back({ids.epoch_nonce, ids.epoch});
    if (ids.earlier_claims.size() > kRememberedClaims - 1) {
      ids.earlier_claims.erase(ids.earlier_claims.begin());
    }
  }
  ids.epoch = epoch;
  ids.epoch_nonce = cmd.nonce();
  const uint64_t first = epoch << kClientIdEpochBits;
  size_t ended = 0;
  if (cmd.expire_older()) {
    std::set<std::string> touched;
    ended = EndNodeSessions(cmd.node_id(), first, out, &touched);
    Regrant(index, touched, out);
    // A late OpenSession of an earlier run would open a session nobody will close.
    ids.max_client_id = std::max(ids.max_client_id, first - 1);
  }
  SetResult(&out->result, pb::GRANTED,
            "client id epoch " + std::to_string(epoch) + " of node " + cmd.node_id() +
                (cmd.expire_older() ? "; " + std::to_string(ended) + " older session(s) ended"
                                    : std::string()));
  out->result.set_client_id_epoch(epoch);
}

void LockTable::Impl::AdvanceClock(const pb::Command& command) {
  int64_t ns = 0;
  switch (command.body_case()) {
    case pb::Command::kAcquire:
      ns = command.acquire().stamp_unix_ns();
      break;
    case pb::Command::kRelease:
      ns = command.release().stamp_unix_ns();
      break;
    case pb::Command::kCancel:
      ns = command.cancel().stamp_unix_ns();
      break;
    default:
      return;  // carries no stamp
  }
  if (ns <= 0) return;  // a proposer that stamps nothing (or a clock before 1970)
  clock_unix_s = static_cast<uint32_t>(
      std::min<int64_t>(ns / 1'000'000'000, std::numeric_limits<uint32_t>::max()));
}

ApplyResult LockTable::Impl::Apply(uint64_t index, const pb::Command& command) {
  ApplyResult out;
  if (index <= applied_index) {
    SetResult(&out.result, pb::ERROR,
              "entry " + std::to_string(index) + " is not above the applied index " +
                  std::to_string(applied_index));
    return out;
  }
  applied_index = index;
  AdvanceClock(command);
  // Runs `apply` for a sequenced session command unless Admit refuses it (unknown session,
  // duplicate or stale seq), then records the seq and its answer for retries.
  auto apply_sequenced = [&](const auto& cmd, auto apply) {
    Session* s = Admit(cmd.session(), cmd.seq(), &out.result);
    if (s == nullptr) return;
    apply(*s);
    s->last_seq = cmd.seq();
    s->last_result = out.result;
  };
  switch (command.body_case()) {
    case pb::Command::kOpenSession:
      DoOpenSession(command.open_session(), &out);
      break;
    case pb::Command::kAcquire:
      apply_sequenced(command.acquire(),
                      [&](Session& s) { DoAcquire(index, command.acquire(), s, &out); });
      break;
    case pb::Command::kRelease:
      apply_sequenced(command.release(),
                      [&](Session& s) { DoRelease(index, command.release(), s, &out); });
      break;
    case pb::Command::kCancel:
      apply_sequenced(command.cancel(),
                      [&](Session& s) { DoCancel(index, command.cancel(), s, &out); });
      break;
    case pb::Command::kCloseSession:
      DoCloseSession(index, command.close_session(), &out);
      break;
    case pb::Command::kExpireNode:
      DoExpireNode(index, command.expire_node(), &out);
      break;
    case pb::Command::kClaimClientIds:
      DoClaimClientIds(index, command.claim_client_ids(), &out);
      break;
    case pb::Command::BODY_NOT_SET:
      SetResult(&out.result, pb::ERROR, "empty command");
      break;
  }
  return out;
}

LockTable::LockTable() : impl_(std::make_unique<Impl>()) {}

LockTable::~LockTable() = default;

ApplyResult LockTable::Apply(uint64_t index, const pb::Command& command) {
  return impl_->Apply(index, command);
}

uint64_t LockTable::applied_index() const { return impl_->applied_index; }

uint64_t LockTable::token_watermark() const {
  return impl_->applied_index + impl_->token_offset;
}

uint64_t LockTable::MaxClientId(const std::string& node_id) const {
  auto it = impl_->node_ids.find(node_id);
  return it == impl_->node_ids.end() ? 0 : it->second.max_client_id;
}

uint64_t LockTable::ClientIdEpoch(const std::string& node_id, uint64_t* nonce) const {
  auto it = impl_->node_ids.find(node_id);
  if (nonce) *nonce = it == impl_->node_ids.end() ? 0 : it->second.epoch_nonce;
  return it == impl_->node_ids.end() ? 0 : it->second.epoch;
}

bool LockTable::HasNodeSessions(const std::string& node_id) const {
  auto it = impl_->sessions.lower_bound({node_id, 0});
  return it != impl_->sessions.end() && it->first.first == node_id;
}

size_t LockTable::session_count() const { return impl_->sessions.size(); }

size_t LockTable::held_count() const { return impl_->held_locks; }

size_t LockTable::waiting_count() const { return impl_->waiting_locks; }

bool LockTable::HasSession(const pb::SessionKey& session) const {
  return impl_->sessions.count(IdOf(session)) != 0;
}

bool LockTable::Holds(const pb::SessionKey& session, uint64_t lock_id) const {
  auto it = impl_->sessions.find(IdOf(session));
  if (it == impl_->sessions.end()) return false;
  Resource* r = nullptr;
  ListKind kind = ListKind::kParked;
  size_t pos = 0;
  return Impl::Locate(it->second, lock_id, &r, &kind, &pos) && kind == ListKind::kHolders;
}

std::vector<uint64_t> LockTable::HeldLockIds(const pb::SessionKey& session) const {
  std::vector<uint64_t> held;
  auto it = impl_->sessions.find(IdOf(session));
  if (it == impl_->sessions.end()) return held;
  for (uint64_t id : it->second.locks.Ids()) {
    Resource* r = nullptr;
    ListKind kind = ListKind::kParked;
    size_t pos = 0;
    if (Impl::Locate(it->second, id, &r, &kind, &pos) && kind == ListKind::kHolders) {
      held.push_back(id);
    }
  }
  return held;
}

}  // namespace mesh::core
