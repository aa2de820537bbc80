// `lockmesh lock` against a real `lockmesh node`: real processes, a real UNIX socket, real
// files.
//
// Each test starts its own node (`lockmesh node --socket <tmp>/s/node.sock --data-dir
// <tmp>/data`, log in <tmp>/node.log) and runs `lockmesh lock --socket ... --no-autostart`
// so that a crashed node fails the test instead of being silently replaced by an
// auto-started one.
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

class LockCliTest : public ProcessTest {
 protected:
  void SetUp() override {
    ProcessTest::SetUp();
    if (HasFatalFailure()) return;
    node_ = StartTestNode();
    ASSERT_NE(node_, nullptr);
  }

  Process* node_ = nullptr;
};

// (a) 20 concurrent read-increment-write critical sections, each racy on its own (read, sleep
// 10 ms, write), serialized by the lock: the count is exactly 20.
TEST_F(LockCliTest, ConcurrentCountersAreSerialized) {
  const std::string counter = Path("counter");
  WriteFile(counter, "0\n");
  const std::string script =
      "n=$(cat \"$COUNTER\"); sleep 0.01; echo $((n + 1)) > \"$COUNTER\"";
  std::vector<Process*> runs;
  for (int i = 0; i < 20; ++i) {
    runs.push_back(Lockmesh("incr", LockArgs("counter", {"sh", "-c", script}),
                            {{"COUNTER", counter}}));
  }
  for (Process* p : runs) {
    RunResult r = Finish(p, Millis(60000));
    EXPECT_EQ(r.code(), 0) << r.Describe();
  }
  EXPECT_EQ(ReadFile(counter), "20\n") << "lost updates: the lock did not serialize";
}

// (b) -n on a held lock exits 98 promptly, without running the command.
TEST_F(LockCliTest, NoWaitOnHeldLockExits98) {
  Process* holder = StartHolder("busy", "h");
  ASSERT_NE(holder, nullptr);
  const std::string ran = Path("ran");
  RunResult r = RunLockmesh("try", LockArgs("busy", {"touch", ran}, {"-n"}), Millis(60000));
  EXPECT_EQ(r.code(), 98) << r.Describe();
  // The holder keeps the lock until ReleaseHolder: a `-n` that waited would never finish
  // while it holds. The bound only tells "did not wait" from "waited" (a loaded CI machine
  // running the ASan build once took over 3 s to start, connect and answer).
  EXPECT_LT(r.seconds, 30.0) << "-n should not wait; " << r.Describe();
  EXPECT_FALSE(FileExists(ran)) << "the command ran although the lock was held";
  EXPECT_TRUE(holder->Running()) << "the holder died";
  ReleaseHolder(holder, "h");
}

// (c) -w 1 on a held lock exits 98 after about one second.
TEST_F(LockCliTest, WaitOneSecondOnHeldLockExits98) {
  Process* holder = StartHolder("busy", "h");
  ASSERT_NE(holder, nullptr);
  const std::string ran = Path("ran");
  RunResult r = RunLockmesh("wait1", LockArgs("busy", {"touch", ran}, {"-w", "1"}));
  EXPECT_EQ(r.code(), 98) << r.Describe();
  EXPECT_GE(r.seconds, 0.9) << "gave up before the 1 s deadline; " << r.Describe();
  EXPECT_LT(r.seconds, 10.0) << r.Describe();
  EXPECT_FALSE(FileExists(ran)) << "the command ran although the lock was held";
  ReleaseHolder(holder, "h");
  // The timed-out request left nothing behind in the queue: the lock is free again.
  RunResult after = RunLockmesh("after", LockArgs("busy", {"true"}, {"-n"}));
  EXPECT_EQ(after.code(), 0) << after.Describe();
}

// A waiting `lockmesh lock` whose node dies exits 99 with the reason — it once aborted on a
// double uv_close (the failed request closed the client, then the lost connection did too).
TEST_F(LockCliTest, WaiterWhoseNodeDiesExits99WithoutCrashing) {
  Process* holder = StartHolder("busy", "h");
  ASSERT_NE(holder, nullptr);
  const std::string ran = Path("ran");
  Process* waiter = Lockmesh("waiter", LockArgs("busy", {"touch", ran}, {"-w", "60"}));
  ASSERT_TRUE(WaitFor(
      [&] {
        std::vector<mesh::LockInfo> locks;
        return ListLocks(paths_.socket, &locks) && CountLocks(locks, "busy", false) == 1;
      },
      Millis(20000)));
  EXPECT_EQ(KillNodesServing(paths_.socket), 1);
  RunResult r = Finish(waiter, Millis(20000));
  EXPECT_EQ(r.code(), 99) << r.Describe();
  EXPECT_NE(r.err.find("connection to node lost"), std::string::npos) << r.Describe();
  EXPECT_FALSE(FileExists(ran));
}

