#include "lock_runner.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <uv.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <memory>

#include "child_process.h"
#include "cli_support.h"
#include "exit_codes.h"
#include "loop_client.h"
#include "net/support/errno_text.h"

namespace lockmesh::cli {
namespace {

using mesh::Status;

/// Signals forwarded to the command. The first four go to its process group (as a
/// terminal would send them), the user signals to the command's process only.
constexpr std::array<int, 6> kForwardedSignals = {SIGINT,  SIGTERM, SIGHUP,
                                                  SIGQUIT, SIGUSR1, SIGUSR2};

/// How often the connection to the node is checked while the command runs (a fallback:
/// the client also reports a dropped connection through the lost callback).
constexpr uint64_t kConnectionCheckMs = 250;

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

/// "5", "0.25": seconds as a person writes them.
std::string FormatSeconds(double seconds) {
  char buffer[32];
  snprintf(buffer, sizeof buffer, "%g", seconds);
  return buffer;
}

class LockRunner {
 public:
  LockRunner(uv_loop_t* loop, const LockRequest& request) : loop_(loop), request_(request) {}

  int Run() {
    bool started = false;
    // A node that takes the connection but does not answer (frozen) must not hold up -n or
    // -w S past the bound the lock request itself has (mesh::LockGiveUpMs).
    mesh::ClientOptions client_options = request_.client_options;
    const int64_t give_up_ms = mesh::LockGiveUpMs(request_.lock_options.timeout_ms);
    if (give_up_ms >= 0 && give_up_ms < client_options.connect_timeout_ms) {
      client_options.connect_timeout_ms = give_up_ms;
    }
    Status st = ConnectOrStartOnLoop(loop_, client_options, request_.autostart, &client_, &started);
    if (!st.ok()) {
      // Auto-start's own errors (a directory it cannot create, a refusal) say what failed.
      PrintError(st.IsUnavailable() || st.IsIOError() || st.IsNotFound() || st.IsTimedOut() ||
                         st.code() == Status::Code::kPermissionDenied
                     ? st.message()
                     : "cannot connect: " + st.ToString());
      return NoNode(st) ? request_.no_node_exit_code : kExitError;
    }
    if (!InitHandles()) {
      PrintError(std::string("cannot watch signals: signalfd: ") + mesh::net::ErrnoText(errno));
      CloseOnLoop(loop_, std::move(client_));
      return kExitError;
    }
    client_->SetLostCallback(
        [this](const mesh::Lock& lock, const Status& why) { OnLost(lock, why); });
    state_ = State::kLocking;
    wait_message_ =
        std::make_unique<WaitMessage>(loop_, client_.get(), GetProgramName(), request_.resource,
                                      request_.lock_options.no_create, request_.wait_report);
    client_->Lock(request_.resource, request_.lock_options,
                  [this](const Status& st, const mesh::Lock& lock) { OnLocked(st, lock); });
    if (request_.lock_options.timeout_ms != 0) wait_message_->Start();  // -n: no wait to tell
    uv_run(loop_, UV_RUN_DEFAULT);
    client_.reset();
    return exit_code_;
  }

 private:
  enum class State {
    kLocking,    // waiting for the grant
    kRunning,    // the command runs
    kReleasing,  // the command ended; unlocking
    kDone,       // closing handles and the client
  };

  /// The connection failed because no node serves the socket and none was started: auto-start
  /// is off, or a mesh node that is down has claimed the socket or data dir (as `status` and
  /// `locks` report it). A node that failed to start is not "no node".
  bool NoNode(const Status& st) const {
    const AutostartOptions& a = request_.autostart;
    if (st.IsUnavailable()) return !a.enabled;
    return st.code() == Status::Code::kPermissionDenied &&
           !CheckNoMeshClaim(a.socket, a.data_dir.empty() ? a.claim_data_dir : a.data_dir).ok();
  }

  bool Ignored(int sig) const {
    for (int s : request_.ignored_signals) {
      if (s == sig) return true;
    }
    return false;
  }

