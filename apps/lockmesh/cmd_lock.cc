// `lockmesh lock`: flags and their mapping to a LockRequest; the work is in lock_runner.cc.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "cli_support.h"
#include "commands.h"
#include "exit_codes.h"
#include "lock_runner.h"
#include "mesh/client.h"

namespace lockmesh::cli {
namespace {

constexpr const char* kLockFooter = R"(Resource names (the type follows from the name, as in FLoM):
  name          simple resource, all six modes
  name[N]       numeric: N units, -q units per lock
  a.b.c         set: one free element per lock ($LOCKMESH_ELEMENT)
  /a/b/c        hierarchical: conflicts with ancestors and descendants
  _s_name[N]    sequence, _S_name[N] transactional sequence ($LOCKMESH_ELEMENT)
  _t_FMT[N]     timestamp with strftime FMT ($LOCKMESH_ELEMENT)

The command's environment gets LOCKMESH_TOKEN (fencing token), LOCKMESH_RESOURCE,
LOCKMESH_LOCK_ID and, for set/sequence/timestamp resources, LOCKMESH_ELEMENT. It runs in its
own process group and gets the terminal when lockmesh is in the foreground. SIGINT, SIGTERM,
SIGHUP and SIGQUIT are forwarded to its process group, SIGUSR1 and SIGUSR2 to the command;
the lock is released only after the command exits (rolled back if it failed).

If no node answers at the socket, one is started in the background (unless --no-autostart)
and exits after 60 s without clients or locks.

Exit status: the command's own status (128+N if killed by signal N), or
   2  usage error: unknown flag, bad flag value, bad resource name
  94  no node answers and none was started (--no-autostart), or the socket or data dir
      belongs to a mesh node that is down
  95  the lock was lost while the command ran (see --on-lost)
  96  cannot wait: resource does not exist, --no-create with -n
  97  cannot run the command (fork/exec failed)
  98  busy (-n) or timed out (-w)
  99  any other error (bad configuration, node start failure, impossible request)
  128+N  interrupted by signal N while waiting for the lock)";

}  // namespace

