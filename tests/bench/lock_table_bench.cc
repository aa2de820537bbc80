// What a snapshot of a big lock table costs the node's loop: encoding it straight from the
// table (what the node does), or building the snapshot message and encoding that, and (on a
// follower) decoding and restoring it. N locks of 100-byte names, one session. Run:
// ./tests/bench/lock_table_bench
#include <benchmark/benchmark.h>

#include <string>

#include "core/lock_table.h"

namespace {

using mesh::core::LockTable;
namespace pb = mesh::pb;

// A table holding `n` exclusive locks of 100-byte names in one session.
void Fill(LockTable* table, int64_t n) {
  pb::SessionKey key;
  key.set_node_id("n1");
  key.set_client_id(1);
  uint64_t index = 1;
  pb::Command open;
  *open.mutable_open_session()->mutable_session() = key;
  table->Apply(index++, open);
  for (int64_t i = 0; i < n; ++i) {
    pb::Command c;
    pb::Acquire* a = c.mutable_acquire();
    *a->mutable_session() = key;
    a->set_seq(static_cast<uint64_t>(i) + 1);
    std::string name = "bench" + std::to_string(i);
    name.insert(5, 100 - name.size(), '0');
    a->set_resource(name);
    a->set_mode(pb::EX);
    table->Apply(index++, c);
  }
}

void BM_SnapshotBuild(benchmark::State& state) {
  LockTable table;
  Fill(&table, state.range(0));
  for (auto _ : state) {
    pb::LockTableSnapshot s;
    table.Snapshot(&s);
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

// What the node runs: the encoded snapshot straight from the table.
void BM_SnapshotEncodeDirect(benchmark::State& state) {
  LockTable table;
  Fill(&table, state.range(0));
  for (auto _ : state) {
    std::string data;
    table.EncodeSnapshot(&data);
    benchmark::DoNotOptimize(data);
    state.counters["bytes"] = static_cast<double>(data.size());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_SnapshotEncode(benchmark::State& state) {
  LockTable table;
  Fill(&table, state.range(0));
  pb::LockTableSnapshot s;
  table.Snapshot(&s);
  for (auto _ : state) {
    std::string data;
    s.SerializeToString(&data);
    benchmark::DoNotOptimize(data);
    state.counters["bytes"] = static_cast<double>(data.size());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_SnapshotDecode(benchmark::State& state) {
  LockTable table;
  Fill(&table, state.range(0));
  pb::LockTableSnapshot s;
  table.Snapshot(&s);
  const std::string data = s.SerializeAsString();
  for (auto _ : state) {
    pb::LockTableSnapshot parsed;
    benchmark::DoNotOptimize(parsed.ParseFromString(data));
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_SnapshotRestore(benchmark::State& state) {
  LockTable table;
  Fill(&table, state.range(0));
  pb::LockTableSnapshot s;
  table.Snapshot(&s);
  const std::string data = s.SerializeAsString();
  for (auto _ : state) {
    pb::LockTableSnapshot parsed;
    parsed.ParseFromString(data);
    LockTable restored;
    benchmark::DoNotOptimize(restored.Restore(parsed));
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

BENCHMARK(BM_SnapshotBuild)->Arg(10'000)->Arg(100'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SnapshotEncodeDirect)->Arg(10'000)->Arg(100'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SnapshotEncode)->Arg(10'000)->Arg(100'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SnapshotDecode)->Arg(10'000)->Arg(100'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SnapshotRestore)->Arg(10'000)->Arg(100'000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
