// `lockmesh bench`: lock+unlock cycles per second and cycle latency against the local node;
// `--scenario hold`: the node's memory per held lock.
//
// All clients are mesh::AsyncClient objects on one private libuv loop, each looping
// lock -> unlock -> lock ... (or, for hold, keeping a window of lock requests in flight),
// so the bench process is not the bottleneck.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
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
  // --scenario hold:
  uint64_t locks = 100000;    // distinct locks taken and held
  size_t name_bytes = 32;     // length of each lock's resource name
  double hold_seconds = 1;    // how long they are held once all are granted
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

/// The pid of the process serving the UNIX socket `path` (SO_PEERCRED of a connection that
/// sends nothing and is closed at once; the node drops it), or -1 if none answers.
int64_t NodePid(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    close(fd);
    return -1;
  }
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int64_t pid = -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid > 0) pid = cred.pid;
  }
  close(fd);
  return pid;
}

/// VmRSS of process `pid` in bytes (from /proc/<pid>/status), or -1 if it cannot be read.
int64_t ProcessRssBytes(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "  123 kB"
  }
  return -1;
}

/// What `--scenario hold` measured.
struct HoldResult {
  uint64_t locks = 0;
  int clients = 0;
  size_t name_bytes = 0;
  double hold_seconds = 0;
  double grant_seconds = 0;    // first lock request to last grant
  double release_seconds = 0;  // first unlock to last unlock acknowledged
  int64_t node_pid = -1;
  int64_t rss_before = 0;      // bytes, clients connected, nothing held
  int64_t rss_held = 0;        // at the end of the hold
  int64_t rss_peak = 0;        // highest sample (every 100 ms) from before to after
  int64_t rss_after = 0;       // kSettleMs after the last unlock was acknowledged
  uint64_t held_reported = 0;  // the node's locks_held (status) while held

  double grants_per_second() const { return grant_seconds > 0 ? locks / grant_seconds : 0; }
  double releases_per_second() const { return release_seconds > 0 ? locks / release_seconds : 0; }
  double bytes_per_lock() const {
    return locks ? static_cast<double>(rss_held - rss_before) / static_cast<double>(locks) : 0;
  }
  double bytes_per_lock_beyond_name() const {
    return bytes_per_lock() - static_cast<double>(name_bytes);
  }
  /// rss_after relative to rss_before (1.0: back where it started).
  double after_over_before() const {
    return rss_before > 0 ? static_cast<double>(rss_after) / rss_before : 0;
  }
};

/// `--scenario hold`: `clients` clients take `locks` distinct locks (try-locks, EX; client i
/// takes every clients-th name), each keeping kWindow requests in flight, hold them all for
/// `hold_seconds`, then unlock them (each acknowledged), sampling the node's RSS throughout.
class HoldRun {
 public:
  /// How many requests each client keeps in flight.
  static constexpr size_t kWindow = 64;
  /// How long after the last release the node's RSS is read (it may trim its heap).
  static constexpr int64_t kSettleMs = 1000;
  /// How often the node's RSS is sampled.
  static constexpr int64_t kSampleMs = 100;

  HoldRun(uv_loop_t* loop, const mesh::ClientOptions& options, mesh::AsyncClient* probe,
          int64_t node_pid, int clients, uint64_t locks, size_t name_bytes, double hold_seconds)
      : loop_(loop),
        options_(options),
        probe_(probe),
        node_pid_(node_pid),
        clients_wanted_(static_cast<int>(std::min<uint64_t>(clients, locks))),
        locks_(locks),
        name_bytes_(name_bytes),
        hold_seconds_(hold_seconds) {}

  /// The name of lock `i`: "lmhold" and i in at least 7 digits, padded with 'x' in between
  /// to name_bytes (a simple resource name).
  static std::string Name(uint64_t i, size_t name_bytes) {
    std::string digits = std::to_string(i);
    if (digits.size() < 7) digits.insert(0, 7 - digits.size(), '0');
    std::string name = "lmhold";
    if (name.size() + digits.size() < name_bytes) {
      name.append(name_bytes - name.size() - digits.size(), 'x');
    }
    return name + digits;
  }