CommandRunner AddLockCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand("lock", "Run a command while holding a lock");
  cmd->footer(kLockFooter);
  auto common = std::make_shared<CommonOptions>();
  auto resource = std::make_shared<std::string>();
  auto command = std::make_shared<std::vector<std::string>>();
  FlagOverrides& flags = common->overrides;

  CLI::Option* mode = flags.AddOption(
      cmd, "-m,--mode", "lock.mode",
      "Lock mode: NL CR CW PR PW EX, NullLock ConcurrentRead ConcurrentWrite ProtectedRead "
      "ProtectedWrite Exclusive, shared (=PR) or exclusive (=EX); case-insensitive "
      "(default: EX; config [lock] mode)");
  mode->type_name("MODE");
  CLI::Option* shared =
      flags.AddFlag(cmd, "-s,--shared", "lock.mode", "PR", "Shared lock: same as -m PR");
  CLI::Option* exclusive =
      flags.AddFlag(cmd, "-x,--exclusive", "lock.mode", "EX", "Exclusive lock: same as -m EX");
  mode->excludes(shared)->excludes(exclusive);
  shared->excludes(exclusive);
  CLI::Option* no_wait =
      flags.AddFlag(cmd, "-n,--no-wait", "lock.wait", "0",
                    "Do not wait: exit 98 at once if the lock is not free (same as -w 0)");
  CLI::Option* wait = flags.AddOption(
      cmd, "-w,--wait", "lock.wait",
      "Wait at most SECONDS (decimal, fractions allowed: 2.5; no hex or exponent) for the lock, "
      "then exit 98; negative = forever (default: forever; config [lock] wait)");
  wait->type_name("SECONDS");
  no_wait->excludes(wait);
  flags
      .AddOption(cmd, "-q,--quantity", "lock.quantity",
                 "Units of a numeric resource name[N] (default: 1; config [lock] quantity)")
      ->type_name("N");
  flags.AddFlag(cmd, "--no-create", "lock.create", "false",
                "Only lock a resource that someone already holds or awaits (FLoM's "
                "--resource-create=no); with -n a missing resource exits 96 (default: create)");
  flags
      .AddOption(cmd, "--on-lost", "lock.on_lost",
                 "When the lock is lost while the command runs: term = SIGTERM to its process "
                 "group, SIGKILL after --grace; kill = SIGKILL at once; ignore = warn and let "
                 "it run; always exit 95 (default: term; config [lock] on_lost)")
      ->type_name("term|kill|ignore");
  flags
      .AddOption(cmd, "--grace", "lock.grace",
                 "Seconds between SIGTERM and SIGKILL for --on-lost=term (default: 5; config "
                 "[lock] grace)")
      ->type_name("SECONDS");
  flags.AddFlag(cmd, "--no-autostart", "lock.autostart", "false",
                "Do not start a node when none answers; exit 94 instead (default: start one; "
                "config [lock] autostart)");
  auto verbose = std::make_shared<bool>(false);
  auto quiet = std::make_shared<bool>(false);
  CLI::Option* verbose_flag = cmd->add_flag(
      "-v,--verbose", *verbose,
      "While waiting, say so on stderr also without a terminal: one line per change (holder, "
      "queue position, no leader/quorum), and how long the wait took");
  cmd->add_flag("--quiet", *quiet,
                "Say nothing while waiting (default: on a terminal, after 1 s, one line on "
                "stderr, updated in place: the holder and the queue position)")
      ->excludes(verbose_flag);
  AddCommonOptions(cmd, common.get());
  cmd->add_option("RESOURCE", *resource, "Name of the resource to lock")->required();
  cmd->add_option("CMD", *command, "Command and its arguments, after --")->required();

  return [common, resource, command, verbose, quiet]() -> int {
    // The node's own parser: a bad name is a usage error before any node is asked (or started).
    if (mesh::Status st = CheckResourceName(*resource); !st.ok()) {
      PrintError(st.message());
      return kExitUsage;
    }
    Config config;
    if (int code = LoadEffectiveConfig(*common, &config); code != 0) return code;
    LockRequest request;
    request.resource = *resource;
    request.command = *command;
    request.lock_options.mode = config.lock.mode;
    if (config.lock.wait < 0) {
      request.lock_options.timeout_ms = -1;
    } else if (config.lock.wait == 0) {
      request.lock_options.timeout_ms = 0;
    } else {
      request.lock_options.timeout_ms = std::max<int64_t>(1, std::llround(config.lock.wait * 1000));
    }
    request.lock_options.quantity = static_cast<uint32_t>(config.lock.quantity);
    request.lock_options.no_create = !config.lock.create;
    request.wait_report = *quiet     ? WaitReport::kQuiet
                          : *verbose ? WaitReport::kVerbose
                                     : WaitReport::kTerminal;
    request.on_lost = config.lock.on_lost;
    request.grace_seconds = config.lock.grace;
    std::string socket = EffectiveSocket(config);
    request.client_options.socket_path = socket;
    std::string name = "lockmesh lock " + *resource + " --";
    for (const auto& arg : *command) name += " " + arg;
    if (name.size() > 80) name = name.substr(0, 77) + "...";
    request.client_options.client_name = name;
    request.autostart.socket = socket;
    request.autostart.enabled = config.lock.autostart;
    request.autostart.data_dir = AbsolutePath(config.node.data_dir);
    request.autostart.config_file = AbsolutePath(common->config_file);
    request.autostart.log_file = EffectiveDataDir(config, socket) + "/node.log";
    request.autostart.claim_data_dir = AbsolutePath(EffectiveDataDir(config, socket));
    return RunLock(request);
  };
}

}  // namespace lockmesh::cli
