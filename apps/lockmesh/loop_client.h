// Synchronous helpers around mesh::AsyncClient for code that sets up before its loop runs.
#ifndef LOCKMESH_APPS_LOCKMESH_LOOP_CLIENT_H_
#define LOCKMESH_APPS_LOCKMESH_LOOP_CLIENT_H_

#include <memory>

#include "autostart.h"
#include "mesh/client.h"
#include "mesh/status.h"

typedef struct uv_loop_s uv_loop_t;

namespace lockmesh::cli {

/// Creates an AsyncClient on `loop` and connects it, running `loop` until Connect's callback
/// has run. On failure the client is closed and destroyed and `*out` is left empty.
mesh::Status ConnectOnLoop(uv_loop_t* loop, const mesh::ClientOptions& options,
                           std::unique_ptr<mesh::AsyncClient>* out);

/// Closes `client` and runs `loop` until the close has completed, then destroys it.
void CloseOnLoop(uv_loop_t* loop, std::unique_ptr<mesh::AsyncClient> client);

/// ConnectOnLoop, auto-starting a node as `autostart` says. `*started`: this call started it.
mesh::Status ConnectOrStartOnLoop(uv_loop_t* loop, const mesh::ClientOptions& options,
                                  const AutostartOptions& autostart,
                                  std::unique_ptr<mesh::AsyncClient>* out, bool* started);

}  // namespace lockmesh::cli

#endif  // LOCKMESH_APPS_LOCKMESH_LOOP_CLIENT_H_
