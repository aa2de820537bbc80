// Unit tests of LockTable::ListPage (core/lock_table.h): the bounded, filtered pages of the
// lock listing that `lockmesh locks` and Client::ListLocks read.
//
// The oracle is LockTable::List(), filtered and ordered here independently (queue key, then
// resource, then lock id): paging through must give exactly that, for every page bound.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/lock_table.h"
#include "core/resource_name.h"
#include "lockmesh.pb.h"

namespace mesh::core {
namespace {

pb::SessionKey Key(const std::string& node, uint64_t client) {
  pb::SessionKey k;
  k.set_node_id(node);
  k.set_client_id(client);
  return k;
}

std::string Describe(const LockRow& r) {
  return r.resource + "#" + std::to_string(r.lock_id) + (r.held ? " held " : " waiting ") +
         r.session.node_id() + "/" + std::to_string(r.session.client_id()) +
         (r.element.empty() ? "" : " el=" + r.element) + " pid" + std::to_string(r.pid) + " " +
         r.client_name;
}

std::vector<std::string> Describe(const std::vector<LockRow>& rows) {
  std::vector<std::string> out;
  for (const LockRow& r : rows) out.push_back(Describe(r));
  return out;
}

class LockTableListTest : public ::testing::Test {
 protected:
  pb::SessionKey Open(const std::string& node, uint64_t client) {
    pb::Command c;
    auto* o = c.mutable_open_session();
    *o->mutable_session() = Key(node, client);
    o->set_pid(100 + static_cast<uint32_t>(client));
    o->set_client_name("client-" + std::to_string(client));
    EXPECT_EQ(table_.Apply(index_++, c).result.code(), pb::GRANTED);
    return Key(node, client);
  }

  // Acquire; returns the lock id (the entry's index).
  uint64_t Acquire(const pb::SessionKey& k, const std::string& resource, pb::LockMode mode = pb::EX,
                   bool no_create = false) {
    pb::Command c;
    auto* q = c.mutable_acquire();
    *q->mutable_session() = k;
    q->set_seq(++seqs_[{k.node_id(), k.client_id()}]);
    q->set_resource(resource);
    q->set_mode(mode);
    q->set_wait(true);
    q->set_no_create(no_create);
    const uint64_t index = index_++;
    const ApplyResult r = table_.Apply(index, c);
    EXPECT_TRUE(r.result.code() == pb::GRANTED || r.result.code() == pb::QUEUED)
        << resource << ": " << r.result.ShortDebugString();
    return index;
  }

  void Release(const pb::SessionKey& k, uint64_t lock_id) {
    pb::Command c;
    auto* r = c.mutable_release();
    *r->mutable_session() = k;
    r->set_seq(++seqs_[{k.node_id(), k.client_id()}]);
    r->set_lock_id(lock_id);
    EXPECT_EQ(table_.Apply(index_++, c).result.code(), pb::RELEASED);
  }

  // Every type of resource, held and waiting rows, parked no_create requests, a hierarchy
  // with several paths under one root and roots that sort around each other, two nodes.
  void Populate() {
    const pb::SessionKey a1 = Open("node-a", 1);
    const pb::SessionKey a2 = Open("node-a", 2);
    const pb::SessionKey b1 = Open("node-b", 1);
    Acquire(a1, "job1");
    Acquire(b1, "job1");  // waiting behind a1
    Acquire(a2, "job10");
    Acquire(b1, "job2", pb::PR);
    Acquire(a1, "job2", pb::PR);
    Acquire(a2, "job2", pb::EX);  // waiting
    Acquire(a1, "/a/z");
    Acquire(b1, "/a/b");
    Acquire(a2, "/a/b/c");  // waits: /a/b is held
    Acquire(b1, "/a/bc");
    Acquire(a1, "/a");  // waits: conflicts with everything under /a
    Acquire(a2, "/ab/x");
    Acquire(b1, "/a-b");
    Acquire(a1, "/b/q");
    Acquire(a2, "slots[3]");
    Acquire(b1, "slots[3]");
    Acquire(a1, "red.green.blue");
    Acquire(b1, "red.green.blue");
    Acquire(a2, "_s_seq[2]");
    Acquire(b1, "nothere", pb::EX, /*no_create=*/true);  // parked until someone creates it
    Acquire(a1, "zeta");
  }

