// `lockmesh node`: run a mesh::Node in the foreground on uv_default_loop().
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autostart.h"
#include "cli_support.h"
#include "commands.h"
#include "exit_codes.h"
#include "service_notify.h"
#include "mesh/node.h"
#include "net/local/local_dir.h"
#include "net/local/mesh_claim.h"
#include "net/support/log_line.h"
#include "net/support/log_sink.h"
#include "net/support/posix_file_system.h"

namespace lockmesh::cli {
namespace {

using mesh::Status;

/// Idle lifespan of a node started by the CLI when the configuration does not set one.
constexpr double kAutoStartedIdleExitSeconds = 60;

/// Flags of `lockmesh node` that are not configuration keys.
struct NodeFlags {
  CommonOptions common;
  bool auto_started = false;  // hidden: started by ConnectOrStartNode
  bool auto_mesh = false;     // hidden: auto-started but a mesh node (`flom -a/-A`)
  bool release_claim = false;  // --release-mesh-claim: remove the mesh claim and exit
  int ready_fd = -1;          // hidden: where to report start-up (autostart.h)
};

/// This process's command line, argv[0] made absolute (/proc/self/exe): how to start this
/// node again, written into a mesh node's claim (mesh::NodeOptions::start_command).
std::vector<std::string> OwnCommandLine() {
  std::vector<std::string> argv;
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return argv;
  std::string text;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof buffer)) > 0) text.append(buffer, n);
  close(fd);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\0', pos);
    if (end == std::string::npos) end = text.size();
    argv.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  char exe[4096];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (!argv.empty() && len > 0) argv[0].assign(exe, static_cast<size_t>(len));
  return argv;
}

/// `lockmesh node --release-mesh-claim`: removes the mesh claims of the effective socket
/// and data dir (docs/mesh.md "One authority per host"), refusing while a node serves the
/// socket (it holds <socket>.lock) or uses the data dir (it holds <data_dir>/node.lock, also
/// when it serves another socket). Returns the exit code.
int ReleaseMeshClaim(const Config& config) {
  const std::string socket = EffectiveSocket(config);
  const std::string data_dir = AbsolutePath(EffectiveDataDir(config, socket));
  // Each lock is held until the claims are gone, so no node starts on them meanwhile.
  std::vector<std::unique_ptr<mesh::core::FileLock>> held;
  const std::pair<std::string, std::string> locks[] = {
      {socket + ".lock", "is serving " + socket},
      {data_dir + "/node.lock", "uses the data dir " + data_dir}};
  for (const auto& [lock_path, what] : locks) {
    if (!mesh::net::PosixFileSystem()->Exists(lock_path)) continue;  // no node ever ran there
    held.emplace_back();
    Status locked =
        mesh::net::PosixFileSystem()->LockFile(lock_path, mesh::core::LockWait::kTry, &held.back());
    if (locked.IsBusy()) {
      PrintError("a node " + what + " (it holds " + lock_path +
                 "); stop it before releasing its mesh claim");
      return kExitError;
    }
  }
  int removed = 0;
  int code = kExitOk;
  for (const std::string& path :
       {mesh::net::SocketClaimPath(socket), mesh::net::DataDirClaimPath(data_dir)}) {
    mesh::core::FoundClaim found = mesh::net::ReadMeshClaim(path);
    if (found.state == mesh::core::FoundClaim::State::kAbsent) continue;
    Status st = mesh::net::RemoveMeshClaim(path);
    if (!st.ok()) {
      PrintError(st.message());
      code = kExitError;
      continue;
    }
    ++removed;
    printf(
        "removed %s%s\n", path.c_str(),
        found.state == mesh::core::FoundClaim::State::kValid
            ? (" (mesh node " + found.claim.node_id + " of cluster '" + found.claim.cluster + "')")
                  .c_str()
            : " (unreadable)");
  }
  held.clear();  // the claims are gone: nodes may start again
  if (code == kExitOk) {
    if (removed == 0) {
      printf("no mesh claim on %s or %s\n", socket.c_str(), data_dir.c_str());
    } else {
      printf(
          "local nodes may now serve %s; %s still holds the mesh's log: remove it (or give "
          "local nodes another --data-dir) if this host has left the mesh for good\n",
          socket.c_str(), data_dir.c_str());
    }
  }
  return code;
}

