// LockHolder: see lock_holder.h.
#include "net/support/lock_holder.h"

#include <uv.h>

#include <atomic>
#include <future>
#include <thread>

#include "mesh/client.h"

namespace lockmesh::testing {

struct LockHolder::Impl {
  uv_loop_t loop;
  uv_async_t stop;
  std::thread thread;
  std::unique_ptr<mesh::AsyncClient> client;
  std::atomic<bool> healthy{true};
  // Loop thread only.
  std::string socket, prefix;
  uint64_t count = 0, issued = 0, granted = 0;
  size_t name_bytes = 0, window = 0;
  bool failed = false;
  std::promise<mesh::Status> started;

  void Issue() {
    while (!failed && issued < count && issued - granted < window) {
      const uint64_t i = issued++;
      mesh::LockOptions o;
      o.timeout_ms = 60'000;
      client->Lock(Name(prefix, i, name_bytes), o,
                   [this](const mesh::Status& s, const mesh::Lock&) {
                     if (failed) return;
                     if (!s.ok()) {
                       failed = true;
                       started.set_value(s);
                       return;
                     }
                     if (++granted == count) {
                       started.set_value(mesh::Status::OK());
                       return;
                     }
                     Issue();
                   });
    }
  }
};

LockHolder::LockHolder() : impl_(std::make_unique<Impl>()) {}

std::string LockHolder::Name(const std::string& prefix, uint64_t i, size_t name_bytes) {
  std::string n = std::to_string(i);
  if (prefix.size() + n.size() < name_bytes)
    n.insert(0, name_bytes - prefix.size() - n.size(), '0');
  return prefix + n;
}

mesh::Status LockHolder::Start(const std::string& socket, uint64_t count, size_t name_bytes,
                               const std::string& prefix, std::unique_ptr<LockHolder>* out,
                               size_t window) {
  std::unique_ptr<LockHolder> h(new LockHolder());
  Impl* impl = h->impl_.get();
  impl->socket = socket;
  impl->prefix = prefix;
  impl->count = count;
  impl->name_bytes = name_bytes;
  impl->window = window == 0 ? 1 : window;
  uv_loop_init(&impl->loop);
  impl->stop.data = impl;
  uv_async_init(&impl->loop, &impl->stop, [](uv_async_t* a) {
    auto* impl = static_cast<Impl*>(a->data);
    impl->client->Close([impl] { uv_close(reinterpret_cast<uv_handle_t*>(&impl->stop), nullptr); });
  });
  mesh::ClientOptions options;
  options.socket_path = socket;
  options.client_name = "test lock holder";
  impl->client = mesh::AsyncClient::Create(&impl->loop, options);
  impl->client->SetLostCallback(
      [impl](const mesh::Lock&, const mesh::Status&) { impl->healthy = false; });
  std::future<mesh::Status> started = impl->started.get_future();
  impl->client->Connect([impl](const mesh::Status& s) {
    if (!s.ok()) {
      impl->failed = true;
      impl->started.set_value(s);
      return;
    }
    if (impl->count == 0) {
      impl->started.set_value(mesh::Status::OK());
      return;
    }
    impl->Issue();
  });
  impl->thread = std::thread([impl] {
    uv_run(&impl->loop, UV_RUN_DEFAULT);
    uv_loop_close(&impl->loop);
  });
  mesh::Status s = started.get();
  if (!s.ok()) return s;  // the destructor closes and joins
  *out = std::move(h);
  return mesh::Status::OK();
}

LockHolder::~LockHolder() {
  uv_async_send(&impl_->stop);
  if (impl_->thread.joinable()) impl_->thread.join();
}

bool LockHolder::healthy() const { return impl_->healthy; }

}  // namespace lockmesh::testing
