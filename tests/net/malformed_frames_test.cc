// Malformed client frames against a running node, over raw UNIX sockets opened by the test.
//
// Frame format of the local client API: a 4-byte big-endian length, then that many bytes of
// an encoded mesh.pb.ClientRequest; at most 64 KiB. For each kind of bad input the node must
//  * close that connection (our read sees EOF or ECONNRESET within a few seconds),
//  * write a line to its log (stderr, captured to a file) that says why,
//  * keep serving: a well-behaved `lockmesh lock` still works afterwards.
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <regex>
#include <string>

#include "lockmesh.pb.h"
#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

constexpr uint32_t kMaxFrame = 64 * 1024;

// Reason lines we accept, by kind of fault (case-insensitive).
const char* const kOversizedReason = "exceed|too (large|big|long)|oversize|limit|maximum";
const char* const kMalformedReason = "malformed|pars|decode|garbage|corrupt";
const char* const kTruncatedReason = "truncat|partial|incomplete|mid-frame|unfinished|short|middle";

class MalformedFramesTest : public ProcessTest {
 protected:
  void SetUp() override {
    ProcessTest::SetUp();
    if (HasFatalFailure()) return;
    node_ = StartTestNode();
    ASSERT_NE(node_, nullptr);
  }

  // Opens a raw connection and remembers where the log ends now.
  int Open() {
    log_offset_ = FileSize(paths_.log);
    int fd = ConnectUnix(paths_.socket);
    EXPECT_GE(fd, 0) << "connect: " << strerror(-fd);
    return fd;
  }

  // The node closes `fd` within a few seconds and logs a line matching `reason` (after the
  // point where Open() was called); then the node still serves a real client.
  void ExpectRejected(int fd, const std::string& reason, const std::string& what) {
    PeerClose how = ReadUntilClosed(fd, Millis(10000));
    close(fd);
    EXPECT_TRUE(how == PeerClose::kEof || how == PeerClose::kReset)
        << what << ": the node did not close the connection: " << PeerCloseName(how);

    std::regex re(reason, std::regex::icase);
    bool logged = WaitFor(
        [&] {
          for (const std::string& line : SplitLines(ReadFileFrom(paths_.log, log_offset_))) {
            if (std::regex_search(line, re)) return true;
          }
          return false;
        },
        Millis(5000));
    EXPECT_TRUE(logged) << what << ": no reason line (/" << reason
                        << "/) in the node's log; new log lines:\n"
                        << ReadFileFrom(paths_.log, log_offset_);

    ASSERT_TRUE(node_->Running()) << what << ": the node died: " << node_->Poll()->ToString()
                                  << "\n" << Tail(paths_.log);
    RunResult ok = RunLockmesh("good", LockArgs("frames", {"true"}, {"-n"}));
    EXPECT_EQ(ok.code(), 0) << what << ": a good client fails afterwards: " << ok.Describe();
  }

  static std::string Hello() {
    mesh::pb::ClientRequest req;
    req.set_request_id(1);
    req.mutable_hello()->set_protocol_version(1);
    req.mutable_hello()->set_client_name("malformed-frames test");
    return Frame(req.SerializeAsString());
  }

  Process* node_ = nullptr;
  size_t log_offset_ = 0;
};

TEST_F(MalformedFramesTest, RandomBytes) {
  // More than one maximal frame of random bytes: the first header is either over the limit
  // or announces a body that arrives in full (and is garbage), so the node cannot simply
  // wait for more.
  std::mt19937 rng(20240517);
  std::string bytes(kMaxFrame + 4096, '\0');
  for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
  int fd = Open();
  ASSERT_GE(fd, 0);
  SendAll(fd, bytes);  // EPIPE/ECONNRESET if the node already closed: fine
  ExpectRejected(fd, std::string(kOversizedReason) + "|" + kMalformedReason + "|hello",
                 "random bytes");
}

TEST_F(MalformedFramesTest, OversizedLengthHeader) {
  for (uint32_t length : {0x7fffffffu, kMaxFrame + 1}) {
    SCOPED_TRACE("length header " + std::to_string(length));
    int fd = Open();
    ASSERT_GE(fd, 0);
    // Only the header and a few bytes: the node must refuse on the header alone, never
    // buffer toward the announced size.
    SendAll(fd, BigEndian32(length) + std::string(16, 'x'));
    ExpectRejected(fd, kOversizedReason, "length header " + std::to_string(length));
  }
}

TEST_F(MalformedFramesTest, TruncatedFrameThenClose) {
  int fd = Open();
  ASSERT_GE(fd, 0);
  std::string hello = Hello();
  // Announce the whole hello, send only part of it, then close our side.
  ASSERT_GT(hello.size(), 10u);
  SendAll(fd, hello.substr(0, 10));
  ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
  ExpectRejected(fd, kTruncatedReason, "truncated frame then close");
}

TEST_F(MalformedFramesTest, ValidLengthGarbageBody) {
  int fd = Open();
  ASSERT_GE(fd, 0);
  SendAll(fd, Frame(std::string(32, '\xff')));
  ExpectRejected(fd, kMalformedReason, "valid length, garbage body");
}

TEST_F(MalformedFramesTest, ValidHelloThenGarbage) {
  int fd = Open();
  ASSERT_GE(fd, 0);
  ASSERT_EQ(SendAll(fd, Hello()), 0);
  std::string body;
  ASSERT_TRUE(ReadFrame(fd, Millis(10000), &body)) << "no answer to a valid hello";
  mesh::pb::ClientResponse resp;
  ASSERT_TRUE(resp.ParseFromString(body));
  ASSERT_TRUE(resp.has_hello()) << "expected a HelloReply, got: " << resp.ShortDebugString();
  EXPECT_EQ(resp.request_id(), 1u);

  SendAll(fd, Frame(std::string(20, '\xff')));
  ExpectRejected(fd, kMalformedReason, "valid hello, then garbage");
}

}  // namespace
}  // namespace lockmesh::testing