using mesh::net::LogSink;

/// The node's log: stderr, or (auto-started) <data dir>/node.log, capped and rotated; at the
/// configured level and format (net/support/log_sink.h).
mesh::net::LogSinkOptions LogOptions(const NodeConfig& node, bool auto_started,
                                     const std::string& data_dir) {
  mesh::net::LogSinkOptions o;
  if (auto_started) {
    o.path = data_dir + "/node.log";
    o.max_bytes = static_cast<uint64_t>(node.log_max_bytes);
  }
  (void)mesh::net::ParseLogLevel(node.log_level, &o.level);  // validated by config.cc
  (void)mesh::net::ParseLogFormat(node.log_format, &o.format);
  return o;
}

/// Checks the settings that only make sense together, and warns about ignored ones.
Status CheckClusterSettings(const NodeConfig& node, bool local, LogSink* log) {
  const bool tls_files = !node.tls_cert.empty() || !node.tls_key.empty() || !node.tls_ca.empty();
  if (local) {
    if (!node.join.empty() || node.expect > 1 || !node.listen.empty()) {
      log->Note("warning: a local node (--local, or auto-started) has no peers: --join, "
                "--expect and --listen are ignored");
    }
    return Status::OK();
  }
  if (node.security == "none" && tls_files) {
    log->Note("warning: --tls-cert/--tls-key/--tls-ca are ignored with --security none");
  }
  if (node.security != "none" && (node.tls_cert.empty() || node.tls_key.empty())) {
    return Status::InvalidArgument("--security " + node.security +
                                   " needs --tls-cert and --tls-key (make them with "
                                   "`lockmesh cert node` or `lockmesh cert self-signed`)");
  }
  if ((node.security == "encrypt" || node.security == "mutual") && node.tls_ca.empty()) {
    return Status::InvalidArgument("--security " + node.security +
                                   " needs --tls-ca (the CA that signed every node's "
                                   "certificate; `lockmesh cert ca` makes one)");
  }
  if (!node.trusted_fingerprints.empty() && node.security != "tofu") {
    return Status::InvalidArgument("--trusted-fingerprints is for --security tofu only");
  }
  if (!node.multicast && node.join.empty() && node.expect > 1) {
    return Status::InvalidArgument("--no-multicast with --expect " +
                                   std::to_string(node.expect) +
                                   " and no --join: this node could never find its peers");
  }
  return Status::OK();
}

/// Runs the node until it stops; returns the exit code.
class NodeRunner {
 public:
  NodeRunner(const Config& config, const NodeFlags& flags) : config_(config), flags_(flags) {}

