// The `flom` front end (docs/flom.md): FLoM's documented use cases, run
// through the real binary invoked as `flom` (the symlink next to it in the build tree).
//
// Every test is a FLoM user on a fresh machine: HOME is the test's, and ~/.flom names the
// test's socket ([Daemon] SocketName), so the `flom` commands themselves carry no socket
// option and the node they talk to is the one the first of them auto-starts (as FLoM's
// daemon). TearDown kills that node (found by its socket in /proc/*/cmdline).
//
// Holders are `flom ... -- sh -c SCRIPT holder` processes whose script records its element
// ($1: FLoM appends it as the last argument), creates <root>/<tag>.started and waits for
// <root>/<tag>.release; nothing sleeps-and-hopes.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

class FlomUseCaseTest : public ProcessTest {
 protected:
  void SetUp() override {
    ProcessTest::SetUp();
    if (HasFatalFailure()) return;
    flom_ = FlomBinary();
    struct stat st;
    ASSERT_EQ(lstat(flom_.c_str(), &st), 0) << flom_ << " is missing (CMake creates it)";
    ASSERT_TRUE(S_ISLNK(st.st_mode)) << flom_ << " should be a symlink to lockmesh";
    WriteFile(home_ + "/.flom", "[Daemon]\nSocketName=" + paths_.socket + "\n");
  }

  /// Starts `flom ARGS...`.
  Process* Flom(const std::string& name, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {flom_};
    argv.insert(argv.end(), args.begin(), args.end());
    return Spawn(name, argv);
  }

  /// Runs `flom ARGS...` to completion.
  RunResult RunFlom(const std::string& name, const std::vector<std::string>& args,
                    Millis timeout = Millis(30000)) {
    return Finish(Flom(name, args), timeout);
  }

  /// `flom FLAGS... -- sh -c HOLD holder`: records its element in <tag>.elem, then holds the
  /// lock until <tag>.release exists. Waits until it holds; nullptr (and a failure) if not.
  Process* StartFlomHolder(const std::string& tag, const std::vector<std::string>& flags) {
    const std::string script = "printf '%s' \"$1\" > \"$D/" + tag + ".elem\"; touch \"$D/" + tag +
                               ".started\"; while [ ! -e \"$D/" + tag +
                               ".release\" ]; do sleep 0.02; done";
    std::vector<std::string> args = flags;
    for (const char* a : {"--", "sh", "-c"}) args.push_back(a);
    args.push_back(script);
    args.push_back("holder");
    Process* p = Flom(tag, args);
    bool started =
        WaitFor([&] { return FileExists(Path(tag + ".started")) || !p->Running(); }, Millis(30000));
    if (!started || !FileExists(Path(tag + ".started"))) {
      ADD_FAILURE() << "holder " << tag
                    << " did not get its lock: " << Finish(p, Millis(1)).Describe();
      return nullptr;
    }
    return p;
  }

  std::string Element(const std::string& tag) { return ReadFile(Path(tag + ".elem")); }

  std::string flom_;
};

// EX on a simple resource: one holder at a time; -o 0 on the busy resource exits 98 at once
// without running its command, and twelve concurrent racy increments are serialized.
TEST_F(FlomUseCaseTest, ExclusiveLockOnSimpleResource) {
  Process* holder = StartFlomHolder("h", {"-r", "R1", "-l", "EX"});
  ASSERT_NE(holder, nullptr);
  EXPECT_EQ(Element("h"), "") << "a simple resource has no element to append";
  const std::string ran = Path("ran");
  RunResult busy = RunFlom("busy", {"-r", "R1", "-o", "0", "--", "touch", ran});
  EXPECT_EQ(busy.code(), 98) << busy.Describe();
  EXPECT_LT(busy.seconds, 5.0) << busy.Describe();
  EXPECT_FALSE(FileExists(ran)) << "the command ran although R1 was held";
  RunResult timed = RunFlom("timed", {"-r", "R1", "-o", "400", "--", "touch", ran});
  EXPECT_EQ(timed.code(), 98) << timed.Describe();
  EXPECT_GE(timed.seconds, 0.35) << "gave up before the 400 ms timeout: " << timed.Describe();
  EXPECT_FALSE(FileExists(ran));
  ReleaseHolder(holder, "h");

  const std::string counter = Path("counter");
  WriteFile(counter, "0\n");
  std::vector<Process*> runs;
  for (int i = 0; i < 12; ++i) {
    runs.push_back(Flom("incr", {"-r", "R1", "--", "sh", "-c",
                                 "n=$(cat \"$D/counter\"); sleep 0.01; echo $((n + 1)) > "
                                 "\"$D/counter\""}));
  }
  for (Process* p : runs) {
    RunResult r = Finish(p, Millis(60000));
    EXPECT_EQ(r.code(), 0) << r.Describe();
  }
  EXPECT_EQ(ReadFile(counter), "12\n") << "lost updates: flom did not serialize";
}

