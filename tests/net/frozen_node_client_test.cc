// The client's backstop (mesh::LockGiveUpMs, net/include/mesh/client.h): a REAL local
// `lockmesh node` frozen with SIGSTOP answers nothing, and the client must still give up at
// the lock request's bound (try-lock: 2 s; timeout T: T + 2 s) with a clear error, run no
// command, and leave nothing held once the node runs again: the connection it gave up on is
// closed, so the node ends that session and releases whatever it grants it late.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "mesh/client.h"
#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

// How late past its bound a call may return on a loaded machine.
constexpr double kSlackSeconds = 1.5;

double BoundSeconds(int64_t timeout_ms) {
  return static_cast<double>(mesh::LockGiveUpMs(timeout_ms)) / 1000.0;
}

class FrozenNodeClientTest : public ProcessTest {
 protected:
  void SetUp() override {
    ProcessTest::SetUp();
    node_ = StartTestNode();
    ASSERT_NE(node_, nullptr);
  }

  void TearDown() override {
    if (node_) node_->Signal(SIGCONT);  // a failed assertion may leave it stopped
    ProcessTest::TearDown();
  }

  std::unique_ptr<mesh::Client> Connect(const std::string& name) {
    mesh::ClientOptions o;
    o.socket_path = paths_.socket;
    o.client_name = name;
    std::unique_ptr<mesh::Client> client;
    mesh::Status st = mesh::Client::Connect(o, &client);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return client;
  }

  void Freeze() { node_->Signal(SIGSTOP); }
  void Thaw() { node_->Signal(SIGCONT); }

  // Runs `call` (a blocking client call) on a thread and returns the seconds it took. If it
  // has not returned `limit` after the start, the node is resumed so that the call can end:
  // a missing backstop then fails the test's bounds instead of hanging it.
  double TimedCall(const std::function<void()>& call, double limit_seconds) {
    const auto start = Clock::now();
    std::packaged_task<void()> task(call);
    std::future<void> done = task.get_future();
    std::thread runner(std::move(task));
    if (done.wait_for(std::chrono::duration<double>(limit_seconds)) != std::future_status::ready) {
      ADD_FAILURE() << "the call did not return within " << limit_seconds
                    << " s on a frozen node; resuming the node";
      Thaw();
    }
    runner.join();
    return SecondsSince(start);
  }

  // The node serves again: every resource in `free` can be try-locked by a new client, and
  // afterwards nothing is held or queued.
  void ExpectHealthyAndFree(const std::vector<std::string>& free) {
    std::unique_ptr<mesh::Client> fresh = Connect("after the thaw");
    ASSERT_NE(fresh, nullptr);
    for (const std::string& resource : free) {
      mesh::Lock lock;
      // The node ends the given-up sessions as it runs again: give it a moment to apply.
      mesh::Status st;
      EXPECT_TRUE(WaitFor(
          [&] {
            st = fresh->TryLock(resource, mesh::LockMode::kEX, &lock);
            return st.ok();
          },
          Millis(20000), Millis(100)))
          << resource << ": " << st.ToString();
      if (st.ok()) EXPECT_TRUE(fresh->Unlock(lock).ok());
    }
    fresh.reset();
    std::vector<mesh::LockInfo> rows;
    EXPECT_TRUE(WaitFor([&] { return ListLocks(paths_.socket, &rows) && rows.empty(); },
                        Millis(20000), Millis(100)))
        << rows.size() << " rows left, the first on " << (rows.empty() ? "" : rows[0].resource);
  }

  Process* node_ = nullptr;
};

// Client::Lock with a timeout and Client::TryLock on a frozen node return Unavailable at
// their bound; the connection is closed (a lock the session held is reported lost, and
// later calls fail at once); after SIGCONT nothing is left held.
TEST_F(FrozenNodeClientTest, LibraryLockAndTryLockGiveUpAtTheirBound) {
  std::unique_ptr<mesh::Client> waiter = Connect("waiter");
  std::unique_ptr<mesh::Client> trier = Connect("trier");
  ASSERT_NE(waiter, nullptr);
  ASSERT_NE(trier, nullptr);
  mesh::Lock held;
  ASSERT_TRUE(waiter->TryLock("H", mesh::LockMode::kEX, &held).ok());
  std::vector<std::string> lost;
  waiter->SetLostCallback([&](const mesh::Lock& lock, const mesh::Status& why) {
    lost.push_back(lock.resource + ": " + why.message());
  });
  Freeze();

  mesh::LockOptions options;
  options.timeout_ms = 1000;
  mesh::Status st;
  mesh::Lock got;
  double took = TimedCall([&] { st = waiter->Lock("Y", options, &got); },
                          BoundSeconds(options.timeout_ms) + 10);
  EXPECT_TRUE(st.IsUnavailable()) << st.ToString();
  EXPECT_NE(st.message().find("did not answer the lock request for Y within 3 s"),
            std::string::npos)
      << st.ToString();
  EXPECT_GE(took, BoundSeconds(options.timeout_ms) - 0.05);
  EXPECT_LT(took, BoundSeconds(options.timeout_ms) + kSlackSeconds);
  ASSERT_EQ(lost.size(), 1u) << "the held lock is reported lost with the connection";
  EXPECT_EQ(lost[0].rfind("H: ", 0), 0u) << lost[0];
  // The client gave up on that connection: a later call fails at once, whatever the node.
  const auto later = Clock::now();
  EXPECT_TRUE(waiter->TryLock("Z", mesh::LockMode::kEX, &got).IsUnavailable());
  EXPECT_LT(SecondsSince(later), 0.5);

  took =
      TimedCall([&] { st = trier->TryLock("Y", mesh::LockMode::kEX, &got); }, BoundSeconds(0) + 10);
  EXPECT_TRUE(st.IsUnavailable()) << st.ToString();
  EXPECT_NE(st.message().find("did not answer the lock request for Y within 2 s"),
            std::string::npos)
      << st.ToString();
  EXPECT_GE(took, BoundSeconds(0) - 0.05);
  EXPECT_LT(took, BoundSeconds(0) + kSlackSeconds);

  Thaw();
  waiter.reset();
  trier.reset();
  ExpectHealthyAndFree({"H", "Y", "Z"});
}

