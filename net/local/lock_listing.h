// net/local/lock_listing: the node's answer to a ListLocksRequest (proto/lockmesh.proto), read
// from the lock table in bounded pages (core::LockTable::ListPage) so that any listing fits
// the client frame limit, however many locks the table holds.
//
// Pure functions over a table the caller owns; used on the node's loop thread, which owns
// the table.
#ifndef LOCKMESH_NET_LOCAL_LOCK_LISTING_H_
#define LOCKMESH_NET_LOCAL_LOCK_LISTING_H_

#include <cstddef>
#include <cstdint>

#include "core/lock_table.h"
#include "lockmesh.pb.h"
#include "mesh/client.h"
#include "mesh/status.h"

namespace mesh::net {

/// Most rows in one page (a request's max_rows of 0 or above this gets this many).
inline constexpr uint32_t kMaxListPageRows = 1000;
/// Bytes of rows in one page (core::ListRowBytes): half the client frame limit, so that a
/// page and its envelope always fit.
inline constexpr size_t kListPageBytes = 32 * 1024;
/// Longest accepted `prefix` and `node_id` filter, in bytes (public: mesh/client.h).
using ::mesh::kMaxListFilterBytes;

/// Fills `out` (cleared first) with the answer to `request` from `table`:
///  - paged: one page after request.after, at most min(max_rows, kMaxListPageRows) rows and
///    kListPageBytes of them, with `more` and `next`;
///  - not paged (a client that does not page): every matching row, held ones first, each
///    part by resource then lock id (the order before paging existed), or InvalidArgument
///    if they would not fit in one client frame.
/// InvalidArgument (with a message for the client) for a filter above kMaxListFilterBytes.
Status AnswerListLocks(const core::LockTable& table, const pb::ListLocksRequest& request,
                       pb::ListLocksReply* out);

}  // namespace mesh::net

#endif  // LOCKMESH_NET_LOCAL_LOCK_LISTING_H_