// Shared modes (FLoM's `flom -r apple -l PR -- cmd`): two PR holders at once; EX and PW are
// busy, CR is compatible (VMS matrix); long names work.
TEST_F(FlomUseCaseTest, SharedModesOnSimpleResource) {
  Process* r1 = StartFlomHolder("r1", {"-r", "apple", "-l", "PR"});
  ASSERT_NE(r1, nullptr);
  Process* r2 = StartFlomHolder("r2", {"-r", "apple", "-l", "ProtectedRead"});
  ASSERT_NE(r2, nullptr) << "a second PR holder must be granted alongside the first";
  EXPECT_EQ(RunFlom("ex", {"-r", "apple", "-o", "0", "--", "true"}).code(), 98);
  EXPECT_EQ(RunFlom("pw", {"-r", "apple", "-l", "PW", "-o", "0", "--", "true"}).code(), 98);
  RunResult cr = RunFlom("cr", {"-r", "apple", "-l", "ConcurrentRead", "-o", "0", "--", "true"});
  EXPECT_EQ(cr.code(), 0) << cr.Describe();
  ReleaseHolder(r1, "r1");
  ReleaseHolder(r2, "r2");
  RunResult ex = RunFlom("ex2", {"-r", "apple", "-l", "Exclusive", "-o", "0", "--", "true"});
  EXPECT_EQ(ex.code(), 0) << ex.Describe();
}

// lockmesh's deliberate difference from FLoM (README, "Moving from FLoM"): strict FIFO. With
// a reader holding and a writer queued, a new reader waits behind the writer (FLoM would
// grant it at once, so a stream of readers could starve the writer).
TEST_F(FlomUseCaseTest, StrictFifoReaderWaitsBehindQueuedWriter) {
  Process* reader = StartFlomHolder("r", {"-r", "F", "-l", "PR"});
  ASSERT_NE(reader, nullptr);
  Process* writer = Flom("w", {"-r", "F", "-l", "EX", "--", "true"});
  ASSERT_TRUE(WaitFor(
      [&] {
        std::vector<mesh::LockInfo> locks;
        return ListLocks(paths_.socket, &locks) && CountLocks(locks, "F", false) == 1;
      },
      Millis(30000)))
      << "the writer never queued";
  RunResult late = RunFlom("late", {"-r", "F", "-l", "PR", "-o", "0", "--", "true"});
  EXPECT_EQ(late.code(), 98) << "a reader arriving after a queued writer must not overtake it: "
                             << late.Describe();
  ReleaseHolder(reader, "r");
  RunResult w = Finish(writer, Millis(30000));
  EXPECT_EQ(w.code(), 0) << w.Describe();
}

// `flom -r limit[2] -q N`: a pool of two units.
TEST_F(FlomUseCaseTest, NumericResourceWithQuantities) {
  Process* a = StartFlomHolder("a", {"-r", "limit[2]"});
  ASSERT_NE(a, nullptr);
  Process* b = StartFlomHolder("b", {"-r", "limit[2]", "-q", "1"});
  ASSERT_NE(b, nullptr) << "two units: the second holder fits";
  EXPECT_EQ(RunFlom("third", {"-r", "limit[2]", "-o", "0", "--", "true"}).code(), 98);
  ReleaseHolder(a, "a");
  EXPECT_EQ(RunFlom("two", {"-r", "limit[2]", "-q", "2", "-o", "0", "--", "true"}).code(), 98)
      << "one unit is still held";
  RunResult impossible = RunFlom("three", {"-r", "limit[2]", "-q", "3", "--", "true"});
  EXPECT_EQ(impossible.code(), 99)
      << "3 units of 2 can never be granted: " << impossible.Describe();
  ReleaseHolder(b, "b");
  RunResult both = RunFlom("both", {"-r", "limit[2]", "-q", "2", "-o", "0", "--", "true"});
  EXPECT_EQ(both.code(), 0) << both.Describe();
}

// `flom -r cyan.magenta.yellow -- cmd`: each holder gets a free element, appended as the
// command's last argument; a fourth finds none free.
TEST_F(FlomUseCaseTest, SetHandsOutElementsAsLastArgument) {
  RunResult echo = RunFlom("echo", {"-r", "cyan.magenta.yellow", "--", "echo", "got"});
  EXPECT_EQ(echo.code(), 0) << echo.Describe();
  EXPECT_EQ(echo.out, "got cyan\n") << "the element must be the last argument";

  std::vector<Process*> holders;
  std::set<std::string> elements;
  for (const char* tag : {"s1", "s2", "s3"}) {
    Process* p = StartFlomHolder(tag, {"-r", "cyan.magenta.yellow"});
    ASSERT_NE(p, nullptr);
    holders.push_back(p);
    elements.insert(Element(tag));
  }
  EXPECT_EQ(elements, (std::set<std::string>{"cyan", "magenta", "yellow"}));
  EXPECT_EQ(RunFlom("fourth", {"-r", "cyan.magenta.yellow", "-o", "0", "--", "true"}).code(), 98);
  ReleaseHolder(holders[1], "s2");
  RunResult again = RunFlom("again", {"-r", "cyan.magenta.yellow", "--", "echo"});
  EXPECT_EQ(again.code(), 0) << again.Describe();
  EXPECT_EQ(again.out, Element("s2") + "\n") << "the freed element is the only one free";
  ReleaseHolder(holders[0], "s1");
  ReleaseHolder(holders[2], "s3");
}

