// Registration of the subcommands. Each adds itself to the top-level app and returns the
// function that runs it once the command line has been parsed (returning the exit code).
#ifndef LOCKMESH_APPS_LOCKMESH_COMMANDS_H_
#define LOCKMESH_APPS_LOCKMESH_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <functional>

namespace lockmesh::cli {

/// Runs a parsed subcommand; returns the process exit code.
using CommandRunner = std::function<int()>;

CommandRunner AddNodeCommand(CLI::App* app);      // cmd_node.cc
CommandRunner AddLockCommand(CLI::App* app);      // cmd_lock.cc
CommandRunner AddLocksCommand(CLI::App* app);     // cmd_info.cc
CommandRunner AddStatusCommand(CLI::App* app);    // cmd_info.cc
CommandRunner AddUniqueIdCommand(CLI::App* app);  // cmd_info.cc
CommandRunner AddBenchCommand(CLI::App* app);     // bench.cc
CommandRunner AddDiscoverCommand(CLI::App* app);  // cmd_discover.cc (hidden)
CommandRunner AddCertCommand(CLI::App* app);      // cmd_cert.cc
CommandRunner AddTrustCommand(CLI::App* app);     // cmd_trust.cc
CommandRunner AddTlsDebugCommand(CLI::App* app);  // cmd_tls_debug.cc

}  // namespace lockmesh::cli

#endif  // LOCKMESH_APPS_LOCKMESH_COMMANDS_H_
