// Snapshots, restore (with validation) and listings of core/lock_table.
#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "core/lock_table.h"
#include "core/lock_table_internal.h"
#include "google/protobuf/io/coded_stream.h"

namespace mesh::core {

using lock_table_internal::BlockedByEarlierWaiter;
using lock_table_internal::ConflictsWithHolders;
using lock_table_internal::Describe;
using lock_table_internal::IdOf;
using lock_table_internal::InitResource;
using lock_table_internal::IsPersistentType;
using lock_table_internal::KeyOf;
using lock_table_internal::ListKind;
using lock_table_internal::Lock;
using lock_table_internal::NameOf;
using lock_table_internal::Overlaps;
using lock_table_internal::ParseU64;
using lock_table_internal::Resource;
using lock_table_internal::Session;
using lock_table_internal::SessionId;

namespace {

void ToProto(const Resource& r, const Lock& lock, pb::LockEntryState* out) {
  out->set_lock_id(lock.lock_id);
  *out->mutable_session() = KeyOf(*lock.session);
  out->set_mode(lock.mode);
  out->set_quantity(lock.quantity());
  out->set_token(lock.token);
  out->set_element(lock.element());
  out->set_seq(lock.seq);
  out->set_no_create(lock.no_create);
  out->set_stamp_unix_ns(lock.stamp_unix_ns());
  out->set_since_unix_s(lock.since_unix_s);
  // Only a hierarchy's lock names more than its queue (a node path): a lock of any other
  // queue leaves the name out, which halves a simple lock's bytes in a snapshot.
  if (r.type == ResourceType::kHierarchical) out->set_resource(NameOf(r, lock));
}

// Appends protobuf wire format (proto3: a scalar at its default is left out, a message
// field that is set is written even when empty, repeated scalars are packed) in field
// order, as the generated code writes it. For EncodeSnapshot, which must give exactly the
// bytes of Snapshot() serialized.
class WireWriter {
 public:
  explicit WireWriter(std::string* out) : out_(out) {}

  void Varint(uint64_t v) {
    uint8_t buf[10];  // the longest varint of 64 bits
    uint8_t* end = google::protobuf::io::CodedOutputStream::WriteVarint64ToArray(v, buf);
    out_->append(reinterpret_cast<const char*>(buf), static_cast<size_t>(end - buf));
  }
  // A varint field (uint32/uint64/int64/bool/enum), left out at 0.
  void Scalar(uint32_t field, uint64_t v) {
    if (v == 0) return;
    Varint(field << 3);
    Varint(v);
  }
  // A string or bytes field, left out when empty.
  void Text(uint32_t field, std::string_view v) {
    if (!v.empty()) Message(field, v);
  }
  // A length-delimited field that is written even when empty (a set message field).
  void Message(uint32_t field, std::string_view body) {
    Varint(field << 3 | 2);
    Varint(body.size());
    out_->append(body.data(), body.size());
  }

 private:
  std::string* out_;
};

// SessionKey `id` encoded into `out` (replaced).
void EncodeSessionKey(const SessionId& id, std::string* out) {
  out->clear();
  WireWriter w(out);
  w.Text(1, id.first);
  w.Scalar(2, id.second);
}

// The encoded SessionKey of the locks being encoded: consecutive locks mostly share a
// session, whose key is then encoded once.
struct SessionKeyCache {
  const SessionId* session = nullptr;
  std::string bytes;

