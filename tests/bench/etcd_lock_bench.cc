// etcd_lock_bench: lock+unlock cycles per second and cycle latency against etcd's v3 lock
// API, the workload of `lockmesh bench` (seq / distinct / one), for tests/bench/mesh_vs_etcd.sh.
//
// Talks to etcd's JSON gateway (HTTP/1.1, etcd 3.4: POST /v3/lease/grant, /v3/lock/lock,
// /v3/lock/unlock; bytes fields in base64) with libcurl: one thread and one keep-alive
// connection per client, clients assigned to the endpoints round-robin. Each client grants
// itself one lease (TTL 600 s, longer than any run), then loops lock(name, lease) ->
// unlock(key) until the deadline. A cycle's latency runs from sending the lock to the
// unlock's reply: etcd has no one-way unlock. Output: the table (or --json) of
// `lockmesh bench`.
//
// Usage: etcd_lock_bench --endpoints URL[,URL...] [--scenario seq|distinct|one]
//                        [--clients N] [--seconds S] [--runs R] [--json]
// Exit status: 0 done; 2 usage error; 99 an HTTP or etcd error (printed).
#include <curl/curl.h>
#include <mbedtls/base64.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

/// Flags.
struct Flags {
  std::vector<std::string> endpoints;
  std::string scenario = "distinct";
  int clients = 32;
  double seconds = 5;
  int runs = 1;
  bool json = false;
};

/// What one run measured.
struct Result {
  double seconds = 0;
  uint64_t cycles = 0;
  double cycles_per_second = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

std::string Base64(const std::string& in) {
  size_t n = 0;
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  mbedtls_base64_encode(reinterpret_cast<unsigned char*>(out.data()), out.size(), &n,
                        reinterpret_cast<const unsigned char*>(in.data()), in.size());
  out.resize(n);
  return out;
}

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

/// One client: a keep-alive connection to one endpoint. Used by one thread.
class EtcdClient {
 public:
  explicit EtcdClient(std::string endpoint) : endpoint_(std::move(endpoint)) {
    curl_ = curl_easy_init();
    headers_ = curl_slist_append(nullptr, "Content-Type: application/json");
  }
  ~EtcdClient() {
    curl_slist_free_all(headers_);
    if (curl_) curl_easy_cleanup(curl_);
  }
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  /// POSTs `body` to `path`; on success *reply is the parsed JSON answer. Returns "" or
  /// the error in words.
  std::string Post(const std::string& path, const Json& body, Json* reply) {
    if (!curl_) return "curl_easy_init failed";
    std::string url = endpoint_ + path, request = body.dump(), response;
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, request.c_str());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.size()));
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &response);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_TCP_NODELAY, 1L);
    CURLcode rc = curl_easy_perform(curl_);
    if (rc != CURLE_OK) return url + ": " + curl_easy_strerror(rc);
    long code = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200) return url + ": HTTP " + std::to_string(code) + ": " + response;
    *reply = Json::parse(response, nullptr, false);
    if (reply->is_discarded()) return url + ": reply is not JSON: " + response;
    if (reply->contains("error")) return url + ": " + response;
    return "";
  }

  /// GET `path` as text ("" on any error).
  std::string Get(const std::string& path) {
    std::string url = endpoint_ + path, response;
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &response);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT, 10L);
    return curl_easy_perform(curl_) == CURLE_OK ? response : "";
  }

 private:
  std::string endpoint_;
  CURL* curl_ = nullptr;
  curl_slist* headers_ = nullptr;
};

/// Runs one scenario once.
std::string RunOnce(const Flags& flags, int clients, bool one_resource, Result* result) {
  std::vector<std::vector<double>> latencies(clients);
  std::vector<std::string> errors(clients);
  std::vector<Clock::time_point> last(clients);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  Clock::time_point start, deadline;
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      EtcdClient client(flags.endpoints[i % flags.endpoints.size()]);
      Json reply;
      std::string lease;
      errors[i] = client.Post("/v3/lease/grant", {{"TTL", 600}}, &reply);
      if (errors[i].empty()) lease = reply.value("ID", "");
      if (errors[i].empty() && lease.empty()) errors[i] = "lease grant without an ID";
      ++ready;
      while (!go.load()) std::this_thread::yield();
      if (!errors[i].empty()) return;
      const std::string name =
          Base64(one_resource ? "lmbench" + flags.scenario
                              : "lmbench" + flags.scenario + std::to_string(i));
      while (true) {
        Clock::time_point t0 = Clock::now();
        if (t0 >= deadline) break;
        errors[i] = client.Post("/v3/lock/lock", {{"name", name}, {"lease", lease}}, &reply);
        if (!errors[i].empty()) break;
        std::string key = reply.value("key", "");
        if (key.empty()) {
          errors[i] = "lock reply without a key: " + reply.dump();
          break;
        }
        errors[i] = client.Post("/v3/lock/unlock", {{"key", key}}, &reply);
        if (!errors[i].empty()) break;
        Clock::time_point t1 = Clock::now();
        latencies[i].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        last[i] = t1;
      }
      client.Post("/v3/lease/revoke", {{"ID", lease}}, &reply);  // best effort
    });
  }
  while (ready.load() < clients) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  start = Clock::now();
  deadline = start + std::chrono::microseconds(static_cast<int64_t>(flags.seconds * 1e6));
  std::fill(last.begin(), last.end(), start);
  go = true;
  for (auto& t : threads) t.join();
  for (const std::string& e : errors) {
    if (!e.empty()) return e;
  }
  std::vector<double> all;
  Clock::time_point end = start;
  for (int i = 0; i < clients; ++i) {
    all.insert(all.end(), latencies[i].begin(), latencies[i].end());
    end = std::max(end, last[i]);
  }
  std::sort(all.begin(), all.end());
  result->seconds = std::chrono::duration<double>(end - start).count();
  result->cycles = all.size();
  result->cycles_per_second = result->seconds > 0 ? all.size() / result->seconds : 0;
  if (!all.empty()) {
    size_t n = all.size();
    result->p50_ms = all[n / 2] / 1000.0;
    size_t p99 = static_cast<size_t>(std::ceil(n * 0.99));
    result->p99_ms = all[std::min(n - 1, p99 == 0 ? 0 : p99 - 1)] / 1000.0;
    result->max_ms = all.back() / 1000.0;
  }
  return "";
}

