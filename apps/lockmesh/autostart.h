// Race-free start of a background node when a client finds none (FLoM's daemon
// auto-start, done without FLoM's races).
//
// Protocol, for a socket S:
//  1. Try to connect. Anything but Status::Unavailable ("no node") is returned as is.
//     If a mesh node has claimed S or the data dir (one authority per host, docs/mesh.md),
//     stop here with PermissionDenied: which node, which cluster, how to start it.
//  2. Create S's directory (0700), refuse it unless it is ours and not writable by
//     others (net/local/local_dir.h), and take an exclusive flock on S.start.lock (opened
//     O_NOFOLLOW), polling for up to `timeout_seconds`: only one starter at a time.
//  3. Try to connect again: the previous holder of the flock may have started a node.
//     Check the claim again.
//  4. Spawn `/proc/self/exe node --auto-started --socket S [--data-dir D] [--config F]
//     [extra args] --ready-fd 3` (argv[0] and any marker from `argv_prefix`), fully
//     detached (double fork, setsid, umask 077, cwd /, stdio on /dev/null, every other
//     descriptor closed). The node reports "ok" or its start error on
//     the ready pipe, so a start failure is reported at once instead of after a timeout.
//  5. Poll-connect with backoff until the node answers (up to `timeout_seconds`).
//  6. Release the flock.
// The node itself holds an exclusive flock on S.lock for its lifetime, so even a node
// started by other means cannot serve S twice.
// A connection reset or a node that stops answering (an idle node exiting as we connect)
// restarts the protocol, up to three times.
#ifndef LOCKMESH_APPS_LOCKMESH_AUTOSTART_H_
#define LOCKMESH_APPS_LOCKMESH_AUTOSTART_H_

#include <functional>
#include <string>
#include <vector>

#include "mesh/status.h"

namespace lockmesh::cli {

struct AutostartOptions {
  std::string socket;       // absolute socket path
  std::string data_dir;     // absolute; passed as --data-dir when not ""
  std::string config_file;  // absolute; passed as --config when not ""
  std::string log_file;     // where the started node logs, for error messages
  /// The data dir a started node would use when `data_dir` is "" (the default one),
  /// checked for a mesh node's claim before anything is started.
  std::string claim_data_dir;
  bool enabled = true;      // false: only step 1 (--no-autostart)
  double timeout_seconds = 10;
  /// The node's argv before "node": its argv[0] (the process name shown by ps and
  /// matched by pkill) and any marker the front end needs (`flom` uses {"flom",
  /// "--lockmesh"}, see flom_cli.h).
  std::vector<std::string> argv_prefix = {"lockmesh"};
  /// Extra `lockmesh node` flags, appended after the others (e.g. --idle-exit).
  std::vector<std::string> extra_node_args;
  /// The node started is a mesh node (`extra_node_args` has kAutoMeshFlag: `flom -a/-A`).
  /// A mesh node may start over its own claim, so the claims are then left to the node's
  /// own check (DecideStart with its cluster and id, which only the node knows).
  bool mesh = false;
};

/// One connection attempt: ok, Unavailable when no node answers, or another error.
using TryConnectFunction = std::function<mesh::Status()>;

/// Connects via `try_connect`, starting a node first if none answers (see above). Sets
/// `*started` to true when this call started the node. A final "no node" is returned as
/// Unavailable whose message names the socket.
mesh::Status ConnectOrStartNode(const AutostartOptions& options,
                                const TryConnectFunction& try_connect, bool* started);

/// PermissionDenied if `socket` or `data_dir` (both absolute: the socket a client uses and
/// the data dir a node would use with it) carries a mesh node's claim (core/mesh_claim.h,
/// docs/mesh.md "One authority per host"): the message names the mesh node and its cluster,
/// says it is not running, and gives the commands that start it and release the claim. Ok
/// when neither is claimed. Reads the two claim files; thread-safe. ConnectOrStartNode checks
/// this before starting anything; `locks` and `status` say it when no node answers.
mesh::Status CheckNoMeshClaim(const std::string& socket, const std::string& data_dir);

/// Name of the hidden `node` flag carrying the ready pipe's descriptor.
inline constexpr const char* kReadyFdFlag = "--ready-fd";
/// Hidden `node` flag: with --auto-started, the node joins a mesh instead of running
/// --local (the `flom` front end's -a/-A, docs/flom.md).
inline constexpr const char* kAutoMeshFlag = "--auto-mesh";

/// Written by an auto-started node on its ready pipe: "ok\n" once serving, or
/// "already-running <message>\n" / "refused <message>\n" (PermissionDenied: a mesh claim
/// or a foreign socket directory; not retried) / "error <message>\n" when Start failed.
void WriteReadyLine(int fd, const mesh::Status& start_status);

}  // namespace lockmesh::cli

#endif  // LOCKMESH_APPS_LOCKMESH_AUTOSTART_H_
