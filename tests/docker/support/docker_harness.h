// Harness of the docker tests: commands with deadlines, a private Docker engine (its own
// dockerd on a private socket, data-root and exec-root), the Debian base image, and the
// compose projects of docker/.
//
// Rules it follows:
//  * Nothing is left behind. DockerEngine::Stop (and the destructor) removes every container,
//    network, volume and image of the private engine, stops dockerd by its pid, kills what is
//    left in the engine's cgroup, unmounts and deletes the run directory. A run that crashed
//    (SIGKILL, ctest timeout) is cleaned up by the next one: CleanUpLeftovers().
//  * The host's network is left as found: the engine runs with --iptables=false
//    --ip-forward=false --ip-masq=false --bridge=none, so it never touches iptables, the
//    FORWARD policy or ip_forward (a dockerd with iptables sets FORWARD to DROP, which drops
//    the bridged traffic of the cluster tests' network namespaces). Containers talk to each
//    other over user-defined bridges; `docker build` uses the host's network (--network host)
//    to reach Debian's mirror.
//  * Every wait is bounded, and commands get deadlines; processes started here are stopped by
//    their pid (a command that outlives its deadline: its process group).
#ifndef LOCKMESH_TESTS_DOCKER_SUPPORT_DOCKER_HARNESS_H_
#define LOCKMESH_TESTS_DOCKER_SUPPORT_DOCKER_HARNESS_H_

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace lockmesh::docker_testing {

/// True under CI=true, where the docker label must run, not skip.
bool InCi();

/// In a TEST body: skips loudly, or fails under CI (where the docker label must run).
#define SKIP_OR_FAIL(why)                                                         \
  do {                                                                            \
    std::string lockmesh_docker_why = (why);                                      \
    if (::lockmesh::docker_testing::InCi())                                       \
      FAIL() << "docker test cannot run under CI: " << lockmesh_docker_why;       \
    printf("\n*** SKIPPED docker test: %s ***\n\n", lockmesh_docker_why.c_str()); \
    GTEST_SKIP() << "SKIPPED (docker): " << lockmesh_docker_why;                  \
  } while (0)

using Clock = std::chrono::steady_clock;

/// Seconds since `start`.
double SecondsSince(Clock::time_point start);

/// How a command ended.
struct CommandResult {
  int code = -1;           // exit status; 128 + signal if killed; -1 if it could not start
  bool timed_out = false;  // killed at its deadline
  std::string output;      // stdout and stderr, interleaved
  double seconds = 0;      // wall time
};

/// Extra environment of commands: added to (or replacing in) the test's own environment.
using Env = std::map<std::string, std::string>;

/// Runs argv[0] (looked up in PATH) in its own process group with `env` added, stdin from
/// /dev/null, and waits at most `timeout_s`; at the deadline the group gets SIGKILL. If
/// `log_file` is given, the output goes there (appended) instead of into `output`.
CommandResult RunCommand(const std::vector<std::string>& argv, double timeout_s,
                         const Env& env = {}, const std::string& log_file = "");

/// "a b 'c d'": argv for messages.
std::string Join(const std::vector<std::string>& argv);

/// A command running in the background (e.g. `docker exec C lockmesh lock -w 60 R -- true`
/// waiting for a lock), output collected into a file. The destructor kills its process
/// group and reaps it.
class BackgroundCommand {
 public:
  BackgroundCommand(const std::vector<std::string>& argv, const Env& env,
                    const std::string& output_file);
  ~BackgroundCommand();
  BackgroundCommand(const BackgroundCommand&) = delete;
  BackgroundCommand& operator=(const BackgroundCommand&) = delete;

  /// True once it ended (then code() is its status).
  bool Poll();
  /// Waits at most `timeout_s`; returns Poll().
  bool Wait(double timeout_s);
  /// Exit status (128 + signal if killed); -1 while running or if it did not start.
  int code() const { return code_; }
  /// Steady-clock time at which Poll() first saw it ended.
  Clock::time_point ended_at() const { return ended_at_; }
  /// What it printed so far.
  std::string Output() const;

 private:
  pid_t pid_ = -1;
  int code_ = -1;
  Clock::time_point ended_at_;
  std::string output_file_;
};

/// Polls `condition` every `interval_s` until it holds or `timeout_s` passed; returns whether
/// it held.
bool WaitFor(const std::function<bool()>& condition, double timeout_s, double interval_s = 0.25);

/// Whole file, or "".
std::string ReadFile(const std::string& path);
/// The last `n` lines of `text`.
std::string TailLines(const std::string& text, size_t n);

/// Installs the Debian packages among `packages` that are missing (apt-get update first).
/// Returns "" on success, else why not.
std::string InstallMissingPackages(const std::vector<std::string>& packages);

/// Where leftovers of earlier runs and the base image cache live.
struct HarnessPaths {
  /// Parent of every run directory: /tmp/lockmesh-docker-test (short: socket paths).
  static std::string RunsDir();
  /// The Debian base image tarball cache: /var/cache/lockmesh/docker.
  static std::string CacheDir();
};

/// Removes what crashed earlier runs left behind: for each run directory whose owning test
/// process is gone, the processes of its engine (found by its cgroup and by its paths on their
/// command lines, killed by pid), its mounts, its cgroups, its bridges and its files. Returns
/// a description of what it removed ("" if nothing).
std::string CleanUpLeftovers();

/// A private Docker engine for one test run.
class DockerEngine {
 public:
  DockerEngine();
  ~DockerEngine();
  DockerEngine(const DockerEngine&) = delete;
  DockerEngine& operator=(const DockerEngine&) = delete;

  /// Starts dockerd (vfs) under a new run directory and waits until it answers. Returns ""
  /// on success, else why not (with the end of dockerd's log).
  std::string Start();
  /// Removes every container, network, volume and image, stops dockerd (SIGTERM by pid, then
  /// SIGKILL), kills anything left in its cgroup, unmounts and deletes the run directory.
  /// Idempotent. Returns a summary of what it removed.
  std::string Stop();

  /// Environment for docker and docker-compose: DOCKER_HOST of this engine.
  Env env() const;
  /// Unique short tag of this run, e.g. "lmdt12345" (names of images, projects, bridges).
  const std::string& tag() const { return tag_; }
  /// The run directory (logs, generated files).
  const std::string& dir() const { return dir_; }

  /// `docker ARGS...` against this engine.
  CommandResult Docker(const std::vector<std::string>& args, double timeout_s = 60) const;

  /// Makes sure image `tag` (debian:bookworm) exists: imports the cached debootstrap tarball,
  /// or debootstraps bookworm minbase first (and caches it). Returns "" or why not.
  std::string EnsureBaseImage(const std::string& tag);

 private:
  std::string tag_;
  std::string dir_;
  std::string socket_;
  std::string cgroup_parent_;
  pid_t dockerd_pid_ = -1;
  bool stopped_ = true;
};

/// A compose project (docker-compose v1, or `docker compose` v2 when that is what exists).
class ComposeProject {
 public:
  /// `files` are compose files; `env` adds variables (LOCKMESH_IMAGE ...).
  ComposeProject(const DockerEngine* engine, std::string name, std::vector<std::string> files,
                 Env env);
  ~ComposeProject();
  ComposeProject(const ComposeProject&) = delete;
  ComposeProject& operator=(const ComposeProject&) = delete;

  /// `docker-compose -p NAME -f F... ARGS...`.
  CommandResult Run(const std::vector<std::string>& args, double timeout_s = 180) const;
  /// Container ids of `service` (running or not), in compose's order (by container number).
  std::vector<std::string> Containers(const std::string& service) const;
  /// `down -v --remove-orphans`; idempotent (also run by the destructor).
  void Down();
  const std::string& name() const { return name_; }

 private:
  const DockerEngine* engine_;
  std::string name_;
  std::vector<std::string> files_;
  Env env_;
  bool down_ = false;
};

/// The docker client to use: Debian's /usr/bin/docker (it matches Debian's engine), else the
/// first `docker` in PATH.
std::string DockerBinary();

/// The compose command: {"docker-compose"} or {"docker", "compose"}; empty if neither works.
std::vector<std::string> ComposeCommand();

}  // namespace lockmesh::docker_testing

#endif  // LOCKMESH_TESTS_DOCKER_SUPPORT_DOCKER_HARNESS_H_
