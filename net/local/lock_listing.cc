// net/local/lock_listing (net/local/lock_listing.h).
#include "net/local/lock_listing.h"

#include <algorithm>
#include <limits>
#include <string>
#include <tuple>
#include <utility>

#include "net/support/frame.h"

namespace mesh::net {
namespace {

// What a whole listing may take in one reply: the frame less room for the envelope
// (request id, the oneof's tag and length).
constexpr size_t kUnpagedBytes = kMaxClientFrameBytes - 1024;
// Locks and queues an unpaged listing may examine (bounds the work of a filtered one).
constexpr size_t kUnpagedExamined = 256 * 1024;

void AddRow(const core::LockRow& r, pb::ListLocksReply* out) {
  pb::LockInfo* l = out->add_locks();
  l->set_resource(r.resource);
  l->set_state(r.held ? "held" : "waiting");
  l->set_mode(r.mode);
  l->set_quantity(r.quantity);
  l->set_lock_id(r.lock_id);
  l->set_token(r.token);
  l->set_element(r.element);
  l->set_node_id(r.session.node_id());
  l->set_client_id(r.session.client_id());
  l->set_pid(r.pid);
  l->set_uid(r.uid);
  l->set_client_name(r.client_name);
  l->set_since_unix_s(r.since_unix_s);
}

}  // namespace

Status AnswerListLocks(const core::LockTable& table, const pb::ListLocksRequest& request,
                       pb::ListLocksReply* out) {
  out->Clear();
  if (request.prefix().size() > kMaxListFilterBytes ||
      request.node_id().size() > kMaxListFilterBytes) {
    return Status::InvalidArgument("list filter too long (prefix and node id: at most " +
                                   std::to_string(kMaxListFilterBytes) + " bytes)");
  }
  core::ListQuery query;
  query.prefix = request.prefix();
  query.node_id = request.node_id();
  if (!request.paged()) {
    // A client that does not page: the whole listing if it fits in one frame. Without
    // filters (such clients have none) the work is bounded by what fits; with them, by
    // kUnpagedExamined.
    query.max_rows = std::numeric_limits<size_t>::max();
    query.max_bytes = kUnpagedBytes;
    query.max_examined = kUnpagedExamined;
    core::ListResult all = table.ListPage(query);
    if (all.more) {
      return Status::InvalidArgument(
          "too many locks to list in one reply (this client does not page the listing; "
          "lockmesh locks and mesh::Client::ListLocks do)");
    }
    std::stable_sort(all.rows.begin(), all.rows.end(),
                     [](const core::LockRow& a, const core::LockRow& b) {
                       if (a.held != b.held) return a.held;
                       return std::tie(a.resource, a.lock_id) < std::tie(b.resource, b.lock_id);
                     });
    for (const core::LockRow& r : all.rows) AddRow(r, out);
    return Status::OK();
  }
  query.after.queue = request.after().queue();
  query.after.resource = request.after().resource();
  query.after.lock_id = request.after().lock_id();
  const uint32_t asked = request.max_rows();
  query.max_rows = asked == 0 ? kMaxListPageRows : std::min(asked, kMaxListPageRows);
  query.max_bytes = kListPageBytes;
  core::ListResult page = table.ListPage(query);
  for (const core::LockRow& r : page.rows) AddRow(r, out);
  out->set_more(page.more);
  if (page.more) {
    out->mutable_next()->set_queue(std::move(page.next.queue));
    out->mutable_next()->set_resource(std::move(page.next.resource));
    out->mutable_next()->set_lock_id(page.next.lock_id);
  }
  return Status::OK();
}

}  // namespace mesh::net