  Status Run(HoldResult* result) {
    result->locks = locks_;
    result->clients = clients_wanted_;
    result->name_bytes = Name(0, name_bytes_).size();
    result->hold_seconds = hold_seconds_;
    result->node_pid = node_pid_;
    for (int i = 0; i < clients_wanted_; ++i) {
      std::unique_ptr<mesh::AsyncClient> client;
      mesh::ClientOptions options = options_;
      options.client_name = "lockmesh bench hold #" + std::to_string(i);
      Status st = ConnectOnLoop(loop_, options, &client);
      if (!st.ok()) {
        CloseAll();
        return st.Annotate("connecting bench client " + std::to_string(i));
      }
      clients_.push_back(std::move(client));
    }
    held_.resize(locks_);
    uv_timer_init(loop_, &sampler_);
    sampler_.data = this;
    sampler_ready_ = true;
    Sleep(kSettleMs / 2);  // the sessions' entries are applied
    result->rss_before = Sample();
    uv_timer_start(
        &sampler_, [](uv_timer_t* t) { static_cast<HoldRun*>(t->data)->Sample(); }, kSampleMs,
        kSampleMs);

    // Take them all.
    Clock::time_point t0 = Clock::now();
    next_.assign(clients_.size(), 0);
    for (size_t c = 0; c < clients_.size(); ++c) {
      for (size_t k = 0; k < kWindow; ++k) NextLock(c);
    }
    RunUntil([this] { return done_ == locks_ || !error_.ok(); });
    result->grant_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!error_.ok()) return Finish(error_);

    // Hold them.
    Sleep(static_cast<int64_t>(hold_seconds_ * 1000));
    result->rss_held = Sample();
    bool got = false;
    Status st;
    probe_->GetStatus([&](const Status& s, const mesh::NodeStatus& n) {
      st = s;
      result->held_reported = n.locks_held;
      got = true;
    });
    RunUntil([&] { return got; });
    if (!st.ok()) return Finish(st.Annotate("status while held"));

