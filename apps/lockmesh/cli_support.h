// Helpers shared by the subcommands: error output, flags that override configuration
// keys, and loading the configuration of one invocation.
#ifndef LOCKMESH_APPS_LOCKMESH_CLI_SUPPORT_H_
#define LOCKMESH_APPS_LOCKMESH_CLI_SUPPORT_H_

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "mesh/status.h"

namespace lockmesh::cli {

/// Prints "<program>: <message>" and a newline on stderr (program: "lockmesh", or what
/// SetProgramName set).
void PrintError(std::string_view message);

/// The name PrintError puts before messages; the `flom` front end sets "flom". Call before
/// any other thread exists.
void SetProgramName(std::string name);
/// The name SetProgramName set ("lockmesh" by default).
const std::string& GetProgramName();

/// Makes `path` absolute against the current directory ("" stays "").
std::string AbsolutePath(const std::string& path);

/// Flags that, when given, override one configuration key. Values are kept as text and go
/// through ApplyText, so a flag is validated exactly like the same key in a file.
class FlagOverrides {
 public:
  /// Adds an option taking a value (`names` as for CLI::App::add_option).
  CLI::Option* AddOption(CLI::App* app, const std::string& names, const std::string& key,
                         const std::string& help);
  /// Adds a flag without a value that sets `key` to `text` when present.
  CLI::Option* AddFlag(CLI::App* app, const std::string& names, const std::string& key,
                       const std::string& text, const std::string& help);
  /// Applies every given flag to `config`; errors name the flag.
  mesh::Status Apply(Config* config) const;
  /// The flag that set `key` on this command line ("--socket"), or "" if none did.
  std::string GivenFlag(std::string_view key) const;

 private:
  struct Entry {
    CLI::Option* option;
    std::string key;
    std::string fixed_text;  // AddFlag's text
    bool takes_value;
    std::unique_ptr<std::string> value;  // AddOption's storage (stable address)
  };
  std::vector<Entry> entries_;
};

/// Options every subcommand has: --config and --socket.
struct CommonOptions {
  std::string config_file;  // --config FILE
  FlagOverrides overrides;  // the subcommand's key-setting flags, --socket included
};

/// Adds --config FILE and --socket PATH to `app`.
void AddCommonOptions(CLI::App* app, CommonOptions* common);

/// Loads defaults < files < environment < flags into `config`. On error prints it, stores
/// it in `*error` when given, and returns the exit code (kExitError for files and
/// environment, kExitUsage for flags); returns 0 on success. An existing node.socket that is
/// a directory, or an existing node.data_dir that is not one, is refused here, naming the
/// flag or key that set it.
int LoadEffectiveConfig(const CommonOptions& common, Config* config, std::string* error = nullptr);

/// The socket to use: config.node.socket, else mesh::DefaultSocketPath(); absolute.
std::string EffectiveSocket(const Config& config);

/// The data dir to use: config.node.data_dir, else mesh::DefaultDataDir(socket); absolute.
std::string EffectiveDataDir(const Config& config, const std::string& socket);

/// The security levels (--security) this build can run, in the order of
/// mesh::net::SecurityLevel, comma-separated: "none" always; the TLS levels only when the
/// mbedTLS the binary was built with has TLS 1.2 client and server, X.509 parsing and at
/// least one cipher suite.
std::string SecurityLevelsInBuild();

/// `lockmesh --version`'s line: version, client protocol, SecurityLevelsInBuild().
std::string VersionLine();

/// Checks a resource name with the parser the node uses (core/resource_name.h), so that a
/// bad name is a usage error before anything is started; InvalidArgument with the reason.
mesh::Status CheckResourceName(const std::string& name);

/// Exit code of `lockmesh lock` for a failed Lock call (96, 98, 99; 95 for Lost).
int ExitCodeForLockStatus(const mesh::Status& status);

}  // namespace lockmesh::cli

#endif  // LOCKMESH_APPS_LOCKMESH_CLI_SUPPORT_H_