  // The oracle: List(), filtered, in listing order.
  std::vector<LockRow> Expected(const std::string& prefix, const std::string& node) const {
    std::vector<std::tuple<std::string, std::string, uint64_t, LockRow>> keyed;
    for (const LockRow& r : table_.List()) {
      if (r.resource.compare(0, prefix.size(), prefix) != 0) continue;
      if (!node.empty() && r.session.node_id() != node) continue;
      ResourceName rn;
      EXPECT_TRUE(ParseResourceName(r.resource, &rn).ok()) << r.resource;
      keyed.emplace_back(rn.queue_key, r.resource, r.lock_id, r);
    }
    std::sort(keyed.begin(), keyed.end(), [](const auto& x, const auto& y) {
      return std::tie(std::get<0>(x), std::get<1>(x), std::get<2>(x)) <
             std::tie(std::get<0>(y), std::get<1>(y), std::get<2>(y));
    });
    std::vector<LockRow> rows;
    for (auto& k : keyed) rows.push_back(std::get<3>(k));
    return rows;
  }

  // Pages through with `query` (its cursor is moved along); fails on a page over its bounds
  // or a listing that does not end within `max_pages`.
  std::vector<LockRow> PageThrough(ListQuery query, size_t* pages = nullptr,
                                   size_t max_pages = 10000) {
    std::vector<LockRow> rows;
    size_t n = 0;
    for (;;) {
      ListResult page = table_.ListPage(query);
      ++n;
      EXPECT_LE(page.rows.size(), std::max<size_t>(query.max_rows, 1));
      size_t bytes = 0;
      for (const LockRow& r : page.rows) bytes += ListRowBytes(r);
      if (page.rows.size() > 1) {
        EXPECT_LE(bytes, query.max_bytes);
      }
      rows.insert(rows.end(), page.rows.begin(), page.rows.end());
      if (!page.more) break;
      if (n >= max_pages) {
        ADD_FAILURE() << "listing did not end after " << n << " pages";
        break;
      }
      query.after = page.next;
    }
    if (pages) *pages = n;
    return rows;
  }

  LockTable table_;
  uint64_t index_ = 1;
  std::map<std::pair<std::string, uint64_t>, uint64_t> seqs_;
};

TEST_F(LockTableListTest, OnePageListsEverythingInQueueThenResourceThenIdOrder) {
  Populate();
  ListResult page = table_.ListPage(ListQuery{});
  EXPECT_FALSE(page.more);
  EXPECT_EQ(Describe(page.rows), Describe(Expected("", "")));
  EXPECT_EQ(page.rows.size(), table_.List().size());
  // The hierarchy under /a comes together, paths in order, before the queues /a-b and /ab.
  std::vector<std::string> names;
  for (const LockRow& r : page.rows) names.push_back(r.resource);
  const std::vector<std::string> expected_prefix = {"/a",   "/a/b", "/a/b/c", "/a/bc",
                                                    "/a/z", "/a-b", "/ab/x",  "/b/q"};
  ASSERT_GE(names.size(), expected_prefix.size());
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + expected_prefix.size()),
            expected_prefix);
}