  /// False (errno set) if the signalfd cannot be made; nothing is initialised then.
  /// The forwarded signals (less the ignored ones) and SIGCHLD are blocked and read from one
  /// signalfd that the loop polls: three system calls, where a libuv signal handle per signal
  /// cost a locked pipe round trip and a sigprocmask pair each (~1.6 ms per run). They stay
  /// blocked until the process exits (RunLock's caller exits with its code), so a signal
  /// that arrives after Finish is dropped instead of killing the process. The command starts
  /// with an empty mask (ChildProcess), an auto-started node too (autostart.cc).
  bool InitHandles() {
    for (int sig : request_.ignored_signals) signal(sig, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    for (int sig : kForwardedSignals) {
      if (!Ignored(sig)) sigaddset(&set, sig);  // an ignored one stays SIG_IGN, never forwarded
    }
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    signal_fd_ = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd_ < 0) return false;
    uv_poll_init(loop_, &signal_poll_, signal_fd_);
    signal_poll_.data = this;
    uv_poll_start(&signal_poll_, UV_READABLE, [](uv_poll_t* handle, int, int) {
      static_cast<LockRunner*>(handle->data)->ReadSignals();
    });
    uv_timer_init(loop_, &grace_timer_);
    grace_timer_.data = this;
    uv_timer_init(loop_, &watch_timer_);
    watch_timer_.data = this;
    return true;
  }

  void ReadSignals() {
    signalfd_siginfo info;
    while (read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      if (state_ == State::kDone) continue;
      if (static_cast<int>(info.ssi_signo) == SIGCHLD) {
        OnSigchld();
      } else {
        OnSignal(static_cast<int>(info.ssi_signo));
      }
    }
  }

  void OnLocked(const Status& st, const mesh::Lock& lock) {
    if (state_ != State::kLocking) return;  // aborted meanwhile; closing releases it
    wait_message_->Stop(/*granted=*/st.ok());
    if (!st.ok()) {
      PrintError("cannot lock '" + request_.resource +
                 "': " + (st.message().empty() ? st.ToString() : st.message()));
      exit_code_ = ExitCodeForLockStatus(st);
      if (exit_code_ == kExitLost) exit_code_ = request_.lost_exit_code;
      Finish();
      return;
    }
    lock_ = lock;
    ChildProcess::EnvList env = {
        {"LOCKMESH_TOKEN", std::to_string(lock.token)},
        {"LOCKMESH_RESOURCE", lock.resource.empty() ? request_.resource : lock.resource},
        {"LOCKMESH_LOCK_ID", std::to_string(lock.lock_id)},
    };
    std::vector<std::string> argv = request_.command;
    if (!lock.element.empty()) {
      env.emplace_back("LOCKMESH_ELEMENT", lock.element);
      if (request_.element_as_last_argument) argv.push_back(lock.element);
    }
    if (request_.on_granted) request_.on_granted(lock);
    Status started = ChildProcess::Start(argv, env, &child_);
    if (!started.ok()) {
      PrintError(started.message());
      exit_code_ = kExitCantRun;
      Release(/*rollback=*/true);
      return;
    }
    state_ = State::kRunning;
    uv_timer_start(
        &watch_timer_,
        [](uv_timer_t* handle) { static_cast<LockRunner*>(handle->data)->CheckConnection(); },
        kConnectionCheckMs, kConnectionCheckMs);
    OnSigchld();  // it may already have exited
  }

  void OnSignal(int signum) {
    switch (state_) {
      case State::kLocking:
        wait_message_->Stop(/*granted=*/false);
        PrintError("interrupted by " + SignalName(signum) + " while waiting for '" +
                   request_.resource + "'");
        exit_code_ = kExitSignalBase + signum;
        Finish();
        break;
      case State::kRunning:
        if (signum == SIGUSR1 || signum == SIGUSR2) {
          child_->Signal(signum);
        } else {
          child_->SignalGroup(signum);
        }
        break;
      case State::kReleasing:
      case State::kDone:
        break;  // the command is gone; the lock is being released anyway
    }
  }

  void OnSigchld() {
    if (state_ != State::kRunning || !child_->Reap()) return;
    child_->RestoreTerminal();
    uv_timer_stop(&watch_timer_);
    uv_timer_stop(&grace_timer_);
    if (lost_) {
      if (request_.on_lost != OnLost::kIgnore) {
        child_->SignalGroup(SIGKILL);  // whatever the command left behind in its group
      }
      exit_code_ = request_.lost_exit_code;
      Finish();
      return;
    }
    exit_code_ = child_->exit_code();
    // As FLoM does: a failed command rolls back (a transactional sequence value is reused).
    Release(/*rollback=*/exit_code_ != 0);
  }