// FLoM's hierarchical example: /foo/bar locked, /foo/bar/apple conflicts, a sibling does
// not; PR on the parent lets PR on the child through.
TEST_F(FlomUseCaseTest, HierarchicalResources) {
  Process* ex = StartFlomHolder("ex", {"-r", "/a/b"});
  ASSERT_NE(ex, nullptr);
  EXPECT_EQ(RunFlom("child", {"-r", "/a/b/c", "-o", "0", "--", "true"}).code(), 98);
  EXPECT_EQ(RunFlom("parent", {"-r", "/a", "-o", "0", "--", "true"}).code(), 98);
  RunResult sibling = RunFlom("sibling", {"-r", "/a/x", "-o", "0", "--", "true"});
  EXPECT_EQ(sibling.code(), 0) << sibling.Describe();
  ReleaseHolder(ex, "ex");

  Process* pr = StartFlomHolder("pr", {"-r", "/foo/bar", "-l", "PR"});
  ASSERT_NE(pr, nullptr);
  RunResult reader =
      RunFlom("reader", {"-r", "/foo/bar/apple", "-l", "PR", "-o", "0", "--", "true"});
  EXPECT_EQ(reader.code(), 0) << reader.Describe();
  EXPECT_EQ(RunFlom("writer", {"-r", "/foo/bar/apple", "-l", "EX", "-o", "0", "--", "true"}).code(),
            98);
  ReleaseHolder(pr, "pr");
}

// `flom -r _s_id[1] -- echo`: 1, 2, 3...; a failing command does not give its value back.
// `_S_` (transactional): the value of a failing command (rollback) is handed out again.
TEST_F(FlomUseCaseTest, SequencesAndTransactionalRollback) {
  std::vector<std::string> plain;
  for (int i = 0; i < 2; ++i) {
    RunResult r = RunFlom("s", {"-r", "_s_x[1]", "--", "echo"});
    EXPECT_EQ(r.code(), 0) << r.Describe();
    plain.push_back(r.out);
  }
  RunResult fail =
      RunFlom("sfail", {"-r", "_s_x[1]", "--", "sh", "-c", "echo \"$1\"; exit 3", "cmd"});
  EXPECT_EQ(fail.code(), 3) << "flom exits with the command's status: " << fail.Describe();
  RunResult next = RunFlom("s", {"-r", "_s_x[1]", "--", "echo"});
  EXPECT_EQ(plain, (std::vector<std::string>{"1\n", "2\n"}));
  EXPECT_EQ(fail.out, "3\n");
  EXPECT_EQ(next.out, "4\n") << "_s_ never gives a value back";

  RunResult t1 = RunFlom("t", {"-r", "_S_x[1]", "--", "echo"});
  RunResult tfail =
      RunFlom("tfail", {"-r", "_S_x[1]", "--", "sh", "-c", "echo \"$1\"; exit 3", "cmd"});
  RunResult t2 = RunFlom("t", {"-r", "_S_x[1]", "--", "echo"});
  RunResult t3 = RunFlom("t", {"-r", "_S_x[1]", "--", "echo"});
  EXPECT_EQ(t1.out, "1\n") << t1.Describe();
  EXPECT_EQ(tfail.code(), 3) << tfail.Describe();
  EXPECT_EQ(tfail.out, "2\n");
  EXPECT_EQ(t2.out, "2\n") << "the rolled-back value 2 must be handed out again";
  EXPECT_EQ(t3.out, "3\n");
}

// `flom -r "_t_%Y%m%d%H%M%S#fff[1]" -- echo`: unique, increasing timestamps.
TEST_F(FlomUseCaseTest, TimestampResource) {
  const std::string resource = "_t_%Y%m%d%H%M%S.#fff[1]";
  std::vector<std::string> stamps;
  for (int i = 0; i < 3; ++i) {
    RunResult r = RunFlom("ts", {"-r", resource, "--", "echo"});
    ASSERT_EQ(r.code(), 0) << r.Describe();
    ASSERT_FALSE(r.out.empty());
    stamps.push_back(r.out.substr(0, r.out.size() - 1));
  }
  std::regex shape("[0-9]{14}\\.[0-9]{3}");
  for (size_t i = 0; i < stamps.size(); ++i) {
    EXPECT_TRUE(std::regex_match(stamps[i], shape)) << stamps[i];
    if (i > 0) {
      EXPECT_LT(stamps[i - 1], stamps[i]) << "timestamps must be unique and increase";
    }
  }
}