  int Run() {
    std::string socket = EffectiveSocket(config_);
    std::string data_dir = EffectiveDataDir(config_, socket);
    LogSink log(LogOptions(config_.node, flags_.auto_started, data_dir));
    log_ = &log;
    const bool local = (flags_.auto_started && !flags_.auto_mesh) || config_.node.local;
    Status st = CheckClusterSettings(config_.node, local, &log);
    if (!st.ok()) return FailStart(st);

    mesh::NodeOptions options;
    options.node_id = config_.node.node_id;
    options.cluster = config_.node.cluster;
    options.data_dir = data_dir;
    options.socket_path = socket;
    options.socket_group = config_.node.socket_group;
    double idle =
        config_.node.idle_exit.value_or(flags_.auto_started ? kAutoStartedIdleExitSeconds : 0);
    options.idle_exit_ms = std::llround(idle * 1000);
    options.snapshot_every = static_cast<uint64_t>(config_.node.snapshot_every);
    options.token_floor = static_cast<uint64_t>(config_.node.token_floor);
    options.fsync = config_.node.fsync;
    options.start_command = OwnCommandLine();
    options.log = [&log](const std::string& line) { log.Write(line); };
    if (!local) {
      const NodeConfig& n = config_.node;
      mesh::MeshOptions& m = options.mesh;
      m.enabled = true;
      m.expect = static_cast<int>(n.expect);
      m.voters = static_cast<int>(n.voters);
      m.listen = n.listen;
      m.advertise = n.advertise;
      m.join = n.join;
      m.security = n.security;
      m.tls_cert = n.tls_cert;
      m.tls_key = n.tls_key;
      m.tls_ca = n.tls_ca;
      m.trusted_fingerprints = n.trusted_fingerprints;
      m.multicast = n.multicast;
      m.discovery_port = static_cast<uint16_t>(n.discovery_port);
      m.discovery_interface = n.discovery_interface;
      m.discovery_group4 = n.discovery_group4;
      m.discovery_group6 = n.discovery_group6;
      m.discovery_ttl = static_cast<int>(n.discovery_ttl);
      m.session_ttl_ms = std::llround(n.session_ttl * 1000);
      m.dead_after_ms = std::llround(n.dead_after * 1000);
      m.election_timeout_ms = n.election_timeout_ms;
      m.handshake_timeout_ms = std::llround(n.handshake_timeout * 1000);
      m.max_pending_per_source = static_cast<uint32_t>(n.max_pending_per_source);
      m.max_pending_connections = static_cast<uint32_t>(n.max_pending_connections);
    }

    uv_loop_t* loop = uv_default_loop();
    st = mesh::Node::Create(loop, options, &node_);
    if (st.ok()) st = node_->Start();
    if (!st.ok()) {
      node_.reset();
      uv_run(loop, UV_RUN_NOWAIT);
      uv_loop_close(loop);
      return FailStart(st);
    }
    if (flags_.ready_fd >= 0) WriteReadyLine(flags_.ready_fd, Status::OK());
    StartServiceNotifications(loop, socket);
    std::string files;
    for (const auto& f : config_.files) files += (files.empty() ? "" : ", ") + f;
    char idle_text[32];
    snprintf(idle_text, sizeof idle_text, "%g s", idle);
    log.Note(std::string("node settings: socket ") + socket + ", data dir " + data_dir +
             ", cluster " + config_.node.cluster +
             (local ? ", local (no peers)"
                    : ", mesh: expect " + std::to_string(config_.node.expect) + ", voters " +
                          std::to_string(config_.node.voters) + ", security " +
                          config_.node.security) +
             ", fsync " +
             (config_.node.fsync ? "on" : "off") + ", idle exit " +
             (idle > 0 ? idle_text : "never") + (flags_.auto_started ? ", auto-started" : "") +
             ", config files: " + (files.empty() ? "none" : files));

    node_->SetStoppedCallback([this](const Status& why) {
      NotifyStopping();
      if (!why.ok()) {
        exit_code_ = kExitError;
        if (ErrorsToLog()) {
          log_->Note("node stopped: " + why.ToString());
        } else {
          PrintError("node stopped: " + why.ToString());
        }
      }
      CloseSignals();
    });
    for (int i = 0; i < 3; ++i) {
      uv_signal_init(loop, &signals_[i]);
      signals_[i].data = this;
      uv_signal_start(
          &signals_[i],
          [](uv_signal_t* handle, int signum) {
            static_cast<NodeRunner*>(handle->data)->OnSignal(signum);
          },
          kSignals[i]);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    node_.reset();
    uv_loop_close(loop);
    log_ = nullptr;
    return exit_code_;
  }

 private:
  static constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};

  /// Whether start and stop errors go to the log rather than to stderr as `lockmesh: ...`:
  /// an auto-started node has no stderr, and with --log-format json every line of stderr is
  /// a JSON object.
  bool ErrorsToLog() const { return flags_.auto_started || config_.node.log_format == "json"; }

  int FailStart(const Status& st) {
    std::string message = "cannot start node: " + st.message();
    if (flags_.ready_fd >= 0) WriteReadyLine(flags_.ready_fd, st);
    if (ErrorsToLog()) {
      log_->Note(message);
    } else {
      PrintError(message);
    }
    return kExitError;
  }