// (d) The command's exit status passes through; the command sees the lock's environment.
TEST_F(LockCliTest, ChildExitStatusPassesThrough) {
  RunResult seven = RunLockmesh("exit7", LockArgs("st", {"sh", "-c", "exit 7"}));
  EXPECT_EQ(seven.code(), 7) << seven.Describe();
  RunResult zero = RunLockmesh("exit0", LockArgs("st", {"sh", "-c", "exit 0"}));
  EXPECT_EQ(zero.code(), 0) << zero.Describe();

  RunResult env = RunLockmesh(
      "env", LockArgs("st", {"sh", "-c", "echo \"$LOCKMESH_RESOURCE $LOCKMESH_TOKEN\""}));
  ASSERT_EQ(env.code(), 0) << env.Describe();
  std::vector<std::string> lines = SplitLines(env.out);
  ASSERT_EQ(lines.size(), 1u) << env.Describe();
  EXPECT_EQ(lines[0].substr(0, 3), "st ") << lines[0];
  EXPECT_GT(std::strtoull(lines[0].c_str() + 3, nullptr, 10), 0u)
      << "LOCKMESH_TOKEN missing or zero: " << lines[0];
}

// (e) SIGTERM to `lockmesh lock` reaches the command, and the lock is held until the
// command has exited. The command's TERM handler writes a marker, then waits for a file the
// test creates (a handshake instead of a fixed sleep: the test controls exactly how long the
// command is "still in its handler"), then exits 3.
TEST_F(LockCliTest, SigtermIsForwardedAndLockHeldUntilChildExits) {
  const std::string started = Path("started");
  const std::string term = Path("term");
  const std::string go = Path("go");
  const std::string script = "trap 'touch \"" + term + "\"; while [ ! -e \"" + go +
                             "\" ]; do sleep 0.02; done; exit 3' TERM; "
                             "touch \"" + started + "\"; while :; do sleep 0.05; done";
  Process* locker = Lockmesh("locker", LockArgs("res", {"sh", "-c", script}));
  ASSERT_TRUE(WaitFor([&] { return FileExists(started) || !locker->Running(); }, Millis(20000)));
  ASSERT_TRUE(FileExists(started)) << Finish(locker, Millis(1000)).Describe();

  locker->Signal(SIGTERM);  // to `lockmesh lock` only, as `kill PID` would
  ASSERT_TRUE(WaitFor([&] { return FileExists(term); }, Millis(10000)))
      << "the command never got SIGTERM; lockmesh lock is "
      << (locker->Running() ? "still running" : locker->Poll()->ToString());

  // The command is inside its TERM handler: lockmesh lock must still be there, holding.
  EXPECT_TRUE(locker->Running()) << "lockmesh lock exited before its command";
  RunResult during = RunLockmesh("during", LockArgs("res", {"true"}, {"-n"}));
  EXPECT_EQ(during.code(), 98) << "lock not held while the command runs its TERM handler: "
                               << during.Describe();

  WriteFile(go, "");
  RunResult first = Finish(locker, Millis(20000));
  EXPECT_EQ(first.code(), 3) << "the command's status (3) should pass through: "
                             << first.Describe();

  RunResult after = RunLockmesh("after", LockArgs("res", {"true"}, {"-n"}));
  EXPECT_EQ(after.code(), 0) << "lock not free after lockmesh lock exited: " << after.Describe();
}

// (f) kill -9 of `lockmesh lock` releases its lock at once: a waiter with -w 10 gets it
// within a few seconds. (The killed process's command keeps running, re-parented to the
// test, which kills it at the end.)
TEST_F(LockCliTest, KillDashNineOfClientReleasesItsLock) {
  const std::string started = Path("started");
  const std::string child_pid = Path("child.pid");
  const std::string script = "echo $$ > \"" + child_pid + "\"; touch \"" + started +
                             "\"; exec sleep 120";
  Process* victim = Lockmesh("victim", LockArgs("res", {"sh", "-c", script}));
  ASSERT_TRUE(WaitFor([&] { return FileExists(started) || !victim->Running(); }, Millis(20000)));
  ASSERT_TRUE(FileExists(started)) << Finish(victim, Millis(1000)).Describe();

  const std::string got = Path("got");
  Process* waiter = Lockmesh("waiter", LockArgs("res", {"touch", got}, {"-w", "10"}));
  // Wait until the node lists the waiter's queued request (the public API's listing).
  std::vector<mesh::LockInfo> locks;
  std::string error;
  ASSERT_TRUE(WaitFor(
      [&] {
        return (ListLocks(paths_.socket, &locks, &error) && CountLocks(locks, "res", false) == 1) ||
               !waiter->Running();
      },
      Millis(10000)))
      << "the waiter never queued: " << error;
  ASSERT_TRUE(waiter->Running()) << "the waiter finished while the lock was held: "
                                 << Finish(waiter, Millis(1)).Describe();
  EXPECT_EQ(CountLocks(locks, "res", true), 1u);

  auto killed_at = Clock::now();
  kill(victim->pid(), SIGKILL);
  RunResult w = Finish(waiter, Millis(20000));
  double after_kill = SecondsSince(killed_at);
  EXPECT_EQ(w.code(), 0) << "the waiter did not get the lock: " << w.Describe();
  EXPECT_TRUE(FileExists(got));
  EXPECT_LT(after_kill, 5.0) << "the lock was released only " << after_kill
                             << " s after kill -9 of its holder";
  auto vs = victim->Wait(Millis(5000));
  ASSERT_TRUE(vs.has_value());
  EXPECT_EQ(vs->signal, SIGKILL);

  // Cleanup of the orphaned command (TearDown's sweep would also find it).
  std::string pid_text = ReadFile(child_pid);
  if (!pid_text.empty()) {
    pid_t pid = static_cast<pid_t>(std::strtol(pid_text.c_str(), nullptr, 10));
    if (pid > 1) {
      kill(pid, SIGKILL);
      // It was re-parented to us (the fixture is a child subreaper): reap it.
      int ws;
      waitpid(pid, &ws, 0);
    }
  }
}