  const std::string& Of(const SessionId* id) {
    if (id != session) {
      EncodeSessionKey(*id, &bytes);
      session = id;
    }
    return bytes;
  }
};

// What ToProto(r, lock) serializes to, into `out` (replaced).
void EncodeLock(const Resource& r, const Lock& lock, SessionKeyCache* keys, std::string* out) {
  out->clear();
  WireWriter w(out);
  w.Scalar(1, lock.lock_id);
  w.Message(2, keys->Of(lock.session));
  w.Scalar(3, static_cast<uint64_t>(lock.mode));
  w.Scalar(4, lock.quantity());
  w.Scalar(5, lock.token);
  w.Text(6, lock.element());
  w.Scalar(7, lock.seq);
  w.Scalar(8, lock.no_create ? 1 : 0);
  w.Scalar(9, static_cast<uint64_t>(lock.stamp_unix_ns()));
  if (r.type == ResourceType::kHierarchical) w.Text(10, NameOf(r, lock));  // as ToProto
  w.Scalar(11, lock.since_unix_s);
}

}  // namespace

void LockTable::Impl::Snapshot(pb::LockTableSnapshot* out) const {
  out->Clear();
  out->set_applied_index(applied_index);
  out->set_token_offset(token_offset);
  out->set_clock_unix_s(clock_unix_s);
  for (const auto& [id, s] : sessions) {
    pb::SessionState* ss = out->add_sessions();
    *ss->mutable_session() = KeyOf(id);
    ss->set_pid(s.pid);
    ss->set_uid(s.uid);
    ss->set_client_name(s.client_name);
    ss->set_last_seq(s.last_seq);
    ss->set_last_result(s.last_result.SerializeAsString());
  }
  for (const auto& [node, ids] : node_ids) {
    pb::NodeWatermark* w = out->add_watermarks();
    w->set_node_id(node);
    w->set_max_client_id(ids.max_client_id);
    w->set_epoch(ids.epoch);
    w->set_epoch_nonce(ids.epoch_nonce);
    for (const auto& claim : ids.earlier_claims) {
      pb::ClaimRecord* c = w->add_earlier_claims();
      c->set_nonce(claim.nonce);
      c->set_epoch(claim.epoch);
    }
  }
  for (const auto& [key, r] : resources) {
    pb::ResourceState* rs = out->add_resources();
    rs->set_name(key);
    for (const Lock& l : r.holders) ToProto(r, l, rs->add_holders());
    for (const Lock& l : r.waiters()) ToProto(r, l, rs->add_waiters());
    for (const Lock& l : r.parked()) ToProto(r, l, rs->add_waiters());
    switch (r.type) {
      case ResourceType::kSequence:
      case ResourceType::kTransactionalSequence:
        rs->set_next_sequence(r.extra->next_sequence);
        for (uint64_t v : r.extra->recycled) rs->add_recycled(v);
        break;
      case ResourceType::kSet:
        rs->set_set_cursor(r.extra->set_cursor);
        break;
      case ResourceType::kTimestamp:
        rs->set_last_stamp_unix_ns(r.extra->last_stamp_ns);
        rs->set_last_stamp_text(r.extra->last_stamp_text);
        break;
      default:
        break;
    }
    rs->set_idle_lifespan_ms(r.idle_lifespan_ms());
    rs->set_lingers_until_unix_ns(r.lingers_until_ns());
  }
}

void LockTable::EncodeSnapshot(std::string* out) const {
  const Impl& t = *impl_;
  out->clear();
  WireWriter w(out);
  w.Scalar(1, t.applied_index);
  std::string body, key, lock_bytes, packed;
  SessionKeyCache keys;
  for (const auto& [id, s] : t.sessions) {
    body.clear();
    WireWriter sw(&body);
    EncodeSessionKey(id, &key);
    sw.Message(1, key);
    sw.Scalar(2, s.pid);
    sw.Scalar(3, s.uid);
    sw.Text(4, s.client_name);
    sw.Scalar(5, s.last_seq);
    sw.Text(6, s.last_result.SerializeAsString());
    w.Message(2, body);
  }
  for (const auto& [name, r] : t.resources) {
    body.clear();
    WireWriter rw(&body);
    rw.Text(1, name);
    for (const Lock& l : r.holders) {
      EncodeLock(r, l, &keys, &lock_bytes);
      rw.Message(2, lock_bytes);
    }
    for (const std::vector<Lock>* queue : {&r.waiters(), &r.parked()}) {
      for (const Lock& l : *queue) {
        EncodeLock(r, l, &keys, &lock_bytes);
        rw.Message(3, lock_bytes);
      }
    }
    switch (r.type) {
      case ResourceType::kSequence:
      case ResourceType::kTransactionalSequence:
        rw.Scalar(4, r.extra->next_sequence);
        if (!r.extra->recycled.empty()) {
          packed.clear();
          WireWriter pw(&packed);
          for (uint64_t v : r.extra->recycled) pw.Varint(v);
          rw.Message(5, packed);
        }
        break;
      case ResourceType::kSet:
        rw.Scalar(6, r.extra->set_cursor);
        break;
      case ResourceType::kTimestamp:
        rw.Scalar(7, static_cast<uint64_t>(r.extra->last_stamp_ns));
        rw.Text(8, r.extra->last_stamp_text);
        break;
      default:
        break;
    }
    rw.Scalar(9, static_cast<uint64_t>(r.idle_lifespan_ms()));
    rw.Scalar(10, static_cast<uint64_t>(r.lingers_until_ns()));
    w.Message(3, body);
  }
  for (const auto& [node, ids] : t.node_ids) {
    body.clear();
    WireWriter nw(&body);
    nw.Text(1, node);
    nw.Scalar(2, ids.max_client_id);
    nw.Scalar(3, ids.epoch);
    nw.Scalar(4, ids.epoch_nonce);
    for (const auto& claim : ids.earlier_claims) {
      key.clear();
      WireWriter cw(&key);
      cw.Scalar(1, claim.nonce);
      cw.Scalar(2, claim.epoch);
      nw.Message(5, key);
    }
    w.Message(4, body);
  }
  w.Scalar(5, t.token_offset);  // after field 4, as protobuf orders fields
  w.Scalar(6, t.clock_unix_s);
}

// Fills `lock` from `in`, checking it against the queue `r` it is listed in.
Status LockTable::Impl::LoadLock(const pb::LockEntryState& in, const ResourceName& queue_rn,
                                 Resource& r, bool held, LoadCache* cache, Lock* lock) {
  // Built only on failure: a restore checks millions of locks.
  auto where = [&] { return "snapshot lock " + std::to_string(in.lock_id()) + ": "; };
  if (in.lock_id() == 0 || in.lock_id() > applied_index) {
    return Status::Corruption(where() + "lock id outside 1.." + std::to_string(applied_index));
  }
  cache->lock_ids.push_back(in.lock_id());  // checked for duplicates at the end
  // Consecutive locks mostly share a session: look it up again only when it changes.
  auto sit = cache->session;
  if (sit == sessions.end() || sit->first.second != in.session().client_id() ||
      sit->first.first != in.session().node_id()) {
    const SessionId sid = IdOf(in.session());
    sit = sessions.find(sid);
    if (sit == sessions.end()) {
      return Status::Corruption(where() + "unknown session " + Describe(sid));
    }
    cache->session = sit;
  }
  if (in.seq() == 0 || in.seq() > sit->second.last_seq) {
    return Status::Corruption(where() + "seq beyond its session's last seq");
  }
  ResourceName parsed_name;
  // A lock of a queue other than a hierarchy's is requested under the queue's own name,
  // left out of the snapshot (snapshots written before that name it).
  const bool own_name = queue_rn.path.empty() && r.type != ResourceType::kHierarchical &&
                        (in.resource().empty() || in.resource() == r.queue_key());
  // Otherwise the name is parsed (a hierarchy's path, or a name that may be wrong).
  if (!own_name) {
    const Status parsed = ParseResourceName(in.resource(), &parsed_name);
    if (!parsed.ok()) return Status::Corruption(where() + parsed.message());
  }
  const ResourceName& rn = own_name ? queue_rn : parsed_name;
  if (rn.queue_key != r.queue_key()) {
    return Status::Corruption(where() + "resource " + in.resource() + " listed under " +
                              r.queue_key());
  }
  if (!pb::LockMode_IsValid(in.mode())) return Status::Corruption(where() + "bad mode");
  const bool all_modes = rn.type == ResourceType::kSimple || rn.type == ResourceType::kHierarchical;
  if (!all_modes && in.mode() != pb::EX) {
    return Status::Corruption(where() + "mode other than EX on a " + ResourceTypeName(rn.type) +
                              " resource");
  }
  const uint64_t max_quantity = rn.type == ResourceType::kNumeric ? rn.capacity : 1;
  if (in.quantity() < 1 || in.quantity() > max_quantity) {
    return Status::Corruption(where() + "bad quantity");
  }
  if (held ? (in.token() < in.lock_id() || in.token() > applied_index + token_offset)
           : (in.token() != 0 || !in.element().empty())) {
    return Status::Corruption(where() + (held ? "bad token" : "waiter with a token or element"));
  }
  lock->lock_id = in.lock_id();
  lock->session = &sit->first;
  lock->mode = in.mode();
  lock->set_quantity(in.quantity());
  lock->since_unix_s = in.since_unix_s();
  lock->token = in.token();
  lock->set_element(in.element());
  lock->seq = in.seq();
  lock->no_create = in.no_create();
  // Older tables kept every request's time; only a timestamp's is used.
  if (rn.type == ResourceType::kTimestamp) lock->set_stamp_unix_ns(in.stamp_unix_ns());
  lock->set_path(rn.path);
  sit->second.locks.BulkAdd(lock->lock_id, &r);  // sorted once all are in
  return Status::OK();
}

// Checks what the holders of a queue hold together, and its counters.
Status LockTable::Impl::CheckHolders(const Resource& r) {
  auto where = [&] { return "snapshot resource " + r.queue_key() + ": "; };
  std::set<std::string> elements;
  uint64_t used = 0;
  for (size_t i = 0; i < r.holders.size(); ++i) {
    const Lock& h = r.holders[i];
    for (size_t j = 0; j < i; ++j) {
      const Lock& o = r.holders[j];
      const bool overlap = r.type == ResourceType::kSimple ||
                           (r.type == ResourceType::kHierarchical && Overlaps(o.path(), h.path()));
      if (overlap && !ModesCompatible(o.mode, h.mode)) {
        return Status::Corruption(where() + "incompatible holders");
      }
    }
    used += h.quantity();
    switch (r.type) {
      case ResourceType::kSet:
        if (std::find(r.extra->elements.begin(), r.extra->elements.end(), h.element()) ==
                r.extra->elements.end() ||
            !elements.insert(h.element()).second) {
          return Status::Corruption(where() + "bad set element " + h.element());
        }
        break;
      case ResourceType::kSequence:
      case ResourceType::kTransactionalSequence: {
        uint64_t v = 0;
        if (!ParseU64(h.element(), &v) || v == 0 || v >= r.extra->next_sequence ||
            r.extra->recycled.count(v) != 0 || !elements.insert(h.element()).second) {
          return Status::Corruption(where() + "bad sequence value " + h.element());
        }
        break;
      }
      case ResourceType::kTimestamp:
        if (h.element().empty()) return Status::Corruption(where() + "empty timestamp");
        break;
      default:
        if (!h.element().empty()) return Status::Corruption(where() + "unexpected element");
        break;
    }
  }
  const bool over = r.type == ResourceType::kNumeric ? used > r.extra->capacity
                    : r.type == ResourceType::kSet   ? r.holders.size() > r.extra->elements.size()
                    : IsPersistentType(r.type)       ? r.holders.size() > r.extra->capacity
                                                     : false;
  if (over) return Status::Corruption(where() + "more held than the capacity");
  if (r.holders.empty() && !r.waiters().empty()) {
    return Status::Corruption(where() + "waiters without holders");
  }
  // A consistent table never leaves a grantable request waiting.
  for (size_t i = 0; i < r.waiters().size(); ++i) {
    if (!BlockedByEarlierWaiter(r, i, r.waiters()[i]) && !ConflictsWithHolders(r, r.waiters()[i])) {
      return Status::Corruption(where() + "grantable request left waiting");
    }
    if (r.type != ResourceType::kHierarchical) break;
  }
  return Status::OK();
}

// Builds this (empty) Impl from `snap`.
Status LockTable::Impl::Load(const pb::LockTableSnapshot& snap) {
  applied_index = snap.applied_index();
  if (snap.token_offset() > kMaxTokenFloor) return Status::Corruption("snapshot: bad token offset");
  token_offset = snap.token_offset();
  clock_unix_s = snap.clock_unix_s();
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
  for (const pb::NodeWatermark& w : snap.watermarks()) {
    if (w.epoch() > kMaxClientIdEpoch) {
      return Status::Corruption("snapshot watermark of node " + w.node_id() + ": client id epoch " +
                                std::to_string(w.epoch()) + " out of range");
    }
    NodeIds& ids = node_ids[w.node_id()];
    ids.max_client_id = w.max_client_id();
    ids.epoch = w.epoch();
    ids.epoch_nonce = w.epoch_nonce();
    if (w.earlier_claims_size() > static_cast<int>(kRememberedClaims) - 1) {
      return Status::Corruption("snapshot watermark of node " + w.node_id() + ": " +
                                std::to_string(w.earlier_claims_size()) + " earlier claims");
    }
    for (const pb::ClaimRecord& c : w.earlier_claims()) {
      if (c.epoch() == 0 || c.epoch() >= w.epoch()) {
        return Status::Corruption("snapshot watermark of node " + w.node_id() +
                                  ": earlier claim with epoch " + std::to_string(c.epoch()) +
                                  " not below the latest " + std::to_string(w.epoch()));
      }
      ids.earlier_claims.push_back({c.nonce(), c.epoch()});
    }
  }
  for (const auto& [id, s] : sessions) {
    uint64_t& high = node_ids[id.first].max_client_id;  // snapshots older than watermarks
    high = std::max(high, id.second);
  }
  LoadCache cache{sessions.end()};
  cache.lock_ids.reserve(static_cast<size_t>(snap.resources_size()));
  for (const pb::ResourceState& rs : snap.resources()) {
    ResourceName rn;
    const Status parsed = ParseResourceName(rs.name(), &rn);
    if (!parsed.ok()) return Status::Corruption("snapshot resource: " + parsed.message());
    if (rn.queue_key != rs.name()) {
      return Status::Corruption("snapshot resource " + rs.name() + " is not a queue key");
    }
    // Resources come in key order (Snapshot writes them so): the end is the place to
    // insert, in constant time. Any other order still loads, in logarithmic time.
    const size_t known = resources.size();
    auto slot = resources.try_emplace(resources.end(), rs.name());
    if (resources.size() == known) {
      return Status::Corruption("snapshot lists resource " + rs.name() + " twice");
    }
    Resource& r = slot->second;
    r.key = &slot->first;
    InitResource(rn, &r);
    auto where = [&] { return "snapshot resource " + rs.name() + ": "; };
    switch (rn.type) {
      case ResourceType::kSequence:
      case ResourceType::kTransactionalSequence:
        if (rs.next_sequence() == 0) return Status::Corruption(where() + "next sequence 0");
        r.extra->next_sequence = rs.next_sequence();
        for (uint64_t v : rs.recycled()) {
          if (rn.type != ResourceType::kTransactionalSequence || v == 0 ||
              v >= r.extra->next_sequence || !r.extra->recycled.insert(v).second) {
            return Status::Corruption(where() + "bad recycled value " + std::to_string(v));
          }
        }
        break;
      case ResourceType::kSet:
        if (rs.set_cursor() >= rn.elements.size()) {
          return Status::Corruption(where() + "set cursor out of range");
        }
        r.extra->set_cursor = rs.set_cursor();
        break;
      case ResourceType::kTimestamp:
        r.extra->last_stamp_ns = rs.last_stamp_unix_ns();
        r.extra->last_stamp_text = rs.last_stamp_text();
        break;
      default:
        break;
    }
    if (rs.idle_lifespan_ms() < 0 || rs.lingers_until_unix_ns() < 0) {
      return Status::Corruption(where() + "negative idle lifespan");
    }
    r.set_idle_lifespan_ms(rs.idle_lifespan_ms());
    r.set_lingers_until_ns(rs.lingers_until_unix_ns());
    for (const pb::LockEntryState& in : rs.holders()) {
      Lock lock;
      MESH_RETURN_IF_ERROR(LoadLock(in, rn, r, /*held=*/true, &cache, &lock));
      r.holders.push_back(std::move(lock));
      ++held_locks;
    }
    for (const pb::LockEntryState& in : rs.waiters()) {
      Lock lock;
      MESH_RETURN_IF_ERROR(LoadLock(in, rn, r, /*held=*/false, &cache, &lock));
      r.mutable_waiters().push_back(std::move(lock));
      ++waiting_locks;  // parked ones too (below): both are counted waiting
    }
    if (r.holders.empty() && !r.waiters().empty()) {
      // Without holders, waiters can only be no_create requests waiting for creation.
      for (const Lock& w : r.waiters()) {
        if (!w.no_create) {
          return Status::Corruption(where() + "request " + std::to_string(w.lock_id) +
                                    " waits on a resource nobody holds");
        }
      }
      r.mutable_parked() = std::move(r.mutable_waiters());
      r.mutable_waiters().clear();
    }
    MESH_RETURN_IF_ERROR(CheckHolders(r));
    if (r.Idle() && !IsPersistentType(rn.type) && r.lingers_until_ns() == 0) {
      resources.erase(rs.name());
    }
  }
  std::sort(cache.lock_ids.begin(), cache.lock_ids.end());
  auto twice = std::adjacent_find(cache.lock_ids.begin(), cache.lock_ids.end());
  if (twice != cache.lock_ids.end()) {
    return Status::Corruption("snapshot lock " + std::to_string(*twice) + ": lock id listed twice");
  }
  for (auto& [id, session] : sessions) {
    // No id twice in the whole table (above), so none twice in one session.
    if (!session.locks.SortAfterBulkAdd()) {
      return Status::Corruption("snapshot session " + lock_table_internal::Describe(id) +
                                ": a lock id listed twice");
    }
  }
  return Status::OK();
}

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
  auto add = [&](const Resource& r, const Lock& l, bool is_held, std::vector<LockRow>* rows) {
    LockRow row;
    row.resource = NameOf(r, l);
    row.held = is_held;
    row.mode = l.mode;
    row.quantity = l.quantity();
    row.since_unix_s = l.since_unix_s;
    row.lock_id = l.lock_id;
    row.token = l.token;
    row.element = l.element();
    row.session = KeyOf(*l.session);
    auto it = impl_->sessions.find(*l.session);
    if (it != impl_->sessions.end()) {
      row.pid = it->second.pid;
      row.uid = it->second.uid;
      row.client_name = it->second.client_name;
    }
    rows->push_back(std::move(row));
  };
  for (const auto& [key, r] : impl_->resources) {
    for (const Lock& l : r.holders) add(r, l, true, &held);
    for (const Lock& l : r.waiters()) add(r, l, false, &waiting);
    for (const Lock& l : r.parked()) add(r, l, false, &waiting);
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

}  // namespace mesh::core
