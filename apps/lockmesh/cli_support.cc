#include "cli_support.h"

#include <unistd.h>

#include <climits>
#include <cstdio>

#include "exit_codes.h"
#include "mesh/client.h"
#include "mesh/node.h"

namespace lockmesh::cli {

using mesh::Status;

namespace {
std::string& ProgramName() {
  static std::string name = "lockmesh";
  return name;
}
}  // namespace

void SetProgramName(std::string name) { ProgramName() = std::move(name); }

void PrintError(std::string_view message) {
  std::string line = ProgramName() + ": ";
  line.append(message);
  line += '\n';
  fputs(line.c_str(), stderr);
  fflush(stderr);
}

std::string AbsolutePath(const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof cwd) == nullptr) return path;
  std::string out = cwd;
  if (out.back() != '/') out += '/';
  return out + path;
}

CLI::Option* FlagOverrides::AddOption(CLI::App* app, const std::string& names,
                                      const std::string& key, const std::string& help) {
  Entry entry{nullptr, key, "", true, std::make_unique<std::string>()};
  entry.option = app->add_option(names, *entry.value, help);
  entries_.push_back(std::move(entry));
  return entries_.back().option;
}

CLI::Option* FlagOverrides::AddFlag(CLI::App* app, const std::string& names, const std::string& key,
                                    const std::string& text, const std::string& help) {
  Entry entry{nullptr, key, text, false, nullptr};
  entry.option = app->add_flag(names, help);
  entries_.push_back(std::move(entry));
  return entries_.back().option;
}

Status FlagOverrides::Apply(Config* config) const {
  for (const Entry& entry : entries_) {
    if (entry.option->count() == 0) continue;
    std::string origin = entry.option->get_name();
    if (entry.takes_value) origin += " " + *entry.value;
    MESH_RETURN_IF_ERROR(
        ApplyText(entry.key, entry.takes_value ? *entry.value : entry.fixed_text, origin, config));
  }
  return Status::OK();
}

void AddCommonOptions(CLI::App* app, CommonOptions* common) {
  app->add_option("--config", common->config_file,
                  "Extra TOML configuration file, read after /etc/lockmesh/lockmesh.toml and the "
                  "user file and before LOCKMESH_* variables (default: none; must exist)")
      ->type_name("FILE");
  common->overrides
      .AddOption(app, "--socket", "node.socket",
                 "UNIX socket of the local node (default: $LOCKMESH_SOCKET, else "
                 "$XDG_RUNTIME_DIR/lockmesh/node.sock, else /tmp/lockmesh-<uid>/node.sock; "
                 "config [node] socket)")
      ->type_name("PATH");
}

int LoadEffectiveConfig(const CommonOptions& common, Config* config, std::string* error) {
  Status st = LoadConfig(DefaultConfigSources(common.config_file), config);
  int code = kExitError;
  if (st.ok()) {
    st = common.overrides.Apply(config);
    code = kExitUsage;
  }
  if (st.ok()) return 0;
  PrintError(st.message());
  if (error != nullptr) *error = st.message();
  return code;
}

std::string EffectiveSocket(const Config& config) {
  return AbsolutePath(config.node.socket.empty() ? mesh::DefaultSocketPath() : config.node.socket);
}

std::string EffectiveDataDir(const Config& config, const std::string& socket) {
  return AbsolutePath(config.node.data_dir.empty() ? mesh::DefaultDataDir(socket)
                                                   : config.node.data_dir);
}

int ExitCodeForLockStatus(const Status& status) {
  switch (status.code()) {
    case Status::Code::kBusy:
    case Status::Code::kTimedOut:
      return kExitBusy;
    case Status::Code::kCantWait:
      return kExitCantWait;
    case Status::Code::kLost:
      return kExitLost;
    default:
      return kExitError;
  }
}

}  // namespace lockmesh::cli
