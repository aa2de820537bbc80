// `lockmesh bench`: lock+unlock cycles per second and cycle latency against the local node.
//
// All clients are mesh::AsyncClient objects on one private libuv loop, each looping
// lock -> unlock -> lock ..., so the bench process is not the bottleneck.
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_support.h"
#include "commands.h"
#include "exit_codes.h"
#include "loop_client.h"
#include "mesh/client.h"

namespace lockmesh::cli {
namespace {

using mesh::Status;
using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

/// Flags of `lockmesh bench`.
struct BenchFlags {
  CommonOptions common;
  int clients = 16;
  std::string resources;  // "", "distinct" or "one": shorthand for --scenario
  double seconds = 5;
  std::string scenario = "all";
  int runs = 1;
  bool json = false;
  bool wait_unlock = false;               // a cycle also waits for the unlock's acknowledgement
  std::vector<std::string> node_sockets;  // --node-socket: spread clients over these nodes
};

/// One measured configuration.
struct Scenario {
  std::string name;  // seq, distinct, one
  int clients;
  bool one_resource;  // all clients lock the same resource
};

/// What one scenario measured (the median run when --runs > 1).
struct Result {
  Scenario scenario;
  double seconds = 0;
  uint64_t cycles = 0;
  double cycles_per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
};

/// Runs one scenario once on `loop`.
class BenchRun {
 public:
  /// Client i connects to sockets[i % sockets.size()] (at least one socket).
  BenchRun(uv_loop_t* loop, const mesh::ClientOptions& options,
           const std::vector<std::string>& sockets, const Scenario& scenario, double seconds)
      : loop_(loop), options_(options), sockets_(sockets), scenario_(scenario), seconds_(seconds) {}

  Status Run(Result* result) {
    for (int i = 0; i < scenario_.clients; ++i) {
      std::unique_ptr<mesh::AsyncClient> client;
      mesh::ClientOptions options = options_;
      options.socket_path = sockets_[i % sockets_.size()];
      options.client_name = "lockmesh bench " + scenario_.name + " #" + std::to_string(i);
      Status st = ConnectOnLoop(loop_, options, &client);
      if (!st.ok()) {
        CloseAll();
        return st.Annotate("connecting bench client " + std::to_string(i));
      }
      clients_.push_back(std::move(client));
      resources_.push_back(scenario_.one_resource ? "lmbench" + scenario_.name
                                                  : "lmbench" + scenario_.name + std::to_string(i));
    }
    start_ = Clock::now();
    deadline_ = start_ + std::chrono::microseconds(static_cast<int64_t>(seconds_ * 1e6));
    last_ = start_;
    for (size_t i = 0; i < clients_.size(); ++i) Cycle(i);
    while (finished_ < clients_.size() || unlocks_in_flight_ > 0) {
      if (uv_run(loop_, UV_RUN_ONCE) == 0) break;
    }
    CloseAll();
    if (!error_.ok()) return error_;
    std::sort(latencies_us_.begin(), latencies_us_.end());
    result->scenario = scenario_;
    result->seconds = std::chrono::duration<double>(last_ - start_).count();
    result->cycles = latencies_us_.size();
    result->cycles_per_second = result->seconds > 0 ? result->cycles / result->seconds : 0;
    if (!latencies_us_.empty()) {
      size_t n = latencies_us_.size();
      result->p50_ms = latencies_us_[n / 2] / 1000.0;
      size_t p99 = static_cast<size_t>(std::ceil(n * 0.99));
      result->p99_ms = latencies_us_[std::min(n - 1, p99 == 0 ? 0 : p99 - 1)] / 1000.0;
      result->max_ms = latencies_us_.back() / 1000.0;
    }
    return Status::OK();
  }

 private:
  /// One lock+unlock; starts the next until the deadline. The unlock is pipelined: the
  /// next lock is sent right behind it without waiting for its acknowledgement (as FLoM's
  /// one-way unlock), so both share the node's next fsync; the unlock is still durable
  /// before the next grant is acknowledged. A cycle ends when the unlock is sent. With
  /// --wait-unlock a cycle also waits for the unlock's acknowledgement.
  void Cycle(size_t i) {
    Clock::time_point t0 = Clock::now();
    mesh::LockOptions lock_options;  // EX, wait forever
    clients_[i]->Lock(resources_[i], lock_options,
                      [this, i, t0](const Status& st, const mesh::Lock& lock) {
                        if (!st.ok()) return Stop(st.Annotate("lock " + resources_[i]));
                        ++unlocks_in_flight_;
                        clients_[i]->Unlock(lock, false, [this, i, t0](const Status& st) {
                          --unlocks_in_flight_;
                          if (!st.ok()) return Stop(st.Annotate("unlock " + resources_[i]));
                          if (wait_unlock_) EndCycle(i, t0);
                        });
                        if (!wait_unlock_) EndCycle(i, t0);
                      });
  }