// One run of `lockmesh lock` that records "$LOCKMESH_ELEMENT $LOCKMESH_TOKEN".
struct Grant {
  long long element = -1;
  unsigned long long token = 0;
};

// (g) kill -9 of the node and a restart on the same data dir: fencing tokens keep rising and
// no granted sequence value is handed out again.
TEST_F(LockCliTest, NodeCrashAndRestartKeepsTokensAndSequenceValues) {
  auto take = [&](const std::string& label, std::vector<Grant>* seq,
                  std::vector<unsigned long long>* plain) {
    for (int i = 0; i < 3; ++i) {
      RunResult s = RunLockmesh(
          label, LockArgs("_s_seq[1]", {"sh", "-c", "echo \"$LOCKMESH_ELEMENT $LOCKMESH_TOKEN\""}));
      ASSERT_EQ(s.code(), 0) << s.Describe();
      std::vector<std::string> lines = SplitLines(s.out);
      ASSERT_EQ(lines.size(), 1u) << s.Describe();
      Grant g;
      char* end = nullptr;
      g.element = std::strtoll(lines[0].c_str(), &end, 10);
      g.token = std::strtoull(end, nullptr, 10);
      ASSERT_NE(end, lines[0].c_str()) << "no LOCKMESH_ELEMENT for a sequence: " << lines[0];
      seq->push_back(g);

      RunResult f = RunLockmesh(label, LockArgs("fenced", {"sh", "-c", "echo \"$LOCKMESH_TOKEN\""}));
      ASSERT_EQ(f.code(), 0) << f.Describe();
      plain->push_back(std::strtoull(f.out.c_str(), nullptr, 10));
    }
  };

  std::vector<Grant> seq_before, seq_after;
  std::vector<unsigned long long> tok_before, tok_after;
  take("before", &seq_before, &tok_before);
  if (HasFatalFailure()) return;

  node_->Signal(SIGKILL);
  auto st = node_->Wait(Millis(10000));
  ASSERT_TRUE(st.has_value());
  ASSERT_EQ(st->signal, SIGKILL);

  node_ = StartTestNode();  // same socket, same data dir, log appended
  ASSERT_NE(node_, nullptr) << "the node does not restart after kill -9";
  take("after", &seq_after, &tok_after);
  if (HasFatalFailure()) return;

  std::string report;
  for (auto* v : {&seq_before, &seq_after}) {
    for (const Grant& g : *v) {
      report += "  _s_seq[1] element " + std::to_string(g.element) + " token " +
                std::to_string(g.token) + "\n";
    }
    report += "  -- node killed -9 and restarted --\n";
  }
  std::vector<Grant> all = seq_before;
  all.insert(all.end(), seq_after.begin(), seq_after.end());
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_GT(all[i].element, all[i - 1].element)
        << "sequence values must be distinct and increasing:\n" << report;
    EXPECT_GT(all[i].token, all[i - 1].token) << "fencing tokens must increase:\n" << report;
  }
  std::vector<unsigned long long> tokens = tok_before;
  tokens.insert(tokens.end(), tok_after.begin(), tok_after.end());
  std::string tok_report;
  for (auto t : tokens) tok_report += std::to_string(t) + " ";
  for (size_t i = 0; i < tokens.size(); ++i) {
    EXPECT_GT(tokens[i], 0u) << "tokens of 'fenced': " << tok_report;
    if (i > 0) {
      EXPECT_GT(tokens[i], tokens[i - 1]) << "tokens of 'fenced': " << tok_report;
    }
  }
}

}  // namespace
}  // namespace lockmesh::testing
