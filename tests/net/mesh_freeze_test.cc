// A lock holder's node frozen (SIGSTOP) past the session ttl while `lockmesh lock` and its
// command keep running: the client's own lease
// (core/lease/client_lease.h) must stop the command before the cluster grants the lock to
// another client. Three real `lockmesh node` processes on loopback (--join, no multicast),
// --session-ttl 3, the holder's node stopped for 8 s: once a follower, once the leader.
// The same in network namespaces: tests/cluster/mesh_freeze_netns_test.cc. ScriptedNodeTest
// (below) runs `lockmesh lock` against a scripted node for the client's other lease rules.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "lockmesh.pb.h"
#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

using Json = nlohmann::json;

constexpr const char* kTtl = "3";
constexpr Millis kFreeze{8000};
// How much earlier than the other grant the frozen holder's command must have been stopped.
constexpr int64_t kRequiredLeadNs = 100'000'000;

class MeshFreezeTest : public ProcessTest {
 protected:
  void SetUp() override {
    ProcessTest::SetUp();
    // Ports of this test process only: node i listens on base_port_ + i (1..6).
    base_port_ = LoopbackPortBlock(7);
  }

  void TearDown() override {
    // A node left stopped by a failed assertion: let it run so that it can be killed and
    // reaped like the others.
    for (auto& [i, p] : nodes_) {
      if (p) p->Signal(SIGCONT);
    }
    ProcessTest::TearDown();
  }

  std::string Address(int i) const { return "127.0.0.1:" + std::to_string(base_port_ + i); }
  std::string Socket(int i) const { return Path("n" + std::to_string(i) + ".sock"); }
  std::string Id(int i) const { return "n" + std::to_string(i); }

  void StartMeshNode(int i, int n) {
    std::string join;
    for (int j = 1; j <= n; ++j) join += (join.empty() ? "" : ",") + Address(j);
    nodes_[i] = Lockmesh(Id(i), {"node", "--node-id", Id(i), "--socket", Socket(i), "--data-dir",
                                 Path("d" + std::to_string(i)), "--listen", Address(i), "--join",
                                 join, "--no-multicast", "--expect", std::to_string(n),
                                 "--session-ttl", kTtl, "--election-timeout", "1000"});
  }

  Json Status(int i) {
    RunResult r = RunLockmesh("status", {"status", "--socket", Socket(i), "--json"}, Millis(10000));
    if (r.code() != 0) return Json();
    Json j = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    return j.is_discarded() ? Json() : j;
  }

  // Nodes 1-3 agree on one cluster id and leader, with 3 voters, and each holds its lease.
  bool WaitFormed(Millis timeout) {
    return WaitFor(
        [&] {
          std::string cluster_id, leader;
          for (int i = 1; i <= 3; ++i) {
            Json s = Status(i);
            if (s.is_null() || s["cluster_id"].get<std::string>().empty()) return false;
            int voters = 0;
            for (const Json& m : s["members"]) voters += m["voter"].get<bool>() ? 1 : 0;
            if (voters != 3 || s["leader_id"].get<std::string>().empty()) return false;
            if (s.value("lease_ms", int64_t{-1}) <= 0) return false;
            if (cluster_id.empty()) {
              cluster_id = s["cluster_id"];
              leader = s["leader_id"];
            } else if (s["cluster_id"] != cluster_id || s["leader_id"] != leader) {
              return false;
            }
          }
          return true;
        },
        timeout, Millis(200));
  }

  int LeaderIndex() {
    std::string leader = Status(1).value("leader_id", "");
    for (int i = 1; i <= 3; ++i) {
      if (Id(i) == leader) return i;
    }
    return 0;
  }

  // Nanoseconds (date +%s%N) written by a command, or 0.
  int64_t ReadNs(const std::string& file) {
    std::string text = ReadFile(file);
    if (text.empty()) return 0;
    return std::stoll(text);
  }

  std::string Logs() {
    std::string all;
    for (auto& [i, p] : nodes_) {
      std::vector<std::string> lines = SplitLines(p->Stderr());
      all += "---- " + Id(i) + "\n";
      for (size_t k = lines.size() > 30 ? lines.size() - 30 : 0; k < lines.size(); ++k) {
        all += lines[k] + "\n";
      }
    }
    return all;
  }

