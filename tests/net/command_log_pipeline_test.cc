// The command log's pipelined persistence (net/node/command_log.cc, Drive): the fsync runs on
// libuv's thread pool, a leader sends its appends before its own copy is durable and goes
// on while it syncs, and a follower acknowledges only what it has synced.
//
// Three real CommandLogs on one libuv loop, with real files in a temporary directory;
// Raft messages are handed from one to another directly. Each node's files sit behind a
// gate: a closed gate holds that node's fsyncs (on the pool thread) until it opens, which
// is how a slow disk looks to the node.
#include <gtest/gtest.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
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

// Holds the Sync of every file it opened while closed. Thread-safe: Sync runs on libuv's
// pool, the test opens and closes the gate from the loop thread.
class GatedFileSystem final : public core::FileSystemWrapper {
 public:
  explicit GatedFileSystem(core::FileSystem* base) : FileSystemWrapper(base) {}

  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  /// Syncs waiting at the closed gate right now.
  int waiting() const { return waiting_.load(); }
  /// File syncs completed.
  int synced() const { return synced_.load(); }

  Status OpenWritable(const std::string& path, uint64_t preallocate,
                      std::unique_ptr<core::WritableFile>* out) override {
    std::unique_ptr<core::WritableFile> file;
    MESH_RETURN_IF_ERROR(target()->OpenWritable(path, preallocate, &file));
    *out = std::make_unique<GatedFile>(this, std::move(file));
    return Status::OK();
  }

 private:
  class GatedFile final : public core::WritableFileWrapper {
   public:
    GatedFile(GatedFileSystem* fs, std::unique_ptr<core::WritableFile> file)
        : WritableFileWrapper(std::move(file)), fs_(fs) {}
    Status Sync() override {
      fs_->Wait();
      Status st = target()->Sync();
      ++fs_->synced_;
      return st;
    }

   private:
    GatedFileSystem* fs_;
  };

  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    cv_.wait(lock, [this] { return open_; });
    --waiting_;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  std::atomic<int> waiting_{0};
  std::atomic<int> synced_{0};
};

struct TestNode {
  std::string id;
  std::unique_ptr<GatedFileSystem> fs;
  std::unique_ptr<CommandLog> log;
  std::vector<uint64_t> applied;  // indexes of applied command entries
  std::string failure;
};

class CommandLogPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    ASSERT_EQ(uv_timer_init(&loop_, &tick_), 0);
    pb::ClusterConfig config;
    for (const char* id : {"node-a", "node-b", "node-c"}) {
      auto n = std::make_unique<TestNode>();
      n->id = id;
      n->fs = std::make_unique<GatedFileSystem>(PosixFileSystem());
      CommandLog::Options o;
      o.data_dir = dir_.path() + "/" + id;
      o.node_id = id;
      o.standalone = false;
      o.fsync = true;
      o.sync_off_loop = true;
      o.election_timeout_us = 300'000;
      o.heartbeat_interval_us = 30'000;
      n->log = std::make_unique<CommandLog>(&loop_, o, n->fs.get());
      Status st = n->log->Open();
      ASSERT_TRUE(st.ok()) << st.ToString();
      TestNode* raw = n.get();
      n->log->SetHandlers([raw](uint64_t index, const pb::Command&,
                                const core::ApplyResult&) { raw->applied.push_back(index); },
                          [raw](const Status& why) { raw->failure = why.ToString(); });
      n->log->SetSender([this](pb::RaftMessage&& m) { Deliver(std::move(m)); });
      pb::Member* member = config.add_members();
      member->set_id(id);
      member->set_voter(true);
      member->set_address(std::string(id) + ":1");
      nodes_[id] = std::move(n);
    }
    config.set_cluster_id("pipeline-test");
    Status st = nodes_["node-a"]->log->Bootstrap(config);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_TRUE(RunUntil([&] { return Leader() == "node-a"; }, Millis(30000)))
        << "no leader; node-a's role: " << Role("node-a");
    // The leader's first entries (its NOOP) reach everyone before the test starts.
    ASSERT_TRUE(RunUntil(
        [&] {
          uint64_t last = nodes_["node-a"]->log->last_index();
          for (auto& [id, n] : nodes_) {
            if (n->log->applied_index() < last) return false;
          }
          return true;
        },
        Millis(30000)));
  }

  void TearDown() override {
    for (auto& [id, n] : nodes_) n->fs->Open();  // a held sync must finish for Close
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

  void Deliver(pb::RaftMessage&& m) {
    auto it = nodes_.find(m.to());
    if (it == nodes_.end()) return;
    it->second->log->Step(std::move(m));
  }

  std::string Role(const std::string& id) {
    const core::raft::Raft* r = nodes_[id]->log->raft();
    return r ? core::raft::RoleName(r->role()) : "none";
  }

  std::string Leader() {
    for (auto& [id, n] : nodes_) {
      if (n->log->raft() && n->log->raft()->role() == core::raft::Role::kLeader) return id;
    }
    return "";
  }

  // An urgent command (not an OpenSession, which waits for company): the lock table
  // refuses it (no such session), but it is logged and applied like any other.
  static pb::Command SomeCommand(uint64_t client) {
    pb::Command c;
    pb::Acquire* a = c.mutable_acquire();
    a->mutable_session()->set_node_id("node-a");
    a->mutable_session()->set_client_id(client);
    a->set_resource("r" + std::to_string(client));
    return c;
  }

  // Runs the loop until `done` or `timeout`; a 2 ms tick keeps the check going.
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

  uv_loop_t loop_;
  uv_timer_t tick_;
  lockmesh::testing::TempDir dir_{"lmcl"};
  std::map<std::string, std::unique_ptr<TestNode>> nodes_;
};

