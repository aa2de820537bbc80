// lockmesh: one binary, subcommands. Chooses the subcommand from argv[1] before anything
// else, builds only that subcommand's CLI11 options (`lockmesh lock` is started once per
// critical section: building every subcommand's option tree cost more than the lock itself),
// parses the command line and runs it; every exception of CLI11 is caught here and turned
// into one line on stderr and an exit code.
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli_support.h"
#include "commands.h"
#include "exit_codes.h"
#include "flom_cli.h"

namespace lockmesh::cli {
namespace {

/// One subcommand: its name (as its Add function registers it) and that function.
struct Subcommand {
  const char* name;
  CommandRunner (*add)(CLI::App*);
  bool hidden;  // not listed, never suggested
};

constexpr Subcommand kSubcommands[] = {
    {"lock", AddLockCommand, false},          {"node", AddNodeCommand, false},
    {"locks", AddLocksCommand, false},        {"status", AddStatusCommand, false},
    {"unique-id", AddUniqueIdCommand, false}, {"bench", AddBenchCommand, false},
    {"discover", AddDiscoverCommand, true},   {"cert", AddCertCommand, false},
    {"trust", AddTrustCommand, false},        {"tls-debug", AddTlsDebugCommand, false},
};

constexpr const char* kFooter =
    "Exit codes: 0 success, 2 usage error, 94 no node answers at the socket (lock\n"
    "--no-autostart, locks, status), 99 other errors; `lock` exits with its command's status\n"
    "or 94-98 (see `lockmesh lock --help`). The full table: docs/cli.md#exit-codes.\n"
    "Configuration: /etc/lockmesh/lockmesh.toml < ~/.config/lockmesh/lockmesh.toml <\n"
    "--config FILE < LOCKMESH_* variables < flags. See docs/cli.md.\n"
    "`lockmesh help SUBCOMMAND` (or `lockmesh SUBCOMMAND --help`) shows a subcommand's flags.\n"
    "`lockmesh flom ARGS` (or this binary invoked as `flom`) takes FLoM's command line;\n"
    "see `lockmesh flom --help` and docs/flom.md.";

const Subcommand* FindSubcommand(std::string_view name) {
  for (const Subcommand& sub : kSubcommands) {
    if (name == sub.name) return &sub;
  }
  return nullptr;
}

/// Levenshtein distance (names are short).
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

/// The listed subcommand closest to `name` (at most 2 edits, or a prefix), or "".
std::string Suggest(std::string_view name) {
  std::string best;
  size_t best_distance = 3;
  for (const Subcommand& sub : kSubcommands) {
    if (sub.hidden) continue;
    std::string_view candidate = sub.name;
    size_t d = EditDistance(name, candidate);
    if (d >= best_distance && name.size() >= 2 && candidate.substr(0, name.size()) == name) d = 2;
    if (d < best_distance) {
      best_distance = d;
      best = sub.name;
    }
  }
  return best;
}

/// "unknown subcommand 'lokc' (did you mean 'lock'?); run 'lockmesh help' for the list".
int UnknownSubcommand(std::string_view name) {
  std::string message = "unknown subcommand '" + std::string(name) + "'";
  std::string suggestion = Suggest(name);
  if (!suggestion.empty()) message += " (did you mean '" + suggestion + "'?)";
  PrintError(message + "; run 'lockmesh help' for the list");
  return kExitUsage;
}

/// The top-level app, without subcommands.
void InitApp(CLI::App* app) {
  app->name("lockmesh");
  app->require_subcommand(1);
  app->set_version_flag("--version", [] { return VersionLine(); });  // built only when asked
  app->footer(kFooter);
}

/// `option` names an option of `app` or of one of its parents.
bool KnownOption(const CLI::App* app, const std::string& option) {
  for (; app != nullptr; app = app->get_parent()) {
    if (app->get_option_no_throw(option) != nullptr) return true;
  }
  return false;
}

/// The deepest subcommand that the parse reached.
const CLI::App* DeepestParsed(const CLI::App* app) {
  while (true) {
    const CLI::App* next = nullptr;
    for (const CLI::App* sub : app->get_subcommands()) next = sub;
    if (next == nullptr) return app;
    app = next;
  }
}

/// After a parse error about unexpected arguments: the first argument (before `--`) that
/// looks like an option and is none of `app`'s, or "". CLI11 reports such an option as an
/// unexpected argument together with whatever followed it ("-- --bogus").
std::string FindUnknownOption(const CLI::App* app, int argc, char** argv) {
  bool skip_value = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") break;
    if (skip_value) {
      skip_value = false;
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-' || (arg[1] >= '0' && arg[1] <= '9')) continue;
    if (arg[1] == '-') {
      size_t eq = arg.find('=');
      std::string name = arg.substr(0, eq);
      if (!KnownOption(app, name)) return name;
      const CLI::Option* option = nullptr;
      for (const CLI::App* a = app; a != nullptr && option == nullptr; a = a->get_parent()) {
        option = a->get_option_no_throw(name);
      }
      skip_value = eq == std::string::npos && option->get_expected_min() > 0;
      continue;
    }
    // -abc: flags a and b, then c (which may take the rest, or the next argument, as value).
    for (size_t k = 1; k < arg.size(); ++k) {
      std::string name = std::string("-") + arg[k];
      if (!KnownOption(app, name)) return name;
      const CLI::Option* option = nullptr;
      for (const CLI::App* a = app; a != nullptr && option == nullptr; a = a->get_parent()) {
        option = a->get_option_no_throw(name);
      }
      if (option->get_expected_min() > 0) {
        skip_value = k + 1 == arg.size();
        break;
      }
    }
  }
  return "";
}

/// Full help: every subcommand listed (built only for --help and `help`).
int PrintFullHelp() {
  CLI::App app{"lockmesh: a peer-to-peer distributed lock manager (FLoM's model, replicated)."};
  InitApp(&app);
  for (const Subcommand& sub : kSubcommands) sub.add(&app);  // `discover` hides itself
  fputs(app.help().c_str(), stdout);
  return kExitOk;
}

/// Parses and runs `argv[1]`'s subcommand (`sub`), with only that subcommand built.
int RunSubcommand(const Subcommand& sub, int argc, char** argv) {
  CLI::App app{"lockmesh: a peer-to-peer distributed lock manager (FLoM's model, replicated)."};
  InitApp(&app);
  CommandRunner run = sub.add(&app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const CLI::App* where = DeepestParsed(&app);
    std::string unknown = FindUnknownOption(where, argc, argv);
    std::string usage = where->get_name();
    for (const CLI::App* a = where->get_parent(); a != nullptr; a = a->get_parent()) {
      usage = a->get_name() + " " + usage;
    }
    if (!unknown.empty()) {
      PrintError(usage.substr(usage.find(' ') + 1) + ": unknown option " + unknown + " (run '" +
                 usage + " --help' for usage)");
    } else {
      PrintError(std::string(e.what()) + " (run '" + usage + " --help' for usage)");
    }
    return kExitUsage;
  }
  return run();
}

int Main(int argc, char** argv) {
  // A peer closing a socket must be an error return, not a fatal signal.
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2) {
    PrintError("no subcommand given; run 'lockmesh help' for the list");
    return kExitUsage;
  }
  std::string_view first = argv[1];
  if (const Subcommand* sub = FindSubcommand(first)) return RunSubcommand(*sub, argc, argv);
  if (first == "--version") {
    puts(VersionLine().c_str());
    return kExitOk;
  }
  if (first == "--help" || first == "-h" || first == "--help-all") return PrintFullHelp();
  if (first == "help") {
    if (argc == 2) return PrintFullHelp();
    const Subcommand* sub = FindSubcommand(argv[2]);
    if (sub == nullptr) return UnknownSubcommand(argv[2]);
    // `help cert ca` is `cert ca --help`.
    char help_flag[] = "--help";
    std::vector<char*> args = {argv[0]};
    args.insert(args.end(), argv + 2, argv + argc);
    args.push_back(help_flag);
    return RunSubcommand(*sub, static_cast<int>(args.size()), args.data());
  }
  if (first.size() > 1 && first[0] == '-') {
    PrintError("unknown option " + std::string(first.substr(0, first.find('='))) +
               " before the subcommand; run 'lockmesh help' for usage");
    return kExitUsage;
  }
  return UnknownSubcommand(first);
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
