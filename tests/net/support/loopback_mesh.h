// LoopbackMeshTest: a fixture for meshes of real `lockmesh node` processes on loopback,
// found through --join (no multicast, no namespaces, no root). Ports come from the test's
// pid, so tests of other processes can run beside it.
#ifndef LOCKMESH_TESTS_NET_SUPPORT_LOOPBACK_MESH_H_
#define LOCKMESH_TESTS_NET_SUPPORT_LOOPBACK_MESH_H_

#include <unistd.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "net/support/process_harness.h"

namespace lockmesh::testing {

using Json = nlohmann::json;

class LoopbackMeshTest : public ProcessTest {
 protected:
  void SetUp() override {
    ProcessTest::SetUp();
    // Ports of this test process only; CTest may run other tests in parallel. Node i
    // listens on base_port_ + i (1..6).
    base_port_ = LoopbackPortBlock(7);
  }

  std::string Address(int i) const { return "127.0.0.1:" + std::to_string(base_port_ + i); }
  std::string Socket(int i) const { return Path("n" + std::to_string(i) + ".sock"); }
  std::string Id(int i) const { return "n" + std::to_string(i); }

  // Starts node i of n (1-based); every node is given every address with --join.
  Process* StartMeshNode(int i, int n, const std::vector<std::string>& extra = {},
                         const std::string& session_ttl = "2") {
    std::string join;
    for (int j = 1; j <= n; ++j) join += (join.empty() ? "" : ",") + Address(j);
    std::vector<std::string> args = {"node",
                                     "--node-id",
                                     Id(i),
                                     "--socket",
                                     Socket(i),
                                     "--data-dir",
                                     Path("d" + std::to_string(i)),
                                     "--listen",
                                     Address(i),
                                     "--join",
                                     join,
                                     "--no-multicast",
                                     "--expect",
                                     std::to_string(n),
                                     "--session-ttl",
                                     session_ttl,
                                     "--election-timeout",
                                     "1000"};
    args.insert(args.end(), extra.begin(), extra.end());
    Process* p = Lockmesh(Id(i), args);
    nodes_[i] = p;
    return p;
  }

  // `lockmesh status --json` of node i; null JSON if it does not answer.
  Json Status(int i) {
    RunResult r = RunLockmesh("status", {"status", "--socket", Socket(i), "--json"}, Millis(10000));
    if (r.code() != 0) return Json();
    Json j = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    return j.is_discarded() ? Json() : j;
  }

  // Every node's state (running, or how it exited) and the last `lines` lines of its log.
  std::string MeshLogs(size_t lines = 40) {
    std::string out;
    for (auto& [i, p] : nodes_) {
      if (p == nullptr) continue;
      std::optional<ExitStatus> exit = p->Poll();
      out += "---- " + Id(i) + " (" + (exit ? "exited: " + exit->ToString() : "running") +
             "), last " + std::to_string(lines) + " log lines ----\n";
      std::vector<std::string> log = SplitLines(p->Stderr());
      for (size_t k = log.size() > lines ? log.size() - lines : 0; k < log.size(); ++k) {
        out += log[k] + "\n";
      }
    }
    return out;
  }

  // Waits until nodes `which` agree on one cluster id and leader and list `voters` voters.
  // On a timeout, prints MeshLogs(): a mesh that did not form is explained by a node's log,
  // and not always by the first node's.
  bool WaitFormed(const std::vector<int>& which, int voters, Millis timeout) {
    bool formed = WaitFor(
        [&] {
          std::string cluster_id, leader;
          for (int i : which) {
            Json s = Status(i);
            if (s.is_null() || s["cluster_id"].get<std::string>().empty()) return false;
            int v = 0;
            for (const Json& m : s["members"]) v += m["voter"].get<bool>() ? 1 : 0;
            if (v != voters || s["leader_id"].get<std::string>().empty()) return false;
            if (cluster_id.empty()) {
              cluster_id = s["cluster_id"];
              leader = s["leader_id"];
            } else if (s["cluster_id"] != cluster_id || s["leader_id"] != leader) {
              return false;
            }
          }
          return true;
        },
        timeout, Millis(200));
    if (!formed) std::printf("mesh not formed within the deadline:\n%s", MeshLogs().c_str());
    return formed;
  }

  int LeaderIndex(int any) {
    std::string leader = Status(any).value("leader_id", "");
    for (auto& [i, p] : nodes_) {
      if (Id(i) == leader) return i;
    }
    return 0;
  }

  // Runs `lockmesh lock` on node i; returns the run (stdout has the token).
  RunResult LockOn(int i, const std::string& resource, const std::vector<std::string>& flags = {},
                   Millis timeout = Millis(30000)) {
    std::vector<std::string> args = {"lock", "--socket", Socket(i), "--no-autostart"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.insert(args.end(), {resource, "--", "sh", "-c", "echo $LOCKMESH_TOKEN"});
    return RunLockmesh("lock", args, timeout);
  }

  std::string NodeLog(int i) { return nodes_[i] ? nodes_[i]->Stderr() : ""; }

  int base_port_ = 0;
  std::map<int, Process*> nodes_;
};

}  // namespace lockmesh::testing

#endif  // LOCKMESH_TESTS_NET_SUPPORT_LOOPBACK_MESH_H_
