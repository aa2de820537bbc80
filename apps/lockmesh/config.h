// Configuration of the `lockmesh` program: TOML files, LOCKMESH_* environment, flags.
//
// Layers, lowest precedence first:
//   built-in defaults < /etc/lockmesh/lockmesh.toml
//   < ${XDG_CONFIG_HOME:-$HOME/.config}/lockmesh/lockmesh.toml < --config FILE
//   < LOCKMESH_* environment variables < command-line flags.
// Every setting has one key ("node.cluster"), written in a file as `cluster = ...` inside a
// `[node]` table, read from one environment variable (LOCKMESH_CLUSTER), and set by one
// flag (--cluster). All three go through the same parser and validator (kKeys in
// config.cc), so a value is checked the same way wherever it comes from.
//
// Nothing here throws: toml++ exceptions are caught inside and reported as a Status whose
// message names the file and line (or the variable, or the flag) and the key.
#ifndef LOCKMESH_APPS_LOCKMESH_CONFIG_H_
#define LOCKMESH_APPS_LOCKMESH_CONFIG_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mesh/client.h"
#include "mesh/status.h"

namespace lockmesh::cli {

/// What `lockmesh lock` does to its command when the lock is lost.
enum class OnLost {
  kTerm,    // SIGTERM to the command's process group, SIGKILL after `grace` seconds
  kKill,    // SIGKILL to the command's process group at once
  kIgnore,  // warn on stderr and let it run (exit code is still 95)
};

/// Table [node]: how a node runs; `socket` is also where clients connect.
struct NodeConfig {
  std::string node_id;  // "" = mesh::UniqueId(data_dir)
  std::string cluster = "lockmesh";
  std::string data_dir;      // "" = mesh::DefaultDataDir(socket)
  std::string socket;        // "" = mesh::DefaultSocketPath()
  std::string socket_group;  // "" = socket usable by its owner only (0600)
  /// Seconds without clients or locks before the node exits; 0 = never. Unset: 0 for
  /// `lockmesh node`, 60 for a node auto-started by the CLI.
  std::optional<double> idle_exit;
  bool fsync = true;
  int64_t expect = 1;             // nodes to see before bootstrapping a cluster
  int64_t voters = 3;             // voting members (the rest are learners)
  std::string listen;             // peer address HOST:PORT ("" = default)
  std::vector<std::string> join;  // HOST:PORT of peers to contact without multicast
  std::string security = "none";  // none | encrypt | mutual | tofu
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
  bool local = false;                 // UNIX socket only: no peers, no discovery
  std::string advertise;              // HOST:PORT peers should dial ("" = as they see us)
  std::string trusted_fingerprints;   // tofu allow-list file ("" = trust on first use)
  bool multicast = true;              // discovery beacons (false: --join only)
  int64_t discovery_port = 28017;     // UDP port of the beacons
  std::string discovery_group4 = "239.255.28.17";  // IPv4 multicast group
  std::string discovery_group6 = "ff12::2817";     // IPv6 multicast group
  std::string discovery_interface;    // "" = chosen by the routes to the groups
  int64_t discovery_ttl = 1;          // multicast TTL / hop limit
  double session_ttl = 10;            // seconds of silence before a node's sessions expire
  double dead_after = 30;             // seconds unreachable before a member is replaced
  int64_t election_timeout_ms = 1000; // Raft election timeout
  double handshake_timeout = 10;      // seconds from a peer connection's accept to its link
  int64_t max_pending_per_source = 32;   // peer connections before their link, per source
  int64_t max_pending_connections = 512; // and in all
  int64_t snapshot_every = 100000;    // applied entries between snapshots (log compaction)
  int64_t token_floor = 0;            // fencing tokens above this from the node's start on
  std::string log_level = "info";     // error | warn | info | debug (net/support/log_line.h)
  std::string log_format = "text";    // text | json
  int64_t log_max_bytes = 10 << 20;   // cap of the auto-started node's log file; 0 = none

