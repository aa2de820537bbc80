// `lockmesh bench --scenario hold`: against a node the bench
// auto-starts, 20,000 distinct locks are taken, held and released, and the report's fields
// exist and are sane: every lock was held at once (the node's own count says so), the node's
// RSS was read (its pid is the one serving the socket), rose while the locks were held, and
// the figures derived from it agree with it. No timing is checked; the memory targets
// themselves are shown by the benchmark run (README "Performance").
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

class BenchHoldTest : public ProcessTest {};

TEST_F(BenchHoldTest, HoldReportsRssAndBytesPerLockOfAnAutoStartedNode) {
  ASSERT_FALSE(SocketAccepts(paths_.socket));
  const uint64_t kLocks = 20000;
  RunResult r = RunLockmesh("bench",
                            {"bench", "--socket", paths_.socket, "--scenario", "hold", "--locks",
                             std::to_string(kLocks), "--name-bytes", "40", "--hold-seconds",
                             "0.2", "--clients", "8", "--json"},
                            Millis(180000));
  ASSERT_EQ(r.code(), 0) << r.Describe();
  nlohmann::json out = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(out.is_discarded()) << "not one JSON document:\n" << r.out;

  // The node: auto-started by this bench, and the pid whose RSS was read serves the socket.
  ASSERT_TRUE(out.contains("node")) << r.out;
  EXPECT_EQ(out["node"].value("auto_started", false), true) << r.out;
  std::vector<pid_t> serving = NodePidsServing(paths_.socket);
  ASSERT_EQ(serving.size(), 1u) << "the auto-started node should still serve";
  EXPECT_EQ(out["node"].value("pid", int64_t{-1}), static_cast<int64_t>(serving[0])) << r.out;

  ASSERT_TRUE(out.contains("results") && out["results"].size() == 1) << r.out;
  const nlohmann::json& h = out["results"][0];
  for (const char* field :
       {"scenario", "locks", "clients", "name_bytes", "hold_seconds", "locks_held_reported",
        "grant_seconds", "grants_per_second", "release_seconds", "releases_per_second",
        "rss_bytes", "bytes_per_held_lock", "bytes_per_held_lock_beyond_name",
        "rss_after_over_before"}) {
    EXPECT_TRUE(h.contains(field)) << "no " << field << " in\n" << h.dump(2);
  }
  for (const char* field : {"before", "held", "peak", "after"}) {
    EXPECT_TRUE(h["rss_bytes"].contains(field)) << "no rss_bytes." << field << " in\n"
                                                << h.dump(2);
  }
  EXPECT_EQ(h.value("scenario", ""), "hold");
  EXPECT_EQ(h.value("locks", uint64_t{0}), kLocks);
  EXPECT_EQ(h.value("clients", 0), 8);
  EXPECT_EQ(h.value("name_bytes", 0), 40);
  // All of them were held at the same time, as the node counts them.
  EXPECT_EQ(h.value("locks_held_reported", uint64_t{0}), kLocks) << h.dump(2);
  EXPECT_GT(h.value("grants_per_second", 0.0), 0.0);
  EXPECT_GT(h.value("releases_per_second", 0.0), 0.0);

  const int64_t before = h["rss_bytes"].value("before", int64_t{0});
  const int64_t held = h["rss_bytes"].value("held", int64_t{0});
  const int64_t peak = h["rss_bytes"].value("peak", int64_t{0});
  const int64_t after = h["rss_bytes"].value("after", int64_t{0});
  // A node's RSS: more than a megabyte, less than a few gigabytes.
  for (int64_t rss : {before, held, peak, after}) {
    EXPECT_GT(rss, int64_t{1} << 20) << h.dump(2);
    EXPECT_LT(rss, int64_t{4} << 30) << h.dump(2);
  }
  // 20,000 held locks cost something (at least their names), and the peak is the peak.
  EXPECT_GT(held - before, static_cast<int64_t>(kLocks * 40)) << h.dump(2);
  EXPECT_GE(peak, std::max({before, held, after})) << h.dump(2);
  const double per_lock = h.value("bytes_per_held_lock", 0.0);
  EXPECT_NEAR(per_lock, static_cast<double>(held - before) / kLocks, 1.0) << h.dump(2);
  EXPECT_NEAR(h.value("bytes_per_held_lock_beyond_name", 0.0), per_lock - 40, 1.0);
  EXPECT_NEAR(h.value("rss_after_over_before", 0.0), static_cast<double>(after) / before, 1e-6);

  // Everything was released: the node holds nothing now.
  std::vector<mesh::LockInfo> locks;
  std::string error;
  ASSERT_TRUE(ListLocks(paths_.socket, &locks, &error)) << error;
  EXPECT_TRUE(locks.empty()) << locks.size() << " locks left, e.g. " << locks[0].resource;

  // The text report says the same in words.
  RunResult text = RunLockmesh("bench-text",
                               {"bench", "--socket", paths_.socket, "--scenario", "hold",
                                "--locks", "500", "--hold-seconds", "0", "--no-autostart"},
                               Millis(60000));
  ASSERT_EQ(text.code(), 0) << text.Describe();
  EXPECT_NE(text.out.find("hold: 500 locks (32-byte names)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("node RSS: before"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("bytes per held lock:"), std::string::npos) << text.out;
}

}  // namespace
}  // namespace lockmesh::testing
