// A mesh of real `lockmesh node` processes, one per "host" (a network namespace of the netns
// harness), for the multi-host tests (tests/cluster/mesh_*_test.cc).
//
// Layout: everything a run writes lives under one short TempDir (/tmp/lmc-XXXXXX), which every
// namespace sees (namespaces share the file system; only the network is separate):
//   <root>/ca/{cert,key}.pem         the cluster's CA (`lockmesh cert ca`), when security is on
//   <root>/h<i>/cert/{cert,key}.pem  host i's certificate, CN = its node id (`lockmesh cert node`)
//   <root>/h<i>/data                 host i's data dir
//   <root>/h<i>.sock                 host i's client socket (UNIX sockets are file-system paths:
//                                    reachable from any namespace, so status polls need no
//                                    `ip netns exec`)
//   <root>/...                       whatever a test puts there (Path())
// Node logs (stderr) are the netns harness's log_dir()/node-h<i>.err. Both trees are removed
// with the cluster; LOCKMESH_CLUSTER_KEEP_LOGS=DIR keeps copies of a failed test's in
// DIR/<suite>.<test>/{logs,shared} (without the data dirs; MeshTest::TearDown).
//
// Timestamps: critical sections and the tests read CLOCK_MONOTONIC (MonotonicNs()), one clock
// for every namespace of the machine. Child commands get it from the tool mode of the test
// binary itself (ToolArgv()): the test executable, started with kToolFlag as its first
// argument, runs a small subcommand before main() and exits. That avoids shell quoting and a
// separate build target.
#ifndef LOCKMESH_TESTS_CLUSTER_SUPPORT_MESH_CLUSTER_H_
#define LOCKMESH_TESTS_CLUSTER_SUPPORT_MESH_CLUSTER_H_

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cluster/support/netns_harness.h"
#include "mesh/status.h"
#include "net/support/process_harness.h"

namespace lockmesh::testing {

/// CLOCK_MONOTONIC in nanoseconds: the one clock tests and tool children compare.
int64_t MonotonicNs();

/// First argument that turns a cluster test binary into its tool (see ToolArgv).
inline constexpr const char kToolFlag[] = "--lockmesh-cluster-tool";

/// argv that runs the tool mode of this very test binary: {/proc/self/exe, kToolFlag, args...}.
/// Subcommands (all timestamps are MonotonicNs, written as decimal text):
///   stamp FILE                 writes the time to FILE (atomically: temp + rename), exits 0
///   hold START STOP [SECONDS]  writes the time to START, then waits (at most SECONDS, default
///                              600); on SIGTERM writes the time to STOP and exits 143
///   increment DIR LOG RUN [MS] one critical section on the shared counter DIR/counter (see
///                              mesh_safety_test.cc for the record format); MS = time spent
///                              inside before the increment (default 20)
///   udp-garbage HOST PORT COUNT SEED
///                              sends COUNT datagrams of random bytes (0-1400 bytes, some
///                              shaped like protobuf) to HOST:PORT; exits 0 if all were sent
std::vector<std::string> ToolArgv(const std::vector<std::string>& args);

struct MeshOptions {
  NetnsOptions net = {.hosts = 3};
  std::string cluster = "lockmesh";
  /// "none" or "mutual" (certificates made with `lockmesh cert`, CN = node id).
  std::string security = "none";
  int expect = 3;
  int voters = 3;
  int session_ttl_s = 10;
  int dead_after_s = 30;
  int election_timeout_ms = 1000;
  /// Added to every node's command line.
  std::vector<std::string> extra_node_args;
  /// Each host is a machine of its own: its nodes run with HostEnv(i) (HOME, XDG_RUNTIME_DIR,
  /// XDG_STATE_HOME and XDG_CONFIG_HOME under <root>/h<i>/) and without --socket and
  /// --data-dir, so that they serve that environment's default socket and data dir, which a
  /// plain `lockmesh lock` run with HostEnv(i) finds. Socket(i) and DataDir(i) name them.
  bool host_environment = false;
};

/// One member as a node's `lockmesh status --json` lists it.
struct MemberView {
  std::string node_id;
  std::string role;
  bool voter = false;
  bool leader = false;
  bool connected = false;
  std::string address;
};

/// A node's `lockmesh status --json`, parsed. ok=false when it did not answer (error says why).
struct NodeView {
  bool ok = false;
  std::string error;
  nlohmann::json raw;
  std::string node_id;
  std::string cluster;
  std::string cluster_id;
  std::string role;
  std::string leader_id;
  uint64_t term = 0;
  uint64_t commit_index = 0;
  int64_t lease_ms = -1;
  int64_t locks_held = 0;
  int64_t locks_waiting = 0;
  std::vector<MemberView> members;
  std::vector<std::string> warnings;