// FLoM's exit codes: 97 for a command that cannot be run (or none), 96 for -e no -o 0 on a
// resource nobody holds, 98/99 above; otherwise the command's own status.
TEST_F(FlomUseCaseTest, ExitCodes) {
  RunResult missing = RunFlom("missing", {"-r", "R", "--", "/nonexistent/command"});
  EXPECT_EQ(missing.code(), 97) << missing.Describe();
  RunResult none = RunFlom("none", {"-r", "R"});
  EXPECT_EQ(none.code(), 97) << none.Describe();
  EXPECT_NE(none.err.find("No command to execute!"), std::string::npos) << none.err;
  RunResult cant_wait = RunFlom("cantwait", {"-r", "nobody", "-e", "no", "-o", "0", "--", "true"});
  EXPECT_EQ(cant_wait.code(), 96) << cant_wait.Describe();
  RunResult status = RunFlom("status", {"--", "sh", "-c", "exit 7"});
  EXPECT_EQ(status.code(), 7) << status.Describe();
  RunResult bad_name = RunFlom("badname", {"-r", "no spaces", "--", "true"});
  EXPECT_EQ(bad_name.code(), 99) << bad_name.Describe();
  EXPECT_NE(bad_name.err.find("flom: "), std::string::npos) << bad_name.err;

  // -e no waits (FLoM's incubator) until someone creates the resource.
  Process* waiter = Flom("waiter", {"-r", "later", "-e", "no", "--", "true"});
  Process* creator = StartFlomHolder("creator", {"-r", "later"});
  ASSERT_NE(creator, nullptr);
  // Release only once the waiter is queued behind the creator.
  EXPECT_TRUE(WaitFor(
      [&] {
        std::vector<mesh::LockInfo> locks;
        return ListLocks(paths_.socket, &locks) && CountLocks(locks, "later", false) == 1;
      },
      Millis(30000)))
      << "the -e no request never showed up in the queue";
  ReleaseHolder(creator, "creator");
  RunResult w = Finish(waiter, Millis(30000));
  EXPECT_EQ(w.code(), 0) << w.Describe();
}

// FLoM's -i: a resource outlives its last holder by its idle lifespan, so that a later job
// with -e no finds it (FLoM's man page: "so that a later job with -e no does not wait
// forever"); without -i, or once the lifespan has passed, -e no -o 0 exits 96.
TEST_F(FlomUseCaseTest, IdleLifespanLetsALaterNoCreateJobFindTheResource) {
  RunResult producer = RunFlom("producer", {"-r", "handoff", "-i", "60000", "--", "true"});
  ASSERT_EQ(producer.code(), 0) << producer.Describe();
  EXPECT_EQ(producer.err, "") << "-i is honoured now, without a warning";
  RunResult consumer =
      RunFlom("consumer", {"-r", "handoff", "-e", "no", "-o", "0", "--", "echo", "found"});
  EXPECT_EQ(consumer.code(), 0) << consumer.Describe();
  EXPECT_EQ(consumer.out, "found\n");
  // A waiting -e no job (no -o) is granted at once too, instead of waiting for a creator.
  RunResult waiting = RunFlom("waiting", {"-r", "handoff", "-e", "no", "--", "true"});
  EXPECT_EQ(waiting.code(), 0) << waiting.Describe();
  EXPECT_LT(waiting.seconds, 20) << waiting.Describe();

  RunResult plain = RunFlom("plain", {"-r", "nolinger", "--", "true"});
  ASSERT_EQ(plain.code(), 0) << plain.Describe();
  RunResult gone = RunFlom("gone", {"-r", "nolinger", "-e", "no", "-o", "0", "--", "true"});
  EXPECT_EQ(gone.code(), 96) << gone.Describe();

  // The lifespan is measured from the last release: once it has passed, the resource is gone.
  RunResult brief = RunFlom("brief", {"-r", "brief", "-i", "1000", "--", "true"});
  ASSERT_EQ(brief.code(), 0) << brief.Describe();
  const auto released = std::chrono::steady_clock::now();
  std::this_thread::sleep_until(released + std::chrono::milliseconds(1500));  // time must pass
  RunResult expired = RunFlom("expired", {"-r", "brief", "-e", "no", "-o", "0", "--", "true"});
  EXPECT_EQ(expired.code(), 96) << expired.Describe();
}

}  // namespace
}  // namespace lockmesh::testing
