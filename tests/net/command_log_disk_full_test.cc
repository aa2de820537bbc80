// The command log on a full disk (core/storage/disk_full_policy.h, executed by
// net/node/command_log.cc): a persist that fails for want of space holds its batches and retries
// them, it never stops the log; new locks are refused meanwhile; the change to full and back
// is reported once each.
//
// Real CommandLogs on one libuv loop, with real files in a temporary directory behind a
// file system that answers ENOSPC (core::NoSpaceError, as net/support/posix_file_system.cc does) to
// everything that needs new space while the test says the disk is full: allocating a WAL
// segment, creating one, writing the snapshot file. (disk_full_test.cc does the same with a
// real full tmpfs and the real node.)
#include <gtest/gtest.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/storage/file_system.h"
#include "net/node/command_log.h"
#include "net/support/posix_file_system.h"
#include "net/support/process_harness.h"

namespace mesh::net {
namespace {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// Refuses, while full, whatever would need new space. Loop thread only (the logs here sync
// in the loop).
class FullableFileSystem final : public core::FileSystemWrapper {
 public:
  explicit FullableFileSystem(core::FileSystem* base) : FileSystemWrapper(base) {}
  bool wal_full = false;       // segment allocation and creation
  bool snapshot_full = false;  // the snapshot file
  int refused = 0;             // operations refused so far

  Status OpenWritable(const std::string& path, uint64_t preallocate,
                      std::unique_ptr<core::WritableFile>* out) override {
    if (wal_full && preallocate > 0) return Refuse(path + ": pwrite");
    std::unique_ptr<core::WritableFile> file;
    MESH_RETURN_IF_ERROR(target()->OpenWritable(path, preallocate, &file));
    *out = std::make_unique<File>(this, std::move(file), path);
    return Status::OK();
  }
  using FileSystemWrapper::WriteFileAtomic;
  Status WriteFileAtomic(const std::string& path, std::string_view data,
                         const core::AtomicWriteOptions& options) override {
    if (snapshot_full) return Refuse(path + ".tmp: pwrite");
    return target()->WriteFileAtomic(path, data, options);
  }

 private:
  class File final : public core::WritableFileWrapper {
   public:
    File(FullableFileSystem* fs, std::unique_ptr<core::WritableFile> file, std::string path)
        : WritableFileWrapper(std::move(file)), fs_(fs), path_(std::move(path)) {}
    Status Allocate(uint64_t size) override {
      if (fs_->wal_full) return fs_->Refuse(path_ + ": pwrite");
      return target()->Allocate(size);
    }

   private:
    FullableFileSystem* fs_;
    std::string path_;
  };

  Status Refuse(const std::string& what) {
    ++refused;
    return core::NoSpaceError(what);
  }
};

struct TestNode {
  std::string id;
  std::unique_ptr<FullableFileSystem> fs;
  std::unique_ptr<CommandLog> log;
  size_t applied = 0;
  std::string failure;
  std::vector<std::string> disk_reports;  // "full: ..." or "ok"
};

class CommandLogDiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    ASSERT_EQ(uv_timer_init(&loop_, &tick_), 0);
  }

