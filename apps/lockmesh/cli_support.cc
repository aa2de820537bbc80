#include "cli_support.h"

#include <mbedtls/config.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdio>

#include "core/resource_name.h"
#include "exit_codes.h"
#include "mesh/client.h"
#include "mesh/node.h"
#include "net/tls/tls_context.h"

namespace lockmesh::cli {

using mesh::Status;

namespace {
std::string& ProgramName() {
  static std::string name = "lockmesh";
  return name;
}
}  // namespace

void SetProgramName(std::string name) { ProgramName() = std::move(name); }

const std::string& GetProgramName() { return ProgramName(); }

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

std::string FlagOverrides::GivenFlag(std::string_view key) const {
  for (const Entry& entry : entries_) {
    if (entry.key == key && entry.option->count() > 0) return entry.option->get_name();
  }
  return "";
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

namespace {

/// A socket path must not name a directory, a data dir must not name anything else: caught
/// here, the error says so instead of "address already in use" or "Not a directory" later.
/// kExitUsage when a flag set the path, kExitError for a file or the environment.
Status CheckPathKinds(const CommonOptions& common, const Config& config, int* code) {
  struct stat st;
  auto origin = [&](std::string_view key, const char* env) {
    std::string flag = common.overrides.GivenFlag(key);
    *code = flag.empty() ? kExitError : kExitUsage;
    return flag.empty() ? std::string(key) + " (or " + env + ")" : flag;
  };
  if (!config.node.socket.empty() && stat(config.node.socket.c_str(), &st) == 0 &&
      S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(
        origin("node.socket", "LOCKMESH_SOCKET") + " " + config.node.socket +
        ": is a directory, not the node's socket (e.g. " + config.node.socket + "/node.sock)");
  }
  if (!config.node.data_dir.empty() && stat(config.node.data_dir.c_str(), &st) == 0 &&
      !S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(origin("node.data_dir", "LOCKMESH_DATA_DIR") + " " +
                                   config.node.data_dir + ": is not a directory");
  }
  return Status::OK();
}

}  // namespace

int LoadEffectiveConfig(const CommonOptions& common, Config* config, std::string* error) {
  Status st = LoadConfig(DefaultConfigSources(common.config_file), config);
  int code = kExitError;
  if (st.ok()) {
    st = common.overrides.Apply(config);
    code = kExitUsage;
  }
  if (st.ok()) st = CheckPathKinds(common, *config, &code);
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

namespace {

/// The build's mbedTLS can run the TLS levels (net/tls/tls_context.cc needs TLS 1.2 on both
/// sides and X.509 certificates).
bool TlsInBuild() {
#if defined(MBEDTLS_SSL_TLS_C) && defined(MBEDTLS_SSL_CLI_C) && defined(MBEDTLS_SSL_SRV_C) && \
    defined(MBEDTLS_X509_CRT_PARSE_C) && defined(MBEDTLS_SSL_PROTO_TLS1_2)
  const int* suites = mbedtls_ssl_list_ciphersuites();
  return suites != nullptr && suites[0] != 0;
#else
  return false;
#endif
}

}  // namespace

std::string SecurityLevelsInBuild() {
  using mesh::net::SecurityLevel;
  std::string out;
  for (SecurityLevel level : {SecurityLevel::kNone, SecurityLevel::kEncrypt, SecurityLevel::kMutual,
                              SecurityLevel::kTofu}) {
    if (level != SecurityLevel::kNone && !TlsInBuild()) continue;
    if (!out.empty()) out += ", ";
    out += mesh::net::SecurityLevelName(level);
  }
  return out;
}

std::string VersionLine() {
  return std::string("lockmesh ") + LOCKMESH_VERSION +
         " (client protocol 1; security levels: " + SecurityLevelsInBuild() + ")";
}

Status CheckResourceName(const std::string& name) {
  mesh::core::ResourceName parsed;
  return mesh::core::ParseResourceName(name, &parsed);
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
