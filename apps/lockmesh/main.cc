// lockmesh: one binary, subcommands. Parses the command line (CLI11) and runs the chosen
// subcommand; every exception of CLI11 is caught here and turned into an exit code.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <utility>
#include <vector>

#include "cli_support.h"
#include "commands.h"
#include "exit_codes.h"

namespace lockmesh::cli {
namespace {

int Main(int argc, char** argv) {
  // A peer closing a socket must be an error return, not a fatal signal.
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{"lockmesh: a peer-to-peer distributed lock manager (FLoM's model, replicated)."};
  app.name("lockmesh");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("lockmesh ") + LOCKMESH_VERSION +
                                        " (client protocol 1; security levels in this build: none)");
  app.footer(
      "Exit codes: 0 success, 1 no node running (locks, status), 2 usage error, 99 other\n"
      "errors; `lock` exits with its command's status or 95-98 (see `lockmesh lock --help`).\n"
      "Configuration: /etc/lockmesh/lockmesh.toml < ~/.config/lockmesh/lockmesh.toml <\n"
      "--config FILE < LOCKMESH_* variables < flags. See docs/cli.md.");
  std::vector<std::pair<CLI::App*, CommandRunner>> commands;
  auto add = [&](CommandRunner (*add_command)(CLI::App*)) {
    size_t before = app.get_subcommands({}).size();
    CommandRunner runner = add_command(&app);
    commands.emplace_back(app.get_subcommands({})[before], std::move(runner));
  };
  add(AddLockCommand);
  add(AddNodeCommand);
  add(AddLocksCommand);
  add(AddStatusCommand);
  add(AddUniqueIdCommand);
  add(AddBenchCommand);
  add(AddCertCommand);
  add(AddTrustCommand);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    PrintError(std::string(e.what()) + " (run with --help for usage)");
    return kExitUsage;
  }
  for (auto& [sub, run] : commands) {
    if (sub->parsed()) return run();
  }
  PrintError("no subcommand given (run with --help for usage)");
  return kExitUsage;
}

}  // namespace
}  // namespace lockmesh::cli

int main(int argc, char** argv) {
  try {
    return lockmesh::cli::Main(argc, argv);
  } catch (const std::exception& e) {
    lockmesh::cli::PrintError(std::string("internal error: ") + e.what());
    return lockmesh::cli::kExitError;
  }
}
