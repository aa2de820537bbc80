#include "cluster/support/chaos_clients.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <random>
#include <sstream>

namespace lockmesh::testing {
namespace {

// ==================================================================== the section
//
// Runs from an ELF constructor of the test binary started as {exe, kSectionFlag, ...}, before
// gtest's main(), and exits (as the tool mode of mesh_cluster.cc does).

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Async-signal-safe: decimal of v >= 0 into buf, returns the length.
size_t Decimal(int64_t v, char* buf) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0);
  for (size_t k = 0; k < n; ++k) buf[k] = tmp[n - 1 - k];
  return n;
}

void WriteAll(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n;
    len -= static_cast<size_t>(n);
  }
}

int g_record_fd = -1;

// "<kind> <now>\n" in one write (a record line is never torn by another record).
void Mark(char kind) {
  char buf[40];
  buf[0] = kind;
  buf[1] = ' ';
  size_t len = 2 + Decimal(NowNs(), buf + 2);
  buf[len++] = '\n';
  WriteAll(g_record_fd, buf, len);
}

void OnTerm(int) {
  Mark('T');
  _exit(143);
}

// RECORD COUNTER HOLD_MS (see chaos_clients.h).
int Section(int argc, char** argv) {
  if (argc < 3) return 2;
  const char* token = getenv("LOCKMESH_TOKEN");
  g_record_fd = open(argv[0], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (g_record_fd < 0) return 4;
  if (token == nullptr || *token == '\0') {
    WriteAll(g_record_fd, "X no LOCKMESH_TOKEN\n", 20);
    return 3;
  }
  struct sigaction sa {};
  sa.sa_handler = OnTerm;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  const int64_t start = NowNs();
  int counter_fd = open(argv[1], O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (counter_fd < 0) return 5;
  char text[128] = {0};
  ssize_t got = pread(counter_fd, text, sizeof text - 1, 0);
  long long value = 0;
  unsigned long long writer = 0;
  if (got > 0) sscanf(text, "%lld %llu", &value, &writer);
  char line[160];
  int len = snprintf(line, sizeof line, "S %s %lld %lld %llu\n", token,
                     static_cast<long long>(start), value, writer);
  WriteAll(g_record_fd, line, static_cast<size_t>(len));
  const int64_t until = start + static_cast<int64_t>(atoi(argv[2])) * 1000000;
  for (;;) {
    int64_t left = until - NowNs();
    if (left <= 0) break;
    usleep(static_cast<useconds_t>(std::min<int64_t>(left, 20000000) / 1000));
    Mark('P');
  }
  // The increment: the whole fixed-width record in place, then fsync.
  len = snprintf(text, sizeof text, "%20lld %20s\n", value + 1, token);
  if (pwrite(counter_fd, text, static_cast<size_t>(len), 0) != len) return 6;
  if (fsync(counter_fd) != 0) return 7;
  len = snprintf(line, sizeof line, "W %lld %lld\n", value + 1, static_cast<long long>(NowNs()));
  WriteAll(g_record_fd, line, static_cast<size_t>(len));
  Mark('E');
  return 0;
}

__attribute__((constructor)) void MaybeRunSection(int argc, char** argv, char**) {
  if (argc < 2 || argv == nullptr || strcmp(argv[1], kSectionFlag) != 0) return;
  _exit(Section(argc - 2, argv + 2));
}

std::string SelfExe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "/proc/self/exe";
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

std::vector<std::string> SectionArgv(const std::string& record, const std::string& counter,
                                     int hold_ms) {
  return {SelfExe(), kSectionFlag, record, counter, std::to_string(hold_ms)};
}

// ==================================================================== the loops

ChaosClients::ChaosClients(MeshCluster* mesh, std::string resource, std::string dir, uint64_t seed,
                           Millis run_timeout, int max_runs)
    : mesh_(mesh),
      resource_(std::move(resource)),
      dir_(std::move(dir)),
      seed_(seed),
      run_timeout_(run_timeout),
      max_runs_(max_runs) {
  mkdir(dir_.c_str(), 0755);
  for (size_t i = 0; i < mesh_->size(); ++i) {
    mkdir((dir_ + "/" + MeshCluster::NodeId(i)).c_str(), 0755);
  }
}

ChaosClients::~ChaosClients() { Stop(); }

void ChaosClients::Start() {
  for (size_t i = 0; i < mesh_->size(); ++i) threads_.emplace_back([this, i] { Loop(i); });
}

void ChaosClients::Stop(bool abort) {
  if (abort) abort_ = true;
  stop_ = true;
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void ChaosClients::Loop(size_t i) {
  const std::string host = MeshCluster::NodeId(i);
  std::mt19937_64 rng(seed_ * 1000003 + i);
  for (int k = 0; k < max_runs_ && !stop_.load(); ++k) {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!paused_.count(i) || stop_.load()) {
          busy_.insert(i);
          break;
        }
      }
      usleep(20 * 1000);
    }
    ChaosRun r;
    r.run.id = host + "-" + std::to_string(k);
    r.run.host = host;
    r.record = dir_ + "/" + host + "/" + std::to_string(k) + ".rec";
    r.hold_ms = 20 + static_cast<int>(rng() % 100);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto want = long_request_.find(i);
      if (want != long_request_.end()) {
        r.hold_ms = want->second;
        long_request_.erase(want);
        long_record_[i] = r.record;
      }
    }
    // `lockmesh lock X -- SECTION` and nothing else: default socket (from the host's
    // environment), auto-start on, wait forever, --on-lost term.
    ProcessOptions po;
    po.argv = {"ip",   "netns",   "exec", mesh_->net().host(i).netns, LockmeshBinary(),
               "lock", resource_, "--"};
    std::vector<std::string> section = SectionArgv(r.record, CounterPath(), r.hold_ms);
    po.argv.insert(po.argv.end(), section.begin(), section.end());
    po.env = mesh_->HostEnv(i);
    const std::string out = dir_ + "/" + host + "/" + std::to_string(k) + ".err";
    po.stdout_path = out;
    po.stderr_path = out;
    po.append_output = true;
    r.run.begin_ns = MonotonicNs();
    {
      Process p(po);
      if (!p.ok()) {
        r.stderr_head = "cannot start lockmesh lock: " + p.error();
      } else {
        std::optional<ExitStatus> st;
        auto deadline = Clock::now() + run_timeout_;
        while (!st && Clock::now() < deadline && !abort_.load()) st = p.Wait(Millis(200));
        r.run.exit_ns = MonotonicNs();
        if (st) {
          r.run.exit_code = st->exited() ? st->code : 128 + st->signal;
        } else {
          // Hung: SIGTERM first, which `lockmesh lock` forwards to its command and waits for,
          // so that a section it may have started ends before the lock is released (a SIGKILL
          // alone would orphan the command, still inside, while the node frees the lock).
          r.run.exit_code = -1;
          p.Signal(SIGTERM);
          st = p.Wait(Millis(10000));
          r.run.exit_ns = st ? MonotonicNs() : 0;  // 0: not an upper bound of its section
          p.Kill();
        }
      }
    }
    if (r.run.exit_code != 0) {
      r.stderr_head += ReadFile(out).substr(0, 300);
    } else {
      unlink(out.c_str());
      ++successes_;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      runs_.push_back(r);
      busy_.erase(i);
    }
    int pause_ms = r.run.exit_code == 0                             ? static_cast<int>(rng() % 20)
                   : r.run.exit_code == 94 || r.run.exit_code == 99 ? 200
                                                                    : 100;
    if (pause_ms > 0) usleep(static_cast<useconds_t>(pause_ms) * 1000);
  }
}