TEST_F(LockTableListTest, EveryPageBoundGivesTheSameListing) {
  Populate();
  const std::vector<std::string> all = Describe(Expected("", ""));
  for (size_t max_rows = 1; max_rows <= all.size() + 1; ++max_rows) {
    ListQuery q;
    q.max_rows = max_rows;
    size_t pages = 0;
    EXPECT_EQ(Describe(PageThrough(q, &pages)), all) << "max_rows " << max_rows;
    EXPECT_GE(pages, (all.size() + max_rows - 1) / max_rows);
  }
  for (size_t max_bytes : {1, 120, 200, 300, 1000}) {
    ListQuery q;
    q.max_bytes = max_bytes;
    EXPECT_EQ(Describe(PageThrough(q)), all) << "max_bytes " << max_bytes;
  }
  for (size_t max_examined : {1, 2, 3, 5}) {
    ListQuery q;
    q.max_examined = max_examined;
    q.max_rows = 2;
    EXPECT_EQ(Describe(PageThrough(q)), all) << "max_examined " << max_examined;
  }
}

TEST_F(LockTableListTest, PrefixAndNodeFiltersMatchTheOracle) {
  Populate();
  // Every prefix of every listed name, and a few that match nothing.
  std::set<std::string> prefixes = {"", "/", "/a/", "/a/b/", "/c", "q", "~", "job3", "/a/b/c/d"};
  for (const LockRow& r : table_.List()) {
    for (size_t n = 1; n <= r.resource.size(); ++n) prefixes.insert(r.resource.substr(0, n));
  }
  for (const std::string& prefix : prefixes) {
    for (const std::string node : {"", "node-a", "node-b", "node-c"}) {
      const std::vector<std::string> expected = Describe(Expected(prefix, node));
      for (size_t max_rows : {1, 2, 1000}) {
        ListQuery q;
        q.prefix = prefix;
        q.node_id = node;
        q.max_rows = max_rows;
        EXPECT_EQ(Describe(PageThrough(q)), expected)
            << "prefix '" << prefix << "' node '" << node << "' max_rows " << max_rows;
      }
    }
  }
  ListQuery q;
  q.prefix = "/a/b";
  std::vector<std::string> names;
  for (const LockRow& r : PageThrough(q)) names.push_back(r.resource);
  EXPECT_EQ(names, (std::vector<std::string>{"/a/b", "/a/b/c", "/a/bc"}));
}

TEST_F(LockTableListTest, APageStopsAtItsBoundsAndSaysWhereToGoOn) {
  Populate();
  ListQuery q;
  q.max_rows = 3;
  ListResult first = table_.ListPage(q);
  ASSERT_EQ(first.rows.size(), 3u);
  EXPECT_TRUE(first.more);
  // The cursor is the last row returned when the page ends inside a queue (/a holds 5).
  EXPECT_EQ(first.next.queue, "/a");
  EXPECT_EQ(first.next.resource, first.rows.back().resource);
  EXPECT_EQ(first.next.lock_id, first.rows.back().lock_id);

  // A row larger than the byte budget still comes, alone.
  ListQuery tiny;
  tiny.max_bytes = 1;
  ListResult one = table_.ListPage(tiny);
  EXPECT_EQ(one.rows.size(), 1u);
  EXPECT_TRUE(one.more);

  // A filter that matches nothing ends pages early when their work runs out.
  ListQuery none;
  none.node_id = "node-c";
  none.max_examined = 4;
  ListResult empty = table_.ListPage(none);
  EXPECT_TRUE(empty.rows.empty());
  EXPECT_TRUE(empty.more);
  size_t pages = 0;
  EXPECT_TRUE(PageThrough(none, &pages).empty());
  EXPECT_GT(pages, 1u);
  EXPECT_LE(pages, table_.List().size());  // each page examines at least one queue

  // An empty table: one empty page, complete.
  LockTable empty_table;
  ListResult nothing = empty_table.ListPage(ListQuery{});
  EXPECT_TRUE(nothing.rows.empty());
  EXPECT_FALSE(nothing.more);
}