    // Release them.
    t0 = Clock::now();
    done_ = 0;
    next_.assign(clients_.size(), 0);
    for (size_t c = 0; c < clients_.size(); ++c) {
      for (size_t k = 0; k < kWindow; ++k) NextUnlock(c);
    }
    RunUntil([this] { return done_ == locks_ || !error_.ok(); });
    result->release_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!error_.ok()) return Finish(error_);
    std::vector<mesh::Lock>().swap(held_);
    Sleep(kSettleMs);
    result->rss_after = Sample();
    result->rss_peak = peak_;
    return Finish(Status::OK());
  }

 private:
  // Lock number `next_[c]` of client c's share (c, c + n, c + 2n, ...), if any is left.
  void NextLock(size_t c) {
    uint64_t i = c + next_[c] * clients_.size();
    if (i >= locks_ || !error_.ok()) return;
    ++next_[c];
    mesh::LockOptions lock_options;
    lock_options.timeout_ms = 0;  // distinct names: never busy unless someone else holds one
    std::string name = Name(i, name_bytes_);
    clients_[c]->Lock(name, lock_options, [this, c, i](const Status& st, const mesh::Lock& lock) {
      if (!st.ok()) return Stop(st.Annotate("lock " + Name(i, name_bytes_)));
      held_[i] = lock;
      ++done_;
      NextLock(c);
    });
  }

  void NextUnlock(size_t c) {
    uint64_t i = c + next_[c] * clients_.size();
    if (i >= locks_ || !error_.ok()) return;
    ++next_[c];
    clients_[c]->Unlock(held_[i], false, [this, c, i](const Status& st) {
      if (!st.ok()) return Stop(st.Annotate("unlock " + held_[i].resource));
      ++done_;
      NextUnlock(c);
    });
  }

  void Stop(const Status& st) {
    if (error_.ok()) error_ = st;
  }

  // Reads the node's RSS, keeps the peak; 0 if it cannot be read.
  int64_t Sample() {
    int64_t rss = ProcessRssBytes(node_pid_);
    if (rss < 0) {
      Stop(Status::IOError("cannot read /proc/" + std::to_string(node_pid_) + "/status"));
      return 0;
    }
    peak_ = std::max(peak_, rss);
    return rss;
  }

  template <typename Done>
  void RunUntil(Done done) {
    while (!done()) {
      if (uv_run(loop_, UV_RUN_ONCE) == 0) break;
    }
  }

  // Runs the loop for `ms` (the sampler and the clients go on).
  void Sleep(int64_t ms) {
    uv_timer_t timer;
    bool fired = false;
    uv_timer_init(loop_, &timer);
    timer.data = &fired;
    uv_timer_start(
        &timer, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; },
        static_cast<uint64_t>(std::max<int64_t>(ms, 0)), 0);
    RunUntil([&] { return fired; });
    bool closed = false;
    timer.data = &closed;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer),
             [](uv_handle_t* h) { *static_cast<bool*>(h->data) = true; });
    RunUntil([&] { return closed; });
  }

  Status Finish(const Status& st) {
    if (sampler_ready_) {
      bool closed = false;
      sampler_.data = &closed;
      uv_close(reinterpret_cast<uv_handle_t*>(&sampler_),
               [](uv_handle_t* h) { *static_cast<bool*>(h->data) = true; });
      RunUntil([&] { return closed; });
      sampler_ready_ = false;
    }
    CloseAll();
    return st;
  }

  void CloseAll() {
    for (auto& client : clients_) CloseOnLoop(loop_, std::move(client));
    clients_.clear();
  }

  uv_loop_t* loop_;
  mesh::ClientOptions options_;
  mesh::AsyncClient* probe_;  // not owned; for the node's status while held
  int64_t node_pid_;
  int clients_wanted_;
  uint64_t locks_;
  size_t name_bytes_;
  double hold_seconds_;
  std::vector<std::unique_ptr<mesh::AsyncClient>> clients_;
  std::vector<mesh::Lock> held_;  // by lock number
  std::vector<uint64_t> next_;    // per client: how many of its share it has started
  uint64_t done_ = 0;             // grants, then acknowledged unlocks
  uv_timer_t sampler_;
  bool sampler_ready_ = false;
  int64_t peak_ = 0;
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

