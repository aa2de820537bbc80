// `lockmesh node` under a service manager (apps/lockmesh/service_notify.h): a real node
// process given $NOTIFY_SOCKET (a path, or an abstract '@' name) and $WATCHDOG_USEC sends
// READY=1 once it serves, WATCHDOG=1 from its loop at half the interval (none while the
// process is stopped: a stuck node is what the watchdog catches), and STOPPING=1 at SIGTERM;
// $WATCHDOG_PID naming another process turns the watchdog off; without $NOTIFY_SOCKET
// nothing is sent.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

// A datagram socket standing in for the service manager's notification socket.
class NotifySocket {
 public:
  // `name`: a path, or "@x" for the abstract name x.
  explicit NotifySocket(const std::string& name) : name_(name) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::string raw = name;
    if (raw[0] == '@') raw[0] = '\0';
    memcpy(sa.sun_path, raw.data(), raw.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + raw.size() +
                                           (raw[0] == '\0' ? 0 : 1));
    ok_ = fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&sa), len) == 0;
  }
  ~NotifySocket() {
    if (fd_ >= 0) close(fd_);
    if (name_[0] != '@') unlink(name_.c_str());
  }
  bool ok() const { return ok_; }

  // The next datagram within `timeout`; "" if none.
  std::string Next(Millis timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return "";
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  // Waits for a datagram containing `what`; every datagram seen goes to *seen.
  bool WaitFor(const std::string& what, Millis timeout, std::vector<std::string>* seen) {
    const Clock::time_point end = Clock::now() + timeout;
    while (Clock::now() < end) {
      std::string d =
          Next(std::chrono::duration_cast<Millis>(end - Clock::now()) + Millis(1));
      if (d.empty()) continue;
      seen->push_back(d);
      if (d.find(what) != std::string::npos) return true;
    }
    return false;
  }
  // Counts datagrams containing `what` during `period`.
  int Count(const std::string& what, Millis period) {
    const Clock::time_point end = Clock::now() + period;
    int n = 0;
    while (Clock::now() < end) {
      std::string d = Next(std::chrono::duration_cast<Millis>(end - Clock::now()) + Millis(1));
      if (d.find(what) != std::string::npos) ++n;
    }
    return n;
  }

 private:
  std::string name_;
  int fd_ = -1;
  bool ok_ = false;
};

class ServiceNotifyTest : public ProcessTest {
 protected:
  Process* StartNode(const std::map<std::string, std::optional<std::string>>& env) {
    return Lockmesh("node", {"node", "--local", "--socket", paths_.socket, "--data-dir",
                             Path("data")},
                    env);
  }

  void ReadyWatchdogStopping(const std::string& notify_name) {
    NotifySocket manager(notify_name);
    ASSERT_TRUE(manager.ok()) << strerror(errno);
    Process* node = StartNode({{"NOTIFY_SOCKET", notify_name}, {"WATCHDOG_USEC", "400000"}});
    std::vector<std::string> seen;
    ASSERT_TRUE(manager.WaitFor("READY=1", Millis(30000), &seen)) << node->Stderr();
    EXPECT_TRUE(SocketAccepts(paths_.socket)) << "READY=1 before the socket serves";
    EXPECT_NE(seen.back().find("MAINPID=" + std::to_string(node->pid())), std::string::npos)
        << seen.back();
    // Every 200 ms: at least 5 in 2 s, even on a loaded machine.
    EXPECT_GE(manager.Count("WATCHDOG=1", Millis(2000)), 5);
    // A stopped process sends none (what the manager's watchdog detects).
    node->Signal(SIGSTOP);
    manager.Count("WATCHDOG=1", Millis(300));  // drain what was queued before the stop
    EXPECT_EQ(manager.Count("WATCHDOG=1", Millis(1000)), 0);
    node->Signal(SIGCONT);
    EXPECT_TRUE(manager.WaitFor("WATCHDOG=1", Millis(10000), &seen));
    node->Signal(SIGTERM);
    EXPECT_TRUE(manager.WaitFor("STOPPING=1", Millis(30000), &seen)) << node->Stderr();
    auto exit = node->Wait(Millis(60000));
    ASSERT_TRUE(exit.has_value());
    EXPECT_TRUE(exit->exited() && exit->code == 0) << *exit << node->Stderr();
  }
};

TEST_F(ServiceNotifyTest, ReadyWatchdogAndStoppingOnAPathSocket) {
  ReadyWatchdogStopping(Path("notify"));
}

TEST_F(ServiceNotifyTest, ReadyWatchdogAndStoppingOnAnAbstractSocket) {
  ReadyWatchdogStopping("@lockmesh-notify-test-" + std::to_string(getpid()));
}

TEST_F(ServiceNotifyTest, WatchdogOfAnotherPidIsNotOurs) {
  NotifySocket manager(Path("notify"));
  ASSERT_TRUE(manager.ok());
  Process* node = StartNode({{"NOTIFY_SOCKET", Path("notify")},
                             {"WATCHDOG_USEC", "200000"},
                             {"WATCHDOG_PID", "1"}});
  std::vector<std::string> seen;
  ASSERT_TRUE(manager.WaitFor("READY=1", Millis(30000), &seen)) << node->Stderr();
  EXPECT_EQ(manager.Count("WATCHDOG=1", Millis(1500)), 0);
}

TEST_F(ServiceNotifyTest, NothingWithoutANotifySocket) {
  NotifySocket manager(Path("notify"));
  ASSERT_TRUE(manager.ok());
  Process* node = StartNode({{"NOTIFY_SOCKET", std::nullopt}, {"WATCHDOG_USEC", "200000"}});
  ASSERT_TRUE(WaitFor([&] { return SocketAccepts(paths_.socket); }, Millis(30000),
                      Millis(50)))
      << node->Stderr();
  EXPECT_EQ(manager.Next(Millis(1000)), "");
}

}  // namespace
}  // namespace lockmesh::testing
