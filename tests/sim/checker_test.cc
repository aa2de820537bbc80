// The simulator checker's durability rules, on real LogStores over FaultFileSystems: an
// entry applied for the first time must be durable (synced, as each node's file system
// knows it) on a quorum of the applying node's voters, and a recovered log must hold every
// committed entry its disk held durably before the crash. The random schedules rely on
// these rules to catch an acknowledgement before the fsync and a leader counting its own
// unsynced copy (docs/simulation.md, mutation testing).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/raft/raft_storage.h"
#include "core/storage/fault_file_system.h"
#include "core/storage/log_store.h"
#include "sim/support/sim_checker.h"

namespace mesh::sim {
namespace {

struct Disk {
  explicit Disk(uint64_t seed) : fs(seed) { Reopen(); }
  void Reopen() {
    store.reset();
    ASSERT_TRUE(core::LogStore::Open(&fs, "/data", core::LogStoreOptions(), &store).ok());
  }
  void Append(const pb::Entry& e) { ASSERT_TRUE(store->Append({core::raft::EncodeEntry(e)}).ok()); }
  core::FaultFileSystem fs;
  std::unique_ptr<core::LogStore> store;
};

pb::Entry Noop(uint64_t index, uint64_t term) {
  pb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_type(pb::ENTRY_NOOP);
  return e;
}

pb::ClusterConfig Voters(const std::vector<std::string>& ids) {
  pb::ClusterConfig config;
  for (const std::string& id : ids) {
    pb::Member* m = config.add_members();
    m->set_id(id);
    m->set_voter(true);
  }
  return config;
}

class DurabilityRules : public ::testing::Test {
 protected:
  DurabilityRules() {
    for (int i = 0; i < 3; ++i) disks_.push_back(std::make_unique<Disk>(i + 1));
  }
  // Entry 1 appended and synced on every node, then applied: durable everywhere.
  void CommitFirstEverywhere() {
    for (int i = 0; i < 3; ++i) {
      disks_[i]->Append(Noop(1, 1));
      ASSERT_TRUE(disks_[i]->store->Sync().ok());
      checker_.OnDurable(ids_[i], *disks_[i]->store);
    }
    checker_.OnApplied("n1", Noop(1, 1), config_, nullptr, nullptr);
    ASSERT_FALSE(checker_.failed()) << checker_.violation();
  }
  // Entry 2 synced on n1 and n3, then applied by n1: durable on two of three.
  void CommitSecondOnAQuorum() {
    for (int i : {0, 2}) {
      disks_[i]->Append(Noop(2, 1));
      ASSERT_TRUE(disks_[i]->store->Sync().ok());
      checker_.OnDurable(ids_[i], *disks_[i]->store);
    }
    checker_.OnApplied("n1", Noop(2, 1), config_, nullptr, nullptr);
  }

  std::vector<std::string> ids_{"n1", "n2", "n3"};
  pb::ClusterConfig config_ = Voters(ids_);
  std::vector<std::unique_ptr<Disk>> disks_;
  Checker checker_;
};

TEST_F(DurabilityRules, AnEntryDurableOnAQuorumMayBeApplied) {
  CommitFirstEverywhere();
  CommitSecondOnAQuorum();
  EXPECT_FALSE(checker_.failed()) << checker_.violation();
}

// The leader's own copy is appended but not synced (the pool's sync still in flight) when
// one follower's durable acknowledgement arrives: counting its own copy would make a
// quorum, and the checker sees only one durable copy of three.
TEST_F(DurabilityRules, AnEntryOnlyOneVoterSyncedMustNotBeApplied) {
  CommitFirstEverywhere();
  disks_[0]->Append(Noop(2, 1));  // the leader's copy, not synced
  disks_[1]->Append(Noop(2, 1));
  ASSERT_TRUE(disks_[1]->store->Sync().ok());
  checker_.OnDurable("n2", *disks_[1]->store);
  checker_.OnApplied("n1", Noop(2, 1), config_, nullptr, nullptr);
  ASSERT_TRUE(checker_.failed());
  EXPECT_NE(checker_.violation().find("durable quorum: n1 applied entry 2 (term 1) first, "
                                      "durable on 1 of its configuration's 3 voters"),
            std::string::npos)
      << checker_.violation();
}

// Only the first apply of an index is the commit step; a follower applying later need not
// hold its own copy durably yet (it may come in the same batch).
TEST_F(DurabilityRules, LaterAppliesAreNotTheCommitStep) {
  CommitFirstEverywhere();
  CommitSecondOnAQuorum();
  disks_[1]->Append(Noop(2, 1));  // n2's copy, not synced yet
  checker_.OnApplied("n2", Noop(2, 1), config_, nullptr, nullptr);
  EXPECT_FALSE(checker_.failed()) << checker_.violation();
}

TEST_F(DurabilityRules, ARecoveredLogMustHoldWhatItsDiskHeldDurably) {
  CommitFirstEverywhere();
  disks_[1]->fs.Crash();
  disks_[1]->Reopen();
  checker_.OnRecovered("n2", *disks_[1]->store);
  EXPECT_FALSE(checker_.failed()) << checker_.violation();
  // A disk that lost a synced entry (a fresh one in its place) is caught at recovery.
  disks_[1] = std::make_unique<Disk>(9);
  checker_.OnRecovered("n2", *disks_[1]->store);
  ASSERT_TRUE(checker_.failed());
  EXPECT_NE(checker_.violation().find("durability: n2 held committed entry 1"), std::string::npos)
      << checker_.violation();
}

}  // namespace
}  // namespace mesh::sim