  // The scenario: X held through `holder` (its command records its start and, on
  // SIGTERM, its end), a second `lockmesh lock X` waiting through `waiter`; `holder`'s node
  // is stopped for kFreeze. The first command must end >= 100 ms before the second grant.
  void FreezeHolderNode(int holder, int waiter) {
    const std::string start = Path("holder.start"), end = Path("holder.end");
    const std::string granted = Path("waiter.granted");
    const std::string script = "trap 'date +%s%N > " + end + "; exit 0' TERM; date +%s%N > " +
                               start + "; while :; do sleep 0.02; done";
    Process* first = Lockmesh("holder", {"lock", "--socket", Socket(holder), "--no-autostart",
                                         "--grace", "5", "X", "--", "sh", "-c", script});
    ASSERT_TRUE(WaitFor([&] { return FileExists(start) || !first->Running(); }, Millis(30000)))
        << first->Stderr();
    ASSERT_TRUE(FileExists(start)) << first->Stderr() << Logs();
    Process* second =
        Lockmesh("waiter", {"lock", "--socket", Socket(waiter), "--no-autostart", "-w", "60", "X",
                            "--", "sh", "-c", "date +%s%N > " + granted});
    // The second request is queued behind the first before the freeze.
    ASSERT_TRUE(WaitFor(
        [&] {
          std::vector<mesh::LockInfo> locks;
          return ListLocks(Socket(waiter), &locks) && CountLocks(locks, "X", false) == 1;
        },
        Millis(20000), Millis(50)))
        << second->Stderr() << Logs();

    nodes_[holder]->Signal(SIGSTOP);
    const auto frozen = Clock::now();
    // The cluster grants X to the waiter while the holder's node is still frozen.
    bool got = WaitFor([&] { return FileExists(granted) && !ReadFile(granted).empty(); }, kFreeze,
                       Millis(20));
    // Keep it frozen for the whole kFreeze.
    while (Clock::now() - frozen < kFreeze) usleep(20 * 1000);
    nodes_[holder]->Signal(SIGCONT);
    const double frozen_for = SecondsSince(frozen);
    ASSERT_TRUE(got) << "no grant to the waiter within the freeze\n" << second->Stderr() << Logs();

    auto first_status = first->Wait(Millis(20000));
    ASSERT_TRUE(first_status.has_value()) << "the holder did not exit\n" << first->Stderr();
    EXPECT_EQ(first_status->code, 95) << first->Stderr();
    EXPECT_NE(first->Stderr().find("did not renew this client's lease"), std::string::npos)
        << first->Stderr();
    auto second_status = second->Wait(Millis(20000));
    ASSERT_TRUE(second_status.has_value());
    EXPECT_EQ(second_status->code, 0) << second->Stderr();

    const int64_t started_ns = ReadNs(start), ended_ns = ReadNs(end), granted_ns = ReadNs(granted);
    ASSERT_GT(ended_ns, 0) << "the holder's command never recorded its end\n" << first->Stderr();
    EXPECT_GT(ended_ns, started_ns);
    EXPECT_LE(ended_ns + kRequiredLeadNs, granted_ns)
        << "the frozen holder's command ran until " << (granted_ns - ended_ns) / 1e6
        << " ms before the other grant (negative: after it)\n"
        << first->Stderr() << "\n"
        << Logs();
    RecordProperty("lead_ms", std::to_string((granted_ns - ended_ns) / 1000000));
    std::cerr << "holder's command stopped " << (granted_ns - ended_ns) / 1e6
              << " ms before the other grant (node frozen " << frozen_for << " s)\n";
  }

  int base_port_ = 0;
  std::map<int, Process*> nodes_;
};

TEST_F(MeshFreezeTest, FrozenFollowerNodesCommandStopsBeforeTheLockMoves) {
  for (int i = 1; i <= 3; ++i) StartMeshNode(i, 3);
  ASSERT_TRUE(WaitFormed(Millis(40000))) << Logs();
  const int leader = LeaderIndex();
  ASSERT_NE(leader, 0);
  const int holder = leader == 3 ? 2 : 3;
  const int waiter = 6 - leader - holder;
  FreezeHolderNode(holder, waiter);
}