TEST_F(CommandLogPipelineTest, LeaderCommitsThroughBothFollowersWhileItsOwnSyncIsHeld) {
  TestNode& a = *nodes_["node-a"];
  a.fs->Close();
  size_t before = a.applied.size();
  uint64_t index = a.log->last_index() + 1;
  ASSERT_TRUE(a.log->Propose(SomeCommand(1)).ok());
  // The leader's sync of the entry is held; the followers' are not: the two of them are
  // a quorum, so the entry commits and the leader applies it with its own copy unsynced.
  ASSERT_TRUE(RunUntil([&] { return a.applied.size() > before; }, Millis(30000)))
      << "the leader did not apply while its fsync was held (waiting syncs: " << a.fs->waiting()
      << ")";
  EXPECT_EQ(a.applied.back(), index);
  EXPECT_GE(a.fs->waiting(), 1) << "the leader's sync was expected to be still held";
  // More commands keep committing while the first sync is still held.
  size_t more = a.applied.size();
  ASSERT_TRUE(a.log->Propose(SomeCommand(2)).ok());
  ASSERT_TRUE(RunUntil([&] { return a.applied.size() > more; }, Millis(30000)));
  EXPECT_GE(a.fs->waiting(), 1);
  a.fs->Open();
  ASSERT_TRUE(RunUntil([&] { return a.fs->waiting() == 0; }, Millis(30000)));
  EXPECT_TRUE(a.failure.empty()) << a.failure;
}

TEST_F(CommandLogPipelineTest, NothingCommitsWhileOnlyTheLeaderHasSynced) {
  TestNode& a = *nodes_["node-a"];
  TestNode& b = *nodes_["node-b"];
  TestNode& c = *nodes_["node-c"];
  b.fs->Close();
  c.fs->Close();
  size_t before = a.applied.size();
  int a_synced = a.fs->synced();
  ASSERT_TRUE(a.log->Propose(SomeCommand(3)).ok());
  // Both followers hold the entry in their sync; the leader has synced its own copy. One
  // durable copy out of three is no quorum: a follower that acknowledged before its sync
  // completed would let the leader commit here.
  ASSERT_TRUE(RunUntil(
      [&] { return b.fs->waiting() >= 1 && c.fs->waiting() >= 1 && a.fs->synced() > a_synced; },
      Millis(30000)))
      << "followers waiting: " << b.fs->waiting() << ", " << c.fs->waiting();
  // A bounded look for a wrong commit: several heartbeat rounds (30 ms each).
  RunUntil([&] { return a.applied.size() > before; }, Millis(500));
  EXPECT_EQ(a.applied.size(), before) << "committed with only the leader's copy durable";
  EXPECT_EQ(b.applied.size(), c.applied.size());
  // One follower's disk catches up: leader + that follower are a quorum.
  b.fs->Open();
  ASSERT_TRUE(RunUntil([&] { return a.applied.size() > before; }, Millis(30000)));
  ASSERT_TRUE(RunUntil([&] { return b.applied.size() == a.applied.size(); }, Millis(30000)));
  c.fs->Open();
  ASSERT_TRUE(RunUntil([&] { return c.applied.size() == a.applied.size(); }, Millis(30000)));
  for (auto* n : {&a, &b, &c}) EXPECT_TRUE(n->failure.empty()) << n->id << ": " << n->failure;
}

}  // namespace
}  // namespace mesh::net
