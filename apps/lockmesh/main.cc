// lockmesh: one binary, subcommands. Parses the command line (CLI11) and runs the chosen
// subcommand; every exception of CLI11 is caught here and turned into an exit code.
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <utility>
#include <vector>

#include "cli_support.h"
#include "commands.h"
#include "exit_codes.h"
#include "flom_cli.h"

namespace lockmesh::cli {
namespace {

int Main(int argc, char** argv) {
  // A peer closing a socket must be an error return, not a fatal signal.
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{"lockmesh: a peer-to-peer distributed lock manager (FLoM's model, replicated)."};
  app.name("lockmesh");
  app.require_subcommand(1);
  app.set_version_flag("--version",
                       std::string("lockmesh ") + LOCKMESH_VERSION +
                           " (client protocol 1; security levels: none, encrypt, mutual, tofu)");
  app.footer(
      "Exit codes: 0 success, 1 no node running (locks, status), 2 usage error, 99 other\n"
      "errors; `lock` exits with its command's status or 95-98 (see `lockmesh lock --help`).\n"
      "Configuration: /etc/lockmesh/lockmesh.toml < ~/.config/lockmesh/lockmesh.toml <\n"
      "--config FILE < LOCKMESH_* variables < flags. See docs/cli.md.\n"
      "`lockmesh flom ARGS` (or this binary invoked as `flom`) takes FLoM's command line;\n"
      "see `lockmesh flom --help` and docs/flom.md.");
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
  add(AddDiscoverCommand);
  add(AddCertCommand);
  add(AddTrustCommand);
  add(AddTlsDebugCommand);
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

/// Chooses the command line: FLoM's when invoked as `flom` or as `lockmesh flom`, else ours.
int Dispatch(int argc, char** argv) {
  std::string invoked = argc > 0 ? argv[0] : "lockmesh";
  invoked = invoked.substr(invoked.rfind('/') + 1);
  // An auto-started node is exec'd through /proc/self/exe, which names the process "exe":
  // take the name argv[0] gives, so that ps and pkill find `lockmesh` or `flom` nodes.
  if (!invoked.empty()) prctl(PR_SET_NAME, invoked.substr(0, 15).c_str());
  if (invoked == "flom") {
    if (argc >= 2 && strcmp(argv[1], kFlomLockmeshMarker) == 0) {
      argv[1] = argv[0];  // `flom --lockmesh ARGS...` is `lockmesh ARGS...`
      return Main(argc - 1, argv + 1);
    }
    return RunFlom(argc, argv);
  }
  if (argc >= 2 && strcmp(argv[1], "flom") == 0) return RunFlom(argc - 1, argv + 1);
  return Main(argc, argv);
}

}  // namespace
}  // namespace lockmesh::cli

int main(int argc, char** argv) {
  try {
    return lockmesh::cli::Dispatch(argc, argv);
  } catch (const std::exception& e) {
    lockmesh::cli::PrintError(std::string("internal error: ") + e.what());
    return lockmesh::cli::kExitError;
  }
}
