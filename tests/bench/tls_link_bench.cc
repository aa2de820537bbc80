// One TLS peer link on loopback: small framed messages per second
// (100-byte frames), bulk MB/s (64 KiB frames), and the time to bring a link up (TCP connect
// + TLS 1.2 handshake with certificate verification on both sides + Hello/Welcome).
//
// The receiving node runs on its own thread and loop, as a real peer would; the sender
// queues frames with PeerTransport::SendEncoded and lets the transport coalesce them (one TLS
// write and one system call per loop iteration), pausing while more than 4 MiB wait in
// libuv. A run ends when the receiver has parsed every frame. Security level: encrypt
// (mutual costs the same on the wire), EC P-256 certificates from net/tls/certificate.h.
//
//   ./tests/bench/tls_link_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "net/peer/peer_transport.h"
#include "net/support/frame.h"
#include "net/tls/certificate.h"

namespace {

namespace net = mesh::net;
using mesh::Status;

struct Certs {
  std::string dir;
  net::TlsOptions a, b;
};

// A CA and two node certificates in a temporary directory (removed at exit).
const Certs& TheCerts() {
  static Certs* certs = [] {
    auto* c = new Certs;
    char tmpl[] = "/tmp/lockmesh-bench-XXXXXX";
    c->dir = mkdtemp(tmpl);
    auto make = [&](const std::string& name, net::CertificateKind kind, const std::string& cn,
                    bool signed_by_ca) {
      net::CertificateSpec spec;
      spec.kind = kind;
      spec.common_name = cn;
      net::DefaultValidity(time(nullptr), 30, &spec);
      net::PemPair pair;
      Status st;
      if (signed_by_ca) {
        net::CertificateChain ca;
        net::PrivateKey key;
        st = net::LoadCertificateAuthority(c->dir + "/ca", &ca, &key);
        if (st.ok()) st = net::GenerateCertificate(spec, &ca, &key, &pair);
      } else {
        st = net::GenerateCertificate(spec, nullptr, nullptr, &pair);
      }
      if (st.ok()) st = net::WriteCertificateFiles(c->dir + "/" + name, pair, true);
      if (!st.ok()) {
        fprintf(stderr, "certificates: %s\n", st.ToString().c_str());
        abort();
      }
    };
    make("ca", net::CertificateKind::kCa, "bench CA", false);
    make("a", net::CertificateKind::kNode, "a", true);
    make("b", net::CertificateKind::kNode, "b", true);
    for (auto [opts, name] : {std::pair{&c->a, "a"}, std::pair{&c->b, "b"}}) {
      opts->level = net::SecurityLevel::kEncrypt;
      opts->cert_file = c->dir + "/" + name + "/cert.pem";
      opts->key_file = c->dir + "/" + name + "/key.pem";
      opts->ca_file = c->dir + "/ca/cert.pem";
    }
    atexit([] { std::filesystem::remove_all(TheCerts().dir); });
    return c;
  }();
  return *certs;
}

net::PeerTransportOptions Options(const std::string& id, const net::TlsOptions& tls) {
  net::PeerTransportOptions o;
  o.cluster = "bench";
  o.node_id = id;
  o.listen_address = "127.0.0.1:0";
  o.tls = tls;
  o.log = [](const std::string&) {};
  return o;
}

// Node "b" on its own thread: counts what it receives.
class Receiver {
 public:
  Receiver() {
    thread_ = std::thread([this] { Run(); });
    while (port_.load() == 0) usleep(1000);
  }
  ~Receiver() {
    uv_async_send(&stop_);
    thread_.join();
  }
  uint16_t port() const { return port_.load(); }
  std::atomic<uint64_t> frames{0};
  std::atomic<uint64_t> bytes{0};

 private:
  void Run() {
    uv_loop_init(&loop_);
    net::PeerCallbacks cb;
    cb.on_message = [this](const std::string&, mesh::pb::PeerEnvelope& m) {
      bytes.fetch_add(m.opaque().size(), std::memory_order_relaxed);
      frames.fetch_add(1, std::memory_order_release);
    };
    transport_ = std::make_unique<net::PeerTransport>(&loop_, Options("b", TheCerts().b), cb);
    Status st = transport_->Start();
    if (!st.ok()) {
      fprintf(stderr, "receiver: %s\n", st.ToString().c_str());
      abort();
    }
    stop_.data = this;
    uv_async_init(&loop_, &stop_, [](uv_async_t* a) {
      auto* self = static_cast<Receiver*>(a->data);
      self->transport_->Stop(
          [self] { uv_close(reinterpret_cast<uv_handle_t*>(&self->stop_), nullptr); });
    });
    port_.store(transport_->listen_port());
    uv_run(&loop_, UV_RUN_DEFAULT);
    transport_.reset();
    uv_loop_close(&loop_);
  }
  uv_loop_t loop_;
  uv_async_t stop_;
  std::unique_ptr<net::PeerTransport> transport_;
  std::atomic<uint16_t> port_{0};
  std::thread thread_;
};

// Node "a" on the calling thread, linked to a Receiver.
class Sender {
 public:
  explicit Sender(uint16_t port) {
    uv_loop_init(&loop_);
    transport_ = std::make_unique<net::PeerTransport>(&loop_, Options("a", TheCerts().a),
                                                      net::PeerCallbacks{});
    if (!transport_->Start().ok() || !transport_->Dial("127.0.0.1:" + std::to_string(port)).ok()) {
      abort();
    }
    while (!transport_->IsConnected("b")) uv_run(&loop_, UV_RUN_ONCE);
  }
  ~Sender() {
    bool done = false;
    transport_->Stop([&] { done = true; });
    while (!done) uv_run(&loop_, UV_RUN_ONCE);
    uv_run(&loop_, UV_RUN_DEFAULT);
    transport_.reset();
    uv_loop_close(&loop_);
  }
  // Sends `count` copies of `frames` (each holding `per_batch` frames); returns once the
  // receiver has all `count * per_batch` of them.
  void Pump(const std::string& frames, uint64_t per_batch, uint64_t count, Receiver* r) {
    uint64_t target = r->frames.load() + per_batch * count;
    for (uint64_t i = 0; i < count; ++i) {
      transport_->SendEncoded("b", frames);
      uv_run(&loop_, UV_RUN_NOWAIT);  // the prepare handle flushes
      while (transport_->QueuedBytes("b") > (4u << 20)) uv_run(&loop_, UV_RUN_ONCE);
    }
    while (r->frames.load(std::memory_order_acquire) < target) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      if (transport_->QueuedBytes("b") == 0) std::this_thread::yield();
    }
  }

