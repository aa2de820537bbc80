// The command run by `lockmesh lock`: started in its own process group, optionally given
// the terminal, reaped without blocking.
#ifndef LOCKMESH_APPS_LOCKMESH_CHILD_PROCESS_H_
#define LOCKMESH_APPS_LOCKMESH_CHILD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mesh/status.h"

namespace lockmesh::cli {

class ChildProcess {
 public:
  /// Environment entries added to (or replacing those of) our own environment.
  using EnvList = std::vector<std::pair<std::string, std::string>>;

  /// Forks and execs `argv` (argv[0] looked up in PATH) with `env` added, in a new process
  /// group whose id is the child's pid. When stdin is a terminal whose foreground group is
  /// ours, that terminal is handed to the child's group (and taken back by
  /// RestoreTerminal). Errors (fork or exec, with errno's text) mean nothing runs.
  static mesh::Status Start(const std::vector<std::string>& argv, const EnvList& env,
                            std::unique_ptr<ChildProcess>* out);

  ~ChildProcess();

  pid_t pid() const { return pid_; }
  /// Sends `sig` to the child only.
  void Signal(int sig) const;
  /// Sends `sig` to the child's whole process group.
  void SignalGroup(int sig) const;
  /// Collects the child's state without blocking. Returns true once it has exited; then
  /// exit_code() is its status (128 + N when killed by signal N). When the child stops
  /// (job control, e.g. ^Z on the terminal it owns), takes the terminal back, stops this
  /// process the same way, and on SIGCONT gives the terminal back and continues the child.
  bool Reap();
  bool exited() const { return exited_; }
  int exit_code() const { return exit_code_; }
  /// Gives the terminal back to our process group if it was handed to the child.
  void RestoreTerminal();

 private:
  ChildProcess() = default;
  /// Makes `pgrp` the terminal's foreground group (SIGTTOU ignored meanwhile).
  static void SetForeground(pid_t pgrp);

  pid_t pid_ = -1;
  bool owns_terminal_ = false;  // the child's group is the terminal's foreground group
  bool exited_ = false;
  int exit_code_ = 0;
};

}  // namespace lockmesh::cli

#endif  // LOCKMESH_APPS_LOCKMESH_CHILD_PROCESS_H_
