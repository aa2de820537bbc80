// A mesh of real `lockmesh node` processes on loopback, found through --join (no multicast,
// no namespaces, no root): formation with --expect, locks from every node, a leader killed,
// a lock holder's node killed, and certificate reload on SIGHUP.
// The multi-host behaviour (multicast, partitions, loss) is tested in tests/cluster.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "net/support/loopback_mesh.h"

namespace lockmesh::testing {
namespace {

class MeshLoopbackTest : public LoopbackMeshTest {};

TEST_F(MeshLoopbackTest, ThreeNodesFormOneClusterAndServeLocksEverywhere) {
  for (int i = 1; i <= 3; ++i) StartMeshNode(i, 3);
  ASSERT_TRUE(WaitFormed({1, 2, 3}, 3, Millis(30000))) << NodeLog(1) << "\n---\n"
                                                       << NodeLog(2) << "\n---\n"
                                                       << NodeLog(3);
  uint64_t last = 0;
  for (int round = 0; round < 2; ++round) {
    for (int i = 1; i <= 3; ++i) {
      RunResult r = LockOn(i, "shared-resource");
      ASSERT_EQ(r.code(), 0) << r.Describe();
      uint64_t token = std::stoull(r.out);
      EXPECT_GT(token, last) << "fencing tokens must rise across nodes";
      last = token;
    }
  }
  // The lowest id bootstrapped the cluster; the others joined as learners and were promoted.
  EXPECT_NE(NodeLog(1).find("bootstrapped cluster"), std::string::npos) << NodeLog(1);
  EXPECT_NE(NodeLog(2).find("to join cluster"), std::string::npos) << NodeLog(2);
}

TEST_F(MeshLoopbackTest, LeaderKilledAnotherTakesOverAndHeldLocksStayHeld) {
  // The session ttl must outlast an election (1-2 s here, more on a slow sanitizer build)
  // for a held lock to survive it: that is what the ttl is for.
  for (int i = 1; i <= 3; ++i) StartMeshNode(i, 3, {}, "8");
  ASSERT_TRUE(WaitFormed({1, 2, 3}, 3, Millis(30000)));
  int leader = LeaderIndex(1);
  ASSERT_NE(leader, 0);
  int holder_node = leader == 3 ? 2 : 3;
  int other = 6 - leader - holder_node;
  // A lock held through a follower survives the leader's death.
  Process* holder = Lockmesh("holder", {"lock", "--socket", Socket(holder_node), "--no-autostart",
                                        "held", "--", "sleep", "600"});
  ASSERT_TRUE(WaitFor([&] { return LockOn(other, "held", {"-n"}).code() == 98; }, Millis(20000)));
  nodes_[leader]->Kill();
  ASSERT_TRUE(WaitFor(
      [&] {
        Json s = Status(other);
        return !s.is_null() && !s["leader_id"].get<std::string>().empty() &&
               s["leader_id"] != Id(leader);
      },
      Millis(20000), Millis(100)))
      << NodeLog(other);
  RunResult r = LockOn(other, "after-failover", {}, Millis(20000));
  EXPECT_EQ(r.code(), 0) << r.Describe();
  // Still held by the holder (whose node kept its lease through the new leader).
  EXPECT_EQ(LockOn(other, "held", {"-n"}).code(), 98);
  EXPECT_TRUE(holder->Running());
}

TEST_F(MeshLoopbackTest, LockOfAKilledNodeIsGrantedElsewhereWithinSessionTtl) {
  for (int i = 1; i <= 3; ++i) StartMeshNode(i, 3);
  ASSERT_TRUE(WaitFormed({1, 2, 3}, 3, Millis(30000)));
  int leader = LeaderIndex(1);
  int victim = leader == 3 ? 2 : 3;  // not the leader: the ttl alone is measured
  int waiter_node = 6 - leader - victim;
  Process* holder = Lockmesh("holder", {"lock", "--socket", Socket(victim), "--no-autostart",
                                        "moving", "--", "sleep", "600"});
  ASSERT_TRUE(
      WaitFor([&] { return LockOn(waiter_node, "moving", {"-n"}).code() == 98; }, Millis(20000)));
  Process* waiter = Lockmesh("waiter", {"lock", "--socket", Socket(waiter_node), "--no-autostart",
                                        "-w", "60", "moving", "--", "sh", "-c", "echo granted"});
  usleep(300 * 1000);
  auto killed = Clock::now();
  nodes_[victim]->Kill();
  holder->Kill();
  auto st = waiter->Wait(Millis(30000));
  ASSERT_TRUE(st.has_value());
  double seconds = std::chrono::duration<double>(Clock::now() - killed).count();
  EXPECT_EQ(st->code, 0) << waiter->Stderr();
  // session ttl 2 s + 2 s (the failover bound), measured with the waiter's exit (later
  // than the grant itself).
  EXPECT_LT(seconds, 4.0) << NodeLog(leader);
}

TEST_F(MeshLoopbackTest, SigtermOnTheLeaderHandsLeadershipOver) {
  for (int i = 1; i <= 3; ++i) StartMeshNode(i, 3);
  ASSERT_TRUE(WaitFormed({1, 2, 3}, 3, Millis(30000)));
  int leader = LeaderIndex(1);
  ASSERT_NE(leader, 0);
  int other = leader == 1 ? 2 : 1;
  nodes_[leader]->Signal(SIGTERM);
  auto st = nodes_[leader]->Wait(Millis(20000));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->code, 0) << NodeLog(leader);
  EXPECT_NE(NodeLog(leader).find("handing leadership to"), std::string::npos) << NodeLog(leader);
  // The new leader was chosen by the transfer, not by an election after a timeout: it is
  // known at once (well within one election timeout of the old leader's exit).
  auto exited = Clock::now();
  ASSERT_TRUE(WaitFor(
      [&] {
        Json s = Status(other);
        return !s.is_null() && !s["leader_id"].get<std::string>().empty() &&
               s["leader_id"] != Id(leader);
      },
      Millis(20000), Millis(50)));
  EXPECT_LT(SecondsSince(exited), 1.0);
  EXPECT_EQ(LockOn(other, "after-leave").code(), 0);
}

TEST_F(MeshLoopbackTest, TwoClustersOfOneNameStayApartAndSaySo) {
  // Two one-node clusters, made apart (each joins only itself)...
  for (int i = 1; i <= 2; ++i) {
    Process* p = Lockmesh(Id(i), {"node", "--node-id", Id(i), "--socket", Socket(i), "--data-dir",
                                  Path("d" + std::to_string(i)), "--listen", Address(i),
                                  "--no-multicast", "--join", Address(i)});
    nodes_[i] = p;
  }
  ASSERT_TRUE(WaitFormed({1}, 1, Millis(30000)));
  ASSERT_TRUE(WaitFormed({2}, 1, Millis(30000)));
  const std::string id1 = Status(1)["cluster_id"], id2 = Status(2)["cluster_id"];
  ASSERT_NE(id1, id2);
  // ... then node 2 restarts knowing node 1's address: the two meet.
  nodes_[2]->Signal(SIGTERM);
  ASSERT_TRUE(nodes_[2]->Wait(Millis(20000)).has_value());
  nodes_[2] = Lockmesh("n2-again",
                       {"node", "--node-id", Id(2), "--socket", Socket(2), "--data-dir", Path("d2"),
                        "--listen", Address(2), "--no-multicast", "--join", Address(1)});
  auto warned = [&](int i) {
    Json s = Status(i);
    if (s.is_null()) return false;
    for (const Json& w : s["warnings"]) {
      if (w.get<std::string>().find("second cluster") != std::string::npos) return true;
    }
    return false;
  };
  ASSERT_TRUE(WaitFor([&] { return warned(1) && warned(2); }, Millis(30000), Millis(200)))
      << NodeLog(1) << "\n---\n"
      << nodes_[2]->Stderr();
  // Never merged: each keeps its own id, members and locks.
  EXPECT_EQ(Status(1)["cluster_id"], id1);
  EXPECT_EQ(Status(2)["cluster_id"], id2);
  EXPECT_EQ(Status(1)["members"].size(), 1u);
  EXPECT_EQ(Status(2)["members"].size(), 1u);
  EXPECT_EQ(LockOn(1, "x").code(), 0);
  EXPECT_EQ(LockOn(2, "x").code(), 0);
}

// Deadlines hold without a quorum: on a node whose two peers are
// frozen, a try-lock answers within a second and `-w S` within S + 1 s — "no leader or
// quorum", exit 99 — and a waiter whose Cancel cannot commit is answered at S + 1 s (exit
// 98). No command runs. Once the peers run again, what the log decided after the answers is
// undone: the holder's lock is the only one, and nobody is left queued.
TEST_F(MeshLoopbackTest, DeadlinesHoldWithoutAQuorum) {
  // A session ttl far above the test's deadlines: the lease of the node cut off must not
  // lapse (which closes every client connection) before the answers come.
  for (int i = 1; i <= 3; ++i) StartMeshNode(i, 3, {}, "60");
  ASSERT_TRUE(WaitFormed({1, 2, 3}, 3, Millis(30000)));
  const int leader = LeaderIndex(1);
  ASSERT_NE(leader, 0);
  const int f = leader == 1 ? 2 : 1;  // the follower left running
  const std::string ran = Path("ran");
  const std::vector<std::string> touch = {"--", "sh", "-c", "touch " + ran};
  auto lock_on_f = [&](const std::vector<std::string>& flags, const std::string& resource) {
    std::vector<std::string> args = {"lock", "--socket", Socket(f), "--no-autostart"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back(resource);
    args.insert(args.end(), touch.begin(), touch.end());
    return args;
  };
  // X is held through f; a waiter for it is queued (its Acquire committed) before the cut.
  Process* holder = Lockmesh(
      "holder", {"lock", "--socket", Socket(f), "--no-autostart", "X", "--", "sleep", "600"});
  ASSERT_TRUE(WaitFor([&] { return Status(f).value("locks_held", 0) == 1; }, Millis(20000)));
  Process* waiter = Lockmesh("waiter", lock_on_f({"-w", "8"}, "X"));
  ASSERT_TRUE(WaitFor([&] { return Status(f).value("locks_waiting", 0) == 1; }, Millis(20000)))
      << waiter->Stderr();
  const auto waiter_started = Clock::now();
  for (auto& [i, p] : nodes_) {
    if (i != f) p->Signal(SIGSTOP);
  }

  RunResult n = RunLockmesh("try", lock_on_f({"-n"}, "Y"), Millis(30000));
  EXPECT_EQ(n.code(), 99) << n.Describe();
  EXPECT_NE(n.err.find("no leader or quorum"), std::string::npos) << n.Describe();
  EXPECT_LT(n.seconds, 6.0) << "a try-lock is answered within 1 s of the node reading it";

  RunResult w = RunLockmesh("wait", lock_on_f({"-w", "2"}, "Y"), Millis(30000));
  EXPECT_EQ(w.code(), 99) << w.Describe();
  EXPECT_NE(w.err.find("no leader or quorum"), std::string::npos) << w.Describe();
  EXPECT_GE(w.seconds, 2.0) << "answered before its deadline";
  EXPECT_LT(w.seconds, 8.0) << w.Describe();

  // The queued waiter: its deadline (8 s) proposes a Cancel that cannot commit; 1 s later it
  // is answered anyway.
  auto ws = waiter->Wait(Millis(30000));
  ASSERT_TRUE(ws.has_value()) << "the waiter hung without a quorum: " << waiter->Stderr();
  const double waited = SecondsSince(waiter_started);
  EXPECT_EQ(ws->code, 98) << waiter->Stderr();
  EXPECT_NE(waiter->Stderr().find("its cancel was not committed"), std::string::npos)
      << waiter->Stderr();
  EXPECT_LT(waited, 20.0);
  EXPECT_FALSE(FileExists(ran)) << "a command ran without its lock";

  for (auto& [i, p] : nodes_) {
    if (i != f) p->Signal(SIGCONT);
  }
  // The cluster commits again: the given-up requests are undone (a Y granted late is
  // released, the waiter's request withdrawn), and only the holder's lock is left.
  std::string seen;
  EXPECT_TRUE(WaitFor(
      [&] {
        Json s = Status(leader);
        if (s.is_null()) return false;
        seen = s.dump();
        return s.value("locks_held", 0) == 1 && s.value("locks_waiting", 0) == 0;
      },
      Millis(30000), Millis(300)))
      << seen << NodeLog(f);
  RunResult y = LockOn(leader, "Y", {"-n"});
  EXPECT_EQ(y.code(), 0) << y.Describe() << NodeLog(f);
  EXPECT_TRUE(holder->Running());
  EXPECT_FALSE(FileExists(ran));
}

// The same for a node restarted while its peers are frozen: it cannot claim the client ids
// that open a session (a log entry), so requests wait before any session exists; their
// deadlines still hold.
TEST_F(MeshLoopbackTest, DeadlinesHoldWhileANodeCannotClaimClientIds) {
  for (int i = 1; i <= 3; ++i) StartMeshNode(i, 3, {}, "60");
  ASSERT_TRUE(WaitFormed({1, 2, 3}, 3, Millis(30000)));
  const int leader = LeaderIndex(1);
  ASSERT_NE(leader, 0);
  const int f = leader == 1 ? 2 : 1;
  for (auto& [i, p] : nodes_) {
    if (i != f) p->Signal(SIGSTOP);
  }
  nodes_[f]->Kill();
  StartMeshNode(f, 3, {}, "60");
  ASSERT_TRUE(
      WaitFor([&] { return NodeLog(f).find(" serving ") != std::string::npos; }, Millis(20000)))
      << NodeLog(f);
  const std::string ran = Path("ran");
  auto lock = [&](const std::string& flag, const std::string& value) {
    std::vector<std::string> args = {"lock", "--socket", Socket(f), "--no-autostart", flag};
    if (!value.empty()) args.push_back(value);
    args.insert(args.end(), {"Y", "--", "sh", "-c", "touch " + ran});
    return RunLockmesh("lock", args, Millis(30000));
  };
  RunResult n = lock("-n", "");
  EXPECT_EQ(n.code(), 99) << n.Describe();
  EXPECT_NE(n.err.find("could not claim the client ids"), std::string::npos) << n.Describe();
  EXPECT_LT(n.seconds, 6.0) << n.Describe();
  RunResult w = lock("-w", "2");
  EXPECT_EQ(w.code(), 99) << w.Describe();
  EXPECT_NE(w.err.find("no leader or quorum"), std::string::npos) << w.Describe();
  EXPECT_GE(w.seconds, 2.0) << w.Describe();
  EXPECT_LT(w.seconds, 8.0) << w.Describe();
  EXPECT_FALSE(FileExists(ran));
  for (auto& [i, p] : nodes_) {
    if (i != f) p->Signal(SIGCONT);
  }
  // Once the claim commits, the node serves again.
  RunResult later = LockOn(f, "Y", {"-w", "30"}, Millis(60000));
  EXPECT_EQ(later.code(), 0) << later.Describe() << NodeLog(f);
}

TEST_F(MeshLoopbackTest, EmbeddedNodeExampleTakesLocksThroughItsOwnNode) {
  // apps/examples/embedded_node: mesh::Node and mesh::AsyncClient on one libuv loop.
  const std::string bin =
      LockmeshBinary().substr(0, LockmeshBinary().rfind('/')) + "/embedded_node";
  Process* p = Spawn("embedded", {bin, "--node-id", "emb", "--data-dir", Path("emb"), "--socket",
                                  Socket(1), "--listen", Address(1), "--join", Address(1),
                                  "--no-multicast", "--cycles", "3"});
  RunResult r = Finish(p, Millis(60000));
  EXPECT_EQ(r.code(), 0) << r.Describe();
  size_t count = 0;
  for (size_t at = 0; (at = r.out.find("fencing token", at)) != std::string::npos; ++at) ++count;
  EXPECT_EQ(count, 3u) << r.out;
  EXPECT_NE(r.err.find("node stopped"), std::string::npos) << r.err;
}

// ---------------------------------------------------------------- certificates (SIGHUP)

class MeshReloadTest : public MeshLoopbackTest {
 protected:
  void MakeCerts() {
    ASSERT_EQ(RunLockmesh("ca", {"cert", "ca", "--out", Path("ca")}).code(), 0);
    ASSERT_EQ(RunLockmesh("ca2", {"cert", "ca", "--out", Path("ca2")}).code(), 0);
    for (int i = 1; i <= 2; ++i) {
      ASSERT_EQ(RunLockmesh("cert", {"cert", "node", "--ca", Path("ca"), "--cn", Id(i), "--out",
                                     Path("c" + std::to_string(i))})
                    .code(),
                0);
      // Each node reads its own copy of the CA, so one node's CA can change alone.
      WriteFile(Path("ca-of-" + Id(i) + ".pem"), ReadFile(Path("ca/cert.pem")));
    }
  }
  std::vector<std::string> TlsArgs(int i) {
    std::string dir = Path("c" + std::to_string(i));
    return {"--security", "mutual",         "--tls-cert", dir + "/cert.pem",
            "--tls-key",  dir + "/key.pem", "--tls-ca",   Path("ca-of-" + Id(i) + ".pem")};
  }
  bool Connected(int at, int peer) {
    Json s = Status(at);
    if (s.is_null()) return false;
    for (const Json& m : s["members"]) {
      if (m["node_id"] == Id(peer)) return m["connected"].get<bool>();
    }
    return false;
  }
  std::string FingerprintSeen(int at, int peer) {
    Json s = Status(at);
    if (s.is_null()) return "";
    for (const Json& m : s["members"]) {
      if (m["node_id"] == Id(peer) && m["connected"].get<bool>()) return m["fingerprint"];
    }
    return "";
  }
  std::string FingerprintOf(const std::string& cert) {
    RunResult r = RunLockmesh("show", {"cert", "show", "--json", cert});
    Json j = Json::parse(r.out, nullptr, false);
    if (j.is_discarded()) return "";
    return j["certificates"][0]["fingerprint"];
  }
};

TEST_F(MeshReloadTest, PeerWhoseCertificateNoLongerVerifiesIsCutOffOnSighup) {
  MakeCerts();
  for (int i = 1; i <= 2; ++i) StartMeshNode(i, 2, TlsArgs(i));
  ASSERT_TRUE(WaitFormed({1, 2}, 2, Millis(30000))) << NodeLog(1) << "\n---\n" << NodeLog(2);
  ASSERT_TRUE(Connected(1, 2));
  // Node 1 now trusts another CA only: node 2's certificate no longer verifies there.
  WriteFile(Path("ca-of-n1.pem"), ReadFile(Path("ca2/cert.pem")));
  nodes_[1]->Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return !Connected(1, 2); }, Millis(20000), Millis(100))) << NodeLog(1);
  // And it stays out: node 2 redials and is refused every time.
  for (int k = 0; k < 10; ++k) {
    usleep(300 * 1000);
    EXPECT_FALSE(Connected(1, 2));
  }
  EXPECT_NE(NodeLog(1).find("certificates reloaded"), std::string::npos) << NodeLog(1);
  EXPECT_NE(NodeLog(1).find("n2"), std::string::npos);
}