  void OnSignal(int signum) {
    if (signum == SIGHUP) {
      if (config_.node.local || (flags_.auto_started && !flags_.auto_mesh) ||
          config_.node.security == "none") {
        log_->Note("SIGHUP: no certificates to reload (local node or --security none)");
        return;
      }
      log_->Note("SIGHUP: reloading certificates");
      size_t cut_off = 0;
      node_->ReloadCertificates(&cut_off);  // the node logs the outcome
      return;
    }
    if (stopping_) {
      log_->Note(std::string("SIG") + sigabbrev_np(signum) + " again: already stopping");
      return;
    }
    stopping_ = true;
    NotifyStopping();
    log_->Note(std::string("SIG") + sigabbrev_np(signum) + ": stopping");
    node_->Stop(/*graceful=*/true, [this] { CloseSignals(); });
  }

  void CloseSignals() {
    if (signals_closed_) return;
    signals_closed_ = true;
    for (auto& handle : signals_) uv_close(reinterpret_cast<uv_handle_t*>(&handle), nullptr);
    if (watchdog_armed_) uv_close(reinterpret_cast<uv_handle_t*>(&watchdog_), nullptr);
  }

  // Under a service manager ($NOTIFY_SOCKET, service_notify.h): READY=1 now that the node
  // serves, and WATCHDOG=1 at half the interval asked for, from this loop (a stuck loop
  // misses it and the manager restarts the node).
  void StartServiceNotifications(uv_loop_t* loop, const std::string& socket) {
    notifier_ = ServiceNotifier::FromEnvironment();
    if (!notifier_) return;
    notifier_->Notify("READY=1\nSTATUS=serving on " + socket + "\nMAINPID=" +
                      std::to_string(getpid()));
    const uint64_t usec = notifier_->watchdog_usec();
    if (usec == 0) return;
    const uint64_t every_ms = std::max<uint64_t>(1, usec / 2000);
    uv_timer_init(loop, &watchdog_);
    watchdog_.data = this;
    watchdog_armed_ = true;
    uv_timer_start(
        &watchdog_,
        [](uv_timer_t* t) { static_cast<NodeRunner*>(t->data)->notifier_->Notify("WATCHDOG=1"); },
        every_ms, every_ms);
  }

  void NotifyStopping() {
    if (notifier_ && !stop_notified_) {
      stop_notified_ = true;
      notifier_->Notify("STOPPING=1\nSTATUS=stopping");
    }
  }

  const Config& config_;
  const NodeFlags& flags_;
  LogSink* log_ = nullptr;
  std::unique_ptr<mesh::Node> node_;
  uv_signal_t signals_[3];
  bool stopping_ = false;
  bool signals_closed_ = false;
  std::unique_ptr<ServiceNotifier> notifier_;  // null unless run by a service manager
  uv_timer_t watchdog_;                        // armed only if watchdog_armed_
  bool watchdog_armed_ = false;
  bool stop_notified_ = false;
  int exit_code_ = kExitOk;
};

}  // namespace

