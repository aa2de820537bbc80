// `lockmesh lock` says that it waits (apps/lockmesh/wait_message.h): on a terminal, after
// 1 s, one line on stderr naming the holder (pid, node, command) and the queue position,
// rewritten in place and cleared once the lock is granted; "no leader/quorum" on a mesh node
// that has none; `--verbose` prints it without a terminal (one line per change), `--quiet`
// never, and without a terminal nothing is said by default.
//
// The terminal is a real pseudo-terminal (posix_openpt) that is the controlling terminal
// and stdin/stdout/stderr of the real `lockmesh lock`; the node is a real explicit node
// (and, for the no-quorum case, a real mesh node whose cluster has not formed); the holder
// is another real `lockmesh lock`.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/process_harness.h"

extern char** environ;

namespace lockmesh::testing {
namespace {

/// A child whose controlling terminal, stdin, stdout and stderr are the slave side of a
/// pseudo-terminal; the test reads what it writes from the master side. Killed (its
/// session's process group) and reaped when destroyed.
class PtyProcess {
 public:
  PtyProcess(const std::vector<std::string>& argv,
             const std::map<std::string, std::optional<std::string>>& env_changes,
             unsigned short columns = 250) {
    master_ = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master_ < 0 || grantpt(master_) != 0 || unlockpt(master_) != 0) {
      error_ = std::string("posix_openpt: ") + strerror(errno);
      return;
    }
    const char* slave_name = ptsname(master_);
    if (slave_name == nullptr) {
      error_ = "ptsname failed";
      return;
    }
    std::string slave = slave_name;
    winsize ws{};
    ws.ws_row = 40;
    ws.ws_col = columns;
    // Everything the child needs is built before fork (the test may have threads).
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string entry = *e;
      std::string key = entry.substr(0, entry.find('='));
      if (key.rfind("LOCKMESH_", 0) == 0 || env_changes.count(key) > 0) continue;
      env_strings.push_back(entry);
    }
    for (const auto& [k, v] : env_changes) {
      if (v) env_strings.push_back(k + "=" + *v);
    }
    std::vector<char*> envp;
    for (std::string& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> args = argv;
    std::vector<char*> argvp;
    for (std::string& s : args) argvp.push_back(s.data());
    argvp.push_back(nullptr);
    start_ = Clock::now();
    pid_ = fork();
    if (pid_ < 0) {
      error_ = std::string("fork: ") + strerror(errno);
      return;
    }
    if (pid_ == 0) {
      setsid();  // a new session, without a terminal; opening the slave makes it ours
      int fd = open(slave.c_str(), O_RDWR);
      if (fd < 0) _exit(126);
      ioctl(fd, TIOCSCTTY, 0);
      ioctl(fd, TIOCSWINSZ, &ws);
      dup2(fd, 0);
      dup2(fd, 1);
      dup2(fd, 2);
      if (fd > 2) close(fd);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      execve(argvp[0], argvp.data(), envp.data());
      _exit(127);
    }
    fcntl(master_, F_SETFL, fcntl(master_, F_GETFL) | O_NONBLOCK);
  }

  ~PtyProcess() {
    if (pid_ > 0 && !status_) {
      kill(-pid_, SIGKILL);
      kill(pid_, SIGKILL);
      int st = 0;
      waitpid(pid_, &st, 0);
    }
    if (master_ >= 0) close(master_);
  }

  const std::string& error() const { return error_; }
  pid_t pid() const { return pid_; }

  /// Everything the child has written so far (reads what is available).
  const std::string& Output() {
    char buffer[4096];
    for (;;) {
      ssize_t n = read(master_, buffer, sizeof buffer);
      if (n > 0) {
        output_.append(buffer, static_cast<size_t>(n));
        continue;
      }
      break;  // EAGAIN: nothing more now; EIO: the slave side is closed
    }
    return output_;
  }