  /// Sends the unlock and closes the session right behind it, without waiting for the
  /// acknowledgement: the node applies the unlock (with its rollback flag) before the
  /// session's close, and closing the session would release the lock anyway. This saves a
  /// round trip and an fsync per `lockmesh lock`. The client flushes queued frames before
  /// it closes the socket.
  void Release(bool rollback) {
    state_ = State::kReleasing;
    client_->Unlock(lock_, rollback, [this](const Status& st) {
      if (!st.ok() && !lost_ && state_ != State::kDone) {
        PrintError("warning: unlocking '" + request_.resource + "': " + st.ToString() +
                   " (closing the session releases it)");
      }
    });
    Finish();
  }

  void OnLost(const mesh::Lock& lock, const Status& why) {
    if (state_ != State::kRunning || lost_) return;
    if (lock.lock_id != 0 && lock.lock_id != lock_.lock_id) return;
    lost_ = true;
    std::string head = "lock on '" + request_.resource + "' lost (" + why.message() + "); ";
    switch (request_.on_lost) {
      case OnLost::kTerm: {
        uint64_t grace_ms = static_cast<uint64_t>(std::llround(request_.grace_seconds * 1000));
        PrintError(head + "sending SIGTERM to the command, SIGKILL after " +
                   FormatSeconds(request_.grace_seconds) + " s");
        child_->SignalGroup(SIGTERM);
        child_->Signal(SIGCONT);  // a stopped command must be able to act on SIGTERM
        uv_timer_start(
            &grace_timer_,
            [](uv_timer_t* handle) {
              auto* self = static_cast<LockRunner*>(handle->data);
              if (self->state_ == State::kRunning) self->child_->SignalGroup(SIGKILL);
            },
            grace_ms, 0);
        break;
      }
      case OnLost::kKill:
        PrintError(head + "killing the command (SIGKILL)");
        child_->SignalGroup(SIGKILL);
        break;
      case OnLost::kIgnore:
        PrintError("warning: " + head +
                   "--on-lost=ignore: the command keeps running unprotected; exit code will "
                   "be " + std::to_string(request_.lost_exit_code));
        break;
    }
  }

  void CheckConnection() {
    if (state_ == State::kRunning && !lost_ && !client_->connected()) {
      OnLost(lock_, Status::Lost("the connection to the node was lost"));
    }
  }

  /// Closes every handle and the client; uv_run returns once all are closed.
  void Finish() {
    if (state_ == State::kDone) return;
    state_ = State::kDone;
    if (wait_message_) wait_message_->Stop(/*granted=*/false);
    uv_close(reinterpret_cast<uv_handle_t*>(&signal_poll_), [](uv_handle_t* handle) {
      close(static_cast<LockRunner*>(handle->data)->signal_fd_);
    });
    uv_close(reinterpret_cast<uv_handle_t*>(&grace_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&watch_timer_), nullptr);
    client_->Close([] {});
  }

  uv_loop_t* loop_;
  const LockRequest& request_;
  std::unique_ptr<mesh::AsyncClient> client_;
  std::unique_ptr<WaitMessage> wait_message_;  // while kLocking: the waiting line
  State state_ = State::kLocking;
  mesh::Lock lock_;
  std::unique_ptr<ChildProcess> child_;
  bool lost_ = false;
  int exit_code_ = kExitError;
  int signal_fd_ = -1;      // signalfd of the forwarded signals and SIGCHLD
  uv_poll_t signal_poll_;   // readable signal_fd_
  uv_timer_t grace_timer_;  // SIGKILL after --grace for --on-lost=term
  uv_timer_t watch_timer_;  // connection check while the command runs
};

}  // namespace

int RunLock(const LockRequest& request) {
  LockRunner runner(uv_default_loop(), request);
  int code = runner.Run();
  uv_loop_close(uv_default_loop());
  return code;
}

}  // namespace lockmesh::cli
