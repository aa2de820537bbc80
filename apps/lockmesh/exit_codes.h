// Exit codes of the `lockmesh` program, in one place.
//
// `lockmesh lock` exits with its command's own status when it ran; the codes 94-99 are
// FLoM's (96-99) plus two of lockmesh's (no node, lost lock). A command that itself exits
// 94-99 is therefore indistinguishable from lockmesh's own failures, exactly as with FLoM.
// README.md and docs/cli.md list every code here.
#ifndef LOCKMESH_APPS_LOCKMESH_EXIT_CODES_H_
#define LOCKMESH_APPS_LOCKMESH_EXIT_CODES_H_

namespace lockmesh::cli {

/// Success (or, for `lock`, the command exited 0).
inline constexpr int kExitOk = 0;
/// `trust forget`: the node id is not known.
inline constexpr int kExitNotFound = 1;
/// `status --check`: the node answered but does not serve locks now (the line says why).
inline constexpr int kExitUnhealthy = 1;
/// No node answers at the socket and none is started: `lock` and `bench` with
/// --no-autostart, `locks` and `status` (which never start one); also when the socket or
/// data dir belongs to a mesh node that is down. The same code for every subcommand (the
/// `flom` front end keeps FLoM's 99).
inline constexpr int kExitNoNode = 94;
/// Bad command line: unknown flag, missing argument, bad flag value.
inline constexpr int kExitUsage = 2;
/// `lock`: the lock was lost while the command ran (session expired, node gone).
inline constexpr int kExitLost = 95;
/// `lock`: the resource does not exist and --no-create was given with -n (FLoM's 96).
inline constexpr int kExitCantWait = 96;
/// `lock`: the command could not be started (fork or exec failed; FLoM's 97).
inline constexpr int kExitCantRun = 97;
/// `lock`: resource busy with -n, or -w SECONDS passed without a grant (FLoM's 98).
inline constexpr int kExitBusy = 98;
/// Any other error: configuration, node start failure, I/O, impossible request (FLoM's 99).
inline constexpr int kExitError = 99;
/// A process killed by signal N is reported as kExitSignalBase + N, as shells do.
inline constexpr int kExitSignalBase = 128;

}  // namespace lockmesh::cli

#endif  // LOCKMESH_APPS_LOCKMESH_EXIT_CODES_H_
