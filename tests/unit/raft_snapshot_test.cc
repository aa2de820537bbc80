// Unit tests of core/raft's streamed snapshot transfer: chunks of max_snapshot_chunk_bytes,
// a window of max_snapshot_chunks_inflight, resumption after lost chunks, a follower that
// restarts in the middle, a leader that compacts again in the middle, a leader that reads
// the snapshot back from storage (SnapshotLoader), and hostile chunks and answers. On the in-memory
// network of support/raft_network.h.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <set>

#include "core/raft/raft.h"
#include "support/raft_network.h"

namespace mesh::core::raft {
namespace {

using testing::Network;

const std::vector<std::string> kThree = {"n1", "n2", "n3"};

// Options with small chunks so that a snapshot of a few KB takes many messages.
RaftOptions SmallChunks(uint64_t chunk_bytes, size_t window) {
  RaftOptions o = Network::DefaultOptions();
  o.max_snapshot_chunk_bytes = chunk_bytes;
  o.max_snapshot_chunks_inflight = window;
  return o;
}

// Deterministic snapshot data of `size` bytes that differs at every position mod 251 and
// names `tag`, so a misplaced or duplicated chunk changes it.
std::string SnapshotData(const std::string& tag, size_t size) {
  std::string data = tag + ":";
  for (size_t i = 0; data.size() < size; ++i) data.push_back(static_cast<char>('a' + i % 251));
  data.resize(size);
  return data;
}

// A 3-node cluster whose leader has compacted `data` at its applied index while `lagging`
// was cut off; the lagging node is still cut off on return.
struct LaggingCluster {
  explicit LaggingCluster(RaftOptions options) : net(kThree, options) {
    net.BootstrapAll(kThree);
    leader = net.WaitForLeader();
    lagging = leader == "n3" ? "n2" : "n3";
    net.Isolate(lagging);
    for (int i = 0; i < 20; ++i) EXPECT_TRUE(net.Propose(leader, "c" + std::to_string(i)).ok());
    net.Run(200'000);
  }
  void Compact(const std::string& data) {
    Raft& l = net.raft(leader);
    ASSERT_TRUE(l.Compact(l.applied_index(), data).ok());
    net.Process(leader);
  }
  Network net;
  std::string leader;
  std::string lagging;
};

TEST(RaftSnapshotTest, SnapshotIsStreamedInBoundedChunksAndInstalledWhole) {
  LaggingCluster c(SmallChunks(100, 3));
  const std::string data = SnapshotData("s1", 10'050);  // 101 chunks, the last of 50 bytes
  c.Compact(data);
  std::set<uint64_t> offsets;
  size_t chunks = 0;
  size_t max_chunk = 0;
  c.net.filter = [&](const pb::RaftMessage& m) {
    if (m.type() == pb::SNAPSHOT) {
      ++chunks;
      offsets.insert(m.snapshot_offset());
      max_chunk = std::max(max_chunk, m.snapshot_data().size());
      EXPECT_EQ(m.snapshot_size(), data.size());
    }
    return true;
  };
  c.net.Heal();
  ASSERT_TRUE(c.net.RunUntil(
      [&] { return c.net.raft(c.lagging).commit_index() == c.net.raft(c.leader).commit_index(); }));
  EXPECT_EQ(max_chunk, 100u);
  EXPECT_EQ(offsets.size(), 101u);
  EXPECT_EQ(chunks, 101u);  // nothing lost, nothing sent twice
  EXPECT_EQ(c.net.node(c.lagging).stored.snapshot_data, data);
  EXPECT_EQ(c.net.node(c.lagging).stored.snapshot.index(),
            c.net.raft(c.leader).snapshot_meta().index());
}

TEST(RaftSnapshotTest, AtMostTheWindowIsUnacknowledged) {
  LaggingCluster c(SmallChunks(100, 4));
  const std::string data = SnapshotData("s1", 5'000);
  c.Compact(data);
  // Swallow every answer to a chunk: the leader must stop after the window.
  size_t chunks = 0;
  c.net.filter = [&](const pb::RaftMessage& m) {
    if (m.type() == pb::SNAPSHOT) ++chunks;
    return m.type() != pb::SNAPSHOT_RESPONSE;
  };
  c.net.Heal();
  c.net.Run(500'000);  // less than the stall timer (election timeout)
  EXPECT_EQ(chunks, 4u);
  std::vector<PeerProgress> progress = c.net.raft(c.leader).progress();
  bool found = false;
  for (const PeerProgress& p : progress) {
    if (p.id != c.lagging) continue;
    found = true;
    EXPECT_STREQ(p.state, "snapshot");
    EXPECT_EQ(p.snapshot_size, data.size());
    EXPECT_EQ(p.snapshot_acked, 0u);
  }
  EXPECT_TRUE(found);
  // Answers flow again: the transfer completes (resumed from the acknowledged offset).
  c.net.filter = nullptr;
  ASSERT_TRUE(c.net.RunUntil([&] {
    return c.net.node(c.lagging).stored.snapshot.index() ==
           c.net.raft(c.leader).snapshot_meta().index();
  }));
  EXPECT_EQ(c.net.node(c.lagging).stored.snapshot_data, data);
}

TEST(RaftSnapshotTest, LostChunksAreResentFromWhatTheFollowerHolds) {
  LaggingCluster c(SmallChunks(64, 4));
  const std::string data = SnapshotData("s1", 4'000);
  c.Compact(data);
  int dropped = 0;
  c.net.filter = [&](const pb::RaftMessage& m) {
    // Lose the chunks at 640 and 1280 once each (as a dropped connection would).
    if (m.type() == pb::SNAPSHOT && (m.snapshot_offset() == 640 || m.snapshot_offset() == 1280) &&
        dropped < 2 && (dropped == 0 || m.snapshot_offset() == 1280)) {
      ++dropped;
      return false;
    }
    return true;
  };
  c.net.Heal();
  ASSERT_TRUE(c.net.RunUntil(
      [&] { return c.net.raft(c.lagging).commit_index() == c.net.raft(c.leader).commit_index(); }));
  EXPECT_EQ(dropped, 2);
  EXPECT_EQ(c.net.node(c.lagging).stored.snapshot_data, data);
}

TEST(RaftSnapshotTest, FollowerThatRestartsMidTransferGetsTheWholeSnapshot) {
  LaggingCluster c(SmallChunks(50, 2));
  const std::string data = SnapshotData("s1", 3'000);
  c.Compact(data);
  bool crashed = false;
  c.net.filter = [&](const pb::RaftMessage& m) {
    if (!crashed && m.type() == pb::SNAPSHOT && m.snapshot_offset() == 1'500) {
      crashed = true;
      c.net.Crash(c.lagging);  // its partial copy was only in memory
      return false;
    }
    return true;
  };
  c.net.Heal();
  c.net.Run(100'000);
  ASSERT_TRUE(crashed);
  EXPECT_EQ(c.net.node(c.lagging).stored.snapshot.index(), 0u);
  c.net.Restart(c.lagging);
  ASSERT_TRUE(c.net.RunUntil(
      [&] { return c.net.raft(c.lagging).commit_index() == c.net.raft(c.leader).commit_index(); }));
  EXPECT_EQ(c.net.node(c.lagging).stored.snapshot_data, data);
}

TEST(RaftSnapshotTest, TransferKeepsItsSnapshotWhenTheLeaderCompactsAgain) {
  LaggingCluster c(SmallChunks(100, 2));
  const std::string first = SnapshotData("first", 2'000);
  c.Compact(first);
  Raft& l = c.net.raft(c.leader);
  const uint64_t first_index = l.snapshot_meta().index();
  // The second snapshot is longer, so splicing the two would be visible.
  const std::string second = SnapshotData("second", 3'000);
  bool proposed = false;
  bool compacted_again = false;
  c.net.filter = [&](const pb::RaftMessage& m) {
    if (m.type() != pb::SNAPSHOT) return true;
    if (!proposed && m.snapshot_offset() == 600) {
      // A new entry while the first snapshot is being sent; it commits meanwhile (the
      // third node answers), and the leader compacts again before the transfer ends.
      proposed = true;
      EXPECT_TRUE(l.Propose(c.net.now(), "more").ok());
      c.net.Process(c.leader);
    } else if (proposed && !compacted_again && m.snapshot_offset() >= 1'200 &&
               l.applied_index() > first_index) {
      compacted_again = true;
      EXPECT_TRUE(l.Compact(l.applied_index(), second).ok());
      c.net.Process(c.leader);
    }
    return true;
  };
  // Every snapshot the follower installs, in order.
  std::vector<Snapshot> installed;
  c.net.persist = [&](testing::TestNode& n, const Batch& b) {
    if (n.id == c.lagging && b.snapshot) installed.push_back(*b.snapshot);
    return true;
  };
  c.net.Heal();
  ASSERT_TRUE(c.net.RunUntil(
      [&] { return c.net.raft(c.lagging).commit_index() == c.net.raft(c.leader).commit_index(); }));
  ASSERT_TRUE(compacted_again);
  ASSERT_GT(l.snapshot_meta().index(), first_index);
  // The first transfer finished with the first snapshot, whole, though the leader compacted
  // in the middle; the entries after it were compacted too, so a second transfer followed.
  ASSERT_EQ(installed.size(), 2u);
  EXPECT_EQ(installed[0].meta.index(), first_index);
  EXPECT_EQ(installed[0].data, first);
  EXPECT_EQ(installed[1].meta.index(), l.snapshot_meta().index());
  EXPECT_EQ(installed[1].data, second);
}

// A SnapshotLoader that reads the leader's "durable storage" in the test network, and can
// be made to fail.
class StoredSnapshotLoader : public SnapshotLoader {
 public:
  std::function<const testing::TestNode&()> node;  // whose storage to read
  bool fail = false;
  int loads = 0;

  std::shared_ptr<const Snapshot> Load(const pb::SnapshotMeta& meta) override {
    ++loads;
    if (fail) return nullptr;
    const PersistentState& s = node().stored;
    EXPECT_EQ(s.snapshot.index(), meta.index());
    return std::make_shared<const Snapshot>(Snapshot{s.snapshot, s.snapshot_data});
  }
};

TEST(RaftSnapshotTest, WithALoaderTheDataIsReadBackForATransferNotKept) {
  StoredSnapshotLoader loader;
  RaftOptions options = SmallChunks(100, 4);
  options.snapshot_loader = &loader;
  LaggingCluster c(options);
  loader.node = [&]() -> const testing::TestNode& { return c.net.node(c.leader); };
  const std::string data = SnapshotData("s1", 1'000);
  c.Compact(data);  // persisted; the batch that carried it is gone
  EXPECT_EQ(loader.loads, 0);
  // While the snapshot cannot be read back, nothing is sent and the leader asks again:
  // raft did not keep the data itself.
  loader.fail = true;
  size_t chunks = 0;
  c.net.filter = [&](const pb::RaftMessage& m) {
    if (m.type() == pb::SNAPSHOT) ++chunks;
    return true;
  };
  c.net.Heal();
  c.net.Run(500'000);
  EXPECT_EQ(chunks, 0u);
  EXPECT_GE(loader.loads, 2);
  const int failed_loads = loader.loads;
  loader.fail = false;
  ASSERT_TRUE(c.net.RunUntil(
      [&] { return c.net.raft(c.lagging).commit_index() == c.net.raft(c.leader).commit_index(); }));
  EXPECT_EQ(c.net.node(c.lagging).stored.snapshot_data, data);
  EXPECT_EQ(chunks, 10u);
  EXPECT_EQ(loader.loads, failed_loads + 1);  // one read serves the whole transfer
}

TEST(RaftSnapshotTest, EmptySnapshotDataIsOneEmptyChunk) {
  LaggingCluster c(SmallChunks(100, 2));
  c.Compact("");
  size_t chunks = 0;
  c.net.filter = [&](const pb::RaftMessage& m) {
    if (m.type() == pb::SNAPSHOT) ++chunks;
    return true;
  };
  c.net.Heal();
  ASSERT_TRUE(c.net.RunUntil(
      [&] { return c.net.raft(c.lagging).commit_index() == c.net.raft(c.leader).commit_index(); }));
  EXPECT_EQ(chunks, 1u);
  EXPECT_EQ(c.net.node(c.lagging).stored.snapshot.index(),
            c.net.raft(c.leader).snapshot_meta().index());
}

TEST(RaftSnapshotTest, HostileChunksAndAnswersAreDropped) {
  LaggingCluster c(SmallChunks(100, 2));
  const std::string data = SnapshotData("s1", 1'000);
  c.Compact(data);
  Raft& follower = c.net.raft(c.lagging);
  const uint64_t commit = follower.commit_index();
  pb::RaftMessage chunk;
  chunk.set_type(pb::SNAPSHOT);
  chunk.set_from(c.leader);
  chunk.set_to(c.lagging);
  chunk.set_term(c.net.raft(c.leader).term());
  *chunk.mutable_snapshot_meta() = c.net.raft(c.leader).snapshot_meta();
  // A chunk that ends past the size it declares, and one that starts past it.
  pb::RaftMessage overflow = chunk;
  overflow.set_snapshot_size(10);
  overflow.set_snapshot_data(std::string(11, 'x'));
  follower.Step(c.net.now(), overflow);
  pb::RaftMessage past = chunk;
  past.set_snapshot_size(10);
  past.set_snapshot_offset(UINT64_MAX);
  past.set_snapshot_data("x");
  follower.Step(c.net.now(), past);
  EXPECT_FALSE(follower.HasBatch());  // no answer, nothing installed
  // A chunk that does not start where the (empty) copy ends is answered with offset 0.
  pb::RaftMessage gap = chunk;
  gap.set_snapshot_size(data.size());
  gap.set_snapshot_offset(500);
  gap.set_snapshot_data(data.substr(500, 100));
  follower.Step(c.net.now(), gap);
  Batch b = follower.TakeBatch();
  ASSERT_EQ(b.messages.size(), 1u);
  EXPECT_EQ(b.messages[0].type(), pb::SNAPSHOT_RESPONSE);
  EXPECT_EQ(b.messages[0].snapshot_offset(), 0u);
  EXPECT_EQ(b.snapshot, nullptr);
  follower.Advance(b);
  EXPECT_EQ(follower.commit_index(), commit);
  // The leader ignores answers that claim more than it sent, or about another snapshot.
  Raft& leader = c.net.raft(c.leader);
  c.net.filter = [](const pb::RaftMessage& m) { return m.type() != pb::SNAPSHOT_RESPONSE; };
  c.net.Heal();
  auto state_of_lagging = [&] {
    for (const PeerProgress& p : leader.progress()) {
      if (p.id == c.lagging) return std::string(p.state);
    }
    return std::string();
  };
  ASSERT_TRUE(c.net.RunUntil([&] { return state_of_lagging() == "snapshot"; }, 3'000'000));
  pb::RaftMessage answer;
  answer.set_type(pb::SNAPSHOT_RESPONSE);
  answer.set_from(c.lagging);
  answer.set_to(c.leader);
  answer.set_term(leader.term());
  answer.set_index(leader.snapshot_meta().index());
  answer.set_snapshot_offset(data.size());  // everything, though only two chunks went out
  leader.Step(c.net.now(), answer);
  answer.set_index(leader.snapshot_meta().index() - 1);
  answer.set_snapshot_offset(100);
  leader.Step(c.net.now(), answer);
  for (const PeerProgress& p : leader.progress()) {
    if (p.id == c.lagging) {
      EXPECT_STREQ(p.state, "snapshot");
      EXPECT_EQ(p.snapshot_acked, 0u);
    }
  }
  c.net.filter = nullptr;
  ASSERT_TRUE(c.net.RunUntil(
      [&] { return c.net.raft(c.lagging).commit_index() == c.net.raft(c.leader).commit_index(); }));
  EXPECT_EQ(c.net.node(c.lagging).stored.snapshot_data, data);
}

}  // namespace
}  // namespace mesh::core::raft
