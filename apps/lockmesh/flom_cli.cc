#include "flom_cli.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "autostart.h"
#include "cli_support.h"
#include "exit_codes.h"
#include "flom_config.h"
#include "lock_runner.h"
#include "mesh/client.h"
#include "mesh/node.h"
#include "net/support/errno_text.h"

namespace lockmesh::cli {
namespace {

using mesh::Status;

/// The FLoM release whose command line this front end follows.
constexpr const char* kFlomCompatibleVersion = "1.7.2";

/// A FLoM option that sets a configuration key ([group] key), in FLoM's order.
struct KeyOption {
  const char* names;  // CLI11 names
  const char* group;
  const char* key;
  const char* type_name;
  const char* help;
};

// clang-format off
constexpr KeyOption kKeyOptions[] = {
  {"-r,--resource-name", "Resource", "Name", "NAME",
   "Resource to lock; its syntax gives its type: name, name[N], a.b.c, /a/b/c, _s_name[N], "
   "_S_name[N], _t_FORMAT[N] (default: _RESOURCE)"},
  {"-o,--resource-timeout", "Resource", "Timeout", "MS",
   "Milliseconds to wait for a busy resource: -1 forever, 0 no wait (exit 98 at once), N at "
   "most N ms then exit 98 (default: -1)"},
  {"-e,--resource-create", "Resource", "Create", "yes|no",
   "no: do not create the resource, wait until someone else holds or awaits it or it is in "
   "its idle lifespan (-i) (exit 96 with -o 0) (default: yes)"},
  {"-i,--resource-idle-lifespan", "Resource", "IdleLifespan", "MS",
   "If this request creates the resource, it still exists MS ms after its last holder or "
   "waiter left, so that a -e no request finds it (default: 0)"},
  {"-l,--lock-mode", "Resource", "LockMode", "MODE",
   "NL CR CW PR PW EX or NullLock ConcurrentRead ConcurrentWrite ProtectedRead ProtectedWrite "
   "Exclusive, any case; EX only for numeric, set, sequence and timestamp resources (default: "
   "EX)"},
  {"-s,--socket-name", "Daemon", "SocketName", "PATH",
   "UNIX socket of the local node (default: /tmp/flom-<login>)"},
  {"-d,--daemon-lifespan", "Daemon", "Lifespan", "MS",
   "If no node answers, start one that exits after MS idle ms; 0 = never start one, "
   "negative = it never exits (default: 5000)"},
  {"-a,--unicast-address", "Daemon", "UnicastAddress", "ADDRESS",
   "The auto-started node joins a mesh at ADDRESS:-p: it listens there if ADDRESS is this "
   "host's and the port is free, else it joins the node there (no multicast without -A)"},
  {"-p,--unicast-port", "Daemon", "UnicastPort", "PORT",
   "With -a/-A: the peer port of the auto-started node (default: 28015)"},
  {"-A,--multicast-address", "Daemon", "MulticastAddress", "ADDRESS",
   "The auto-started node joins a mesh whose nodes find each other by beacons to this "
   "multicast group on port -P"},
  {"-P,--multicast-port", "Daemon", "MulticastPort", "PORT",
   "With -A: the UDP port of the discovery beacons (default: 28015)"},
  {"-m,--mount-point-vfs", "Daemon", "MountPointVFS", "DIR",
   "FLoM's FUSE status file system: refused (exit 99), lockmesh has none; use `lockmesh "
   "locks --json`"},
  {"-n,--network-interface", "Network", "NetworkInterface", "IF",
   "With -A: the interface of the discovery beacons; otherwise no effect"},
  {"-D,--discovery-attempts", "Network", "DiscoveryAttempts", "N",
   "Multicast discovery attempts: accepted, no effect (a node's beacons never stop) "
   "(default: 2)"},
  {"-I,--discovery-timeout", "Network", "DiscoveryTimeout", "MS",
   "Multicast discovery timeout: accepted, no effect (default: 500)"},
  {"--discovery-ttl", "Network", "DiscoveryTTL", "N",
   "With -A: the TTL / hop limit of the discovery beacons (default: 1)"},
  {"--tcp-keepalive-time", "Network", "TcpKeepaliveTime", "S",
   "TCP keepalive of FLoM's daemon: accepted, no effect (default: 60)"},
  {"--tcp-keepalive-intvl", "Network", "TcpKeepaliveIntvl", "S",
   "TCP keepalive of FLoM's daemon: accepted, no effect (default: 10)"},
  {"--tcp-keepalive-probes", "Network", "TcpKeepaliveProbes", "N",
   "TCP keepalive of FLoM's daemon: accepted, no effect (default: 6)"},
  {"--tls-certificate", "TLS", "TlsCertificate", "FILE",
   "TLS between FLoM client and daemon: accepted with a warning, no effect (the local node's "
   "socket is private to your uid)"},
  {"--tls-private-key", "TLS", "TlsPrivateKey", "FILE", "As --tls-certificate"},
  {"--tls-ca-certificate", "TLS", "TlsCaCertificate", "FILE", "As --tls-certificate"},
  {"--tls-check-peer-id", "TLS", "TlsCheckPeerId", "yes|no",
   "As --tls-certificate; yes without all three TLS files is refused as in FLoM (exit 99)"},
  {"-t,--daemon-trace-file", "Trace", "DaemonTraceFile", "FILE",
   "FLoM's daemon trace: accepted with a warning, no effect (the node logs to its data dir)"},
  {"-T,--command-trace-file", "Trace", "CommandTraceFile", "FILE",
   "FLoM's command trace: accepted with a warning, no effect"},
  {"--append-trace-file", "Trace", "AppendTraceFile", "yes|no", "Accepted, no effect"},
};
// clang-format on

constexpr const char* kFooter = R"(FLoM's command line, run by lockmesh (options: docs/flom.md):
  flom [OPTION]... -- COMMAND [ARG]...
runs COMMAND while holding the resource. For set, sequence and timestamp resources the
element is appended to COMMAND as its last argument (also in $LOCKMESH_ELEMENT); the
command also gets $LOCKMESH_TOKEN, the lock's fencing token. Signals SIGINT, SIGTERM,
SIGHUP, SIGQUIT (to its process group), SIGUSR1, SIGUSR2 are forwarded to the command and
the lock is held until it exits (unless --ignore-signal). Queues are strict FIFO.

Configuration (FLoM's INI groups and keys): /etc/flom.conf < ~/.flom < -c FILE < options.

If no node answers at the socket, one is started in the background (unless -d 0) that
exits after -d milliseconds without clients or locks; it runs as `flom --lockmesh node`.
`flom -x` stops it once idle, `flom -X` at once. With -a or -A that node joins a mesh
(it replicates the locks with the nodes of the other hosts that name the same address or
group) and does not exit when idle.

Exit status: the command's own status, or
  96  cannot wait: -e no -o 0 and the resource does not exist
  97  the command cannot be run, or no command was given
  98  busy (-o 0) or timed out (-o MS)
  99  any other error: bad option or configuration file, no node (-d 0), lock lost while
      the command ran (the command is then terminated), impossible request)";

/// What the command line asked for, as text (validated later by SetFlomKey).
struct FlomCommandLine {
  std::vector<std::unique_ptr<std::string>> values;  // one per kKeyOptions entry
  std::vector<CLI::Option*> options;                // same index
  std::string quantity;
  CLI::Option* quantity_option = nullptr;
  std::string config_file;
  std::vector<std::string> ignore_signals;
  std::string debug_feature;
  bool version = false;
  bool verbose = false;
  bool quiesce = false;
  bool immediate = false;
  bool unique_id = false;
  bool signal_list = false;
  std::vector<std::string> command;
};

void AddOptions(CLI::App* app, FlomCommandLine* cl) {
  app->add_flag("-v,--version", cl->version, "Print version information and exit");
  app->add_flag("-V,--verbose", cl->verbose,
                "Print the effective configuration (stdout, FLoM's format), the locked "
                "element, notes on options without effect, and (stderr) whom a lock waits for");
  app->add_option("-c,--config-file", cl->config_file,
                  "Extra configuration file, read after /etc/flom.conf and ~/.flom (must "
                  "exist)")
      ->type_name("FILE");
  for (const KeyOption& o : kKeyOptions) {
    cl->values.push_back(std::make_unique<std::string>());
    cl->options.push_back(
        app->add_option(o.names, *cl->values.back(), o.help)->type_name(o.type_name));
    if (std::string(o.key) == "Timeout") {
      cl->quantity_option =
          app->add_option("-q,--resource-quantity", cl->quantity,
                          "Units of a numeric resource name[N]; ignored by other types; <= 0 "
                          "is ignored (default: 1)")
              ->type_name("N");
    }
  }
  app->add_option("--ignore-signal", cl->ignore_signals,
                  "While waiting and while the command runs, ignore SIG (not forwarded to the "
                  "command); repeatable; see --signal-list")
      ->type_name("SIG")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app->add_flag("--signal-list", cl->signal_list, "Print the signals --ignore-signal accepts");
  app->add_flag("-x,--quiesce-exit", cl->quiesce,
                "Ask the node to stop once no lock is held or awaited, then exit");
  app->add_flag("-X,--immediate-exit", cl->immediate,
                "Ask the node to stop at once (its clients' locks are released), then exit");
  app->add_flag("--unique-id", cl->unique_id, "Print this host's unique id and exit");
  app->add_option("--debug-feature", cl->debug_feature,
                  "FLoM's debug features: refused (exit 99); see `lockmesh tls-debug`")
      ->type_name("NAME");
  app->add_option("COMMAND", cl->command, "Command to run under the lock, after --");
}

/// Applies the command line's key options on top of the configuration files.
Status ApplyCommandLine(const FlomCommandLine& cl, FlomSettings* settings) {
  for (size_t i = 0; i < cl.options.size(); ++i) {
    if (cl.options[i]->count() == 0) continue;
    Status st = SetFlomKey(kKeyOptions[i].group, kKeyOptions[i].key, *cl.values[i], settings);
    if (!st.ok()) {
      return Status::InvalidArgument(cl.options[i]->get_name() + " " + *cl.values[i] + ": " +
                                     st.message());
    }
  }
  if (cl.quantity_option->count() > 0) {
    int64_t q = 0;
    Status st = ParseFlomInt(cl.quantity, &q);
    if (!st.ok()) {
      return Status::InvalidArgument("--resource-quantity " + cl.quantity + ": " + st.message());
    }
    if (q < 0) {
      // FLoM's own message and behaviour; 0 is FLoM's "not given".
      fprintf(stderr, "Resource quantity ignored because negative values (%" PRId64
                      ") are meaningless\n", q);
    } else if (q > 0) {
      settings->resource_quantity = q;
    }
  }
  for (const std::string& text : cl.ignore_signals) {
    int sig = 0;
    Status st = ParseFlomSignal(text, &sig);
    if (!st.ok()) return Status::InvalidArgument("--ignore-signal " + text + ": " + st.message());
    settings->ignored_signals.push_back(sig);
  }
  if (cl.verbose) settings->verbose = true;
  return Status::OK();
}

/// Settings FLoM has that cannot be honoured: refused with the reason.
Status CheckSupported(const FlomSettings& s, const FlomCommandLine& cl) {
  if (!cl.debug_feature.empty()) {
    return Status::InvalidArgument(
        "--debug-feature is not supported: lockmesh's TLS checks are `lockmesh tls-debug "
        "server|client` (see docs/cli.md)");
  }
  if (!s.mount_point_vfs.empty()) {
    return Status::InvalidArgument(
        "-m/--mount-point-vfs (MountPointVFS) is not supported: lockmesh has no FUSE status "
        "file system (FLoM's own is experimental); `lockmesh locks --json` lists the holders "
        "and waiters of every resource, with their mode, quantity and element");
  }
  if (s.tls_check_peer_id &&
      (s.tls_certificate.empty() || s.tls_private_key.empty() || s.tls_ca_certificate.empty())) {
    return Status::InvalidArgument(
        "TLS check peer id can not be specified without full TLS configuration (FLoM's rule)");
  }
  return Status::OK();
}

/// Warnings (always) and notes (-V) about settings that are accepted without effect.
void WarnAboutIgnored(const FlomSettings& s) {
  auto warn = [](const std::string& text) { PrintError("warning: " + text); };
  if (!s.tls_certificate.empty() || !s.tls_private_key.empty() || !s.tls_ca_certificate.empty()) {
    warn("the TLS settings have no effect: the local node is reached over a UNIX socket that "
         "only your uid can use (mode 0600 and peer credentials); TLS between hosts is set on "
         "`lockmesh node` (--security, --tls-*)");
  }
  if (!s.daemon_trace_file.empty() || !s.command_trace_file.empty()) {
    warn("the trace files have no effect: lockmesh writes no FLoM trace; an auto-started node "
         "logs to node.log in its data dir");
  }
  if (!s.verbose) return;
  if (s.unicast_address.empty() && s.multicast_address.empty()) {
    PrintError(
        "note: -p/-P, -n, -D, -I, --discovery-ttl and --tcp-keepalive-* have no effect "
        "without -a/-A: the auto-started node is local (see docs/flom.md)");
  } else {
    PrintError(std::string("note: -D, -I") + (s.multicast_address.empty() ? ", -n, -P" : "") +
               " and --tcp-keepalive-* have no effect: a mesh node's beacons and peer links "
               "keep going on their own (docs/flom.md)");
  }
  std::string files;
  for (const std::string& f : s.files) files += (files.empty() ? "" : ", ") + f;
  PrintError("note: configuration files read: " + (files.empty() ? "none" : files));
}

/// "[ADDR]:PORT" for an IPv6 address, "HOST:PORT" otherwise.
std::string HostPort(const std::string& host, int64_t port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

/// errno of binding a TCP socket (SO_REUSEADDR, as a listener) to `addr`; 0 if it binds.
/// With `bound_port`, the port it got (for port 0).
int TryBind(const sockaddr* addr, socklen_t len, int* bound_port = nullptr) {
  int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int err = bind(fd, addr, len) == 0 ? 0 : errno;
  if (err == 0 && bound_port != nullptr) {
    sockaddr_storage got{};
    socklen_t got_len = sizeof got;
    getsockname(fd, reinterpret_cast<sockaddr*>(&got), &got_len);
    *bound_port = ntohs(got.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&got)->sin6_port
                                                  : reinterpret_cast<sockaddr_in*>(&got)->sin_port);
  }
  close(fd);
  return err;
}

/// The node's --listen on every address: port `port` if it is free, else a free port (a
/// second node of this host, whose peers reach it by the address it advertises).
std::string WildcardListen(int64_t port) {
  sockaddr_in6 any6{};
  any6.sin6_family = AF_INET6;
  any6.sin6_addr = in6addr_any;
  sockaddr_in any4{};
  any4.sin_family = AF_INET;
  any4.sin_addr.s_addr = htonl(INADDR_ANY);
  const bool v6 = TryBind(reinterpret_cast<sockaddr*>(&any6), sizeof any6) != EAFNOSUPPORT;
  sockaddr* addr = v6 ? reinterpret_cast<sockaddr*>(&any6) : reinterpret_cast<sockaddr*>(&any4);
  socklen_t len = v6 ? sizeof any6 : sizeof any4;
  const std::string host = v6 ? "::" : "0.0.0.0";
  any6.sin6_port = htons(static_cast<uint16_t>(port));
  any4.sin_port = htons(static_cast<uint16_t>(port));
  if (TryBind(addr, len) == 0) return HostPort(host, port);
  any6.sin6_port = 0;
  any4.sin_port = 0;
  int free_port = 0;
  if (TryBind(addr, len, &free_port) == 0 && free_port > 0) return HostPort(host, free_port);
  return HostPort(host, port);  // the node says why it cannot listen
}

/// The discovery group of the other address family, derived from `group` so that the
/// beacons of two FLoM groups on one port never meet on the default group of the other
/// family: IPv4 a.b.c.d gives ff12::ab:cd (hex); an IPv6 group gives 239.255.X.Y, X.Y a
/// 16-bit hash of it.
std::string OtherFamilyGroup(const std::string& group, bool group_is_v4) {
  char text[64];
  if (group_is_v4) {
    in_addr a{};
    inet_pton(AF_INET, group.c_str(), &a);
    uint32_t v = ntohl(a.s_addr);
    snprintf(text, sizeof text, "ff12::%x:%x", v >> 16, v & 0xffff);
  } else {
    in6_addr a{};
    inet_pton(AF_INET6, group.c_str(), &a);
    uint32_t h = 2166136261u;  // FNV-1a
    for (unsigned char byte : a.s6_addr) h = (h ^ byte) * 16777619u;
    h = (h >> 16) ^ (h & 0xffff);
    snprintf(text, sizeof text, "239.255.%u.%u", (h >> 8) & 0xff, h & 0xff);
  }
  return text;
}

/// FLoM's -a/-p/-A/-P/-n/--discovery-ttl as the flags of the auto-started node, which then
/// joins a mesh (docs/flom.md "Network options"). Leaves `*args` empty without -a and -A
/// (a local node). InvalidArgument for an address that cannot be used, with the reason.
Status MeshNodeArgs(const FlomSettings& s, std::vector<std::string>* args) {
  args->clear();
  if (s.unicast_address.empty() && s.multicast_address.empty()) return Status::OK();
  std::vector<std::string> out = {kAutoMeshFlag, "--idle-exit", "0"};
  std::string listen;
  if (!s.unicast_address.empty()) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    int rc = getaddrinfo(s.unicast_address.c_str(), nullptr, &hints, &found);
    if (rc != 0 || found == nullptr) {
      return Status::InvalidArgument("-a/--unicast-address " + s.unicast_address +
                                     ": cannot resolve it: " + gai_strerror(rc));
    }
    sockaddr_storage addr{};
    socklen_t len = static_cast<socklen_t>(found->ai_addrlen);
    memcpy(&addr, found->ai_addr, found->ai_addrlen);
    freeaddrinfo(found);
    char numeric[NI_MAXHOST];
    getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, numeric, sizeof numeric, nullptr, 0,
                NI_NUMERICHOST);
    const uint16_t port = htons(static_cast<uint16_t>(s.unicast_port));
    if (addr.ss_family == AF_INET6) {
      reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = port;
    } else {
      reinterpret_cast<sockaddr_in*>(&addr)->sin_port = port;
    }
    const std::string target = HostPort(numeric, s.unicast_port);
    int err = TryBind(reinterpret_cast<sockaddr*>(&addr), len);
    if (err == 0) {
      // FLoM's daemon host: the node listens there and the others join it.
      listen = target;
    } else if (err == EADDRNOTAVAIL || err == EADDRINUSE) {
      // Another host's address, or a node of this host has it: join that node, and never
      // make a cluster alone (it would be a second lock table beside that node's).
      out.insert(out.end(), {"--join", target, "--expect", "2"});
      listen = WildcardListen(s.unicast_port);
    } else {
      return Status::InvalidArgument("-a/--unicast-address " + s.unicast_address +
                                     ": the node cannot listen on " + target + ": " +
                                     mesh::net::ErrnoText(err));
    }
  }
  if (!s.multicast_address.empty()) {
    in_addr a4{};
    in6_addr a6{};
    const bool v4 = inet_pton(AF_INET, s.multicast_address.c_str(), &a4) == 1;
    const bool v6 = !v4 && inet_pton(AF_INET6, s.multicast_address.c_str(), &a6) == 1;
    if ((v4 && (ntohl(a4.s_addr) >> 28) != 0xE) || (v6 && a6.s6_addr[0] != 0xff) || (!v4 && !v6)) {
      return Status::InvalidArgument("-A/--multicast-address " + s.multicast_address +
                                     " is not a multicast group (IPv4 224.0.0.0/4 or IPv6 "
                                     "ff00::/8)");
    }
    const std::string other = OtherFamilyGroup(s.multicast_address, v4);
    out.insert(out.end(), {"--discovery-group4", v4 ? s.multicast_address : other,
                           "--discovery-group6", v4 ? other : s.multicast_address,
                           "--discovery-port", std::to_string(s.multicast_port), "--discovery-ttl",
                           std::to_string(s.discovery_ttl)});
    if (!s.network_interface.empty()) {
      out.insert(out.end(), {"--discovery-interface", s.network_interface});
    }
    if (listen.empty()) listen = WildcardListen(s.unicast_port);
  } else {
    out.push_back("--no-multicast");
  }
  out.insert(out.end(), {"--listen", listen});
  *args = std::move(out);
  return Status::OK();
}

