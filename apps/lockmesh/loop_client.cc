#include "loop_client.h"

#include <uv.h>

namespace lockmesh::cli {

using mesh::Status;

namespace {

/// Runs `loop` one iteration at a time until `*done`.
void RunUntil(uv_loop_t* loop, const bool* done) {
  while (!*done) {
    if (uv_run(loop, UV_RUN_ONCE) == 0 && !*done) break;  // nothing left that could finish it
  }
}

}  // namespace

Status ConnectOnLoop(uv_loop_t* loop, const mesh::ClientOptions& options,
                     std::unique_ptr<mesh::AsyncClient>* out) {
  std::unique_ptr<mesh::AsyncClient> client = mesh::AsyncClient::Create(loop, options);
  if (client == nullptr) return Status::Internal("cannot create a client");
  bool done = false;
  Status result = Status::Unavailable("connect did not complete");
  client->Connect([&](const Status& st) {
    result = st;
    done = true;
  });
  RunUntil(loop, &done);
  if (!result.ok()) {
    CloseOnLoop(loop, std::move(client));
    return result;
  }
  *out = std::move(client);
  return Status::OK();
}

void CloseOnLoop(uv_loop_t* loop, std::unique_ptr<mesh::AsyncClient> client) {
  if (client == nullptr) return;
  bool done = false;
  client->Close([&] { done = true; });
  RunUntil(loop, &done);
  client.reset();
}

Status ConnectOrStartOnLoop(uv_loop_t* loop, const mesh::ClientOptions& options,
                            const AutostartOptions& autostart,
                            std::unique_ptr<mesh::AsyncClient>* out, bool* started) {
  return ConnectOrStartNode(
      autostart, [&] { return ConnectOnLoop(loop, options, out); }, started);
}

}  // namespace lockmesh::cli