  /// Seconds from the start to when `text` first appeared in the output, waiting up to
  /// `timeout` for it; -1 if it did not appear.
  double WaitForText(const std::string& text, Millis timeout) {
    double at = -1;
    WaitFor(
        [&] {
          if (Output().find(text) == std::string::npos) return false;
          at = SecondsSince(start_);
          return true;
        },
        timeout);
    return at;
  }

  /// The exit code (or -1000 - signal), waiting up to `timeout`; -1 on timeout.
  int Wait(Millis timeout) {
    WaitFor(
        [&] {
          Output();
          int st = 0;
          if (waitpid(pid_, &st, WNOHANG) == pid_) status_ = st;
          return status_.has_value();
        },
        timeout);
    Output();
    if (!status_) return -1;
    return WIFEXITED(*status_) ? WEXITSTATUS(*status_) : -1000 - WTERMSIG(*status_);
  }

 private:
  int master_ = -1;
  pid_t pid_ = -1;
  std::string error_;
  std::string output_;
  std::optional<int> status_;
  Clock::time_point start_;
};

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

/// The output with the terminal's "\r\n" (ONLCR) turned back into "\n", for messages.
std::string Visible(std::string text) {
  std::string out;
  for (char c : text) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\033') {
      out += "\\e";
    } else {
      out += c;
    }
  }
  return out;
}

class LockWaitMessageTest : public ProcessTest {
 protected:
  void SetUp() override {
    ProcessTest::SetUp();
    ASSERT_NE(StartTestNode(), nullptr);
  }