CommandRunner AddNodeCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand("node", "Run a node in the foreground");
  cmd->footer(
      "The node serves local clients on its UNIX socket (0600, or 0660 with --socket-group) "
      "and keeps its\nlog and snapshots in the data dir. SIGINT or SIGTERM stops it "
      "gracefully (clients' locks are\nreleased first). Only one node can serve a socket.\n\n"
      "A node run this way joins a mesh: it listens for peers (TCP 28017), finds them by "
      "multicast\n(UDP 28017, 239.255.28.17 and ff12::2817) or --join, and forms or joins a "
      "cluster of its --cluster\nname. --local runs it alone (UNIX socket only), as "
      "`lockmesh lock` does when it auto-starts one.\nSIGHUP reloads the TLS files; peers "
      "whose certificate no longer verifies are cut off.\n\n"
      "Exit status: 0 stopped cleanly (signal, shutdown request, idle exit); 2 usage error; "
      "99 could not\nstart (reason on stderr, e.g. another node already serves the socket, the "
      "socket or data dir\nbelongs to a mesh node and this one is not, or the socket directory "
      "is not yours) or stopped on an error.");
  auto flags = std::make_shared<NodeFlags>();
  FlagOverrides& o = flags->common.overrides;
  o.AddOption(cmd, "--node-id", "node.node_id",
              "This node's unique id (default: `lockmesh unique-id`: the machine id, else an id "
              "stored in the data dir; config [node] node_id)")
      ->type_name("ID");
  o.AddOption(cmd, "--cluster", "node.cluster",
              "Cluster name; nodes of other names are ignored (default: lockmesh)")
      ->type_name("NAME");
  o.AddOption(cmd, "--data-dir", "node.data_dir",
              "Directory of the log and snapshots, created 0700 (default: $LOCKMESH_DATA_DIR, "
              "else ${XDG_STATE_HOME:-~/.local/state}/lockmesh/<name>, <name> = default for the "
              "default socket)")
      ->type_name("DIR");
  o.AddOption(cmd, "--socket-group", "node.socket_group",
              "Group allowed to use the socket (mode 0660) (default: none, mode 0600)")
      ->type_name("GROUP");
  o.AddOption(cmd, "--idle-exit", "node.idle_exit",
              "Exit after SECONDS with no client and no lock; 0 = never (default: 0; 60 for a "
              "node auto-started by `lockmesh lock`)")
      ->type_name("SECONDS");
  o.AddFlag(cmd, "--no-fsync", "node.fsync", "false",
            "Do not fsync the log before acknowledging (unsafe; benchmarks only) (default: "
            "fsync on)");
  o.AddOption(cmd, "--expect", "node.expect",
              "Nodes (this one included) a node with empty state waits to see before a new "
              "cluster is made; the lowest id bootstraps it (default: 1)")
      ->type_name("N");
  o.AddOption(cmd, "--voters", "node.voters",
              "Voting members, 1-9; the others are learners (default: 3)")
      ->type_name("N");
  o.AddOption(cmd, "--listen", "node.listen",
              "Peer address HOST:PORT, IPv6 as [ADDR]:PORT (default: all addresses, port "
              "28017)")
      ->type_name("HOST:PORT");
  o.AddOption(cmd, "--join", "node.join",
              "Comma-separated HOST:PORT of peers to contact without multicast (default: none)")
      ->type_name("LIST");
  o.AddOption(cmd, "--security", "node.security",
              "Peer security: none, encrypt, mutual or tofu (default: none: clear TCP, any node "
              "of the same cluster name may join)")
      ->type_name("LEVEL");
  o.AddOption(cmd, "--tls-cert", "node.tls_cert", "PEM certificate (default: none)")
      ->type_name("FILE");
  o.AddOption(cmd, "--tls-key", "node.tls_key", "PEM private key (default: none)")
      ->type_name("FILE");
  o.AddOption(cmd, "--tls-ca", "node.tls_ca", "PEM CA certificate(s) (default: none)")
      ->type_name("FILE");
  o.AddOption(cmd, "--trusted-fingerprints", "node.trusted_fingerprints",
              "tofu: file of allowed certificate fingerprints, a strict allow-list (default: "
              "none: trust on first use)")
      ->type_name("FILE");
  o.AddFlag(cmd, "--local", "node.local", "true",
            "Run alone: UNIX socket only, no peers, no discovery (default: off; on for nodes "
            "auto-started by `lockmesh lock`)");
  o.AddOption(cmd, "--advertise", "node.advertise",
              "HOST:PORT other nodes should dial to reach this one (default: the address they "
              "see this node at)")
      ->type_name("HOST:PORT");
  o.AddFlag(cmd, "--no-multicast", "node.multicast", "false",
            "Find peers through --join only (default: multicast discovery on)");
  o.AddOption(cmd, "--discovery-port", "node.discovery_port",
              "UDP port of the discovery beacons (default: 28017)")
      ->type_name("PORT");
  o.AddOption(cmd, "--discovery-group4", "node.discovery_group4",
              "IPv4 multicast group of the beacons (default: 239.255.28.17)")
      ->type_name("ADDR");
  o.AddOption(cmd, "--discovery-group6", "node.discovery_group6",
              "IPv6 multicast group of the beacons (default: ff12::2817)")
      ->type_name("ADDR");
  o.AddOption(cmd, "--discovery-interface", "node.discovery_interface",
              "Network interface for discovery beacons (default: chosen by the routes to the "
              "multicast groups)")
      ->type_name("IF");
  o.AddOption(cmd, "--discovery-ttl", "node.discovery_ttl",
              "Multicast TTL / hop limit of the beacons (default: 1, the local link)")
      ->type_name("N");
  o.AddOption(cmd, "--session-ttl", "node.session_ttl",
              "Seconds of silence after which the leader ends a node's sessions; the node "
              "tells its clients their locks are lost before that (default: 10)")
      ->type_name("SECONDS");
  o.AddOption(cmd, "--dead-after", "node.dead_after",
              "Seconds a member may be unreachable before it is replaced (voter) or removed "
              "(learner) (default: 30)")
      ->type_name("SECONDS");
  o.AddOption(cmd, "--handshake-timeout", "node.handshake_timeout",
              "Seconds an accepted peer connection may take to finish its TLS handshake, Hello "
              "and Welcome before it is closed (0.1-3600; default: 10)")
      ->type_name("SECONDS");
  o.AddOption(cmd, "--max-pending-per-source", "node.max_pending_per_source",
              "Peer connections not yet through their handshake held from one address (an "
              "IPv6 /64); one more is closed at once (1-65536; default: 32)")
      ->type_name("N");
  o.AddOption(cmd, "--max-pending-connections", "node.max_pending_connections",
              "Peer connections not yet through their handshake held in all; one more is "
              "closed at once (1-65536; default: 512)")
      ->type_name("N");
  o.AddOption(cmd, "--snapshot-every", "node.snapshot_every",
              "Applied log entries between two snapshots of the lock table; the log before a "
              "snapshot is dropped, and a member that needs it gets the snapshot, streamed "
              "(default: 100000)")
      ->type_name("ENTRIES");
  o.AddOption(cmd, "--token-floor", "node.token_floor",
              "Fencing tokens granted from this node's start on are above N, on every member: "
              "give a rebuilt cluster the highest token of the one it replaces; a lower floor "
              "never lowers them (default: 0, none)")
      ->type_name("N");
  o.AddOption(cmd, "--election-timeout", "node.election_timeout_ms",
              "Raft election timeout in milliseconds, the same on every node (default: 1000)")
      ->type_name("MS");
  o.AddOption(cmd, "--log-level", "node.log_level",
              "Least severe log lines written: error, warn, info or debug (default: info)")
      ->type_name("LEVEL");
  o.AddOption(cmd, "--log-format", "node.log_format",
              "Log lines as text, or json: one object per line with time, level, event, msg, "
              "pid and the event's fields (default: text)")
      ->type_name("FORMAT");
  o.AddOption(cmd, "--log-max-bytes", "node.log_max_bytes",
              "Cap of an auto-started node's log file <data-dir>/node.log: past it the file "
              "becomes node.log.1 (the older one is removed) and a new one begins; 0 = no cap "
              "(default: 10485760, 10 MiB)")
      ->type_name("BYTES");
  AddCommonOptions(cmd, &flags->common);
  cmd->add_flag("--auto-started", flags->auto_started,
                "Started by the CLI: idle exit 60 s by default, log to <data-dir>/node.log")
      ->group("");
  cmd->add_option(kReadyFdFlag, flags->ready_fd, "Descriptor to report start-up on")->group("");
  cmd->add_flag(kAutoMeshFlag, flags->auto_mesh,
                "With --auto-started: join a mesh (not --local), as `flom -a/-A` asks")
      ->group("");
  cmd->add_flag("--release-mesh-claim", flags->release_claim,
                "Do not start: remove the mesh claim of this socket and data dir, so that local "
                "nodes (auto-started, --local) may serve them again; for a host that has left "
                "its mesh for good. Refused while a node serves the socket or uses the data "
                "dir");

  return [flags]() -> int {
    Config config;
    std::string error;
    if (int code = LoadEffectiveConfig(flags->common, &config, &error); code != 0) {
      if (flags->ready_fd >= 0) WriteReadyLine(flags->ready_fd, Status::InvalidArgument(error));
      return code;
    }
    if (flags->release_claim) return ReleaseMeshClaim(config);
    if (flags->auto_started) signal(SIGHUP, SIG_IGN);
    NodeRunner runner(config, *flags);
    return runner.Run();
  };
}

}  // namespace lockmesh::cli