TEST_F(MeshFreezeTest, FrozenLeaderNodesCommandStopsBeforeTheLockMoves) {
  for (int i = 1; i <= 3; ++i) StartMeshNode(i, 3);
  ASSERT_TRUE(WaitFormed(Millis(40000))) << Logs();
  const int leader = LeaderIndex();
  ASSERT_NE(leader, 0);
  const int waiter = leader == 1 ? 2 : 1;
  FreezeHolderNode(leader, waiter);
}

// CI's docker test once saw this (a `lockmesh lock` exiting 95, "session ... is not open"):
// a follower's client says hello just as the leader dies, so its OpenSession and its lock
// request go to a dead leader and are lost; while the election runs, other clients of that
// follower (here `lockmesh status`, every 50 ms) open sessions with higher client ids. The
// table refuses an OpenSession below a newer one of the same node, so once the newer ones
// were committed first the waiter's session could never open. The log now re-proposes what
// an earlier leader lost ahead of newer commands, and the node reopens a refused session
// under a new id: the waiter must get the lock once the dead leader's sessions expire.
TEST_F(MeshFreezeTest, AWaiterWhoseSessionOpenDiedWithTheLeaderIsGranted) {
  for (int i = 1; i <= 3; ++i) StartMeshNode(i, 3);
  ASSERT_TRUE(WaitFormed(Millis(40000))) << Logs();
  const int leader = LeaderIndex();
  ASSERT_NE(leader, 0);
  const int follower = leader == 1 ? 2 : 1;
  const std::string start = Path("holder.start"), granted = Path("waiter.granted");
  Process* holder = Lockmesh("holder", {"lock", "--socket", Socket(leader), "--no-autostart", "X",
                                        "--", "sh", "-c", "touch " + start + "; sleep 600"});
  ASSERT_TRUE(WaitFor([&] { return FileExists(start) || !holder->Running(); }, Millis(30000)))
      << holder->Stderr();
  ASSERT_TRUE(FileExists(start)) << holder->Stderr() << Logs();

  nodes_[leader]->Kill();  // SIGKILL: what it was sent is lost with it
  Process* waiter = Lockmesh("waiter", {"lock", "--socket", Socket(follower), "--no-autostart",
                                        "-w", "60", "X", "--", "sh", "-c", "touch " + granted});
  // Newer sessions on the same follower through the election, until a new leader is known.
  const std::string dead = Id(leader);
  ASSERT_TRUE(WaitFor(
      [&] {
        std::string l = Status(follower).value("leader_id", "");
        return !l.empty() && l != dead;
      },
      Millis(30000), Millis(50)))
      << "no new leader\n"
      << Logs();
  auto status = waiter->Wait(Millis(60000));
  ASSERT_TRUE(status.has_value()) << "the waiter did not finish\n" << waiter->Stderr() << Logs();
  EXPECT_EQ(status->code, 0) << waiter->Stderr() << Logs();
  EXPECT_TRUE(FileExists(granted)) << waiter->Stderr();
  const std::string log = nodes_[follower]->Stderr();
  size_t reopened = 0;
  for (size_t at = log.find("reopening its session"); at != std::string::npos;
       at = log.find("reopening its session", at + 1)) {
    ++reopened;
  }
  std::cerr << "sessions the follower reopened under a new id: " << reopened << "\n";
}

// ---------------------------------------------------------------- the lease protocol, scripted