  int Voters() const;
  int Learners() const;
  bool HasMember(const std::string& id) const;
  /// Ids of the voters, sorted.
  std::set<std::string> VoterIds() const;
  /// One line: "h1: follower of h0, term 3, cluster abc, voters h0,h1,h2, learners h3,h4".
  std::string Summary() const;
};

class MeshCluster {
 public:
  /// Creates the namespaces, the directories and (security mutual) the CA and one certificate
  /// per host. Starts no node.
  static mesh::Status Create(const MeshOptions& options, std::unique_ptr<MeshCluster>* out);
  /// Kills every process and removes the namespaces (the netns harness) and the directories.
  ~MeshCluster();
  MeshCluster(const MeshCluster&) = delete;
  MeshCluster& operator=(const MeshCluster&) = delete;

  NetnsCluster& net() { return *net_; }
  const MeshOptions& options() const { return options_; }
  size_t size() const { return net_->size(); }

  /// "h<i>": node id of host i (also its certificate's CN).
  static std::string NodeId(size_t i) { return "h" + std::to_string(i); }
  /// Host index of a node id "h<i>", or nullopt.
  std::optional<size_t> HostOf(const std::string& node_id) const;
  std::string Socket(size_t i) const;
  std::string DataDir(size_t i) const;
  /// The environment of host i's processes with MeshOptions::host_environment (else empty):
  /// HOME=<root>/h<i>/home, XDG_RUNTIME_DIR=<root>/h<i>/run (0700), XDG_STATE_HOME=
  /// <root>/h<i>/state, XDG_CONFIG_HOME=<root>/h<i>/config (LOCKMESH_* are scrubbed anyway).
  std::map<std::string, std::optional<std::string>> HostEnv(size_t i) const;
  /// Directory holding host i's cert.pem and key.pem (security mutual).
  std::string CertDir(size_t i) const { return dir_->Join("h" + std::to_string(i) + "/cert"); }
  std::string CaDir() const { return dir_->Join("ca"); }
  /// A path in the shared directory.
  std::string Path(const std::string& name) const { return dir_->Join(name); }
  /// An address peers can dial on host i: "10.77.0.N:28017", else "[fd00:77::N]:28017".
  std::string PeerAddress(size_t i) const;

  // ---------------------------------------------------------------- certificates
  /// `lockmesh cert ca --out DIR`.
  static mesh::Status MakeCa(const std::string& dir);
  /// `lockmesh cert node --ca CA_DIR --cn CN --out DIR`.
  static mesh::Status MakeNodeCert(const std::string& ca_dir, const std::string& cn,
                                   const std::string& dir);

  // ---------------------------------------------------------------- nodes
  /// The full `lockmesh node` argv of host i with the mesh options (and the TLS files of
  /// CertDir(i) / CaDir() when security is mutual), followed by `extra`.
  std::vector<std::string> NodeArgv(size_t i, const std::vector<std::string>& extra = {}) const;
  /// Starts host i's node (log: net().log_dir()/node-h<i>.err, appended across restarts).
  Process* StartNode(size_t i, const std::vector<std::string>& extra = {});
  /// Starts every host's node, host 0 first.
  void StartAll();
  /// The node process of host i (nullptr if never started).
  Process* node(size_t i) const { return i < nodes_.size() ? nodes_[i] : nullptr; }
  /// kill -9 of host i's node.
  void KillNode(size_t i);
  /// Starts host i's node again with the same command line and data dir.
  Process* RestartNode(size_t i);
  /// A host crash: kill -9 of host i's node and of every other process in its namespace
  /// (clients and their commands). Processes started through this object are reaped.
  void CrashHost(size_t i);
  /// Host i's node log (stderr), "" if none.
  std::string NodeLog(size_t i) const;