  void TearDown() override {
    int closing = 0;
    for (auto& [id, n] : nodes_) {
      ++closing;
      n->log->Close([&closing] { --closing; });
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    auto deadline = Clock::now() + Millis(30000);
    while (closing > 0 && Clock::now() < deadline) uv_run(&loop_, UV_RUN_ONCE);
    EXPECT_EQ(closing, 0) << "a command log never finished closing";
    uv_run(&loop_, UV_RUN_DEFAULT);
    nodes_.clear();
    EXPECT_EQ(uv_loop_close(&loop_), 0) << "a libuv handle or request was left open";
  }

  TestNode* AddNode(const std::string& id, bool standalone, CommandLog::Options o = {}) {
    auto n = std::make_unique<TestNode>();
    n->id = id;
    n->fs = std::make_unique<FullableFileSystem>(PosixFileSystem());
    o.data_dir = dir_.path() + "/" + id;
    o.node_id = id;
    o.standalone = standalone;
    o.fsync = true;
    o.election_timeout_us = 300'000;
    o.heartbeat_interval_us = 30'000;
    n->log = std::make_unique<CommandLog>(&loop_, o, n->fs.get());
    Status st = n->log->Open();
    EXPECT_TRUE(st.ok()) << st.ToString();
    TestNode* raw = n.get();
    n->log->SetHandlers(
        [raw](uint64_t, const pb::Command&, const core::ApplyResult&) { ++raw->applied; },
        [raw](const Status& why) { raw->failure = why.ToString(); });
    n->log->SetDiskHandler([raw](const Status& full) {
      raw->disk_reports.push_back(full.ok() ? "ok" : "full: " + full.message());
    });
    n->log->SetSender([this](pb::RaftMessage&& m) {
      auto it = nodes_.find(m.to());
      if (it != nodes_.end()) it->second->log->Step(std::move(m));
    });
    nodes_[id] = std::move(n);
    return raw;
  }

  // A command the table refuses (no such session) but logs and applies like any other.
  static pb::Command Acquire(uint64_t client) {
    pb::Command c;
    pb::Acquire* a = c.mutable_acquire();
    a->mutable_session()->set_node_id("node-a");
    a->mutable_session()->set_client_id(client);
    a->set_resource("r" + std::to_string(client));
    return c;
  }
  static pb::Command Close(uint64_t client) {
    pb::Command c;
    pb::CloseSession* close = c.mutable_close_session();
    close->mutable_session()->set_node_id("node-a");
    close->mutable_session()->set_client_id(client);
    return c;
  }

  bool RunUntil(const std::function<bool()>& done, Millis timeout) {
    auto deadline = Clock::now() + timeout;
    uv_timer_start(
        &tick_, [](uv_timer_t*) {}, 2, 2);
    bool ok = done();
    while (!ok && Clock::now() < deadline) {
      uv_run(&loop_, UV_RUN_ONCE);
      ok = done();
    }
    uv_timer_stop(&tick_);
    return ok;
  }
  void RunFor(Millis d) {
    auto until = Clock::now() + d;
    RunUntil([&] { return Clock::now() >= until; }, d + Millis(1000));
  }

  uv_loop_t loop_;
  uv_timer_t tick_;
  lockmesh::testing::TempDir dir_{"lmdf"};
  std::map<std::string, std::unique_ptr<TestNode>> nodes_;
};

TEST_F(CommandLogDiskFullTest, SnapshotWithoutSpaceIsHeldAndRetriedNotFatal) {
  CommandLog::Options o;
  o.snapshot_every = 10;
  TestNode* n = AddNode("node-a", /*standalone=*/true, o);
  ASSERT_TRUE(n->failure.empty());
  n->fs->snapshot_full = true;
  // The 10th applied entry takes a snapshot, which cannot be written.
  for (uint64_t i = 1; i <= 30 && n->disk_reports.empty(); ++i) {
    ASSERT_TRUE(n->log->Propose(Acquire(i)).ok());
    n->log->Flush();
  }
  ASSERT_TRUE(RunUntil([&] { return !n->disk_reports.empty(); }, Millis(30000)))
      << "the snapshot was never refused (refusals: " << n->fs->refused << ")";
  EXPECT_NE(n->disk_reports[0].find("No space left on device"), std::string::npos)
      << n->disk_reports[0];
  EXPECT_NE(n->log->disk_full().find("disk full: "), std::string::npos);
  // New locks are refused at once, with the reason; a close (it frees) is taken.
  Status refused = n->log->Propose(Acquire(100));
  EXPECT_TRUE(refused.IsUnavailable()) << refused.ToString();
  EXPECT_NE(refused.message().find("disk full"), std::string::npos) << refused.ToString();
  EXPECT_TRUE(n->log->Propose(Close(100)).ok());
  // It keeps retrying (with backoff), says nothing more, and does not fail.
  const int refusals = n->fs->refused;
  RunFor(Millis(400));
  EXPECT_GT(n->fs->refused, refusals) << "no retry";
  EXPECT_EQ(n->disk_reports.size(), 1u);
  EXPECT_TRUE(n->failure.empty()) << n->failure;

  n->fs->snapshot_full = false;
  ASSERT_TRUE(RunUntil([&] { return n->disk_reports.size() == 2; }, Millis(30000)));
  EXPECT_EQ(n->disk_reports[1], "ok");
  EXPECT_EQ(n->log->disk_full(), "");
  EXPECT_TRUE(lockmesh::testing::FileExists(dir_.path() + "/node-a/snapshot"));
  ASSERT_TRUE(
      RunUntil([&] { return n->log->applied_index() >= n->log->last_index(); }, Millis(30000)));
  EXPECT_TRUE(n->log->Propose(Acquire(101)).ok());
  EXPECT_TRUE(n->failure.empty()) << n->failure;
}

TEST_F(CommandLogDiskFullTest, FullFollowerHoldsOnWhileTheOthersCommitAndCatchesUp) {
  CommandLog::Options o;
  o.wal_segment_bytes = 4096;  // a new segment every few dozen entries: new space soon
  pb::ClusterConfig config;
  config.set_cluster_id("disk-full-test");
  for (const char* id : {"node-a", "node-b", "node-c"}) {
    AddNode(id, /*standalone=*/false, o);
    pb::Member* m = config.add_members();
    m->set_id(id);
    m->set_voter(true);
    m->set_address(std::string(id) + ":1");
  }
  TestNode& a = *nodes_["node-a"];
  TestNode& b = *nodes_["node-b"];
  ASSERT_TRUE(a.log->Bootstrap(config).ok());
  ASSERT_TRUE(
      RunUntil([&] { return a.log->raft()->role() == core::raft::Role::kLeader; }, Millis(30000)));

  b.fs->wal_full = true;
  uint64_t client = 0;
  for (int round = 0; round < 200 && b.disk_reports.empty(); ++round) {
    ASSERT_TRUE(a.log->Propose(Acquire(++client)).ok());
    a.log->Flush();
    ASSERT_TRUE(
        RunUntil([&] { return a.log->applied_index() >= a.log->last_index(); }, Millis(30000)))
        << "the leader and node-c stopped committing while node-b's disk is full";
  }
  ASSERT_EQ(b.disk_reports.size(), 1u)
      << "node-b never ran out of space (refused " << b.fs->refused << ", last index "
      << b.log->last_index() << ", leader's " << a.log->last_index() << ")";
  // The other two go on without it.
  const uint64_t stuck = b.log->applied_index();
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(a.log->Propose(Acquire(++client)).ok());
    a.log->Flush();
  }
  ASSERT_TRUE(
      RunUntil([&] { return a.log->applied_index() >= a.log->last_index(); }, Millis(30000)));
  RunFor(Millis(300));
  EXPECT_EQ(b.disk_reports.size(), 1u) << "reported once, not per retry";
  EXPECT_TRUE(b.failure.empty()) << b.failure;
  EXPECT_GT(a.log->applied_index(), stuck);