  /// Every field equal (tests: docker/lockmesh.toml.example shows the defaults).
  bool operator==(const NodeConfig&) const = default;
};

/// Table [lock]: defaults of `lockmesh lock`.
struct LockConfig {
  mesh::LockMode mode = mesh::LockMode::kEX;
  double wait = -1;      // seconds; <0 wait forever, 0 try once, >0 at most this long
  int64_t quantity = 1;  // units of a numeric resource name[N]
  bool create = true;    // false: FLoM's --resource-create=no
  OnLost on_lost = OnLost::kTerm;
  double grace = 5;       // seconds between SIGTERM and SIGKILL for on_lost = term
  bool autostart = true;  // start a node in the background when none answers

  /// Every field equal.
  bool operator==(const LockConfig&) const = default;
};

/// The whole configuration.
struct Config {
  NodeConfig node;
  LockConfig lock;
  /// Files that were read, in order (for messages such as `lockmesh node` start-up).
  std::vector<std::string> files;
};

/// Reads an environment variable; returns nullptr when unset. Injected for tests.
using GetEnvFunction = std::function<const char*(const char* name)>;

/// Where LoadConfig looks.
struct ConfigSources {
  /// System file; missing is fine. "" skips it.
  std::string system_file = "/etc/lockmesh/lockmesh.toml";
  /// User file; missing is fine. "" skips it. See DefaultUserConfigPath.
  std::string user_file;
  /// The --config file; must exist when not "".
  std::string explicit_file;
  /// Source of LOCKMESH_* variables; null = no environment layer.
  GetEnvFunction getenv;
};

/// ${XDG_CONFIG_HOME}/lockmesh/lockmesh.toml, else $HOME/.config/lockmesh/lockmesh.toml,
/// else "" (no user file) when neither variable is set.
std::string DefaultUserConfigPath(const GetEnvFunction& getenv);

/// The sources the CLI uses: the real environment, the real files, and `explicit_file`.
ConfigSources DefaultConfigSources(const std::string& explicit_file);

/// Applies files and environment from `sources` on top of `*config` (normally defaults).
/// Stops at the first error.
mesh::Status LoadConfig(const ConfigSources& sources, Config* config);

/// Applies one TOML document. `origin` names it in messages (usually its path).
mesh::Status ApplyTomlText(std::string_view text, const std::string& origin, Config* config);

/// Applies a TOML file. A missing file is an error only when `must_exist`.
mesh::Status ApplyTomlFile(const std::string& path, bool must_exist, Config* config);

/// Applies every LOCKMESH_* variable of the key table that `getenv` knows.
mesh::Status ApplyEnvironment(const GetEnvFunction& getenv, Config* config);

/// Sets `key` ("node.idle_exit") from text as written on a command line or in the
/// environment. `origin` ("--idle-exit" or "LOCKMESH_IDLE_EXIT") names it in messages.
mesh::Status ApplyText(std::string_view key, std::string_view text, const std::string& origin,
                       Config* config);

/// One documented setting (for --help texts and docs).
struct ConfigKeyInfo {
  std::string key;  // "node.cluster"
  std::string env;  // "LOCKMESH_CLUSTER"
};
/// Every key, in table order.
std::vector<ConfigKeyInfo> ConfigKeys();

/// "term", "kill", "ignore".
const char* OnLostName(OnLost on_lost);

/// Checks HOST:PORT (IPv6 hosts in brackets), port 1-65535.
mesh::Status ValidateHostPort(std::string_view text);

/// Bounds of node.log_max_bytes other than 0 (no cap): 1 KiB to 1 TiB.
inline constexpr int64_t kMinLogMaxBytes = 1024;
inline constexpr int64_t kMaxLogMaxBytes = int64_t{1} << 40;

/// Longest UNIX socket path (sun_path less its terminating NUL).
inline constexpr size_t kMaxSocketPathBytes = 107;

}  // namespace lockmesh::cli

#endif  // LOCKMESH_APPS_LOCKMESH_CONFIG_H_