/// Runs `--scenario hold` for RunBench (which has connected `probe` on `loop`) and prints
/// its report. Closes `probe`; leaves `loop` to be closed.
int RunHold(const BenchFlags& flags, uv_loop_t* loop, const mesh::ClientOptions& options,
            std::unique_ptr<mesh::AsyncClient> probe, const mesh::NodeStatus& node, bool started,
            const std::string& socket, long nproc, const std::string& cpu) {
  int64_t pid = NodePid(socket);
  if (pid <= 0 || ProcessRssBytes(pid) < 0) {
    PrintError("cannot find the node's process through " + socket +
               " (the hold scenario reads its RSS from /proc: the node must run on this host)");
    CloseOnLoop(loop, std::move(probe));
    return kExitError;
  }
  HoldResult r;
  HoldRun run(loop, options, probe.get(), pid, flags.clients, flags.locks, flags.name_bytes,
              flags.hold_seconds);
  Status st = run.Run(&r);
  CloseOnLoop(loop, std::move(probe));
  uv_run(loop, UV_RUN_DEFAULT);
  if (!st.ok()) {
    PrintError("bench hold: " + st.ToString());
    return kExitError;
  }
  auto mib = [](int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); };
  if (flags.json) {
    Json out = {{"machine", {{"nproc", nproc}, {"cpu_model", cpu}}},
                {"node",
                 {{"node_id", node.node_id},
                  {"cluster", node.cluster},
                  {"role", node.role},
                  {"members", node.members.size()},
                  {"data_dir", node.data_dir},
                  {"socket", socket},
                  {"pid", pid},
                  {"fsync", node.fsync},
                  {"version", node.version},
                  {"auto_started", started}}},
                {"results",
                 Json::array({{{"scenario", "hold"},
                               {"locks", r.locks},
                               {"clients", r.clients},
                               {"name_bytes", r.name_bytes},
                               {"hold_seconds", r.hold_seconds},
                               {"locks_held_reported", r.held_reported},
                               {"grant_seconds", r.grant_seconds},
                               {"grants_per_second", r.grants_per_second()},
                               {"release_seconds", r.release_seconds},
                               {"releases_per_second", r.releases_per_second()},
                               {"rss_bytes",
                                {{"before", r.rss_before},
                                 {"held", r.rss_held},
                                 {"peak", r.rss_peak},
                                 {"after", r.rss_after}}},
                               {"bytes_per_held_lock", r.bytes_per_lock()},
                               {"bytes_per_held_lock_beyond_name", r.bytes_per_lock_beyond_name()},
                               {"rss_after_over_before", r.after_over_before()}}})}};
    puts(out.dump(2).c_str());
    return kExitOk;
  }
  printf("hold: %llu locks (%zu-byte names) over %d clients, held %g s; node pid %lld\n",
         static_cast<unsigned long long>(r.locks), r.name_bytes, r.clients, r.hold_seconds,
         static_cast<long long>(pid));
  printf("granted in %.2f s: %.0f grants/s; released in %.2f s: %.0f releases/s\n",
         r.grant_seconds, r.grants_per_second(), r.release_seconds, r.releases_per_second());
  printf("node RSS: before %.1f MiB, held %.1f MiB (peak %.1f MiB), after release %.1f MiB (%.0f%% of before)\n",
         mib(r.rss_before), mib(r.rss_held), mib(r.rss_peak), mib(r.rss_after),
         100.0 * r.after_over_before());
  printf("bytes per held lock: %.0f (%.0f beyond its %zu-byte name)\n", r.bytes_per_lock(),
         r.bytes_per_lock_beyond_name(), r.name_bytes);
  return kExitOk;
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
    if (which == "hold") {
      printf("machine: %ld CPUs, %s\n", nproc, cpu.c_str());
    } else {
      printf(
          "machine: %ld CPUs, %s; %g s per scenario, median of %d run(s); unlock %s\n", nproc,
          cpu.c_str(), flags.seconds, flags.runs,
          flags.wait_unlock ? "acknowledged before the next lock" : "pipelined with the next lock");
    }
    fflush(stdout);
  }

  if (which == "hold") {
    int code = RunHold(flags, &loop, options, std::move(probe), node, started, socket, nproc, cpu);
    uv_loop_close(&loop);
    return code;
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
      "to the unlock being\nsent (with --wait-unlock: to its acknowledgement). hold = --clients "
      "clients take --locks\ndistinct locks (try-locks), hold them --hold-seconds, release "
      "them; reports the grant rate,\nthe node's RSS (/proc/PID/status) before, while held and "
      "after release, and bytes per held lock.\nStarts a node "
      "(auto-start, as `lock` does) if none\nis running. Output names the node, its data dir "
      "and whether it fsyncs, and the machine.\n\nExit status: 0 done; 94 no node and "
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
                  "Which scenarios: all (seq, distinct, one), seq, distinct, one, or hold "
                  "(memory per held lock; not part of all) (default: all)")
      ->check(CLI::IsMember({"all", "seq", "distinct", "one", "hold"}))
      ->excludes(resources);
  cmd->add_option("--locks", flags->locks,
                  "hold: distinct locks to take and hold (default: 100000)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}));
  cmd->add_option("--name-bytes", flags->name_bytes,
                  "hold: length of each lock's resource name, 13-512 (default: 32)")
      ->check(CLI::Range(size_t{13}, size_t{512}));  // 512: the longest resource name
  cmd->add_option("--hold-seconds", flags->hold_seconds,
                  "hold: how long the locks are held once all are granted (default: 1)")
      ->check(CLI::Range(0.0, 3600.0));
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
                                  "Do not start a node when none answers; exit 94 (default: "
                                  "start one)");
  AddCommonOptions(cmd, &flags->common);
  return [flags] { return RunBench(*flags); };
}

}  // namespace lockmesh::cli
