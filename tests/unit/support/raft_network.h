// tests/unit/support/raft_network: a tiny deterministic in-memory cluster of core::raft nodes
// for unit tests (in the manner of etcd's raft_test.go `network`). Header-only.
//
// Each node's durable storage is a PersistentState that batches are "persisted" into exactly
// as raft_storage does on a LogStore; messages go through one FIFO queue; links can be cut
// one way or both; time is virtual and shared. After every applied entry the network checks
// state machine safety (every node applies the same entry at an index) and, on every
// leader seen, election safety (one leader per term).
#ifndef LOCKMESH_TESTS_UNIT_SUPPORT_RAFT_NETWORK_H_
#define LOCKMESH_TESTS_UNIT_SUPPORT_RAFT_NETWORK_H_

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/raft/raft.h"

namespace mesh::core::raft::testing {

/// splitmix64: a small, seeded, deterministic Random.
class SeqRandom : public Random {
 public:
  explicit SeqRandom(uint64_t seed) : state_(seed) {}
  uint64_t Next() override {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

inline pb::ClusterConfig MakeConfig(const std::vector<std::string>& voters,
                                    const std::vector<std::string>& learners = {}) {
  pb::ClusterConfig config;
  for (const auto& id : voters) {
    pb::Member* m = config.add_members();
    m->set_id(id);
    m->set_voter(true);
  }
  for (const auto& id : learners) {
    pb::Member* m = config.add_members();
    m->set_id(id);
    m->set_voter(false);
  }
  return config;
}

/// Applies step 1 of `batch` to `state` (what raft_storage does on a LogStore).
inline void PersistBatch(const Batch& batch, PersistentState* state) {
  if (batch.snapshot) {
    state->snapshot = batch.snapshot->meta;
    state->snapshot_data = batch.snapshot->data;
    state->entries.clear();
  }
  if (!batch.entries.empty()) {
    uint64_t first = batch.entries.front().index();
    uint64_t base = state->snapshot.index();
    if (first <= base) ADD_FAILURE() << "persisting entry " << first << " below snapshot";
    size_t keep = first - base - 1;
    if (keep > state->entries.size()) ADD_FAILURE() << "gap in persisted entries at " << first;
    state->entries.resize(std::min(keep, state->entries.size()));
    for (const auto& e : batch.entries) state->entries.push_back(e);
  }
  if (batch.hard_state) state->hard_state = *batch.hard_state;
  if (batch.compacted) {
    const pb::SnapshotMeta& meta = batch.compacted->meta;
    uint64_t drop = meta.index() - state->snapshot.index();
    if (drop > state->entries.size()) drop = state->entries.size();
    state->entries.erase(state->entries.begin(), state->entries.begin() + drop);
    state->snapshot = meta;
    state->snapshot_data = batch.compacted->data;
  }
}

struct TestNode {
  std::string id;
  std::unique_ptr<SeqRandom> random;
  std::unique_ptr<Raft> raft;
  PersistentState stored;             // "durable storage"
  uint64_t applied = 0;               // state machine: index of the last applied entry
  std::vector<std::string> commands;  // data of applied COMMAND entries, in order
  bool up = true;
};

class Network {
 public:
  explicit Network(std::vector<std::string> ids, RaftOptions base = DefaultOptions(),
                   uint64_t seed = 1)
      : base_(base), seed_(seed) {
    for (const auto& id : ids) AddNode(id);
  }

  static RaftOptions DefaultOptions() {
    RaftOptions o;
    o.election_timeout = 1'000'000;
    o.heartbeat_interval = 100'000;
    return o;
  }

  /// Adds a fresh (not bootstrapped) node.
  TestNode& AddNode(const std::string& id) {
    TestNode& n = nodes_[id];
    n.id = id;
    n.random = std::make_unique<SeqRandom>(seed_ * 1000 + nodes_.size());
    Open(&n);
    return n;
  }

  /// Bootstraps every node in `voters` with the same configuration.
  void BootstrapAll(const std::vector<std::string>& voters) {
    for (const auto& id : voters) {
      EXPECT_TRUE(node(id).raft->Bootstrap(now_, MakeConfig(voters)).ok());
      Process(id);
    }
  }

  TestNode& node(const std::string& id) { return nodes_.at(id); }
  Raft& raft(const std::string& id) { return *nodes_.at(id).raft; }
  Time now() const { return now_; }
  std::map<std::string, TestNode>& nodes() { return nodes_; }

  /// Cuts (or restores) the link from -> to.
  void Cut(const std::string& from, const std::string& to) { cut_.insert({from, to}); }
  void Isolate(const std::string& id) {
    for (auto& [other, n] : nodes_) {
      if (other == id) continue;
      Cut(id, other);
      Cut(other, id);
    }
  }
  void Heal() { cut_.clear(); }

  /// Forged messages (from a peer's id) can legitimately break agreement: tests that forge
  /// them turn the safety checks off.
  bool check_safety = true;

  /// If set, runs step 1 of every batch before the in-memory copy in TestNode::stored is
  /// updated (e.g. PersistBatch on a LogStore). Returning false means the persist failed:
  /// the node crashes at once, nothing of the batch is sent, applied or acknowledged.
  std::function<bool(TestNode&, const Batch&)> persist;

  /// A hook that sees every message before delivery; returning false drops it.
  std::function<bool(const pb::RaftMessage&)> filter;

  /// Loses the node's unsynced state: it restarts from what it persisted.
  void Crash(const std::string& id) {
    TestNode& n = node(id);
    n.up = false;
    n.raft.reset();
  }
  void Restart(const std::string& id) {
    TestNode& n = node(id);
    n.up = true;
    // The state machine restarts from the snapshot; raft re-delivers committed entries.
    n.applied = n.stored.snapshot.index();
    n.commands.clear();
    Open(&n);
    Process(id);
  }

  /// Executes every batch the node has (persist, queue messages, apply, advance).
  void Process(const std::string& id) {
    TestNode& n = node(id);
    if (!n.up) return;
    while (n.raft->HasBatch()) {
      Batch b = n.raft->TakeBatch();
      if (persist && !persist(n, b)) {
        Crash(id);
        return;
      }
      PersistBatch(b, &n.stored);
      for (auto& m : b.messages) queue_.push_back(std::move(m));
      if (b.snapshot) {
        n.applied = b.snapshot->meta.index();
        n.commands.clear();
      }
      for (const auto& e : b.committed) Apply(&n, e);
      n.raft->Advance(b);
      CheckLeader(n);
    }
  }

  /// Delivers queued messages (and whatever they cause) until the network is quiet or
  /// `max_messages` were delivered.
  void Deliver(size_t max_messages = 1'000'000) {
    for (auto& [id, n] : nodes_) Process(id);
    size_t delivered = 0;
    while (!queue_.empty() && delivered < max_messages) {
      pb::RaftMessage m = std::move(queue_.front());
      queue_.pop_front();
      ++delivered;
      auto it = nodes_.find(m.to());
      if (it == nodes_.end() || !it->second.up) continue;
      if (cut_.count({m.from(), m.to()})) continue;
      if (filter && !filter(m)) continue;
      std::string to = m.to();
      it->second.raft->Step(now_, std::move(m));  // the entry-moving overload
      Process(to);
    }
  }

  /// Advances virtual time by `duration` in steps of `step`, ticking every node and
  /// delivering all messages at each step.
  void Run(Time duration, Time step = 10'000) {
    Time end = now_ + duration;
    while (now_ < end) {
      now_ = std::min(end, now_ + step);
      for (auto& [id, n] : nodes_) {
        if (!n.up) continue;
        n.raft->Tick(now_);
        Process(id);
      }
      Deliver();
    }
  }

  /// Runs until `pred` holds (checked at every step) or `limit` passes; returns pred().
  bool RunUntil(const std::function<bool()>& pred, Time limit = 30'000'000, Time step = 10'000) {
    Time end = now_ + limit;
    while (!pred()) {
      if (now_ >= end) return false;
      Run(step, step);
    }
    return true;
  }

  /// The node that is leader of the highest term among running nodes, or "".
  std::string Leader() {
    std::string leader;
    uint64_t term = 0;
    for (auto& [id, n] : nodes_) {
      if (n.up && n.raft->role() == Role::kLeader && n.raft->term() >= term) {
        leader = id;
        term = n.raft->term();
      }
    }
    return leader;
  }

  std::string WaitForLeader() {
    RunUntil([&] { return !Leader().empty(); });
    return Leader();
  }

  /// Proposes at `id` and delivers.
  Status Propose(const std::string& id, const std::string& data) {
    Status s = raft(id).Propose(now_, data);
    Process(id);
    Deliver();
    return s;
  }

  /// The command entries committed anywhere, by index (the reference state machine).
  const std::map<uint64_t, pb::Entry>& committed() const { return committed_; }
  size_t queued() const { return queue_.size(); }
  std::deque<pb::RaftMessage>& queue() { return queue_; }

 private:
  void Open(TestNode* n) {
    RaftOptions o = base_;
    o.id = n->id;
    Status s = Raft::Open(o, n->stored, n->random.get(), now_, &n->raft);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void Apply(TestNode* n, const pb::Entry& e) {
    if (check_safety) {
      EXPECT_EQ(e.index(), n->applied + 1) << n->id << " applies out of order";
    }
    n->applied = e.index();
    auto [it, inserted] = committed_.emplace(e.index(), e);
    if (!inserted && check_safety) {
      EXPECT_EQ(it->second.term(), e.term())
          << n->id << " applied a different entry at " << e.index();
      EXPECT_EQ(it->second.data(), e.data()) << n->id << " applied different data at " << e.index();
    }
    if (e.type() == pb::ENTRY_COMMAND) n->commands.push_back(e.data());
  }

  void CheckLeader(const TestNode& n) {
    if (n.raft->role() != Role::kLeader) return;
    auto [it, inserted] = leaders_.emplace(n.raft->term(), n.id);
    if (!inserted && check_safety) {
      EXPECT_EQ(it->second, n.id) << "two leaders in term " << n.raft->term();
    }
  }

  RaftOptions base_;
  uint64_t seed_;
  Time now_ = 0;
  std::map<std::string, TestNode> nodes_;
  std::deque<pb::RaftMessage> queue_;
  std::set<std::pair<std::string, std::string>> cut_;
  std::map<uint64_t, pb::Entry> committed_;
  std::map<uint64_t, std::string> leaders_;
};

}  // namespace mesh::core::raft::testing

#endif  // LOCKMESH_TESTS_UNIT_SUPPORT_RAFT_NETWORK_H_