 private:
  uv_loop_t loop_;
  std::unique_ptr<net::PeerTransport> transport_;
};

// CPU seconds used by the whole process (sender and receiver threads) so far. On a loaded
// machine wall-clock rates say more about the neighbours than about the link; the rate per
// CPU second of both ends together is the steadier figure.
double ProcessCpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::string Frames(size_t body_bytes, size_t count) {
  mesh::pb::PeerEnvelope env;
  // Envelope overhead for `opaque` (field 50): 2 tag bytes + the length varint.
  size_t len_bytes = body_bytes - 3 < 128 ? 1 : (body_bytes - 4 < 16384 ? 2 : 3);
  env.set_opaque(std::string(body_bytes - 2 - len_bytes, 'x'));
  std::string out;
  for (size_t i = 0; i < count; ++i) net::AppendFrame(env, &out);
  return out;
}

void BM_SmallFrames(benchmark::State& state) {
  Receiver receiver;
  Sender sender(receiver.port());
  constexpr size_t kPerBatch = 512;  // one loop iteration's worth of frames
  const std::string batch = Frames(100, kPerBatch);
  const uint64_t batches = 400;  // 204,800 frames per iteration
  double cpu0 = ProcessCpuSeconds();
  for (auto _ : state) sender.Pump(batch, kPerBatch, batches, &receiver);
  double frames = static_cast<double>(state.iterations() * kPerBatch * batches);
  state.counters["frames/s"] = benchmark::Counter(frames, benchmark::Counter::kIsRate);
  state.counters["frames/cpu_s"] = frames / (ProcessCpuSeconds() - cpu0);
  state.counters["frame_bytes"] = static_cast<double>(batch.size() / kPerBatch);
}
BENCHMARK(BM_SmallFrames)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

void BM_Bulk(benchmark::State& state) {
  Receiver receiver;
  Sender sender(receiver.port());
  const size_t kFrame = 64 * 1024;
  const std::string frame = Frames(kFrame, 1);
  const uint64_t count = 4096;  // 256 MiB per iteration
  double cpu0 = ProcessCpuSeconds();
  for (auto _ : state) sender.Pump(frame, 1, count, &receiver);
  double mb = static_cast<double>(state.iterations() * count * kFrame) / 1e6;
  state.counters["MB/s"] = benchmark::Counter(mb, benchmark::Counter::kIsRate);
  state.counters["MB/cpu_s"] = mb / (ProcessCpuSeconds() - cpu0);
}
BENCHMARK(BM_Bulk)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

// Time from Dial to "peer up" on the dialling side: TCP connect, TLS handshake (ECDHE P-256,
// ECDSA certificates verified both ways), Hello and Welcome both ways.
void BM_LinkUp(benchmark::State& state) {
  Receiver receiver;
  uv_loop_t loop;
  uv_loop_init(&loop);
  const std::string address = "127.0.0.1:" + std::to_string(receiver.port());
  int round = 0;
  for (auto _ : state) {
    // A new node id each time: the receiver may not yet have seen the last one go.
    auto t = std::make_unique<net::PeerTransport>(
        &loop, Options("a" + std::to_string(round++), TheCerts().a), net::PeerCallbacks{});
    if (!t->Start().ok()) abort();
    auto start = std::chrono::steady_clock::now();
    t->Dial(address);
    while (!t->IsConnected("b")) uv_run(&loop, UV_RUN_ONCE);
    auto took = std::chrono::steady_clock::now() - start;
    state.SetIterationTime(std::chrono::duration<double>(took).count());
    bool done = false;
    t->Stop([&] { done = true; });
    while (!done) uv_run(&loop, UV_RUN_ONCE);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}
BENCHMARK(BM_LinkUp)->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(50);

}  // namespace

BENCHMARK_MAIN();
