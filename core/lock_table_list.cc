// LockTable::ListPage (core/lock_table.h): bounded, filtered pages of the lock listing, so
// that a listing of any size is read in pieces that each fit in a client frame.
#include <algorithm>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/lock_table.h"
#include "core/lock_table_internal.h"

namespace mesh::core {
namespace {

using lock_table_internal::KeyOf;
using lock_table_internal::Lock;
using lock_table_internal::NameOf;
using lock_table_internal::Resource;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// A lock of the queue being listed, its resource name (a lock does not store it: NameOf),
// and whether it is held (else waiting or parked).
struct Found {
  const Lock* lock;
  std::string resource;
  bool held;
};

// Whether `a` comes before `b` (of the same queue) in listing order.
bool Before(const Found& a, const Found& b) {
  return std::tie(a.resource, a.lock->lock_id) < std::tie(b.resource, b.lock->lock_id);
}

// Which queues can hold a resource that starts with `prefix`. A resource's name starts with
// its queue key, and only hierarchical names are longer than their key ("/" + the first
// component). So a matching resource is either in a queue whose key starts with the prefix
// (one range of keys, from the prefix on), or, for a prefix "/c/...", in the root queue "/c".
class PrefixQueues {
 public:
  explicit PrefixQueues(const std::string& prefix) : prefix_(prefix) {
    if (prefix.size() >= 2 && prefix[0] == '/') {
      size_t slash = prefix.find('/', 1);
      if (slash != std::string::npos) root_ = prefix.substr(0, slash);
    }
  }

  // The first queue key that can match.
  const std::string& first() const { return root_.empty() ? prefix_ : root_; }
  // Whether queue `key` can hold a matching resource.
  bool CanMatch(const std::string& key) const {
    return prefix_.empty() || StartsWith(key, prefix_) || (!root_.empty() && key == root_);
  }
  // Whether no queue at or after `key` can match (false for keys before the prefix's range).
  bool Past(const std::string& key) const {
    return !prefix_.empty() && key > prefix_ && !StartsWith(key, prefix_);
  }
  const std::string& prefix() const { return prefix_; }

 private:
  const std::string& prefix_;
  std::string root_;
};

}  // namespace

size_t ListRowBytes(const LockRow& row) {
  return row.resource.size() + row.element.size() + row.session.node_id().size() +
         row.client_name.size() + kListRowOverheadBytes;
}

ListResult LockTable::ListPage(const ListQuery& query) const {
  ListResult out;
  const auto& resources = impl_->resources;
  const size_t max_rows = std::max<size_t>(query.max_rows, 1);
  const PrefixQueues queues(query.prefix);

  auto row_of = [&](const Found& f) {
    const Lock& l = *f.lock;
    LockRow row;
    row.resource = f.resource;
    row.held = f.held;
    row.mode = l.mode;
    row.quantity = l.quantity();
    row.since_unix_s = l.since_unix_s;
    row.lock_id = l.lock_id;
    row.token = l.token;
    row.element = l.element();
    row.session = KeyOf(*l.session);
    auto s = impl_->sessions.find(*l.session);
    if (s != impl_->sessions.end()) {
      row.pid = s->second.pid;
      row.uid = s->second.uid;
      row.client_name = s->second.client_name;
    }
    return row;
  };

  // Where this page starts: the cursor, moved up to the first queue that can match.
  ListCursor at = query.after;
  if (at.queue < queues.first()) at = ListCursor{queues.first(), "", 0};
  auto it = resources.lower_bound(at.queue);
  size_t examined = 0;
  size_t bytes = 0;
  std::vector<Found> found;
  while (it != resources.end()) {
    const std::string& key = it->first;
    if (!queues.CanMatch(key)) {
      if (queues.Past(key)) break;
      it = resources.lower_bound(queues.prefix());  // past the root, to the prefix's range
      continue;
    }
    // Every lock of the queue after the cursor that passes the filters, in listing order.
    const bool resume = key == at.queue;
    const Resource& r = it->second;
    found.clear();
    ++examined;
    for (const std::vector<Lock>* list : {&r.holders, &r.waiters(), &r.parked()}) {
      for (const Lock& l : *list) {
        ++examined;
        std::string name = NameOf(r, l);
        if (resume && std::tie(name, l.lock_id) <= std::tie(at.resource, at.lock_id)) {
          continue;
        }
        if (!StartsWith(name, query.prefix)) continue;
        if (!query.node_id.empty() && l.session->first != query.node_id) continue;
        found.push_back(Found{&l, std::move(name), list == &r.holders});
      }
    }
    const size_t room = std::min(max_rows - out.rows.size(), found.size());
    if (room < found.size())
      std::nth_element(found.begin(), found.begin() + room, found.end(), Before);
    std::sort(found.begin(), found.begin() + room, Before);
    size_t taken = 0;
    for (; taken < room; ++taken) {
      LockRow row = row_of(found[taken]);
      const size_t row_bytes = ListRowBytes(row);
      if (!out.rows.empty() && bytes + row_bytes > query.max_bytes) break;
      bytes += row_bytes;
      out.rows.push_back(std::move(row));
    }
    if (taken < found.size()) {
      // Full inside this queue: resume after the last row taken from it.
      out.more = true;
      if (taken > 0) {
        const Found& last = found[taken - 1];
        out.next = ListCursor{key, last.resource, last.lock->lock_id};
      } else {
        out.next = resume ? at : ListCursor{key, "", 0};
      }
      return out;
    }
    ++it;
    if (out.rows.size() >= max_rows || bytes >= query.max_bytes || examined >= query.max_examined) {
      // Full (or out of work) at a queue boundary: resume at the start of the next queue.
      out.more = it != resources.end() && !queues.Past(it->first);
      if (out.more) out.next = ListCursor{it->first, "", 0};
      return out;
    }
  }
  return out;
}

}  // namespace mesh::core
