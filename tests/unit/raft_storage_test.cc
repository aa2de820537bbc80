// Tests of core/raft/raft_storage: Raft's batches on a core::LogStore, and crash tests on
// core::FaultFileSystem (unsynced writes dropped, the last write torn or garbled): no
// acknowledged entry or hard state is lost, no corrupt record is accepted, and every restart
// yields a PersistentState that Raft opens.
#include "core/raft/raft_storage.h"

#include <gtest/gtest.h>

#include "core/storage/fault_file_system.h"
#include "support/raft_network.h"

namespace mesh::core::raft {
namespace {

using testing::Network;
using testing::SeqRandom;
using testing::TestNode;

const std::vector<std::string> kThree = {"n1", "n2", "n3"};

TEST(RaftStorageTest, EntryEncodingRoundTripsAndRejectsGarbage) {
  pb::Entry e;
  e.set_index(7);
  e.set_term(3);
  e.set_type(pb::ENTRY_CONFIG);
  e.set_data(std::string("a\0b", 3));
  LogEntry stored = EncodeEntry(e);
  EXPECT_EQ(stored.index, 7u);
  EXPECT_EQ(stored.term, 3u);
  pb::Entry back;
  ASSERT_TRUE(DecodeEntry(stored, &back).ok());
  EXPECT_EQ(back.SerializeAsString(), e.SerializeAsString());
  EXPECT_TRUE(DecodeEntry(LogEntry{1, 1, ""}, &back).IsCorruption());
  EXPECT_TRUE(DecodeEntry(LogEntry{1, 1, "\x09x"}, &back).IsCorruption());
}

TEST(RaftStorageTest, BatchesPersistAndLoadBack) {
  FaultFileSystem fs(1);
  std::unique_ptr<LogStore> store;
  ASSERT_TRUE(LogStore::Open(&fs, "/d", {}, &store).ok());
  SeqRandom random(1);
  RaftOptions o;
  o.id = "n1";
  std::unique_ptr<Raft> raft;
  PersistentState empty;
  ASSERT_TRUE(Raft::Open(o, empty, &random, 0, &raft).ok());
  ASSERT_TRUE(raft->Bootstrap(0, testing::MakeConfig({"n1"})).ok());
  auto drain = [&] {
    while (raft->HasBatch()) {
      Batch b = raft->TakeBatch();
      ASSERT_TRUE(PersistBatch(store.get(), b).ok());
      raft->Advance(b);
    }
  };
  drain();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(raft->Propose(1, "c" + std::to_string(i)).ok());
  drain();
  ASSERT_TRUE(raft->Compact(30, "state@30").ok());
  for (int i = 50; i < 60; ++i) ASSERT_TRUE(raft->Propose(2, "c" + std::to_string(i)).ok());
  drain();
  uint64_t term = raft->term(), last = raft->last_index(), commit = raft->commit_index();
  store.reset();
  fs.Crash();
  ASSERT_TRUE(LogStore::Open(&fs, "/d", {}, &store).ok());
  PersistentState state;
  ASSERT_TRUE(LoadPersistentState(*store, &state).ok());
  EXPECT_EQ(state.hard_state.term, term);
  EXPECT_EQ(state.hard_state.vote, "n1");
  EXPECT_EQ(state.hard_state.commit, commit);
  EXPECT_EQ(state.snapshot.index(), 30u);
  EXPECT_EQ(state.snapshot_data, "state@30");
  EXPECT_EQ(state.snapshot.config().members_size(), 1);
  ASSERT_EQ(state.entries.size(), last - 30);
  EXPECT_EQ(state.entries.back().data(), "c59");
  std::unique_ptr<Raft> reopened;
  ASSERT_TRUE(Raft::Open(o, state, &random, 10, &reopened).ok());
  EXPECT_EQ(reopened->last_index(), last + 1);  // it re-elected itself: a new NOOP
  EXPECT_EQ(reopened->role(), Role::kLeader);
}

TEST(RaftStorageTest, CorruptStoredSnapshotIsRefused) {
  FaultFileSystem fs(1);
  std::unique_ptr<LogStore> store;
  ASSERT_TRUE(LogStore::Open(&fs, "/d", {}, &store).ok());
  ASSERT_TRUE(store->Append({LogEntry{1, 1, std::string("\0x", 2)}}).ok());
  ASSERT_TRUE(store->SaveSnapshot(SnapshotData{1, 1, "not a StoredSnapshot \xff\xff"}).ok());
  PersistentState state;
  EXPECT_TRUE(LoadPersistentState(*store, &state).IsCorruption());
}

// What a reopened store may hold after a crash: everything acknowledged (`acked`), plus
// possibly a part of the batch whose persist failed (`failed`), and nothing else.
void ExpectRecovered(const std::string& who, const PersistentState& acked, const Batch* failed,
                     const PersistentState& loaded) {
  SCOPED_TRACE(who);
  // Snapshot: the acknowledged one, or one the failed batch saved (SaveSnapshot syncs).
  if (loaded.snapshot.index() != acked.snapshot.index()) {
    ASSERT_NE(failed, nullptr) << "snapshot " << loaded.snapshot.index() << " from nowhere";
    bool from_batch =
        (failed->snapshot && failed->snapshot->meta.index() == loaded.snapshot.index()) ||
        (failed->compacted && failed->compacted->meta.index() == loaded.snapshot.index());
    EXPECT_TRUE(from_batch);
  } else {
    EXPECT_EQ(loaded.snapshot_data, acked.snapshot_data);
  }
  // Hard state: the acknowledged one or the failed batch's.
  bool hs_acked = loaded.hard_state.term == acked.hard_state.term &&
                  loaded.hard_state.vote == acked.hard_state.vote &&
                  loaded.hard_state.commit == acked.hard_state.commit;
  bool hs_failed = failed != nullptr && failed->hard_state &&
                   loaded.hard_state.term == failed->hard_state->term &&
                   loaded.hard_state.vote == failed->hard_state->vote &&
                   loaded.hard_state.commit == failed->hard_state->commit;
  EXPECT_TRUE(hs_acked || hs_failed)
      << "term " << loaded.hard_state.term << " vote '" << loaded.hard_state.vote << "'";
  // Entries: every acknowledged one not replaced by the failed batch is there, and every
  // entry is one that was written.
  uint64_t replaced_from = UINT64_MAX;
  if (failed != nullptr && !failed->entries.empty()) {
    replaced_from = failed->entries.front().index();
  }
  if (failed != nullptr && failed->snapshot) replaced_from = 0;
  auto acked_at = [&](uint64_t index) -> const pb::Entry* {
    uint64_t base = acked.snapshot.index();
    if (index <= base || index - base > acked.entries.size()) return nullptr;
    return &acked.entries[index - base - 1];
  };
  auto failed_at = [&](uint64_t index) -> const pb::Entry* {
    if (failed == nullptr || failed->entries.empty()) return nullptr;
    uint64_t first = failed->entries.front().index();
    if (index < first || index - first >= failed->entries.size()) return nullptr;
    return &failed->entries[index - first];
  };
  for (const pb::Entry& e : loaded.entries) {
    const pb::Entry* a = acked_at(e.index());
    const pb::Entry* f = failed_at(e.index());
    bool matches_acked = a != nullptr && a->SerializeAsString() == e.SerializeAsString();
    bool matches_failed = f != nullptr && f->SerializeAsString() == e.SerializeAsString();
    EXPECT_TRUE(matches_acked || matches_failed) << "entry " << e.index() << " was never written";
  }
  uint64_t loaded_last = loaded.snapshot.index() + loaded.entries.size();
  for (const pb::Entry& a : acked.entries) {
    if (a.index() <= loaded.snapshot.index() || a.index() >= replaced_from) continue;
    EXPECT_LE(a.index(), loaded_last) << "acknowledged entry " << a.index() << " lost";
  }
}

// A 3-node cluster whose nodes persist on LogStores over FaultFileSystems, crashed again and
// again: right after a batch, or in the middle of one (a failed sync leaves writes unsynced),
// with unsynced writes dropped, the last one torn, or garbled. Each restart is checked
// against what was acknowledged, and the cluster's safety checks run throughout.
TEST(RaftStorageTest, CrashesLoseNothingAcknowledgedAndAcceptNothingCorrupt) {
  const FaultFileSystem::TearMode kModes[] = {FaultFileSystem::TearMode::kDropUnsynced,
                                              FaultFileSystem::TearMode::kTearLastWrite,
                                              FaultFileSystem::TearMode::kGarbleLastWrite};
  int crashes = 0, mid_batch = 0;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    SeqRandom rng(seed);
    Network net(kThree, Network::DefaultOptions(), seed);
    std::map<std::string, std::unique_ptr<FaultFileSystem>> fs;
    std::map<std::string, std::unique_ptr<LogStore>> stores;
    std::map<std::string, std::optional<Batch>> failed;
    LogStoreOptions store_options;
    store_options.segment_bytes = 16 << 10;  // small segments: exercise rollover and deletion
    for (const auto& id : kThree) {
      fs[id] = std::make_unique<FaultFileSystem>(seed * 7 + id.back());
      ASSERT_TRUE(LogStore::Open(fs[id].get(), "/data", store_options, &stores[id]).ok());
    }
    net.persist = [&](TestNode& n, const Batch& b) {
      Status s = PersistBatch(stores[n.id].get(), b);
      if (!s.ok()) failed[n.id] = b;
      return s.ok();
    };
    auto recover = [&](const std::string& id) {
      stores[id].reset();
      fs[id]->Crash(kModes[rng.Next() % 3]);
      fs[id]->FailNextSyncs(0);  // a pending injected failure is spent by the crash
      ++crashes;
      Status s = LogStore::Open(fs[id].get(), "/data", store_options, &stores[id]);
      ASSERT_TRUE(s.ok()) << s.ToString();
      PersistentState loaded;
      s = LoadPersistentState(*stores[id], &loaded);
      ASSERT_TRUE(s.ok()) << s.ToString();
      ExpectRecovered(id, net.node(id).stored, failed[id] ? &*failed[id] : nullptr, loaded);
      failed[id].reset();
      net.node(id).stored = loaded;  // what is really durable
      net.Restart(id);               // asserts that Raft opens it
    };
    net.BootstrapAll(kThree);
    for (int step = 0; step < 60; ++step) {
      std::string leader = net.Leader();
      if (!leader.empty()) {
        int n = 1 + rng.Next() % 20;
        for (int i = 0; i < n; ++i) {
          (void)net.raft(leader).Propose(net.now(),
                                         std::string(1 + rng.Next() % 300, 'a' + i % 26));
        }
        net.Process(leader);
      }
      net.Run(50'000 + rng.Next() % 200'000);
      std::string victim = kThree[rng.Next() % 3];
      TestNode& v = net.node(victim);
      switch (rng.Next() % 6) {
        case 0:  // crash between batches
          if (v.up) {
            net.Crash(victim);
            ASSERT_NO_FATAL_FAILURE(recover(victim));
          }
          break;
        case 1:  // the next sync fails: the batch is never acknowledged, the node crashes
          if (v.up) fs[victim]->FailNextSyncs(1, rng.Next() % 3);
          break;
        case 2:  // compact what the node applied
          if (v.up && v.raft->applied_index() > v.raft->snapshot_meta().index()) {
            (void)v.raft->Compact(v.raft->applied_index(),
                                  "state@" + std::to_string(v.raft->applied_index()));
            net.Process(victim);
          }
          break;
        default:
          break;
      }
      for (const auto& id : kThree) {
        if (!net.node(id).up) {
          ++mid_batch;
          ASSERT_NO_FATAL_FAILURE(recover(id));
        }
      }
    }
    for (const auto& id : kThree) {
      fs[id]->FailNextSyncs(0);
      if (!net.node(id).up) {
        ASSERT_NO_FATAL_FAILURE(recover(id));
      }
    }
    net.Run(3'000'000);
    std::string leader = net.WaitForLeader();
    ASSERT_FALSE(leader.empty());
    ASSERT_TRUE(net.Propose(leader, "final").ok());
    net.Run(1'000'000);
    for (const auto& id : kThree) {
      ASSERT_TRUE(net.node(id).up);
      EXPECT_EQ(net.raft(id).commit_index(), net.raft(leader).commit_index()) << id;
    }
  }
  EXPECT_GT(crashes, 100);
  EXPECT_GT(mid_batch, 20);
}

}  // namespace
}  // namespace mesh::core::raft