  /// `lockmesh lock ...` on a pseudo-terminal.
  std::unique_ptr<PtyProcess> LockOnTerminal(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {LockmeshBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto p = std::make_unique<PtyProcess>(argv, Env());
    EXPECT_EQ(p->error(), "");
    return p;
  }

  /// What a line about holder `holder` (a `lockmesh lock demo -- sh -c ...`) says.
  static std::string HolderText(const Process* holder) {
    return "by pid " + std::to_string(holder->pid()) + " on node ";
  }
};

TEST_F(LockWaitMessageTest, OnATerminalTheLineNamesTheHolderAndPositionAndIsClearedOnGrant) {
  Process* holder = StartHolder("demo", "h");
  ASSERT_NE(holder, nullptr);
  auto waiter = LockOnTerminal(LockArgs("demo", {"echo", "granted-marker"}));
  // After about 1 s (not before: the first poll is due at 1 s), in place: "\r" first.
  double at = waiter->WaitForText("queue position 1 of 1", Millis(30000));
  ASSERT_GE(at, 0) << Visible(waiter->Output());
  EXPECT_GE(at, 0.9) << Visible(waiter->Output());
  ASSERT_NE(waiter->WaitForText(HolderText(holder), Millis(30000)), -1)
      << Visible(waiter->Output());
  std::string out = waiter->Output();
  EXPECT_EQ(out.rfind("\rlockmesh: waiting ", 0), 0u) << Visible(out);
  EXPECT_NE(out.find("for 'demo'"), std::string::npos) << Visible(out);
  EXPECT_NE(out.find("(EX): lockmesh lock demo -- sh -c"), std::string::npos) << Visible(out);
  // Rewritten in place once per second: a second "\r...waiting" with no newline between.
  ASSERT_GE(waiter->WaitForText("waiting 2 s for 'demo'", Millis(30000)), 0)
      << Visible(waiter->Output());
  out = waiter->Output();
  EXPECT_GE(Count(out, "\rlockmesh: waiting "), 2u) << Visible(out);
  EXPECT_EQ(out.find('\n'), std::string::npos) << "the line is one line: " << Visible(out);
  EXPECT_NE(out.find("\033[K"), std::string::npos) << Visible(out);
  EXPECT_EQ(waiter->Wait(Millis(0)), -1) << "still waiting";

  ReleaseHolder(holder, "h");
  EXPECT_EQ(waiter->Wait(Millis(30000)), 0) << Visible(waiter->Output());
  out = waiter->Output();
  // Cleared before the command's output: the last line written ends with "\r" + clear.
  size_t marker = out.find("granted-marker");
  ASSERT_NE(marker, std::string::npos) << Visible(out);
  size_t last_line = out.rfind("\rlockmesh: waiting ");
  ASSERT_NE(last_line, std::string::npos);
  EXPECT_LT(last_line, marker);
  EXPECT_EQ(out.substr(marker - 4, 4), "\r\033[K") << Visible(out);
  EXPECT_EQ(out.find("got 'demo'"), std::string::npos) << "no final line without -v";
}

TEST_F(LockWaitMessageTest, TheSecondWaiterIsPositionTwo) {
  Process* holder = StartHolder("demo", "h");
  ASSERT_NE(holder, nullptr);
  Process* first = Lockmesh("first", LockArgs("demo", {"true"}));
  ASSERT_TRUE(WaitFor(
      [&] {
        std::vector<mesh::LockInfo> locks;
        return ListLocks(paths_.socket, &locks) && CountLocks(locks, "demo", false) == 1;
      },
      Millis(30000)))
      << first->Stderr();
  auto waiter = LockOnTerminal(LockArgs("demo", {"true"}));
  ASSERT_GE(waiter->WaitForText("queue position 2 of 2", Millis(30000)), 0)
      << Visible(waiter->Output());
  EXPECT_NE(waiter->Output().find(HolderText(holder)), std::string::npos)
      << Visible(waiter->Output());
  ReleaseHolder(holder, "h");
  EXPECT_EQ(Finish(first, Millis(30000)).code(), 0);
  EXPECT_EQ(waiter->Wait(Millis(30000)), 0) << Visible(waiter->Output());
}

TEST_F(LockWaitMessageTest, VerboseWithoutATerminalPrintsOneLinePerChange) {
  Process* holder = StartHolder("demo", "h");
  ASSERT_NE(holder, nullptr);
  Process* waiter = Lockmesh("waiter", LockArgs("demo", {"true"}, {"--verbose"}));
  const std::string expected = "queue position 1 of 1; held ";
  ASSERT_TRUE(
      WaitFor([&] { return waiter->Stderr().find(expected) != std::string::npos; }, Millis(30000)))
      << waiter->Stderr();
  EXPECT_NE(waiter->Stderr().find(HolderText(holder)), std::string::npos) << waiter->Stderr();
  // Nothing changes for a while (several polls): still one line. The wait is the point here.
  usleep(2500 * 1000);
  ReleaseHolder(holder, "h");
  RunResult r = Finish(waiter, Millis(30000));
  EXPECT_EQ(r.code(), 0) << r.Describe();
  // One line per change: the one with the holder and the position once, however many polls
  // saw it (a loaded node may first answer without the request applied: a line before it).
  std::vector<std::string> lines = SplitLines(r.err);
  ASSERT_GE(lines.size(), 2u) << r.err;
  size_t with_holder = 0;
  for (const std::string& line : lines) {
    if (line.find(expected) == std::string::npos) continue;
    ++with_holder;
    EXPECT_EQ(line.rfind("lockmesh: waiting ", 0), 0u) << r.err;
    EXPECT_NE(line.find(" s for 'demo', queue position 1 of 1; held "), std::string::npos) << r.err;
  }
  EXPECT_EQ(with_holder, 1u) << r.err;
  EXPECT_LE(lines.size(), 3u) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
  EXPECT_EQ(lines.back().rfind("lockmesh: got 'demo' after ", 0), 0u) << r.err;
}

TEST_F(LockWaitMessageTest, QuietSaysNothingAndNoTerminalSaysNothingByDefault) {
  Process* holder = StartHolder("demo", "h");
  ASSERT_NE(holder, nullptr);
  auto quiet = LockOnTerminal(LockArgs("demo", {"echo", "granted-marker"}, {"--quiet"}));
  Process* plain = Lockmesh("plain", LockArgs("demo", {"true"}));
  ASSERT_TRUE(WaitFor(
      [&] {
        std::vector<mesh::LockInfo> locks;
        return ListLocks(paths_.socket, &locks) && CountLocks(locks, "demo", false) == 2;
      },
      Millis(30000)));
  // Both have waited past several polls' worth of time (the point of the wait).
  usleep(2500 * 1000);
  EXPECT_EQ(quiet->Output(), "") << Visible(quiet->Output());
  EXPECT_EQ(plain->Stderr(), "");
  ReleaseHolder(holder, "h");
  EXPECT_EQ(quiet->Wait(Millis(30000)), 0) << Visible(quiet->Output());
  RunResult r = Finish(plain, Millis(30000));
  EXPECT_EQ(r.code(), 0) << r.Describe();
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(quiet->Output(), "granted-marker\r\n");
}

// The `flom` front end stays silent while waiting, as FLoM is, unless -V (verbose) is given.
TEST_F(LockWaitMessageTest, FlomSaysItWaitsOnlyWithVerbose) {
  Process* holder = StartHolder("demo", "h");
  ASSERT_NE(holder, nullptr);
  Process* verbose = Lockmesh(
      "flom-v", {"flom", "-V", "-s", paths_.socket, "-d", "0", "-r", "demo", "--", "true"});
  Process* plain =
      Lockmesh("flom", {"flom", "-s", paths_.socket, "-d", "0", "-r", "demo", "--", "true"});
  ASSERT_TRUE(WaitFor(
      [&] { return verbose->Stderr().find("flom: waiting 1 s for 'demo'") != std::string::npos; },
      Millis(30000)))
      << verbose->Stderr();
  EXPECT_NE(verbose->Stderr().find(HolderText(holder)), std::string::npos) << verbose->Stderr();
  ReleaseHolder(holder, "h");
  RunResult v = Finish(verbose, Millis(30000));
  RunResult p = Finish(plain, Millis(30000));
  EXPECT_EQ(v.code(), 0) << v.Describe();
  EXPECT_EQ(p.code(), 0) << p.Describe();
  EXPECT_NE(v.err.find("flom: got 'demo' after "), std::string::npos) << v.err;
  EXPECT_EQ(p.err.find("waiting"), std::string::npos) << p.err;
}

// A mesh node whose cluster has not formed (--expect 2, the other node never started) has
// no leader: the line says so.
class LockWaitNoQuorumTest : public ProcessTest {};

TEST_F(LockWaitNoQuorumTest, AMeshNodeWithoutALeaderSaysNoLeaderOrQuorum) {
  const int port = LoopbackPortBlock(2);
  ASSERT_GT(port, 0);
  const std::string join =
      "127.0.0.1:" + std::to_string(port) + ",127.0.0.1:" + std::to_string(port + 1);
  Process* node =
      Lockmesh("mesh", {"node", "--socket", paths_.socket, "--data-dir", paths_.data_dir,
                        "--node-id", "q1", "--listen", "127.0.0.1:" + std::to_string(port),
                        "--no-multicast", "--expect", "2", "--join", join});
  ASSERT_TRUE(
      WaitFor([&] { return !node->Running() || SocketAccepts(paths_.socket); }, Millis(30000)));
  ASSERT_TRUE(node->Running()) << node->Stderr();
  std::vector<std::string> argv = {LockmeshBinary()};
  for (const std::string& a : LockArgs("demo", {"true"}, {"-w", "60"})) argv.push_back(a);
  PtyProcess waiter(argv, Env());
  ASSERT_EQ(waiter.error(), "");
  ASSERT_GE(waiter.WaitForText("for 'demo': no leader/quorum (this node: ", Millis(30000)), 0)
      << Visible(waiter.Output()) << "\n"
      << node->Stderr();
}

}  // namespace
}  // namespace lockmesh::testing