// `lockmesh lock -n` and `-w 2` against a frozen node exit 99 at their bound, saying the
// node did not answer, and never run the command; with auto-start on, no second node is
// started beside the frozen one.
TEST_F(FrozenNodeClientTest, CliGivesUpAtItsBoundWithoutRunningTheCommand) {
  const std::string ran = Path("ran");
  Freeze();
  struct Case {
    std::vector<std::string> flags;
    int64_t timeout_ms;
    bool autostart;
  };
  for (const Case& c :
       {Case{{"-n"}, 0, false}, Case{{"-w", "2"}, 2000, false}, Case{{"-n"}, 0, true}}) {
    std::vector<std::string> args = LockArgs("Y", {"touch", ran}, c.flags);
    if (c.autostart) args.erase(std::find(args.begin(), args.end(), "--no-autostart"));
    RunResult r = RunLockmesh("lock", args, Millis(30000));
    const std::string what = c.flags[0] + (c.autostart ? " (auto-start on): " : ": ");
    EXPECT_EQ(r.code(), 99) << what << r.Describe();
    EXPECT_NE(r.err.find("did not answer"), std::string::npos) << what << r.Describe();
    EXPECT_LT(r.seconds, BoundSeconds(c.timeout_ms) + kSlackSeconds) << what << r.Describe();
    EXPECT_FALSE(FileExists(ran)) << what << "the command ran without its lock";
  }
  EXPECT_EQ(NodePidsServing(paths_.socket).size(), 1u) << "a second node was started";
  Thaw();
  ExpectHealthyAndFree({"Y"});
  EXPECT_FALSE(FileExists(ran));
}

// Jepsen's case: `lockmesh lock -w 5 X` is queued behind a holder, the node freezes, and the
// holder's release reaches the node's socket before the waiter gives up. When the node runs
// again it reads the release first (it arrived first) and grants X to the waiter's session,
// whose connection is already closed: the waiter exited 99 without running its command, and
// the node must release that late grant when it ends the session. Nobody is left holding X.
TEST_F(FrozenNodeClientTest, AbandonedWaiterHoldsNothingOnceTheNodeRunsAgain) {
  const std::string ran = Path("ran");
  Process* holder = StartHolder("X", "h");
  ASSERT_NE(holder, nullptr);
  Process* waiter = Lockmesh("waiter", LockArgs("X", {"touch", ran}, {"-w", "5"}));
  std::vector<mesh::LockInfo> rows;
  ASSERT_TRUE(
      WaitFor([&] { return ListLocks(paths_.socket, &rows) && CountLocks(rows, "X", false) == 1; },
              Millis(20000)))
      << waiter->Stderr();
  Freeze();
  // The holder's command ends; it sends its unlock and closes without waiting for an answer.
  WriteFile(Path("h.release"), "");
  RunResult h = Finish(holder, Millis(20000));
  EXPECT_EQ(h.code(), 0) << h.Describe();

  RunResult w = Finish(waiter, Millis(30000));
  EXPECT_EQ(w.code(), 99) << w.Describe();
  EXPECT_NE(w.err.find("did not answer the lock request for X within 7 s"), std::string::npos)
      << w.Describe();
  EXPECT_GE(w.seconds, BoundSeconds(5000) - 0.05) << w.Describe();
  EXPECT_LT(w.seconds, BoundSeconds(5000) + kSlackSeconds) << w.Describe();
  EXPECT_FALSE(FileExists(ran)) << "the command ran without its lock";

  Thaw();
  ExpectHealthyAndFree({"X"});
  EXPECT_FALSE(FileExists(ran));
  EXPECT_TRUE(node_->Running());
}

}  // namespace
}  // namespace lockmesh::testing