// A real `lockmesh lock` against a scripted node: the test serves the UNIX socket itself and
// answers the client's frames, so that the client sees exactly the sequences a frozen or
// lease-less node produces (no real node can be made to produce them on cue): a grant that
// arrives while the client's lease does not hold, renewals that stop, a local node.
class ScriptedNodeTest : public ProcessTest {
 protected:
  void SetUp() override {
    ProcessTest::SetUp();
    socket_ = Path("scripted.sock");
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listen_fd_, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    ASSERT_LT(socket_.size(), sizeof addr.sun_path);
    memcpy(addr.sun_path, socket_.c_str(), socket_.size() + 1);
    ASSERT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0)
        << strerror(errno);
    ASSERT_EQ(listen(listen_fd_, 4), 0);
  }

  void TearDown() override {
    if (conn_fd_ >= 0) close(conn_fd_);
    if (listen_fd_ >= 0) close(listen_fd_);
    ProcessTest::TearDown();
  }

  enum class Got { kFrame, kTimeout, kClosed };

  // Waits up to `timeout` for the client to connect.
  bool Accept(Millis timeout) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
    conn_fd_ = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    return conn_fd_ >= 0;
  }

  Got Read(Millis timeout, mesh::pb::ClientRequest* req) {
    pollfd p{conn_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return Got::kTimeout;
    char c;
    if (recv(conn_fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) return Got::kClosed;
    std::string body;
    if (!ReadFrame(conn_fd_, Millis(5000), &body)) return Got::kClosed;
    EXPECT_TRUE(req->ParseFromString(body));
    return Got::kFrame;
  }

  // False if the client has closed the connection already (EPIPE / ECONNRESET).
  bool Send(const mesh::pb::ClientResponse& resp) {
    std::string body;
    EXPECT_TRUE(resp.SerializeToString(&body));
    return SendAll(conn_fd_, Frame(body)) == 0;
  }

  // Answers the hello; lease_renew_ms 0 is a local node's answer.
  void AnswerHello(uint64_t lease_renew_ms) {
    mesh::pb::ClientRequest req;
    ASSERT_EQ(Read(Millis(20000), &req), Got::kFrame);
    ASSERT_TRUE(req.has_hello());
    mesh::pb::ClientResponse resp;
    resp.set_request_id(req.request_id());
    resp.mutable_hello()->set_protocol_version(req.hello().protocol_version());
    resp.mutable_hello()->set_node_id("scripted");
    resp.mutable_hello()->set_client_id(7);
    resp.mutable_hello()->set_lease_renew_ms(lease_renew_ms);
    resp.mutable_hello()->set_lease_drift_ppm(lease_renew_ms ? 10000 : 0);
    resp.mutable_hello()->set_lease_margin_us(lease_renew_ms ? 100000 : 0);
    ASSERT_TRUE(Send(resp));
  }

  bool AnswerLease(const mesh::pb::ClientRequest& req, uint64_t remaining_us) {
    mesh::pb::ClientResponse resp;
    resp.set_request_id(req.request_id());
    resp.mutable_lease()->set_seq(req.lease().seq());
    resp.mutable_lease()->set_remaining_us(remaining_us);
    ++leases_answered_;
    return Send(resp);
  }

  void Grant(uint64_t request_id) {
    mesh::pb::ClientResponse resp;
    resp.set_request_id(request_id);
    resp.mutable_result()->set_code(mesh::pb::GRANTED);
    resp.mutable_result()->set_lock_id(5);
    resp.mutable_result()->set_token(42);
    ASSERT_TRUE(Send(resp));
  }

  // For `duration`, answers every LeaseRequest with `remaining_us` (nullopt: never, as a frozen
  // node) and remembers the other requests. False if the client closed the connection. An
  // answer that fails (the client has hung up) does not end the reading: what the client sent
  // before it closed (a renewal, then an unlock, then the close) is still read, to the end.
  bool Serve(Millis duration, std::optional<uint64_t> remaining_us,
             const std::function<bool()>& until = nullptr) {
    auto end = Clock::now() + duration;
    bool hung_up = false;
    while (Clock::now() < end) {
      if (until && until()) return true;
      mesh::pb::ClientRequest req;
      Got got = Read(Millis(10), &req);
      if (got == Got::kClosed) return false;
      if (got == Got::kTimeout) continue;
      if (req.has_lease()) {
        ++leases_seen_;
        if (remaining_us && !hung_up) hung_up = !AnswerLease(req, *remaining_us);
      } else {
        others_.push_back(req);
      }
    }
    return true;
  }

  // The lock request among the requests seen so far (0 if none).
  uint64_t LockRequestId() const {
    for (const auto& r : others_) {
      if (r.has_lock()) return r.request_id();
    }
    return 0;
  }

  // `lockmesh lock X` whose command writes its token to <root>/started, then runs until
  // SIGTERM (touching <root>/stopped), or ignores SIGTERM when `ignore_term`.
  Process* StartLock(const std::vector<std::string>& flags, bool ignore_term = false) {
    std::vector<std::string> args = {"lock", "--socket", socket_, "--no-autostart"};
    args.insert(args.end(), flags.begin(), flags.end());
    const std::string on_term =
        ignore_term ? "trap '' TERM" : "trap 'touch " + Path("stopped") + "; exit 0' TERM";
    args.insert(args.end(), {"X", "--", "sh", "-c",
                             "echo $LOCKMESH_TOKEN > " + Path("started") + "; " + on_term +
                                 "; while :; do sleep 0.02; done"});
    return Lockmesh("lock", args);
  }

  // Hello with a lease, the grant covered by a 1 s lease; returns once the command runs.
  void GrantWithLease() {
    ASSERT_TRUE(Accept(Millis(20000)));
    ASSERT_NO_FATAL_FAILURE(AnswerHello(100));
    ASSERT_TRUE(Serve(Millis(5000), 1'000'000, [&] { return LockRequestId() != 0; }));
    ASSERT_NE(LockRequestId(), 0u);
    Grant(LockRequestId());
    ASSERT_TRUE(Serve(Millis(10000), 1'000'000, [&] { return FileExists(Path("started")); }));
  }

  std::string socket_;
  int listen_fd_ = -1;
  int conn_fd_ = -1;
  int leases_seen_ = 0;
  int leases_answered_ = 0;
  std::vector<mesh::pb::ClientRequest> others_;
};

TEST_F(ScriptedNodeTest, GrantIsHeldBackUntilARenewalAndLostWhenRenewalsStop) {
  Process* lock = StartLock({});
  ASSERT_TRUE(Accept(Millis(20000))) << lock->Stderr();
  ASSERT_NO_FATAL_FAILURE(AnswerHello(100));
  // The first renewal comes before the lock request, unprompted.
  mesh::pb::ClientRequest first;
  ASSERT_EQ(Read(Millis(5000), &first), Got::kFrame);
  ASSERT_TRUE(first.has_lease()) << first.DebugString();
  ASSERT_TRUE(Serve(Millis(5000), std::nullopt, [&] { return LockRequestId() != 0; }));
  ASSERT_NE(LockRequestId(), 0u);
  // No lease yet (the node says it holds none): the grant must wait.
  ASSERT_TRUE(AnswerLease(first, 0));
  Grant(LockRequestId());
  const int before = leases_seen_;
  ASSERT_TRUE(Serve(Millis(600), 0));
  EXPECT_FALSE(FileExists(Path("started"))) << "the command ran on a grant the lease did not cover";
  EXPECT_GE(leases_seen_ - before, 3) << "renewals every 100 ms (and one at once)";
  // A renewal answered with a lease: the grant is handed over and the command runs.
  ASSERT_TRUE(Serve(Millis(10000), 1'000'000, [&] { return FileExists(Path("started")); }));
  ASSERT_TRUE(WaitFor([&] { return ReadFile(Path("started")) == "42\n"; }, Millis(10000)))
      << lock->Stderr();
  // Renewals keep the lease (1 s each, renewed every 100 ms) for well over a lease.
  ASSERT_TRUE(Serve(Millis(2000), 1'000'000));
  EXPECT_TRUE(lock->Running());
  EXPECT_FALSE(FileExists(Path("stopped")));
  // The node freezes: renewals are no longer answered. Within the last lease (0.89 s) the
  // client reports the lock lost, the command gets SIGTERM, and the client hangs up.
  const auto frozen = Clock::now();
  EXPECT_FALSE(Serve(Millis(10000), std::nullopt)) << "the client kept the connection open";
  const double hung_up = SecondsSince(frozen);
  EXPECT_LT(hung_up, 1.5);
  auto st = lock->Wait(Millis(10000));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->code, 95) << lock->Stderr();
  EXPECT_TRUE(FileExists(Path("stopped"))) << "the command was not signalled";
  EXPECT_NE(lock->Stderr().find("did not renew this client's lease"), std::string::npos)
      << lock->Stderr();
}

