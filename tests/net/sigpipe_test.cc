// A peer or client that hangs up while we write to it must not kill the process: libuv
// writes with write(2), which raises SIGPIPE, and SIGPIPE's default action ends the
// process. The node's own main() ignores SIGPIPE, but the library (libmesh, the test
// binaries) must protect itself: net/support/sigpipe.h. CI once lost a test binary to SIGPIPE.
//
// Each case that needs SIGPIPE at its default runs in a child process (a death test), so
// this binary's own disposition does not matter.
#include "net/support/sigpipe.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cstdlib>

#include "lockmesh.pb.h"
#include "net/local/framed_stream.h"
#include "net/peer/peer_connection.h"

namespace lockmesh::testing {
namespace {

using mesh::Status;

void SetSigpipe(void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(sigaction(SIGPIPE, &sa, nullptr), 0);
}

void (*CurrentSigpipe())(int) {
  struct sigaction sa {};
  sigaction(SIGPIPE, nullptr, &sa);
  return sa.sa_handler;
}

void ApplicationHandler(int) {}

class SigpipeTest : public ::testing::Test {
 protected:
  // Death tests fork; "threadsafe" re-executes the binary, so the child starts clean.
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(SigpipeTest, DefaultBecomesIgnoredAndAnApplicationsChoiceIsKept) {
  struct sigaction saved {};
  ASSERT_EQ(sigaction(SIGPIPE, nullptr, &saved), 0);

  SetSigpipe(SIG_DFL);
  mesh::net::IgnoreSigpipe();
  EXPECT_EQ(CurrentSigpipe(), SIG_IGN);

  SetSigpipe(ApplicationHandler);
  mesh::net::IgnoreSigpipe();
  EXPECT_EQ(CurrentSigpipe(), &ApplicationHandler) << "the application's handler was replaced";

  sigaction(SIGPIPE, &saved, nullptr);
}

// The real thing: a FramedStream (the local client API's stream, both ends) writes to a
// UNIX socket whose other end is closed. Without the protection the child dies of SIGPIPE;
// with it, the write fails with EPIPE and the stream closes with an error.
TEST_F(SigpipeTest, WriteToAClosedClientDoesNotKillTheProcess) {
  EXPECT_EXIT(
      {
        signal(SIGPIPE, SIG_DFL);
        int fds[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) _exit(3);
        uv_loop_t loop;
        uv_loop_init(&loop);
        auto* stream = new mesh::net::FramedStream(&loop, 1 << 20);  // frees itself on close
        if (uv_pipe_open(stream->pipe(), fds[0]) != 0) _exit(4);
        bool closed = false;
        bool failed = false;
        stream->Start([](std::string_view) { return Status::OK(); },
                      [&](const Status& why) {
                        closed = true;
                        failed = !why.ok();
                      });
        close(fds[1]);  // the client hangs up
        mesh::pb::Hello hello;
        hello.set_client_name(std::string(1000, 'x'));
        for (int i = 0; i < 1000 && !closed; ++i) {
          stream->Send(hello);
          uv_run(&loop, UV_RUN_NOWAIT);
        }
        uv_run(&loop, UV_RUN_DEFAULT);
        _exit(closed && failed ? 0 : 5);
      },
      ::testing::ExitedWithCode(0), "");
}

// The peer link: making a PeerConnection (every accepted or dialled link makes one) turns
// the default disposition into SIG_IGN, before the first byte is written.
TEST_F(SigpipeTest, APeerConnectionProtectsTheProcess) {
  EXPECT_EXIT(
      {
        signal(SIGPIPE, SIG_DFL);
        uv_loop_t loop;
        uv_loop_init(&loop);
        // Leaked on purpose: the child exits without running the loop.
        new mesh::net::PeerConnection(&loop, nullptr, true, 1 << 20, 1000);
        _exit(CurrentSigpipe() == SIG_IGN ? 0 : 6);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace lockmesh::testing
