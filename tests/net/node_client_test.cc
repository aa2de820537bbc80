// A real mesh::Node and real mesh::AsyncClients on one libuv loop, over a real UNIX socket
// and a real data dir. Every test ends by closing the loop, which fails if any libuv
// handle leaked (uv_loop_close returns UV_EBUSY).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mesh/client.h"
#include "mesh/node.h"

namespace mesh {
namespace {

class NodeClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lockmesh-nct-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    StartNode();
  }

  void TearDown() override {
    if (HasFailure()) {
      for (const auto& line : log_) fprintf(stderr, "node log: %s\n", line.c_str());
    }
    if (node_) StopNode();
    while (!clients_.empty()) CloseClient(clients_.back().get());
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0) << "a libuv handle leaked";
    std::filesystem::remove_all(dir_);
  }

  void StartNode() {
    NodeOptions o;
    o.node_id = "n1";
    o.data_dir = dir_ + "/data";
    o.socket_path = dir_ + "/node.sock";
    o.wal_segment_bytes = 1 << 20;
    o.log = [this](const std::string& line) { log_.push_back(line); };
    ASSERT_TRUE(Node::Create(&loop_, o, &node_).ok());
    Status st = node_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  void StopNode() {
    bool done = false;
    node_->Stop(true, [&] { done = true; });
    RunUntil([&] { return done; });
    node_.reset();
  }

  // Runs the loop until `cond` holds; fails after 20 s of loop time.
  void RunUntil(const std::function<bool()>& cond) {
    uint64_t start = uv_now(&loop_);
    while (!cond()) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      if (cond()) break;
      uv_update_time(&loop_);
      ASSERT_LT(uv_now(&loop_) - start, 20000u) << "condition not reached in 20 s";
      usleep(200);
    }
  }

  AsyncClient* Connect() {
    ClientOptions o;
    o.socket_path = dir_ + "/node.sock";
    o.client_name = "test";
    clients_.push_back(AsyncClient::Create(&loop_, o));
    AsyncClient* c = clients_.back().get();
    bool done = false;
    Status st;
    c->Connect([&](const Status& s) {
      st = s;
      done = true;
    });
    RunUntil([&] { return done; });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return c;
  }

  // Closes `c` (once) and forgets it.
  void CloseClient(AsyncClient* c) {
    bool done = false;
    c->Close([&] { done = true; });
    RunUntil([&] { return done; });
    for (auto it = clients_.begin(); it != clients_.end(); ++it) {
      if (it->get() == c) {
        clients_.erase(it);
        break;
      }
    }
  }

  struct LockOutcome {
    bool done = false;
    Status status;
    Lock lock;
  };

  std::shared_ptr<LockOutcome> StartLock(AsyncClient* c, const std::string& resource,
                                         LockOptions options = {}) {
    auto out = std::make_shared<LockOutcome>();
    c->Lock(resource, options, [out](const Status& st, const Lock& l) {
      out->status = st;
      out->lock = l;
      out->done = true;
    });
    return out;
  }

  LockOutcome LockNow(AsyncClient* c, const std::string& resource, LockOptions options = {}) {
    auto out = StartLock(c, resource, options);
    RunUntil([&] { return out->done; });
    return *out;
  }

  Status Unlock(AsyncClient* c, const Lock& l, bool rollback = false) {
    bool done = false;
    Status st;
    c->Unlock(l, rollback, [&](const Status& s) {
      st = s;
      done = true;
    });
    RunUntil([&] { return done; });
    return st;
  }

  uv_loop_t loop_;
  std::string dir_;
  std::unique_ptr<Node> node_;
  std::vector<std::unique_ptr<AsyncClient>> clients_;
  std::vector<std::string> log_;
};

TEST_F(NodeClientTest, LockUnlockAndTokensIncrease) {
  AsyncClient* a = Connect();
  LockOutcome first = LockNow(a, "res");
  ASSERT_TRUE(first.status.ok()) << first.status.ToString();
  EXPECT_GT(first.lock.token, 0u);
  ASSERT_TRUE(Unlock(a, first.lock).ok());
  LockOutcome second = LockNow(a, "res");
  ASSERT_TRUE(second.status.ok());
  EXPECT_GT(second.lock.token, first.lock.token);
}

TEST_F(NodeClientTest, TryLockOnHeldResourceIsBusy) {
  AsyncClient* a = Connect();
  AsyncClient* b = Connect();
  ASSERT_TRUE(LockNow(a, "res").status.ok());
  LockOptions try_once;
  try_once.timeout_ms = 0;
  LockOutcome busy = LockNow(b, "res", try_once);
  EXPECT_TRUE(busy.status.IsBusy()) << busy.status.ToString();
}

TEST_F(NodeClientTest, WaiterIsGrantedWhenHolderUnlocks) {
  AsyncClient* a = Connect();
  AsyncClient* b = Connect();
  LockOutcome held = LockNow(a, "res");
  ASSERT_TRUE(held.status.ok());
  auto waiting = StartLock(b, "res");
  // Let the request reach the node and queue.
  RunUntil([&] { return node_->GetStatus().locks_waiting == 1; });
  EXPECT_FALSE(waiting->done);
  ASSERT_TRUE(Unlock(a, held.lock).ok());
  RunUntil([&] { return waiting->done; });
  ASSERT_TRUE(waiting->status.ok()) << waiting->status.ToString();
  EXPECT_GT(waiting->lock.token, held.lock.token);
}

