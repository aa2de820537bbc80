#include "flom_cli.h"

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli_support.h"
#include "exit_codes.h"
#include "flom_config.h"
#include "lock_runner.h"
#include "mesh/client.h"
#include "mesh/node.h"

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
   "no: do not create the resource, wait until someone else holds or awaits it (exit 96 with "
   "-o 0) (default: yes)"},
  {"-i,--resource-idle-lifespan", "Resource", "IdleLifespan", "MS",
   "FLoM keeps an idle resource this long; lockmesh has no idle resources: accepted, a "
   "value > 0 is warned about and has no effect (default: 0)"},
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
   "FLoM's TCP daemon address: refused (exit 99), lockmesh runs one node per host"},
  {"-p,--unicast-port", "Daemon", "UnicastPort", "PORT",
   "FLoM's TCP daemon port: accepted, no effect without -a (default: 28015)"},
  {"-A,--multicast-address", "Daemon", "MulticastAddress", "ADDRESS",
   "FLoM's multicast discovery group: refused (exit 99), see docs/flom.md"},
  {"-P,--multicast-port", "Daemon", "MulticastPort", "PORT",
   "FLoM's multicast port: accepted, no effect without -A (default: 28015)"},
  {"-m,--mount-point-vfs", "Daemon", "MountPointVFS", "DIR",
   "FLoM's FUSE status file system: refused (exit 99); use `lockmesh locks --json`"},
  {"-n,--network-interface", "Network", "NetworkInterface", "IF",
   "IPv6 link-local interface of -a/-A: accepted, no effect"},
  {"-D,--discovery-attempts", "Network", "DiscoveryAttempts", "N",
   "Multicast discovery attempts: accepted, no effect (default: 2)"},
  {"-I,--discovery-timeout", "Network", "DiscoveryTimeout", "MS",
   "Multicast discovery timeout: accepted, no effect (default: 500)"},
  {"--discovery-ttl", "Network", "DiscoveryTTL", "N",
   "Multicast hop limit: accepted, no effect (default: 1)"},
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
`flom -x` stops it once idle, `flom -X` at once.

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
  if (!s.unicast_address.empty() || !s.multicast_address.empty()) {
    return Status::InvalidArgument(
        std::string(!s.unicast_address.empty() ? "-a/--unicast-address (UnicastAddress)"
                                               : "-A/--multicast-address (MulticastAddress)") +
        " is not supported: lockmesh has no central daemon to reach over the network; every "
        "host runs its own node (reached over a UNIX socket, -s) and nodes replicate the locks "
        "among themselves (`lockmesh node --join`, docs/flom.md). Locking through this host's "
        "node alone would not exclude other hosts, so the option is refused");
  }
  if (!s.mount_point_vfs.empty()) {
    return Status::InvalidArgument(
        "-m/--mount-point-vfs (MountPointVFS) is not supported: lockmesh has no FUSE status "
        "file system; `lockmesh locks --json` lists holders and waiters");
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
  if (s.resource_idle_lifespan_ms > 0) {
    warn("-i/--resource-idle-lifespan " + std::to_string(s.resource_idle_lifespan_ms) +
         " has no effect: lockmesh keeps no idle resources (a resource exists while it is held "
         "or awaited; -e no waits until then); sequence and timestamp counters persist anyway");
  }
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
  PrintError("note: -p/-P, -n, -D, -I, --discovery-ttl and --tcp-keepalive-* have no effect: "
             "there is no network daemon to reach (the node is local, see docs/flom.md)");
  std::string files;
  for (const std::string& f : s.files) files += (files.empty() ? "" : ", ") + f;
  PrintError("note: configuration files read: " + (files.empty() ? "none" : files));
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
