// Committed entries per second through an in-memory 3-node core::raft cluster, without I/O:
// the cost of the consensus state machine itself — proposing,
// batching, APPEND/APPEND_RESPONSE handling, commit counting and handing out committed
// entries — with the persist step a no-op and messages passed as objects.
//
// Each round: the leader gets `batch` proposals of 64 bytes (the size of a typical encoded
// lock command), then every node steps the messages addressed to it and executes all its
// batches (in the driver's order: persist = nothing, send = enqueue, apply = count,
// Advance). Proposals keep flowing while earlier ones are in flight (pipelining). The
// figure counts entries the leader handed out as committed.
//
// Run: ./tests/bench/raft_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "core/raft/raft.h"

namespace mesh::core::raft {
namespace {

class SplitMix : public Random {
 public:
  explicit SplitMix(uint64_t seed) : state_(seed) {}
  uint64_t Next() override {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

class Cluster {
 public:
  explicit Cluster(int size) {
    pb::ClusterConfig config;
    for (int i = 0; i < size; ++i) {
      pb::Member* m = config.add_members();
      m->set_id("n" + std::to_string(i + 1));
      m->set_voter(true);
    }
    inbox_.resize(size);
    for (int i = 0; i < size; ++i) {
      random_.push_back(std::make_unique<SplitMix>(i + 1));
      RaftOptions o;
      o.id = "n" + std::to_string(i + 1);
      std::unique_ptr<Raft> raft;
      if (!Raft::Open(o, PersistentState{}, random_.back().get(), 0, &raft).ok() ||
          !raft->Bootstrap(0, config).ok()) {
        abort();
      }
      nodes_.push_back(std::move(raft));
    }
    // Elect n1: its timer fires first.
    now_ = 10'000'000;
    nodes_[0]->Tick(now_);
    for (int i = 0; i < 10 && nodes_[0]->role() != Role::kLeader; ++i) Round();
    if (nodes_[0]->role() != Role::kLeader) abort();
    for (int i = 0; i < 10; ++i) Round();
    committed_ = 0;
  }

  Raft& leader() { return *nodes_[0]; }

  // Keeps memory flat over millions of entries, as a real node would.
  void CompactAll() {
    for (auto& r : nodes_) {
      if (r->applied_index() > r->snapshot_meta().index() + 10'000) {
        (void)r->Compact(r->applied_index(), "");
      }
    }
  }
  uint64_t committed() const { return committed_; }

  // Every node steps its inbox and executes its batches.
  void Round() {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      Raft& r = *nodes_[i];
      std::vector<pb::RaftMessage> in = std::move(inbox_[i]);
      inbox_[i].clear();
      for (pb::RaftMessage& m : in) r.Step(now_, std::move(m));
      while (r.HasBatch()) {
        Batch b = r.TakeBatch();
        for (pb::RaftMessage& m : b.messages) {
          inbox_[m.to()[1] - '1'].push_back(std::move(m));
        }
        if (i == 0) committed_ += b.committed.size();
        r.Advance(b);
      }
    }
  }

 private:
  std::vector<std::unique_ptr<SplitMix>> random_;
  std::vector<std::unique_ptr<Raft>> nodes_;
  std::vector<std::vector<pb::RaftMessage>> inbox_;
  Time now_ = 0;
  uint64_t committed_ = 0;
};

void BM_CommittedEntries3Nodes(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  Cluster cluster(3);
  const std::string payload(64, 'x');
  uint64_t rounds = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) {
      if (!cluster.leader().Propose(0, payload).ok()) abort();
    }
    cluster.Round();
    if (++rounds % 64 == 0) cluster.CompactAll();
  }
  state.SetItemsProcessed(static_cast<int64_t>(cluster.committed()));
  state.counters["committed_per_s"] =
      benchmark::Counter(static_cast<double>(cluster.committed()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CommittedEntries3Nodes)
    ->Arg(1)
    ->Arg(16)
    ->Arg(64)
    ->Arg(256)
    ->Arg(1024)
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace mesh::core::raft

BENCHMARK_MAIN();