TEST_F(NodeClientTest, DeadlineTimesOutAndLeavesNothingQueued) {
  AsyncClient* a = Connect();
  AsyncClient* b = Connect();
  ASSERT_TRUE(LockNow(a, "res").status.ok());
  LockOptions wait_a_bit;
  wait_a_bit.timeout_ms = 200;
  uint64_t start = uv_now(&loop_);
  LockOutcome timed_out = LockNow(b, "res", wait_a_bit);
  EXPECT_TRUE(timed_out.status.IsTimedOut()) << timed_out.status.ToString();
  EXPECT_GE(uv_now(&loop_) - start, 190u);
  EXPECT_EQ(node_->GetStatus().locks_waiting, 0u);
}

TEST_F(NodeClientTest, DisconnectReleasesLocksAtOnce) {
  AsyncClient* a = Connect();
  AsyncClient* b = Connect();
  ASSERT_TRUE(LockNow(a, "res").status.ok());
  auto waiting = StartLock(b, "res");
  RunUntil([&] { return node_->GetStatus().locks_waiting == 1; });
  CloseClient(a);
  RunUntil([&] { return waiting->done; });
  EXPECT_TRUE(waiting->status.ok()) << waiting->status.ToString();
}

TEST_F(NodeClientTest, UnlockOfOwnQueuedRequestAnswersThatRequest) {
  AsyncClient* a = Connect();
  AsyncClient* b = Connect();
  ASSERT_TRUE(LockNow(a, "res").status.ok());
  auto waiting = StartLock(b, "res");
  RunUntil([&] { return node_->GetStatus().locks_waiting == 1; });
  bool listed = false;
  uint64_t queued_id = 0;
  b->ListLocks([&](const Status& st, const std::vector<LockInfo>& rows) {
    for (const LockInfo& row : rows) {
      if (!row.held) queued_id = row.lock_id;
    }
    listed = true;
  });
  RunUntil([&] { return listed; });
  ASSERT_NE(queued_id, 0u);
  Lock queued;
  queued.lock_id = queued_id;
  EXPECT_TRUE(Unlock(b, queued).ok());
  RunUntil([&] { return waiting->done; });
  EXPECT_FALSE(waiting->status.ok()) << "a withdrawn request must not look granted";
  EXPECT_EQ(node_->GetStatus().locks_waiting, 0u);
}

TEST_F(NodeClientTest, InvalidResourceNameIsRefusedClearly) {
  AsyncClient* a = Connect();
  LockOutcome bad = LockNow(a, "no spaces allowed");
  EXPECT_TRUE(bad.status.IsInvalidArgument()) << bad.status.ToString();
  EXPECT_FALSE(bad.status.message().empty());
}

TEST_F(NodeClientTest, ListAndStatusShowHolder) {
  AsyncClient* a = Connect();
  ASSERT_TRUE(LockNow(a, "res").status.ok());
  bool done = false;
  std::vector<LockInfo> rows;
  a->ListLocks([&](const Status& st, const std::vector<LockInfo>& r) {
    EXPECT_TRUE(st.ok());
    rows = r;
    done = true;
  });
  RunUntil([&] { return done; });
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].resource, "res");
  EXPECT_TRUE(rows[0].held);
  EXPECT_EQ(rows[0].pid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(rows[0].client_name, "test");
  NodeStatus s = node_->GetStatus();
  EXPECT_EQ(s.node_id, "n1");
  EXPECT_EQ(s.locks_held, 1u);
}

TEST_F(NodeClientTest, NodeStopTellsHolderItsLockIsLost) {
  AsyncClient* a = Connect();
  LockOutcome held = LockNow(a, "res");
  ASSERT_TRUE(held.status.ok());
  bool lost = false;
  a->SetLostCallback([&](const Lock& l, const Status& why) {
    EXPECT_EQ(l.lock_id, held.lock.lock_id);
    EXPECT_TRUE(why.IsLost());
    lost = true;
  });
  StopNode();
  RunUntil([&] { return lost; });
}

TEST_F(NodeClientTest, SecondNodeOnSameSocketIsRefused) {
  NodeOptions o;
  o.node_id = "n2";
  o.data_dir = dir_ + "/data2";
  o.socket_path = dir_ + "/node.sock";
  std::unique_ptr<Node> second;
  ASSERT_TRUE(Node::Create(&loop_, o, &second).ok());
  Status st = second->Start();
  EXPECT_EQ(st.code(), Status::Code::kAlreadyExists) << st.ToString();
  // The first node still serves.
  AsyncClient* a = Connect();
  EXPECT_TRUE(LockNow(a, "res").status.ok());
}

TEST_F(NodeClientTest, RestartKeepsTokensAndSequenceValues) {
  AsyncClient* a = Connect();
  LockOutcome t1 = LockNow(a, "res");
  ASSERT_TRUE(t1.status.ok());
  LockOutcome s1 = LockNow(a, "_s_seq[1]");
  ASSERT_TRUE(s1.status.ok());
  ASSERT_TRUE(Unlock(a, s1.lock).ok());
  CloseClient(a);
  StopNode();
  StartNode();
  AsyncClient* b = Connect();
  LockOutcome t2 = LockNow(b, "res");
  ASSERT_TRUE(t2.status.ok()) << "the dead session's lock must be gone after restart";
  EXPECT_GT(t2.lock.token, t1.lock.token);
  LockOutcome s2 = LockNow(b, "_s_seq[1]");
  ASSERT_TRUE(s2.status.ok());
  EXPECT_GT(std::stoull(s2.lock.element), std::stoull(s1.lock.element));
}

TEST_F(NodeClientTest, SocketIsPrivate) {
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/node.sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace mesh