  void EndCycle(size_t i, Clock::time_point t0) {
    Clock::time_point now = Clock::now();
    latencies_us_.push_back(std::chrono::duration<double, std::micro>(now - t0).count());
    last_ = std::max(last_, now);
    if (now < deadline_ && error_.ok()) {
      Cycle(i);
    } else {
      ++finished_;
    }
  }

  void Stop(const Status& st) {
    if (error_.ok()) error_ = st;
    ++finished_;
  }

  void CloseAll() {
    for (auto& client : clients_) CloseOnLoop(loop_, std::move(client));
    clients_.clear();
  }

  uv_loop_t* loop_;
  mesh::ClientOptions options_;
  std::vector<std::string> sockets_;
  Scenario scenario_;
  double seconds_;
  std::vector<std::unique_ptr<mesh::AsyncClient>> clients_;
  std::vector<std::string> resources_;
  std::vector<double> latencies_us_;  // one per completed cycle
  Clock::time_point start_, deadline_, last_;
  size_t finished_ = 0;  // clients that stopped cycling
  size_t unlocks_in_flight_ = 0;
  bool wait_unlock_ = false;

 public:
  /// Makes each cycle wait for the unlock's acknowledgement too.
  void set_wait_unlock(bool wait) { wait_unlock_ = wait; }
  Status error_;
};

/// "model name" of the first CPU in /proc/cpuinfo, or "unknown".
std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown";
}

int RunBench(const BenchFlags& flags) {
  Config config;
  if (int code = LoadEffectiveConfig(flags.common, &config); code != 0) return code;
  std::vector<Scenario> scenarios;
  std::string which = flags.resources.empty() ? flags.scenario : flags.resources;
  if (which == "all" || which == "seq") scenarios.push_back({"seq", 1, true});
  if (which == "all" || which == "distinct")
    scenarios.push_back({"distinct", flags.clients, false});
  if (which == "all" || which == "one") scenarios.push_back({"one", flags.clients, true});

  std::string socket = EffectiveSocket(config);
  // The clients' nodes: the local one, then each --node-socket (a mesh's other nodes).
  std::vector<std::string> sockets = {socket};
  for (const std::string& s : flags.node_sockets) {
    if (std::find(sockets.begin(), sockets.end(), s) == sockets.end()) sockets.push_back(s);
  }
  mesh::ClientOptions options;
  options.socket_path = socket;
  AutostartOptions autostart;
  autostart.socket = socket;
  autostart.enabled = config.lock.autostart;
  autostart.data_dir = AbsolutePath(config.node.data_dir);
  autostart.config_file = AbsolutePath(flags.common.config_file);
  autostart.log_file = EffectiveDataDir(config, socket) + "/node.log";
  autostart.claim_data_dir = AbsolutePath(EffectiveDataDir(config, socket));

  uv_loop_t loop;
  uv_loop_init(&loop);
  std::unique_ptr<mesh::AsyncClient> probe;
  bool started = false;
  options.client_name = "lockmesh bench";
  Status st = ConnectOrStartOnLoop(&loop, options, autostart, &probe, &started);
  if (!st.ok()) {
    PrintError(st.message());
    uv_loop_close(&loop);
    return st.IsUnavailable() && !config.lock.autostart ? kExitNoNode : kExitError;
  }
  mesh::NodeStatus node;
  bool got = false;
  probe->GetStatus([&](const Status& s, const mesh::NodeStatus& n) {
    st = s;
    node = n;
    got = true;
  });
  while (!got && uv_run(&loop, UV_RUN_ONCE) != 0) {
  }
  // The probe stays connected so that an auto-started node does not idle out between runs.
  if (!st.ok()) {
    PrintError("cannot get the node's status: " + st.ToString());
    CloseOnLoop(&loop, std::move(probe));
    uv_loop_close(&loop);
    return kExitError;
  }

  long nproc = sysconf(_SC_NPROCESSORS_ONLN);
  std::string cpu = CpuModel();
  if (!flags.json) {
    printf("node %s (%s%s), cluster %s, data dir %s, fsync %s, socket %s\n", node.node_id.c_str(),
           node.role.c_str(), started ? ", auto-started by this bench" : "", node.cluster.c_str(),
           node.data_dir.c_str(), node.fsync ? "on" : "off", socket.c_str());
    if (sockets.size() > 1) {
      std::string all;
      for (const std::string& s : sockets) all += (all.empty() ? "" : ", ") + s;
      printf("clients spread round-robin over %zu nodes: %s\n", sockets.size(), all.c_str());
    }
    printf(
        "machine: %ld CPUs, %s; %g s per scenario, median of %d run(s); unlock %s\n", nproc,
        cpu.c_str(), flags.seconds, flags.runs,
        flags.wait_unlock ? "acknowledged before the next lock" : "pipelined with the next lock");
    fflush(stdout);
  }

  std::vector<Result> results;
  for (const Scenario& scenario : scenarios) {
    std::vector<Result> runs;
    for (int r = 0; r < flags.runs; ++r) {
      Result result;
      BenchRun run(&loop, options, sockets, scenario, flags.seconds);
      run.set_wait_unlock(flags.wait_unlock);
      st = run.Run(&result);
      if (!st.ok()) {
        PrintError("bench " + scenario.name + ": " + st.ToString());
        CloseOnLoop(&loop, std::move(probe));
        uv_loop_close(&loop);
        return kExitError;
      }
      runs.push_back(result);
    }
    std::sort(runs.begin(), runs.end(), [](const Result& a, const Result& b) {
      return a.cycles_per_second < b.cycles_per_second;
    });
    results.push_back(runs[runs.size() / 2]);
  }
  CloseOnLoop(&loop, std::move(probe));
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);