TEST_F(LockTableListTest, ManyLocksInOneQueueAndManyQueuesPageExactly) {
  const pb::SessionKey a = Open("node-a", 1);
  const pb::SessionKey b = Open("node-b", 2);
  // 300 shared holders of one resource (one queue), 300 paths under one root, 300 queues.
  for (int i = 0; i < 300; ++i) Acquire(i % 2 ? a : b, "shared", pb::PR);
  for (int i = 0; i < 300; ++i)
    Acquire(i % 3 ? a : b, "/tree/p" + std::to_string(i % 150) + "/" + std::to_string(i), pb::PR);
  for (int i = 0; i < 300; ++i) Acquire(i % 2 ? a : b, "q" + std::to_string(i));
  for (const std::string prefix : {"", "/tree/p1", "shared", "q1"}) {
    for (const std::string node : {"", "node-b"}) {
      ListQuery q;
      q.prefix = prefix;
      q.node_id = node;
      q.max_rows = 7;
      EXPECT_EQ(Describe(PageThrough(q)), Describe(Expected(prefix, node)))
          << "prefix '" << prefix << "' node '" << node << "'";
    }
  }
}

TEST_F(LockTableListTest, ChangesBetweenPagesNeitherRepeatNorSkipStableLocks) {
  const pb::SessionKey a = Open("node-a", 1);
  std::map<std::string, uint64_t> ids;
  for (int i = 0; i < 40; ++i) {
    const std::string name = "r" + std::to_string(100 + i);
    ids[name] = Acquire(a, name);
  }
  ListQuery q;
  q.max_rows = 5;
  std::vector<std::string> seen;
  int page_no = 0;
  for (;;) {
    ListResult page = table_.ListPage(q);
    for (const LockRow& r : page.rows) seen.push_back(r.resource);
    if (!page.more) break;
    q.after = page.next;
    // Between pages: release one lock already listed and one still ahead, take new ones
    // before and after the cursor.
    if (++page_no == 2) {
      Release(a, ids["r101"]);
      Release(a, ids["r130"]);
      Acquire(a, "r000");  // before the cursor: not listed
      Acquire(a, "r999");  // after it: listed
      Acquire(a, "r125x");
    }
  }
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), seen.size()) << "a lock was listed twice";
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  for (int i = 0; i < 40; ++i) {
    const std::string name = "r" + std::to_string(100 + i);
    if (name == "r130") continue;  // released before its page
    EXPECT_EQ(unique.count(name), 1u) << name;
  }
  EXPECT_EQ(unique.count("r130"), 0u);
  EXPECT_EQ(unique.count("r000"), 0u);
  EXPECT_EQ(unique.count("r999"), 1u);
  EXPECT_EQ(unique.count("r125x"), 1u);
}

TEST_F(LockTableListTest, RowBytesBoundTheWireEncoding) {
  // The largest fields a row can have: longest name, big ids, "waiting", long strings.
  LockRow row;
  row.resource = "/" + std::string(kMaxResourceNameLength - 1, 'x');
  row.held = false;
  row.mode = pb::EX;
  row.quantity = UINT32_MAX;
  row.lock_id = UINT64_MAX;
  row.token = UINT64_MAX;
  row.element = std::string(300, 'e');
  row.session = Key(std::string(255, 'n'), UINT64_MAX);
  row.pid = UINT32_MAX;
  row.uid = UINT32_MAX;
  row.client_name = std::string(20000, 'c');
  pb::ListLocksReply reply;
  pb::LockInfo* l = reply.add_locks();
  l->set_resource(row.resource);
  l->set_state("waiting");
  l->set_mode(row.mode);
  l->set_quantity(row.quantity);
  l->set_lock_id(row.lock_id);
  l->set_token(row.token);
  l->set_element(row.element);
  l->set_node_id(row.session.node_id());
  l->set_client_id(row.session.client_id());
  l->set_pid(row.pid);
  l->set_uid(row.uid);
  l->set_client_name(row.client_name);
  EXPECT_LE(reply.ByteSizeLong(), ListRowBytes(row));
}

}  // namespace
}  // namespace mesh::core
