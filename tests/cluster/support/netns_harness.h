// Multi-host test harness: "hosts" are Linux network namespaces joined by veth pairs to a
// bridge that the test creates; real processes run inside them (`ip netns exec`).
//
//   bridge <tag>br (root namespace, no address, multicast snooping off)
//     |-- <tag>v0 == eth0 in namespace <tag>-h0   10.77.0.1/24   fd00:77::1/64
//     |-- <tag>v1 == eth0 in namespace <tag>-h1   10.77.0.2/24   fd00:77::2/64
//     ...
//
// Each namespace has `lo` up with multicast on, eth0 up, and routes for 224.0.0.0/4 and
// ff00::/8 on eth0, so that multicast works without naming an interface. The addresses are
// the same in every run: they exist only inside the run's own namespaces, and runs never share
// a bridge. Names carry a tag made of the test process's pid (and a counter), so parallel runs
// never collide, and a later run can tell the leftovers of a crashed one (its pid is gone) and
// remove them (CleanupLeftovers, called by Create).
//
// Faults: a host's link down/up (its veth on the bridge side), isolation (veth taken off the
// bridge, link still up), packet loss and delay on a host's egress (tc netem; where the kernel
// lacks netem, loss falls back to an nftables rule and delay is Unavailable), and kill -9 /
// restart of a process.
//
// Everything is undone by the destructor — processes (and anything else running in the
// namespaces), links, the bridge and the namespaces — also when the test fails or throws.
//
// Needs root and iproute2. Tests call LOCKMESH_REQUIRE_NETNS() first: it skips loudly with the
// reason, or fails when CI=true (CI must not silently run without its multi-host tests).
#ifndef LOCKMESH_TESTS_CLUSTER_SUPPORT_NETNS_HARNESS_H_
#define LOCKMESH_TESTS_CLUSTER_SUPPORT_NETNS_HARNESS_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "mesh/status.h"
#include "net/support/process_harness.h"

namespace lockmesh::testing {

/// "" when network-namespace tests can run here; otherwise why not (not root, no `ip`, the
/// kernel refuses namespaces, ...). Probed once per process.
std::string NetnsUnavailableReason();

/// True when the environment says CI=true.
bool InCi();

/// Skips the current test loudly when namespaces are unavailable, or fails it under CI.
#define LOCKMESH_REQUIRE_NETNS()                                                       \
  do {                                                                                 \
    std::string lockmesh_netns_reason = ::lockmesh::testing::NetnsUnavailableReason(); \
    if (!lockmesh_netns_reason.empty()) {                                              \
      if (::lockmesh::testing::InCi()) {                                               \
        FAIL() << "multi-host test cannot run under CI: " << lockmesh_netns_reason;    \
      }                                                                                \
      GTEST_SKIP() << "SKIPPED (no network namespaces): " << lockmesh_netns_reason;    \
    }                                                                                  \
  } while (0)

/// The outcome of one command run to completion.
struct CommandResult {
  int code = -1;       // exit code; -1 if it could not run or was killed at its deadline
  std::string output;  // stdout and stderr together
};

/// Runs argv (looked up in PATH) to completion, at most `timeout`.
CommandResult RunCommand(const std::vector<std::string>& argv, Millis timeout = Millis(20000));

struct NetnsOptions {
  int hosts = 3;     // 1-50
  bool ipv4 = true;  // 10.77.0.N/24
  bool ipv6 = true;  // fd00:77::N/64; with ipv4 false the hosts are IPv6-only
};

struct NetnsHost {
  size_t index = 0;
  std::string netns;        // namespace name
  std::string bridge_port;  // the veth end on the bridge, in the root namespace
  std::string ifname;       // the veth end inside the namespace ("eth0")
  std::string ipv4;         // "" when IPv4 is off
  std::string ipv6;         // "" when IPv6 is off
};

class NetnsCluster {
 public:
  /// Creates the bridge and `options.hosts` namespaces. On failure, whatever was made is
  /// removed and the error says which command failed and its output.
  static mesh::Status Create(const NetnsOptions& options, std::unique_ptr<NetnsCluster>* out);

  /// Removes everything: Destroy().
  ~NetnsCluster();
  NetnsCluster(const NetnsCluster&) = delete;
  NetnsCluster& operator=(const NetnsCluster&) = delete;

  /// The run's name prefix ("lmn" + pid + counter): every namespace and link starts with it.
  const std::string& tag() const { return tag_; }
  size_t size() const { return hosts_.size(); }
  const NetnsHost& host(size_t i) const { return hosts_.at(i); }
  /// Where process output goes: <dir>/<name>.out and .err.
  const std::string& log_dir() const { return logs_->path(); }

  // ---------------------------------------------------------------- processes
  /// Starts argv inside host `i` (argv[0] looked up in PATH or absolute), stdout and stderr to
  /// log_dir()/<name>.out/.err. The cluster owns it; it is killed at Destroy at the latest.
  Process* Run(size_t i, const std::string& name, const std::vector<std::string>& argv,
               const std::map<std::string, std::optional<std::string>>& env = {});
  /// kill -9 of the process group, and reap.
  void Kill(Process* p) { p->Kill(); }
  /// Starts the same command again on the same host; output is appended to the same files.
  Process* Restart(Process* p);
  /// Runs a command inside host `i` to completion.
  CommandResult Exec(size_t i, const std::vector<std::string>& argv,
                     Millis timeout = Millis(20000));

  // ---------------------------------------------------------------- faults
  /// Takes host i's link down (the bridge end of its veth; eth0 inside loses carrier) / up.
  mesh::Status LinkDown(size_t i);
  mesh::Status LinkUp(size_t i);
  /// Takes host i's veth off the bridge (links stay up, frames go nowhere) / puts it back.
  mesh::Status Isolate(size_t i);
  mesh::Status Rejoin(size_t i);
  /// Drops `percent` of host i's outgoing packets (netem, else nftables).
  mesh::Status SetLoss(size_t i, double percent);
  /// Delays host i's outgoing packets (netem only: Unavailable without it).
  mesh::Status SetDelay(size_t i, int delay_ms, int jitter_ms = 0);
  /// Removes loss and delay from host i.
  mesh::Status ClearImpairment(size_t i);
  /// Whether the kernel has tc netem (probed once).
  static bool NetemAvailable();

  /// Kills every process, removes namespaces, veths and the bridge. Idempotent.
  void Destroy();

  /// Removes namespaces and links whose tag names a process that no longer exists (a crashed
  /// run), killing what still runs inside them. Returns how many objects were removed.
  static int CleanupLeftovers();

  /// Namespaces and links (in the root namespace) whose names start with `prefix`.
  static std::vector<std::string> NamespacesWithPrefix(const std::string& prefix);
  static std::vector<std::string> LinksWithPrefix(const std::string& prefix);

 private:
  NetnsCluster() = default;
  mesh::Status Build(const NetnsOptions& options);
  // Runs argv; a non-zero exit becomes an IOError naming the command and its output.
  static mesh::Status Must(const std::vector<std::string>& argv);
  void KillNamespaceProcesses(const std::string& netns);

  std::string tag_;
  std::string bridge_;
  std::vector<NetnsHost> hosts_;
  std::unique_ptr<TempDir> logs_;
  struct Owned {
    size_t host;
    std::string name;
    std::vector<std::string> argv;
    std::map<std::string, std::optional<std::string>> env;
    std::unique_ptr<Process> process;
  };
  std::vector<Owned> processes_;
  bool destroyed_ = false;
};

}  // namespace lockmesh::testing

#endif  // LOCKMESH_TESTS_CLUSTER_SUPPORT_NETNS_HARNESS_H_