  if (flags.json) {
    Json out = {{"machine", {{"nproc", nproc}, {"cpu_model", cpu}}},
                {"node",
                 {{"node_id", node.node_id},
                  {"cluster", node.cluster},
                  {"role", node.role},
                  {"members", node.members.size()},
                  {"data_dir", node.data_dir},
                  {"socket", socket},
                  {"node_sockets", sockets},
                  {"fsync", node.fsync},
                  {"version", node.version},
                  {"auto_started", started}}},
                {"seconds_per_run", flags.seconds},
                {"runs", flags.runs},
                {"wait_unlock", flags.wait_unlock},
                {"results", Json::array()}};
    for (const Result& r : results) {
      out["results"].push_back(
          {{"scenario", r.scenario.name},
           {"clients", r.scenario.clients},
           {"resources", r.scenario.one_resource ? 1 : r.scenario.clients},
           {"seconds", r.seconds},
           {"cycles", r.cycles},
           {"cycles_per_second", r.cycles_per_second},
           {"latency_ms", {{"p50", r.p50_ms}, {"p99", r.p99_ms}, {"max", r.max_ms}}}});
    }
    puts(out.dump(2).c_str());
    return kExitOk;
  }
  printf("%-9s %7s %9s %9s %10s %8s %8s %8s\n", "scenario", "clients", "resources", "cycles",
         "cycles/s", "p50 ms", "p99 ms", "max ms");
  for (const Result& r : results) {
    printf("%-9s %7d %9d %9llu %10.1f %8.3f %8.3f %8.3f\n", r.scenario.name.c_str(),
           r.scenario.clients, r.scenario.one_resource ? 1 : r.scenario.clients,
           static_cast<unsigned long long>(r.cycles), r.cycles_per_second, r.p50_ms, r.p99_ms,
           r.max_ms);
  }
  return kExitOk;
}

}  // namespace

CommandRunner AddBenchCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand(
      "bench", "Measure lock+unlock cycles per second and cycle latency on the local node");
  cmd->footer(
      "Scenarios: seq = one client cycling on one resource; distinct = N clients, each on its "
      "own\nresource; one = N clients contending for one exclusive resource. A cycle is one "
      "lock (EX, waiting)\nplus one unlock; latency is measured per cycle, from the lock request "
      "to the unlock being\nsent (with --wait-unlock: to its acknowledgement). Starts a node "
      "(auto-start, as `lock` does) if none\nis running. Output names the node, its data dir "
      "and whether it fsyncs, and the machine.\n\nExit status: 0 done; 1 no node and "
      "--no-autostart; 2 usage error; 99 any other error.");
  auto flags = std::make_shared<BenchFlags>();
  cmd->add_option("--clients", flags->clients,
                  "Clients of the distinct and one scenarios (default: 16)")
      ->check(CLI::Range(1, 4096));
  CLI::Option* resources = cmd->add_option("--resources", flags->resources,
                                           "Shorthand for --scenario distinct|one (default: unset)")
                               ->check(CLI::IsMember({"distinct", "one"}));
  cmd->add_option("--seconds", flags->seconds, "Duration of each run (default: 5)")
      ->check(CLI::Range(0.1, 3600.0));
  cmd->add_option("--scenario", flags->scenario,
                  "Which scenarios: all, seq, distinct or one (default: all)")
      ->check(CLI::IsMember({"all", "seq", "distinct", "one"}))
      ->excludes(resources);
  cmd->add_option("--runs", flags->runs,
                  "Runs per scenario; the median by cycles/s is reported (default: 1)")
      ->check(CLI::Range(1, 100));
  cmd->add_flag("--json", flags->json, "Print JSON instead of a table");
  cmd->add_option("--node-socket", flags->node_sockets,
                  "Also use the node at this socket; repeatable. Clients are spread round-robin "
                  "over the local node and these (the other nodes of a mesh, e.g. "
                  "tests/bench/mesh_vs_etcd.sh) (default: only the local node)")
      ->allow_extra_args(false);
  cmd->add_flag("--wait-unlock", flags->wait_unlock,
                "Wait for each unlock's acknowledgement before the next lock (default: the next "
                "lock is pipelined behind the unlock, as an application that does not wait for "
                "unlock would do)");
  flags->common.overrides.AddFlag(cmd, "--no-autostart", "lock.autostart", "false",
                                  "Do not start a node when none answers; exit 1 (default: "
                                  "start one)");
  AddCommonOptions(cmd, &flags->common);
  return [flags] { return RunBench(*flags); };
}

}  // namespace lockmesh::cli