  // ---------------------------------------------------------------- status
  /// `lockmesh status --socket S --json` of host i (run in the root namespace: the socket is
  /// a path).
  NodeView Status(size_t i, Millis timeout = Millis(5000)) const;
  /// Waits until every host in `hosts` answers, reports one and the same non-empty cluster id
  /// and leader, `voters` voters and `members` members in all. On timeout returns false and
  /// sets `*why` to the last views (if given).
  bool WaitFormed(const std::vector<size_t>& hosts, int voters, int members, Millis timeout,
                  std::string* why = nullptr) const;
  /// The host of the leader that every host in `hosts` agrees on, or nullopt.
  std::optional<size_t> AgreedLeader(const std::vector<size_t>& hosts) const;
  /// Waits until AgreedLeader(hosts) is a host other than `not_host` (nullopt: any).
  std::optional<size_t> WaitLeader(const std::vector<size_t>& hosts, Millis timeout,
                                   std::optional<size_t> not_host = std::nullopt) const;
  /// 0..size()-1 without `except`.
  std::vector<size_t> HostsExcept(const std::set<size_t>& except = {}) const;
  /// Summaries of every host's status and the tails of the node logs, for failure messages.
  std::string Describe(size_t log_lines = 30) const;

  // ---------------------------------------------------------------- clients
  /// `lockmesh lock --socket S --no-autostart FLAGS... RESOURCE -- COMMAND...`.
  std::vector<std::string> LockArgv(size_t i, const std::string& resource,
                                    const std::vector<std::string>& flags,
                                    const std::vector<std::string>& command) const;
  /// Runs a lock on host i (inside its namespace) to completion. Output: stdout and stderr
  /// (and, if it ran past `timeout` and was killed, code -1 and its node's status and locks).
  /// Thread-safe.
  CommandResult Lock(size_t i, const std::string& resource,
                     const std::vector<std::string>& flags = {},
                     const std::vector<std::string>& command = {"true"},
                     Millis timeout = Millis(30000)) const;
  /// Runs `lockmesh lock ... RESOURCE -- sh -c 'echo token=$LOCKMESH_TOKEN'` on host i; the
  /// token, or 0 (with `*result` holding what happened) if it failed.
  uint64_t LockToken(size_t i, const std::string& resource, CommandResult* result = nullptr,
                     const std::vector<std::string>& flags = {},
                     Millis timeout = Millis(30000)) const;
  /// Starts a lock on host i in the background (log: net().log_dir()/<name>.{out,err}).
  Process* StartLock(size_t i, const std::string& name, const std::string& resource,
                     const std::vector<std::string>& flags,
                     const std::vector<std::string>& command);

 private:
  MeshCluster() = default;

  MeshOptions options_;
  std::unique_ptr<NetnsCluster> net_;
  std::unique_ptr<TempDir> dir_;
  std::vector<Process*> nodes_;
};

/// Reads a decimal MonotonicNs written by the tool; 0 if the file is missing or empty.
int64_t ReadStamp(const std::string& path);

/// Base fixture of the mesh tests: mesh_ made by Make(), everything removed at TearDown (and
/// checked: no namespace or link of the run is left).
class MeshTest : public ::testing::Test {
 protected:
  /// Creates mesh_; a fatal failure if it cannot (call with ASSERT_NO_FATAL_FAILURE).
  void Make(const MeshOptions& options);
  void TearDown() override;

  std::unique_ptr<MeshCluster> mesh_;
};

}  // namespace lockmesh::testing

#endif  // LOCKMESH_TESTS_CLUSTER_SUPPORT_MESH_CLUSTER_H_
