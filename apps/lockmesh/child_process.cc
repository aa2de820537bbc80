#include "child_process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <set>

#include "exit_codes.h"

extern char** environ;

namespace lockmesh::cli {

using mesh::Status;

namespace {

/// In the forked child: back to default signal handling, nothing blocked.
void ResetSignals() {
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace

void ChildProcess::SetForeground(pid_t pgrp) {
  struct sigaction ignore = {};
  struct sigaction old = {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGTTOU, &ignore, &old);
  tcsetpgrp(STDIN_FILENO, pgrp);
  sigaction(SIGTTOU, &old, nullptr);
}

Status ChildProcess::Start(const std::vector<std::string>& argv, const EnvList& env,
                           std::unique_ptr<ChildProcess>* out) {
  if (argv.empty()) return Status::InvalidArgument("no command given");
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<std::string> env_strings;
  std::set<std::string> replaced;
  for (const auto& [name, value] : env) replaced.insert(name);
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    if (replaced.count(entry.substr(0, entry.find('='))) == 0) env_strings.push_back(entry);
  }
  for (const auto& [name, value] : env) env_strings.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argvp;
  for (auto& s : args) argvp.push_back(s.data());
  argvp.push_back(nullptr);

  bool take_terminal = isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
  int exec_error[2];
  if (pipe2(exec_error, O_CLOEXEC) != 0) {
    return Status::IOError(std::string("pipe: ") + std::strerror(errno));
  }
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  pid_t pid = fork();
  if (pid == 0) {
    close(exec_error[0]);
    setpgid(0, 0);
    if (take_terminal) {
      signal(SIGTTOU, SIG_IGN);
      tcsetpgrp(STDIN_FILENO, getpid());
    }
    ResetSignals();
    execvpe(argvp[0], argvp.data(), envp.data());
    int err = errno;
    ssize_t unused = write(exec_error[1], &err, sizeof err);
    (void)unused;
    _exit(kExitCantRun);
  }
  int fork_errno = errno;
  close(exec_error[1]);
  if (pid < 0) {
    sigprocmask(SIG_SETMASK, &old, nullptr);
    close(exec_error[0]);
    return Status::IOError(std::string("fork: ") + std::strerror(fork_errno));
  }
  // Both sides set the group, so that it exists whichever runs first.
  setpgid(pid, pid);
  std::unique_ptr<ChildProcess> child(new ChildProcess());
  child->pid_ = pid;
  if (take_terminal) {
    SetForeground(pid);
    child->owns_terminal_ = true;
  }
  sigprocmask(SIG_SETMASK, &old, nullptr);

  int err = 0;
  ssize_t n;
  do {
    n = read(exec_error[0], &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  close(exec_error[0]);
  if (n == static_cast<ssize_t>(sizeof err)) {
    int wstatus;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    child->exited_ = true;
    child->RestoreTerminal();
    return Status::IOError("cannot run '" + argv[0] + "': " + std::strerror(err));
  }
  *out = std::move(child);
  return Status::OK();
}

ChildProcess::~ChildProcess() { RestoreTerminal(); }

void ChildProcess::Signal(int sig) const {
  if (!exited_) kill(pid_, sig);
}

void ChildProcess::SignalGroup(int sig) const {
  // The group may outlive the child (its own children); signal it even after the child
  // exited as long as the group id has not been reused: it cannot be while we have not
  // reaped the child, and after that kill() fails harmlessly with ESRCH for a dead group.
  kill(-pid_, sig);
}

bool ChildProcess::Reap() {
  if (exited_) return true;
  while (true) {
    int wstatus = 0;
    pid_t r = waitpid(pid_, &wstatus, WNOHANG | WUNTRACED);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    if (WIFSTOPPED(wstatus)) {
      if (owns_terminal_) {
        // Job control: behave as the stopped job so that the shell sees us stop.
        SetForeground(getpgrp());
        kill(getpid(), SIGSTOP);
        // Continued (fg/bg): continue the command in the same place.
        if (tcgetpgrp(STDIN_FILENO) == getpgrp()) {
          SetForeground(pid_);
        } else {
          owns_terminal_ = false;  // continued in the background: the shell keeps the tty
        }
        kill(-pid_, SIGCONT);
      }
      continue;
    }
    if (WIFEXITED(wstatus)) {
      exit_code_ = WEXITSTATUS(wstatus);
    } else if (WIFSIGNALED(wstatus)) {
      exit_code_ = kExitSignalBase + WTERMSIG(wstatus);
    } else {
      continue;
    }
    exited_ = true;
    return true;
  }
}

void ChildProcess::RestoreTerminal() {
  if (!owns_terminal_) return;
  owns_terminal_ = false;
  SetForeground(getpgrp());
}

}  // namespace lockmesh::cli