  b.fs->wal_full = false;
  // node-b may have applied the committed entries already (they are durable on the others;
  // its heartbeat answers kept the leader sending): caught up means its disk took them too.
  ASSERT_TRUE(RunUntil(
      [&] {
        return b.log->applied_index() >= a.log->last_index() && b.disk_reports.size() == 2;
      },
      Millis(30000)))
      << "node-b did not catch up once its disk had space (applied " << b.log->applied_index()
      << " of " << a.log->last_index() << ", " << b.disk_reports.size() << " disk reports)";
  EXPECT_EQ(b.disk_reports[1], "ok");
  for (auto& [id, n] : nodes_) EXPECT_TRUE(n->failure.empty()) << id << ": " << n->failure;
}

TEST_F(CommandLogDiskFullTest, FullLeaderStillCommitsThroughTheOthersAndCatchesUp) {
  CommandLog::Options o;
  o.wal_segment_bytes = 4096;
  pb::ClusterConfig config;
  config.set_cluster_id("disk-full-test");
  for (const char* id : {"node-a", "node-b", "node-c"}) {
    AddNode(id, /*standalone=*/false, o);
    pb::Member* m = config.add_members();
    m->set_id(id);
    m->set_voter(true);
    m->set_address(std::string(id) + ":1");
  }
  TestNode& a = *nodes_["node-a"];
  TestNode& b = *nodes_["node-b"];
  ASSERT_TRUE(a.log->Bootstrap(config).ok());
  ASSERT_TRUE(
      RunUntil([&] { return a.log->raft()->role() == core::raft::Role::kLeader; }, Millis(30000)));
  ASSERT_TRUE(RunUntil([&] { return b.log->raft()->leader() == "node-a"; }, Millis(30000)));

  // The leader's disk fills. Commands proposed on node-b (forwarded to the leader) still
  // commit: the leader sends its appends before its own copy is durable, and node-b and
  // node-c are a quorum.
  a.fs->wal_full = true;
  uint64_t client = 0;
  auto propose_on_b = [&] {
    ASSERT_TRUE(b.log->Propose(Acquire(++client)).ok());
    b.log->Flush();
    const uint64_t want = b.log->applied_index() + 1;
    ASSERT_TRUE(RunUntil([&] { return b.log->applied_index() >= want; }, Millis(30000)))
        << "nothing commits while the leader's disk is full";
  };
  for (int round = 0; round < 200 && a.disk_reports.empty(); ++round) propose_on_b();
  ASSERT_EQ(a.disk_reports.size(), 1u) << "node-a never ran out of space";
  Status refused = a.log->Propose(Acquire(++client));
  EXPECT_TRUE(refused.IsUnavailable()) << refused.ToString();
  for (int i = 0; i < 20; ++i) propose_on_b();
  EXPECT_EQ(a.disk_reports.size(), 1u);

  a.fs->wal_full = false;
  ASSERT_TRUE(RunUntil([&] { return a.disk_reports.size() == 2; }, Millis(30000)));
  propose_on_b();
  ASSERT_TRUE(RunUntil(
      [&] {
        for (auto& [id, n] : nodes_) {
          if (n->log->applied_index() < b.log->last_index()) return false;
        }
        return true;
      },
      Millis(30000)));
  for (auto& [id, n] : nodes_) EXPECT_TRUE(n->failure.empty()) << id << ": " << n->failure;
}

}  // namespace
}  // namespace mesh::net
