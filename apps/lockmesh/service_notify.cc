#include "service_notify.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace lockmesh::cli {

std::unique_ptr<ServiceNotifier> ServiceNotifier::FromEnvironment() {
  const char* socket_env = getenv("NOTIFY_SOCKET");
  const std::string address = socket_env ? socket_env : "";
  uint64_t watchdog_usec = 0;
  if (const char* usec = getenv("WATCHDOG_USEC")) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = strtoull(usec, &end, 10);
    bool ours = true;
    if (const char* pid = getenv("WATCHDOG_PID")) ours = strtoll(pid, nullptr, 10) == getpid();
    if (errno == 0 && end != usec && *end == '\0' && ours) watchdog_usec = v;
  }
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
  // A path or an abstract name ('@'), and it must fit sun_path.
  if (address.empty() || (address[0] != '/' && address[0] != '@') ||
      address.size() >= sizeof(sockaddr_un::sun_path)) {
    return nullptr;
  }
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return nullptr;
  std::string name = address;
  if (name[0] == '@') name[0] = '\0';
  return std::unique_ptr<ServiceNotifier>(new ServiceNotifier(fd, name, watchdog_usec));
}

ServiceNotifier::ServiceNotifier(int fd, std::string address, uint64_t watchdog_usec)
    : fd_(fd), address_(std::move(address)), watchdog_usec_(watchdog_usec) {}

ServiceNotifier::~ServiceNotifier() { close(fd_); }

bool ServiceNotifier::Notify(const std::string& state) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, address_.data(), address_.size());
  const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() +
                                               (address_[0] == '\0' ? 0 : 1));
  ssize_t n;
  do {
    n = sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa),
               len);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(state.size());
}

}  // namespace lockmesh::cli
