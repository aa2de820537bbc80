// The work of `lockmesh lock`: lock, run the command, forward signals, react to a lost
// lock, unlock, and produce the exit code. Everything happens on one libuv loop: the
// AsyncClient's I/O, the signal watchers (including SIGCHLD for the command) and timers.
#ifndef LOCKMESH_APPS_LOCKMESH_LOCK_RUNNER_H_
#define LOCKMESH_APPS_LOCKMESH_LOCK_RUNNER_H_

#include <functional>
#include <string>
#include <vector>

#include "autostart.h"
#include "config.h"
#include "exit_codes.h"
#include "mesh/client.h"
#include "wait_message.h"

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
  /// FLoM's convention (the `flom` front end): for set, sequence and timestamp resources
  /// the granted element is also appended to the command as its last argument.
  bool element_as_last_argument = false;
  /// Signals ignored for the whole run instead of being forwarded or acted upon (FLoM's
  /// --ignore-signal). The command itself starts with default dispositions.
  std::vector<int> ignored_signals;
  /// Exit code when the lock is lost (95; the `flom` front end uses FLoM's 99).
  int lost_exit_code = kExitLost;
  /// Exit code when no node answers and none is started (--no-autostart, or a mesh node
  /// that is down has claimed the socket or data dir): 94; the `flom` front end uses 99.
  int no_node_exit_code = kExitNoNode;
  /// Called once the lock is granted, before the command starts (e.g. `flom -V` prints the
  /// element). May be empty.
  std::function<void(const mesh::Lock&)> on_granted;
  /// What to say on stderr while waiting (wait_message.h): `lockmesh lock` says it on a
  /// terminal unless --quiet; the `flom` front end only with -V.
  WaitReport wait_report = WaitReport::kQuiet;
};

/// Runs the request on uv_default_loop() and returns the process exit code (exit_codes.h).
int RunLock(const LockRequest& request);

}  // namespace lockmesh::cli

#endif  // LOCKMESH_APPS_LOCKMESH_LOCK_RUNNER_H_
