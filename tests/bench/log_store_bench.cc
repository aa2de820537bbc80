// LogStore append+sync throughput and latency on the real (POSIX) file system: each
// iteration appends a batch of 100-byte entries and calls Sync() (one fdatasync), which is
// what the node does once per loop iteration (group commit).
//
// The store lives in a fresh directory under $LOCKMESH_BENCH_DIR (default /tmp), removed
// afterwards; put it on the disk you want to measure. Default 64 MiB segments, so segment
// roll-overs (preallocation) are part of the figures. Counters: entries/s (items_per_second),
// bytes/s, and the per-Sync latency median and 99th percentile in microseconds.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/storage/log_store.h"
#include "net/support/posix_file_system.h"

namespace {

using mesh::core::LogEntry;
using mesh::core::LogStore;

constexpr size_t kEntryBytes = 100;

std::string MakeTempDir() {
  const char* base = std::getenv("LOCKMESH_BENCH_DIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/lockmesh-bench-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return "";
  return tmpl;
}

void BM_AppendSync(benchmark::State& state) {
  const size_t batch_size = static_cast<size_t>(state.range(0));
  const std::string dir = MakeTempDir();
  if (dir.empty()) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  std::unique_ptr<LogStore> store;
  mesh::Status s = LogStore::Open(mesh::net::PosixFileSystem(), dir + "/node",
                                  mesh::core::LogStoreOptions(), &store);
  if (!s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    return;
  }
  std::vector<LogEntry> batch(batch_size);
  for (auto& e : batch) e.data.assign(kEntryBytes, 'x');
  uint64_t next = 1;
  auto fill = [&]() {
    for (auto& e : batch) {
      e.index = next++;
      e.term = 1;
    }
  };
  // Warm-up: creates and preallocates the first segment outside the measurement.
  fill();
  if (!store->Append(batch).ok() || !store->Sync().ok()) {
    state.SkipWithError("warm-up failed");
    return;
  }

  std::vector<double> latencies_us;
  for (auto _ : state) {
    fill();
    auto start = std::chrono::steady_clock::now();
    s = store->Append(batch);
    if (s.ok()) s = store->Sync();
    auto end = std::chrono::steady_clock::now();
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    latencies_us.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch_size));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * batch_size * kEntryBytes));
  if (!latencies_us.empty()) {
    std::sort(latencies_us.begin(), latencies_us.end());
    auto pct = [&](double p) {
      return latencies_us[std::min(latencies_us.size() - 1,
                                   static_cast<size_t>(p * latencies_us.size()))];
    };
    state.counters["p50_us"] = pct(0.50);
    state.counters["p99_us"] = pct(0.99);
  }
  store.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

BENCHMARK(BM_AppendSync)->Arg(1)->Arg(16)->Arg(256)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
