// LockIdIndex (core/lock_id_index.h): a session's locks by id, as a sorted vector with
// erased entries swept lazily. Checked against std::map over random operations, and for
// the bound on its heap that motivates it.
#include "core/lock_id_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <vector>

namespace mesh::core {
namespace {

int values[4];

TEST(LockIdIndexTest, AddFindEraseInLogOrder) {
  LockIdIndex<int> index;
  EXPECT_TRUE(index.empty());
  EXPECT_EQ(index.Find(7), nullptr);
  index.Add(3, &values[0]);
  index.Add(7, &values[1]);
  index.Add(9, &values[2]);
  EXPECT_EQ(index.size(), 3u);
  EXPECT_EQ(index.Find(7), &values[1]);
  EXPECT_EQ(index.Find(8), nullptr);
  EXPECT_TRUE(index.Erase(7));
  EXPECT_FALSE(index.Erase(7));  // once
  EXPECT_FALSE(index.Erase(8));  // never there
  EXPECT_EQ(index.Find(7), nullptr);
  EXPECT_EQ(index.Ids(), (std::vector<uint64_t>{3, 9}));
  index.Add(7, &values[3]);  // an erased id not yet swept comes back
  EXPECT_EQ(index.Find(7), &values[3]);
  EXPECT_EQ(index.Ids(), (std::vector<uint64_t>{3, 7, 9}));
}

TEST(LockIdIndexTest, BulkAddSortsAndFindsDuplicates) {
  LockIdIndex<int> index;
  index.BulkAdd(9, &values[0]);
  index.BulkAdd(2, &values[1]);
  index.BulkAdd(5, &values[2]);
  EXPECT_TRUE(index.SortAfterBulkAdd());
  EXPECT_EQ(index.Ids(), (std::vector<uint64_t>{2, 5, 9}));
  EXPECT_EQ(index.Find(2), &values[1]);

  LockIdIndex<int> twice;
  twice.BulkAdd(4, &values[0]);
  twice.BulkAdd(4, &values[1]);
  EXPECT_FALSE(twice.SortAfterBulkAdd());
  EXPECT_EQ(twice.size(), 1u);
}

// Random adds (mostly ascending, as a log adds them; sometimes not), finds and erases give
// the answers of a std::map, and the heap stays within four entries per live id.
TEST(LockIdIndexTest, BehavesAsAMapAndStaysSmall) {
  std::mt19937_64 rng(42);
  LockIdIndex<int> index;
  std::map<uint64_t, int*> model;
  uint64_t next = 1;
  for (int step = 0; step < 200000; ++step) {
    const int op = static_cast<int>(rng() % 10);
    if (op < 5) {
      uint64_t id = rng() % 20 == 0 && next > 10 ? rng() % next : next++;
      if (model.count(id) != 0) continue;
      int* v = &values[rng() % 4];
      index.Add(id, v);
      model[id] = v;
    } else if (op < 8) {
      uint64_t id = next > 1 ? rng() % next : 0;
      bool had = model.erase(id) != 0;
      ASSERT_EQ(index.Erase(id), had) << "step " << step << " id " << id;
    } else {
      uint64_t id = next > 1 ? rng() % next : 0;
      auto it = model.find(id);
      ASSERT_EQ(index.Find(id), it == model.end() ? nullptr : it->second) << "step " << step;
    }
    ASSERT_EQ(index.size(), model.size());
    if (model.size() > 64) {
      ASSERT_LE(index.HeapBytes(), 4 * 16 * model.size()) << "step " << step;
    }
  }
  std::vector<uint64_t> ids;
  for (const auto& [id, v] : model) ids.push_back(id);
  EXPECT_EQ(index.Ids(), ids);
  // A session releasing nearly all it holds, in random order: erased entries are swept.
  std::shuffle(ids.begin(), ids.end(), rng);
  for (size_t k = 0; k + 100 < ids.size(); ++k) {
    ASSERT_TRUE(index.Erase(ids[k]));
    model.erase(ids[k]);
    ASSERT_LE(index.HeapBytes(), 4 * 16 * (model.size() + 1)) << "after " << k << " erases";
  }
  for (const auto& [id, v] : model) ASSERT_EQ(index.Find(id), v);
  ids.clear();
  for (const auto& [id, v] : model) ids.push_back(id);
  EXPECT_EQ(index.Ids(), ids);
  for (uint64_t id : ids) index.Erase(id);
  EXPECT_EQ(index.HeapBytes(), 0u);  // a session that released everything keeps nothing
}

}  // namespace
}  // namespace mesh::core
