// The `flom` front end: FLoM's command line (FLoM 1.7.2), run on lockmesh.
//
// `lockmesh` invoked as `flom` (the installed symlink; argv[0]'s basename) or as
// `lockmesh flom ARGS...` parses FLoM's options, reads FLoM's INI configuration files
// (flom_config.h), and then does what `lockmesh lock` does (lock_runner.h) with FLoM's
// conventions: default resource `_RESOURCE`, default socket /tmp/flom-<login>, the element
// of a set/sequence/timestamp resource appended as the command's last argument, FLoM's
// exit codes (96-99), and an auto-started node that exits after FLoM's daemon lifespan and
// runs under the process name `flom`, so that `flom -x` and `pkill flom` keep working.
// docs/flom.md maps every FLoM option and names every difference.
#ifndef LOCKMESH_APPS_LOCKMESH_FLOM_CLI_H_
#define LOCKMESH_APPS_LOCKMESH_FLOM_CLI_H_

namespace lockmesh::cli {

/// argv[1] of a process invoked as `flom` that is really a `lockmesh` command line:
/// `flom --lockmesh node ...` is `lockmesh node ...` under the process name `flom`. The
/// `flom` front end starts its node this way. FLoM itself has no such option, so no FLoM
/// command line is taken for it.
inline constexpr const char* kFlomLockmeshMarker = "--lockmesh";

/// Runs FLoM's command line `argv` (argv[0] is the name to print in messages) and returns
/// the process exit code: the command's status, or FLoM's 96-99 (0 for -v, -h, -x, ...).
/// Uses uv_default_loop(); call once per process, from main.
int RunFlom(int argc, char** argv);

}  // namespace lockmesh::cli

#endif  // LOCKMESH_APPS_LOCKMESH_FLOM_CLI_H_
