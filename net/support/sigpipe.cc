#include "net/support/sigpipe.h"

#include <signal.h>

namespace mesh::net {

void IgnoreSigpipe() {
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) != 0) return;
  if ((current.sa_flags & SA_SIGINFO) != 0 || current.sa_handler != SIG_DFL) return;
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  // Two threads may both see SIG_DFL and both set SIG_IGN: harmless.
  sigaction(SIGPIPE, &ignore, nullptr);
}

}  // namespace mesh::net