TEST_F(ScriptedNodeTest, HeldBackGrantPastTheDeadlineTimesOutAndIsGivenBack) {
  Process* lock = StartLock({"-w", "1"});
  ASSERT_TRUE(Accept(Millis(20000))) << lock->Stderr();
  ASSERT_NO_FATAL_FAILURE(AnswerHello(100));
  ASSERT_TRUE(Serve(Millis(5000), 0, [&] { return LockRequestId() != 0; }));
  ASSERT_NE(LockRequestId(), 0u);
  Grant(LockRequestId());
  // Renewals answered "no lease" until the client gives up and closes.
  Serve(Millis(10000), 0);
  auto st = lock->Wait(Millis(10000));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->code, 98) << lock->Stderr();
  EXPECT_FALSE(FileExists(Path("started")));
  bool unlocked = false;
  for (const auto& r : others_) unlocked |= r.has_unlock() && r.unlock().lock_id() == 5;
  EXPECT_TRUE(unlocked) << "the held-back lock was not given back";
}

TEST_F(ScriptedNodeTest, CommandIgnoringSigtermIsKilledAfterTheGrace) {
  Process* lock = StartLock({"--grace", "0.5"}, /*ignore_term=*/true);
  ASSERT_NO_FATAL_FAILURE(GrantWithLease()) << lock->Stderr();
  ASSERT_TRUE(Serve(Millis(500), 1'000'000));
  // Renewals stop: lost within the lease (0.89 s), SIGTERM ignored, SIGKILL 0.5 s later.
  const auto frozen = Clock::now();
  Serve(Millis(10000), std::nullopt, [&] { return !lock->Running(); });
  auto st = lock->Wait(Millis(10000));
  ASSERT_TRUE(st.has_value()) << lock->Stderr();
  const double seconds = SecondsSince(frozen);
  EXPECT_EQ(st->code, 95) << lock->Stderr();
  EXPECT_GT(seconds, 0.5) << "killed before the grace";
  EXPECT_LT(seconds, 5.0);
  EXPECT_NE(lock->Stderr().find("SIGKILL after 0.5 s"), std::string::npos) << lock->Stderr();
  // The command's group is gone too (SIGKILL to the group): at most zombies are left, orphans
  // re-parented to this test (a subreaper) until TearDown reaps them.
  auto live = [] {
    int n = 0;
    for (pid_t pid : Descendants()) {
      std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
      size_t paren = stat.rfind(')');
      if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z') ++n;
    }
    return n;
  };
  EXPECT_TRUE(WaitFor([&] { return live() == 0; }, Millis(5000))) << live() << " left";
}

TEST_F(ScriptedNodeTest, LocalNodeWithoutLeaseGetsNoRenewalsAndGrantsAtOnce) {
  Process* lock = StartLock({});
  ASSERT_TRUE(Accept(Millis(20000))) << lock->Stderr();
  ASSERT_NO_FATAL_FAILURE(AnswerHello(0));
  ASSERT_TRUE(Serve(Millis(5000), std::nullopt, [&] { return LockRequestId() != 0; }));
  ASSERT_NE(LockRequestId(), 0u);
  Grant(LockRequestId());
  ASSERT_TRUE(Serve(Millis(10000), std::nullopt, [&] { return FileExists(Path("started")); }));
  ASSERT_TRUE(Serve(Millis(1500), std::nullopt));
  EXPECT_EQ(leases_seen_, 0) << "a client of a local node keeps no lease";
  EXPECT_TRUE(lock->Running()) << lock->Stderr();
  lock->Signal(SIGTERM);  // forwarded to the command, which exits 0
  Serve(Millis(5000), std::nullopt);
  auto st = lock->Wait(Millis(10000));
  ASSERT_TRUE(st.has_value());
}

}  // namespace
}  // namespace lockmesh::testing
