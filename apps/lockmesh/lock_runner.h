// The work of `lockmesh lock`: lock, run the command, forward signals, react to a lost
// lock, unlock, and produce the exit code. Everything happens on one libuv loop: the
// AsyncClient's I/O, the signal watchers (including SIGCHLD for the command) and timers.
#ifndef LOCKMESH_APPS_LOCKMESH_LOCK_RUNNER_H_
#define LOCKMESH_APPS_LOCKMESH_LOCK_RUNNER_H_

#include <string>
#include <vector>

#include "autostart.h"
#include "config.h"
#include "mesh/client.h"

namespace lockmesh::cli {

/// Everything `lockmesh lock` was asked to do.
struct LockRequest {
  std::string resource;
  std::vector<std::string> command;  // argv of the command; argv[0] is looked up in PATH
  mesh::LockOptions lock_options;
  OnLost on_lost = OnLost::kTerm;
  double grace_seconds = 5;
  mesh::ClientOptions client_options;
  AutostartOptions autostart;
};

/// Runs the request on uv_default_loop() and returns the process exit code (exit_codes.h).
int RunLock(const LockRequest& request);

}  // namespace lockmesh::cli

#endif  // LOCKMESH_APPS_LOCKMESH_LOCK_RUNNER_H_