bool ChaosClients::RunLongSection(size_t i, int hold_ms, Millis timeout) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    long_record_.erase(i);
    long_request_[i] = hold_ms;
  }
  return WaitFor(
      [&] {
        std::string record;
        {
          std::lock_guard<std::mutex> lock(mu_);
          auto it = long_record_.find(i);
          if (it != long_record_.end()) record = it->second;
        }
        return !record.empty() && ReadFile(record).compare(0, 2, "S ") == 0;
      },
      timeout, Millis(20));
}

bool ChaosClients::Pause(size_t i, Millis timeout) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    paused_.insert(i);
  }
  return WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu_);
        return busy_.count(i) == 0;
      },
      timeout, Millis(10));
}

std::string ChaosClients::LongRecord(size_t i) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = long_record_.find(i);
  return it == long_record_.end() ? "" : it->second;
}

void ChaosClients::Resume(size_t i) {
  std::lock_guard<std::mutex> lock(mu_);
  paused_.erase(i);
}

std::vector<ChaosRun> ChaosClients::Runs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return runs_;
}

history::History ChaosClients::Collect() const {
  history::History h;
  for (const ChaosRun& r : Runs()) {
    h.runs[r.run.id] = r.run;
    history::ParseSectionRecords(r.run.id, r.run.host, ReadFile(r.record), &h);
  }
  history::ParseCounter(ReadFile(CounterPath()), &h);
  return h;
}

}  // namespace lockmesh::testing