TEST_F(MeshReloadTest, NewConnectionsUseTheReloadedCertificate) {
  MakeCerts();
  for (int i = 1; i <= 2; ++i) StartMeshNode(i, 2, TlsArgs(i));
  ASSERT_TRUE(WaitFormed({1, 2}, 2, Millis(30000)));
  const std::string old_fp = FingerprintOf(Path("c2/cert.pem"));
  ASSERT_FALSE(old_fp.empty());
  ASSERT_TRUE(WaitFor([&] { return FingerprintSeen(1, 2) == old_fp; }, Millis(10000)));
  // A new certificate for node 2 (same CA, new key) in place of the old files, then SIGHUP.
  ASSERT_EQ(RunLockmesh("cert",
                        {"cert", "node", "--ca", Path("ca"), "--cn", Id(2), "--out", Path("c2new")})
                .code(),
            0);
  WriteFile(Path("c2/cert.pem"), ReadFile(Path("c2new/cert.pem")));
  WriteFile(Path("c2/key.pem"), ReadFile(Path("c2new/key.pem")));
  const std::string new_fp = FingerprintOf(Path("c2/cert.pem"));
  ASSERT_NE(new_fp, old_fp);
  nodes_[2]->Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return NodeLog(2).find("certificates reloaded") != std::string::npos; },
                      Millis(10000)));
  // The running link keeps the old certificate; a new connection (node 1 restarted) shows
  // node 2's new one.
  nodes_[1]->Kill();
  StartMeshNode(1, 2, TlsArgs(1));
  EXPECT_TRUE(WaitFor([&] { return FingerprintSeen(1, 2) == new_fp; }, Millis(30000), Millis(200)))
      << NodeLog(1) << "\n---\n"
      << NodeLog(2);
}

}  // namespace
}  // namespace lockmesh::testing
