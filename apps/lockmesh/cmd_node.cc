// `lockmesh node`: run a mesh::Node in the foreground on uv_default_loop().
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "autostart.h"
#include "cli_support.h"
#include "commands.h"
#include "exit_codes.h"
#include "mesh/node.h"

namespace lockmesh::cli {
namespace {

using mesh::Status;

/// Idle lifespan of a node started by the CLI when the configuration does not set one.
constexpr double kAutoStartedIdleExitSeconds = 60;

/// Flags of `lockmesh node` that are not configuration keys.
struct NodeFlags {
  CommonOptions common;
  bool auto_started = false;  // hidden: started by ConnectOrStartNode
  int ready_fd = -1;          // hidden: where to report start-up (autostart.h)
};

/// "2024-05-01T12:00:00.123Z" (UTC).
std::string Timestamp() {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc;
  gmtime_r(&now.tv_sec, &utc);
  char buffer[40];
  size_t n = strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &utc);
  snprintf(buffer + n, sizeof buffer - n, ".%03ldZ", now.tv_nsec / 1000000);
  return buffer;
}

/// mkdir -p, mode 0700 for what it creates.
void MakeDirs(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') mkdir(dir.substr(0, i).c_str(), 0700);
  }
}

/// Where log lines go: stderr, or (auto-started) an append-only file in the data dir.
class LogSink {
 public:
  explicit LogSink(std::string file) : file_(std::move(file)) {}
  ~LogSink() {
    if (fd_ >= 0) close(fd_);
  }
  /// A line of our own: timestamped like the node's lines.
  void Note(const std::string& message) {
    Write(Timestamp() + " lockmesh[" + std::to_string(getpid()) + "] " + message);
  }
  /// A line as is (the node's lines carry their own timestamp).
  void Write(const std::string& line) {
    std::string out = line + "\n";
    int fd = STDERR_FILENO;
    if (!file_.empty()) {
      if (fd_ < 0) {
        MakeDirs(file_.substr(0, file_.rfind('/')));
        fd_ = open(file_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
      }
      if (fd_ < 0) return;
      fd = fd_;
    }
    ssize_t unused = write(fd, out.data(), out.size());
    (void)unused;
  }

 private:
  std::string file_;  // "" = stderr
  int fd_ = -1;
};

/// Refuses what this single-node build cannot do; warns about what it ignores.
Status CheckClusterSettings(const NodeConfig& node, LogSink* log) {
  if (!node.join.empty()) {
    return Status::InvalidArgument(
        "--join (node.join) is not supported yet in this build: it runs a single node");
  }
  if (node.security != "none") {
    return Status::InvalidArgument("--security " + node.security +
                                   " is not supported yet in this build; only 'none'");
  }
  if (node.expect > 1) {
    return Status::InvalidArgument("--expect " + std::to_string(node.expect) +
                                   " is not supported yet in this build: it runs a single node "
                                   "and would wait forever");
  }
  if (!node.listen.empty()) {
    log->Note("warning: this build has no peer networking; --listen " + node.listen +
              " is accepted but nothing listens on it");
  }
  if (!node.tls_cert.empty() || !node.tls_key.empty() || !node.tls_ca.empty()) {
    log->Note("warning: --tls-cert/--tls-key/--tls-ca are ignored with --security none");
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
    LogSink log(flags_.auto_started ? data_dir + "/node.log" : "");
    log_ = &log;
    Status st = CheckClusterSettings(config_.node, &log);
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
    options.fsync = config_.node.fsync;
    options.log = [&log](const std::string& line) { log.Write(line); };

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
    std::string files;
    for (const auto& f : config_.files) files += (files.empty() ? "" : ", ") + f;
    char idle_text[32];
    snprintf(idle_text, sizeof idle_text, "%g s", idle);
    log.Note(std::string("node settings: socket ") + socket + ", data dir " + data_dir +
             ", cluster " + config_.node.cluster + ", fsync " +
             (config_.node.fsync ? "on" : "off") + ", idle exit " +
             (idle > 0 ? idle_text : "never") + (flags_.auto_started ? ", auto-started" : "") +
             ", config files: " + (files.empty() ? "none" : files));

    node_->SetStoppedCallback([this](const Status& why) {
      if (!why.ok()) {
        exit_code_ = kExitError;
        if (flags_.auto_started) {
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

  int FailStart(const Status& st) {
    std::string message = "cannot start node: " + st.message();
    if (flags_.ready_fd >= 0) WriteReadyLine(flags_.ready_fd, st);
    if (flags_.auto_started) {
      log_->Note(message);
    } else {
      PrintError(message);
    }
    return kExitError;
  }

  void OnSignal(int signum) {
    if (signum == SIGHUP) {
      log_->Note("SIGHUP: nothing to reload in this build");
      return;
    }
    if (stopping_) {
      log_->Note(std::string("SIG") + sigabbrev_np(signum) + " again: already stopping");
      return;
    }
    stopping_ = true;
    log_->Note(std::string("SIG") + sigabbrev_np(signum) + ": stopping");
    node_->Stop(/*graceful=*/true, [this] { CloseSignals(); });
  }

  void CloseSignals() {
    if (signals_closed_) return;
    signals_closed_ = true;
    for (auto& handle : signals_) uv_close(reinterpret_cast<uv_handle_t*>(&handle), nullptr);
  }

  const Config& config_;
  const NodeFlags& flags_;
  LogSink* log_ = nullptr;
  std::unique_ptr<mesh::Node> node_;
  uv_signal_t signals_[3];
  bool stopping_ = false;
  bool signals_closed_ = false;
  int exit_code_ = kExitOk;
};

}  // namespace

CommandRunner AddNodeCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand("node", "Run a node in the foreground");
  cmd->footer(
      "The node serves local clients on its UNIX socket (0600, or 0660 with --socket-group) "
      "and keeps its\nlog and snapshots in the data dir. SIGINT or SIGTERM stops it "
      "gracefully (clients' locks are\nreleased first). Only one node can serve a socket.\n\n"
      "This build runs a single node: --join, --expect > 1 and --security other than none are "
      "refused\n(exit 99); --listen, --voters and --tls-* are accepted and validated.\n\n"
      "Exit status: 0 stopped cleanly (signal, shutdown request, idle exit); 2 usage error; "
      "99 could not\nstart (reason on stderr, e.g. another node already serves the socket) "
      "or stopped on an error.");
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
              "Nodes to see before bootstrapping a new cluster (default: 1; only 1 in this "
              "build)")
      ->type_name("N");
  o.AddOption(cmd, "--voters", "node.voters",
              "Voting members, 1-9; the others are learners (default: 3)")
      ->type_name("N");
  o.AddOption(cmd, "--listen", "node.listen",
              "Peer address HOST:PORT, IPv6 as [ADDR]:PORT (default: all addresses, port "
              "28017; unused in this build)")
      ->type_name("HOST:PORT");
  o.AddOption(cmd, "--join", "node.join",
              "Comma-separated HOST:PORT of peers to contact without multicast (default: none; "
              "not supported yet)")
      ->type_name("LIST");
  o.AddOption(cmd, "--security", "node.security",
              "Peer security: none, encrypt, mutual or tofu (default: none; only none in this "
              "build)")
      ->type_name("LEVEL");
  o.AddOption(cmd, "--tls-cert", "node.tls_cert", "PEM certificate (default: none)")
      ->type_name("FILE");
  o.AddOption(cmd, "--tls-key", "node.tls_key", "PEM private key (default: none)")
      ->type_name("FILE");
  o.AddOption(cmd, "--tls-ca", "node.tls_ca", "PEM CA certificate(s) (default: none)")
      ->type_name("FILE");
  AddCommonOptions(cmd, &flags->common);
  cmd->add_flag("--auto-started", flags->auto_started,
                "Started by the CLI: idle exit 60 s by default, log to <data-dir>/node.log")
      ->group("");
  cmd->add_option(kReadyFdFlag, flags->ready_fd, "Descriptor to report start-up on")->group("");

  return [flags]() -> int {
    Config config;
    std::string error;
    if (int code = LoadEffectiveConfig(flags->common, &config, &error); code != 0) {
      if (flags->ready_fd >= 0) WriteReadyLine(flags->ready_fd, Status::InvalidArgument(error));
      return code;
    }
    if (flags->auto_started) signal(SIGHUP, SIG_IGN);
    NodeRunner runner(config, *flags);
    return runner.Run();
  };
}

}  // namespace lockmesh::cli