int Shutdown(const std::string& socket, bool immediate) {
  printf("Starting FLoM daemon %s shutdown...\n", immediate ? "immediate" : "quiesce");
  fflush(stdout);
  mesh::ClientOptions options;
  options.socket_path = socket;
  options.client_name = immediate ? "flom -X" : "flom -x";
  std::unique_ptr<mesh::Client> client;
  Status st = mesh::Client::Connect(options, &client);
  if (st.ok()) st = client->Shutdown(immediate);
  if (!st.ok()) {
    PrintError(st.IsUnavailable() ? "no node is running at " + socket
                                  : "shutdown of the node at " + socket + ": " + st.ToString());
    return kExitError;
  }
  return kExitOk;
}

int PrintUniqueId(const std::string& socket) {
  std::string id;
  Status st = mesh::UniqueId(AbsolutePath(mesh::DefaultDataDir(socket)), &id);
  if (!st.ok()) {
    PrintError(st.message());
    return kExitError;
  }
  puts(id.c_str());
  return kExitOk;
}

void PrintVersion() {
  printf(
      "flom: FLoM's command line (FLoM %s), run by lockmesh %s\n"
      "lockmesh: a peer-to-peer distributed lock manager; FLoM's resource types, lock modes\n"
      "and exit codes on a durable, fenced lock table (docs/flom.md lists the differences)\n"
      "Security levels in this build: %s (between nodes; local clients: UNIX socket private\n"
      "to the uid)\n",
      kFlomCompatibleVersion, LOCKMESH_VERSION, SecurityLevelsInBuild().c_str());
}