int Usage(const std::string& why) {
  fprintf(stderr,
          "etcd_lock_bench: %s\nusage: etcd_lock_bench --endpoints URL[,URL...] "
          "[--scenario seq|distinct|one] [--clients N] [--seconds S] [--runs R] [--json]\n",
          why.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string v;
    if (a == "--json") {
      flags.json = true;
    } else if (a == "--endpoints" && value(&v)) {
      size_t at = 0;
      while (at <= v.size()) {
        size_t comma = v.find(',', at);
        std::string e = v.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
        if (!e.empty()) flags.endpoints.push_back(e);
        if (comma == std::string::npos) break;
        at = comma + 1;
      }
    } else if (a == "--scenario" && value(&v)) {
      if (v != "seq" && v != "distinct" && v != "one") return Usage("bad --scenario " + v);
      flags.scenario = v;
    } else if (a == "--clients" && value(&v)) {
      flags.clients = atoi(v.c_str());
      if (flags.clients < 1 || flags.clients > 1024) return Usage("--clients: 1-1024");
    } else if (a == "--seconds" && value(&v)) {
      flags.seconds = atof(v.c_str());
      if (!(flags.seconds >= 0.1 && flags.seconds <= 3600)) return Usage("--seconds: 0.1-3600");
    } else if (a == "--runs" && value(&v)) {
      flags.runs = atoi(v.c_str());
      if (flags.runs < 1 || flags.runs > 100) return Usage("--runs: 1-100");
    } else {
      return Usage("unknown or incomplete argument " + a);
    }
  }
  if (flags.endpoints.empty()) return Usage("--endpoints is required");
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::string version;
  {
    EtcdClient probe(flags.endpoints[0]);
    Json v = Json::parse(probe.Get("/version"), nullptr, false);
    version = v.is_discarded() ? "unknown" : v.value("etcdserver", "unknown");
  }
  int clients = flags.scenario == "seq" ? 1 : flags.clients;
  bool one_resource = flags.scenario != "distinct";
  std::vector<Result> runs;
  for (int r = 0; r < flags.runs; ++r) {
    Result result;
    std::string err = RunOnce(flags, clients, one_resource, &result);
    if (!err.empty()) {
      fprintf(stderr, "etcd_lock_bench: %s\n", err.c_str());
      curl_global_cleanup();
      return 99;
    }
    runs.push_back(result);
  }
  curl_global_cleanup();
  std::sort(runs.begin(), runs.end(), [](const Result& a, const Result& b) {
    return a.cycles_per_second < b.cycles_per_second;
  });
  const Result& r = runs[runs.size() / 2];
  std::string endpoints;
  for (const std::string& e : flags.endpoints) endpoints += (endpoints.empty() ? "" : ",") + e;
  if (flags.json) {
    Json out = {{"etcd", {{"version", version}, {"endpoints", flags.endpoints}}},
                {"seconds_per_run", flags.seconds},
                {"runs", flags.runs},
                {"results", Json::array()}};
    out["results"].push_back(
        {{"scenario", flags.scenario},
         {"clients", clients},
         {"resources", one_resource ? 1 : clients},
         {"seconds", r.seconds},
         {"cycles", r.cycles},
         {"cycles_per_second", r.cycles_per_second},
         {"latency_ms", {{"p50", r.p50_ms}, {"p99", r.p99_ms}, {"max", r.max_ms}}}});
    puts(out.dump(2).c_str());
    return 0;
  }
  printf("etcd %s at %s; %g s per run, median of %d run(s); unlock acknowledged\n", version.c_str(),
         endpoints.c_str(), flags.seconds, flags.runs);
  printf("%-9s %7s %9s %9s %10s %8s %8s %8s\n", "scenario", "clients", "resources", "cycles",
         "cycles/s", "p50 ms", "p99 ms", "max ms");
  printf("%-9s %7d %9d %9llu %10.1f %8.3f %8.3f %8.3f\n", flags.scenario.c_str(), clients,
         one_resource ? 1 : clients, static_cast<unsigned long long>(r.cycles), r.cycles_per_second,
         r.p50_ms, r.p99_ms, r.max_ms);
  return 0;
}
