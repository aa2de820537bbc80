// ServiceNotifier: tells a service manager (systemd's Type=notify, or anything speaking its
// notification protocol) how `lockmesh node` is doing: READY=1 once the node serves its
// socket, STOPPING=1 when it begins to stop, and WATCHDOG=1 from the node's own loop while
// the unit asks for a watchdog (WatchdogSec=), so a node whose loop is stuck is restarted.
//
// The protocol (sd_notify(3)): datagrams of "KEY=VALUE" lines sent to the AF_UNIX socket named
// by $NOTIFY_SOCKET (a path, or an abstract name when it starts with '@'). It is small,
// documented as stable, and the man page invites reimplementation; written here so that the
// binary does not link libsystemd for one sendto(). $WATCHDOG_USEC (and $WATCHDOG_PID, which
// must name this process when set) give the watchdog interval. The variables are removed from
// the environment once read, so the command of a `lockmesh lock` never sees them.
//
// Threading: the loop thread of `lockmesh node` only.
#ifndef LOCKMESH_APPS_LOCKMESH_SERVICE_NOTIFY_H_
#define LOCKMESH_APPS_LOCKMESH_SERVICE_NOTIFY_H_

#include <cstdint>
#include <memory>
#include <string>

namespace lockmesh::cli {

class ServiceNotifier {
 public:
  /// The notifier $NOTIFY_SOCKET names, or nullptr when it is unset or unusable (not run by
  /// a service manager: every Notify is then skipped by the caller). Clears the variables.
  static std::unique_ptr<ServiceNotifier> FromEnvironment();
  ~ServiceNotifier();
  ServiceNotifier(const ServiceNotifier&) = delete;
  ServiceNotifier& operator=(const ServiceNotifier&) = delete;

  /// Sends `state` ("READY=1\nSTATUS=...") as one datagram; false if it could not be sent
  /// (the manager went away: nothing else to do).
  bool Notify(const std::string& state);
  /// The watchdog interval the manager asked for, in microseconds; 0 = none.
  uint64_t watchdog_usec() const { return watchdog_usec_; }

 private:
  ServiceNotifier(int fd, std::string address, uint64_t watchdog_usec);
  int fd_;
  std::string address_;  // the socket's name; a leading '\0' for an abstract one
  uint64_t watchdog_usec_;
};

}  // namespace lockmesh::cli

#endif  // LOCKMESH_APPS_LOCKMESH_SERVICE_NOTIFY_H_
