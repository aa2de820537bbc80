#include "net/log_line.h"

#include <time.h>
#include <unistd.h>

#include "core/time_text.h"

namespace mesh::net {

int64_t WallClockNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string FormatLogLine(const std::string& message) {
  return core::FormatLogTime(WallClockNs()) + " lockmesh[" + std::to_string(getpid()) + "] " +
         message;
}

}  // namespace mesh::net