void PrintSignalList() {
  for (int sig : IgnorableSignals()) printf("%2d %s\n", sig, FlomSignalName(sig).c_str());
}

/// "5" for 5000 ms: the node's --idle-exit in seconds (0 = never).
std::string IdleExitSeconds(int64_t lifespan_ms) {
  if (lifespan_ms < 0) return "0";
  char text[32];
  snprintf(text, sizeof text, "%.3f", static_cast<double>(lifespan_ms) / 1000.0);
  return text;
}

int RunFlomCommandLine(const FlomCommandLine& cl) {
  if (cl.version) PrintVersion();
  if (cl.signal_list) PrintSignalList();
  if (cl.version || cl.signal_list) return kExitOk;

  FlomSettings settings;
  std::vector<std::string> warnings;
  FlomConfigSources sources;
  sources.user_file = FlomUserConfigPath();
  sources.explicit_file = cl.config_file;
  Status st = LoadFlomConfig(sources, &settings, &warnings);
  for (const std::string& w : warnings) PrintError("warning: " + w);
  if (!st.ok()) {
    PrintError(st.message());
    return kExitError;
  }
  st = ApplyCommandLine(cl, &settings);
  if (st.ok()) st = CheckSupported(settings, cl);
  if (!st.ok()) {
    PrintError(st.message());
    return kExitError;
  }
  std::string socket =
      AbsolutePath(settings.socket_name.empty() ? DefaultFlomSocket() : settings.socket_name);
  settings.socket_name = socket;
  if (cl.unique_id) return PrintUniqueId(socket);
  if (settings.verbose) {
    fputs(FormatFlomSettings(settings).c_str(), stdout);
    fflush(stdout);
  }
  WarnAboutIgnored(settings);
  if (cl.quiesce || cl.immediate) return Shutdown(socket, cl.immediate);
  if (cl.command.empty()) {
    PrintError("No command to execute!");
    return kExitCantRun;
  }

  LockRequest request;
  request.resource = settings.resource_name;
  request.command = cl.command;
  request.lock_options.mode = settings.lock_mode;
  request.lock_options.timeout_ms =
      settings.resource_timeout_ms < 0 ? -1 : settings.resource_timeout_ms;
  request.lock_options.quantity = static_cast<uint32_t>(settings.resource_quantity);
  request.lock_options.no_create = !settings.resource_create;
  request.lock_options.idle_lifespan_ms = std::max<int64_t>(0, settings.resource_idle_lifespan_ms);
  request.on_lost = OnLost::kTerm;
  request.lost_exit_code = kExitError;
  request.no_node_exit_code = kExitError;
  request.element_as_last_argument = true;
  request.ignored_signals = settings.ignored_signals;
  request.client_options.socket_path = socket;
  std::string name = "flom -r " + settings.resource_name + " --";
  for (const auto& arg : cl.command) name += " " + arg;
  if (name.size() > 80) name = name.substr(0, 77) + "...";
  request.client_options.client_name = name;
  request.autostart.socket = socket;
  request.autostart.enabled = settings.daemon_lifespan_ms != 0;
  request.autostart.log_file = AbsolutePath(mesh::DefaultDataDir(socket)) + "/node.log";
  request.autostart.claim_data_dir = AbsolutePath(mesh::DefaultDataDir(socket));
  request.autostart.argv_prefix = {"flom", kFlomLockmeshMarker};
  request.autostart.extra_node_args = {"--idle-exit",
                                       IdleExitSeconds(settings.daemon_lifespan_ms)};
  if (settings.daemon_lifespan_ms != 0) {
    std::vector<std::string> mesh_args;
    st = MeshNodeArgs(settings, &mesh_args);
    if (!st.ok()) {
      PrintError(st.message());
      return kExitError;
    }
    if (!mesh_args.empty()) {
      if (settings.verbose) {
        std::string flags;
        for (const std::string& a : mesh_args) flags += " " + a;
        PrintError("note: -a/-A: a node started here joins a mesh, with" + flags);
      }
      // A mesh member does not exit when idle: its vote is its peers' quorum.
      request.autostart.extra_node_args = mesh_args;
      request.autostart.mesh = true;
    }
  }
  if (settings.verbose) {
    // FLoM is silent while waiting; -V also says so on stderr (the holder, the queue).
    request.wait_report = WaitReport::kVerbose;
    request.on_granted = [](const mesh::Lock& lock) {
      if (lock.element.empty()) return;
      printf("Locked element is '%s'\n", lock.element.c_str());
      fflush(stdout);
    };
  }
  return RunLock(request);
}

}  // namespace

int RunFlom(int argc, char** argv) {
  SetProgramName("flom");
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{"flom: run a command while holding a lock (FLoM's command line, on lockmesh)"};
  app.name("flom");
  app.footer(kFooter);
  FlomCommandLine cl;
  AddOptions(&app, &cl);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // FLoM: "option parsing failed: ..." and its generic error code.
    PrintError(std::string("option parsing failed: ") + e.what() + " (see flom --help)");
    return kExitError;
  }
  return RunFlomCommandLine(cl);
}

}  // namespace lockmesh::cli
