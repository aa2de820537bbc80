// The configuration of the `flom` front end: FLoM's settings, with FLoM's defaults, read
// from FLoM's INI files (GLib key-file syntax, parsed with Debian's libinih) and from FLoM's
// command-line options.
//
// Layers, lowest precedence first (as FLoM's flom_config_init):
//   built-in defaults < /etc/flom.conf < $HOME/.flom < -c FILE < command-line options.
// A missing system or user file is fine; a missing -c file is an error. Unlike FLoM, a file
// that exists but cannot be parsed is an error too (FLoM silently skips an unparsable
// system or user file); the message names the file and the line.
//
// Every setting has one group and key (FLoM's names, e.g. [Resource] Timeout) and one
// setter; an INI line and a command-line option go through the same setter, so a value is
// checked the same way wherever it comes from.
//
// Nothing here does I/O except LoadFlomIniFile (reads a file) and DefaultFlomSocket (the
// user database); nothing throws.
#ifndef LOCKMESH_APPS_LOCKMESH_FLOM_CONFIG_H_
#define LOCKMESH_APPS_LOCKMESH_FLOM_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mesh/client.h"
#include "mesh/status.h"

namespace lockmesh::cli {

/// FLoM's default daemon port (unicast and multicast), only shown by -V: lockmesh refuses
/// network daemon locations.
inline constexpr int64_t kFlomDefaultPort = 28015;
/// FLoM's default daemon lifespan in milliseconds.
inline constexpr int64_t kFlomDefaultLifespanMs = 5000;
/// FLoM's system configuration file as lockmesh reads it.
inline constexpr const char* kFlomSystemConfigFile = "/etc/flom.conf";
/// FLoM's user configuration file, relative to $HOME.
inline constexpr const char* kFlomUserConfigName = ".flom";

/// Every FLoM setting, with FLoM 1.7.2's defaults. Field comments give the group and key.
struct FlomSettings {
  // [Trace]
  std::string daemon_trace_file;   // DaemonTraceFile   (-t)
  std::string command_trace_file;  // CommandTraceFile  (-T)
  bool append_trace_file = false;  // AppendTraceFile   (--append-trace-file)
  bool verbose = false;            // Verbose           (-V)
  // [Resource]
  std::string resource_name = "_RESOURCE";        // Name      (-r)
  int64_t resource_timeout_ms = -1;               // Timeout   (-o): <0 forever, 0 no wait
  int64_t resource_quantity = 1;                  // Quantity  (-q)
  mesh::LockMode lock_mode = mesh::LockMode::kEX;  // LockMode  (-l)
  bool resource_create = true;                    // Create    (-e)
  int64_t resource_idle_lifespan_ms = 0;          // IdleLifespan (-i)
  // [Daemon]
  std::string socket_name;  // SocketName (-s); "" = DefaultFlomSocket() when no network address
  int64_t daemon_lifespan_ms = kFlomDefaultLifespanMs;  // Lifespan (-d): 0 never start, <0 forever
  std::string unicast_address;                          // UnicastAddress   (-a)
  int64_t unicast_port = kFlomDefaultPort;              // UnicastPort      (-p)
  std::string multicast_address;                        // MulticastAddress (-A)
  int64_t multicast_port = kFlomDefaultPort;            // MulticastPort    (-P)
  std::string mount_point_vfs;                          // MountPointVFS    (-m)
  // [Monitor]
  std::vector<int> ignored_signals;  // IgnoredSignals (--ignore-signal), signal numbers
  // [Network]
  std::string network_interface;     // NetworkInterface (-n)
  int64_t discovery_attempts = 2;    // DiscoveryAttempts (-D)
  int64_t discovery_timeout_ms = 500;  // DiscoveryTimeout (-I)
  int64_t discovery_ttl = 1;         // DiscoveryTTL (--discovery-ttl)
  int64_t tcp_keepalive_time = 60;   // TcpKeepaliveTime  (--tcp-keepalive-time)
  int64_t tcp_keepalive_intvl = 10;  // TcpKeepaliveIntvl (--tcp-keepalive-intvl)
  int64_t tcp_keepalive_probes = 6;  // TcpKeepaliveProbes (--tcp-keepalive-probes)
  // [TLS]
  std::string tls_certificate;     // TlsCertificate    (--tls-certificate)
  std::string tls_private_key;     // TlsPrivateKey     (--tls-private-key)
  std::string tls_ca_certificate;  // TlsCaCertificate  (--tls-ca-certificate)
  bool tls_check_peer_id = false;  // TlsCheckPeerId    (--tls-check-peer-id)

  /// Files that were read, in order (for -V).
  std::vector<std::string> files;
};

/// Sets [group] key from `text` as written in an INI file or given to the matching
/// command-line option. Unknown keys are NotFound (the caller decides whether that is an
/// error); bad values are InvalidArgument with a reason that does not name the origin.
mesh::Status SetFlomKey(std::string_view group, std::string_view key, std::string_view text,
                        FlomSettings* settings);

/// Applies one INI document. `origin` names it in messages ("/home/u/.flom"). Errors are
/// "ORIGIN:LINE: reason". Keys FLoM does not know are reported in `*warnings` (FLoM
/// ignores them silently) and otherwise ignored.
mesh::Status ApplyFlomIniText(std::string_view text, const std::string& origin,
                              FlomSettings* settings, std::vector<std::string>* warnings);

/// Applies an INI file. A missing file is an error only when `must_exist`.
mesh::Status ApplyFlomIniFile(const std::string& path, bool must_exist, FlomSettings* settings,
                              std::vector<std::string>* warnings);

/// Where LoadFlomConfig looks ("" skips a layer).
struct FlomConfigSources {
  std::string system_file = kFlomSystemConfigFile;
  std::string user_file;      // normally FlomUserConfigPath()
  std::string explicit_file;  // -c FILE; must exist
};

/// $HOME/.flom, or the user database's home directory when HOME is unset ("" if neither).
std::string FlomUserConfigPath();

/// Applies the files of `sources` in order on top of `*settings`. Stops at the first error.
mesh::Status LoadFlomConfig(const FlomConfigSources& sources, FlomSettings* settings,
                            std::vector<std::string>* warnings);

/// FLoM's default UNIX socket: /tmp/flom-<login of the real uid>, "nobody" when unknown.
std::string DefaultFlomSocket();

/// A GLib key-file integer (FLoM's gint): optional '-', decimal digits, 32 bits.
mesh::Status ParseFlomInt(std::string_view text, int64_t* out);

/// "SIGTERM" for SIGTERM, "signal N" when it has no name.
std::string FlomSignalName(int sig);
/// Parses one signal: a name with or without "SIG" ("SIGTERM", "TERM", any case) or a
/// number. Refuses SIGKILL, SIGSTOP (they cannot be ignored) and SIGCHLD (the monitor
/// needs it to see the command end).
mesh::Status ParseFlomSignal(std::string_view text, int* sig);
/// The signals ParseFlomSignal accepts, in number order (for --signal-list).
std::vector<int> IgnorableSignals();

/// FLoM's -V dump of `settings`: one "[Group]/Key=value" line per key, in FLoM's order and
/// format (strings quoted, numbers and booleans as integers, the lock mode as its number).
std::string FormatFlomSettings(const FlomSettings& settings);

}  // namespace lockmesh::cli

#endif  // LOCKMESH_APPS_LOCKMESH_FLOM_CONFIG_H_
