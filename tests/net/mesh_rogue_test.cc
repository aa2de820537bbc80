// Members-only Raft on real processes: a
// mesh of three `lockmesh node` processes on loopback, a lock held through n2, and a rogue
// peer (tests/net/support/rogue_peer.cc, the real handshake) that is not a member:
//  * --security mutual with a certificate from the cluster's own CA, CN=evil;
//  * --security none, claiming a made-up id.
// It sends a PROPOSE of ExpireNode n2, a HEARTBEAT in term 50, an APPEND with a forged entry,
// votes, TIMEOUT_NOW and KeepaliveAcks to every node. Afterwards, on every node: the lock is
// still held by n2 with its token, the term has not moved, the commit indexes agree and the
// mesh still grants; and every node logged the refusals with the rogue's id, address and
// fingerprint. Also: mutual refuses the rogue's claim of a member's id at the handshake, and
// a member's id in a Raft message's `from` on another link is refused (none).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "net/support/process_harness.h"

#ifndef LOCKMESH_ROGUE_PEER_BINARY
#error "LOCKMESH_ROGUE_PEER_BINARY must be defined by the build"
#endif

namespace lockmesh::testing {
namespace {

using Json = nlohmann::json;

class MeshRogueTest : public ProcessTest {
 protected:
  void SetUp() override {
    ProcessTest::SetUp();
    // Ports of this test process only: node i listens on base_port_ + i (1..6).
    base_port_ = LoopbackPortBlock(7);
  }

  std::string Address(int i) const { return "127.0.0.1:" + std::to_string(base_port_ + i); }
  std::string Socket(int i) const { return Path("n" + std::to_string(i) + ".sock"); }
  std::string Id(int i) const { return "n" + std::to_string(i); }
  std::string NodeLog(int i) { return nodes_.count(i) ? nodes_[i]->Stderr() : ""; }
  std::string AllLogs() {
    std::string all;
    for (int i = 1; i <= 4; ++i) {
      if (nodes_.count(i)) all += "\n--- n" + std::to_string(i) + "\n" + NodeLog(i);
    }
    return all;
  }

  void MakeCerts() {
    ASSERT_EQ(RunLockmesh("ca", {"cert", "ca", "--out", Path("ca")}).code(), 0);
    for (const std::string cn : {"n1", "n2", "n3", "n4", "evil", "rogue"}) {
      ASSERT_EQ(
          RunLockmesh("cert", {"cert", "node", "--ca", Path("ca"), "--cn", cn, "--out", Path(cn)})
              .code(),
          0);
    }
  }
  std::vector<std::string> Tls(const std::string& who) const {
    return {"--tls-cert", Path(who + "/cert.pem"), "--tls-key", Path(who + "/key.pem"),
            "--tls-ca",   Path("ca/cert.pem")};
  }
  std::string FingerprintOf(const std::string& cert) {
    RunResult r = RunLockmesh("show", {"cert", "show", "--json", cert});
    Json j = Json::parse(r.out, nullptr, false);
    if (j.is_discarded()) return "";
    return j["certificates"][0]["fingerprint"];
  }

  // `lockmesh node` i of the loopback mesh (--join lists nodes 1..`last`).
  Process* StartNode(int i, int last = 3) {
    std::string join;
    for (int j = 1; j <= last; ++j) join += (join.empty() ? "" : ",") + Address(j);
    std::vector<std::string> args = {
        "node",       "--node-id",          Id(i),      "--socket",   Socket(i),
        "--data-dir", Path("d" + Id(i)),    "--listen", Address(i),   "--join",
        join,         "--no-multicast",     "--expect", "3",          "--session-ttl",
        "4",          "--election-timeout", "1000",     "--security", security_};
    if (security_ != "none") {
      for (const std::string& a : Tls(Id(i))) args.push_back(a);
    }
    nodes_[i] = Lockmesh(Id(i), args);
    return nodes_[i];
  }

  void StartMesh(const std::string& security) {
    security_ = security;
    for (int i = 1; i <= 3; ++i) StartNode(i);
  }

  Json Status(int i) {
    RunResult r = RunLockmesh("status", {"status", "--socket", Socket(i), "--json"}, Millis(10000));
    if (r.code() != 0) return Json();
    Json j = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    return j.is_discarded() ? Json() : j;
  }

  bool WaitFormed(Millis timeout) {
    return WaitFor(
        [&] {
          std::string leader;
          for (int i = 1; i <= 3; ++i) {
            Json s = Status(i);
            if (s.is_null() || s["cluster_id"].get<std::string>().empty()) return false;
            int v = 0;
            for (const Json& m : s["members"]) v += m["voter"].get<bool>() ? 1 : 0;
            if (v != 3 || s["leader_id"].get<std::string>().empty()) return false;
            if (leader.empty()) leader = s["leader_id"];
            if (s["leader_id"] != leader) return false;
          }
          return true;
        },
        timeout, Millis(200));
  }

  // "resource node token state" of every lock node i lists, sorted; "?" if it does not answer.
  std::string Locks(int i) {
    RunResult r = RunLockmesh("locks", {"locks", "--socket", Socket(i), "--json"}, Millis(10000));
    if (r.code() != 0) return "?";
    Json j = Json::parse(r.out, nullptr, false);
    if (j.is_discarded()) return "?";
    std::vector<std::string> rows;
    for (const Json& l : j["locks"]) {
      rows.push_back(l["resource"].get<std::string>() + " " + l["node_id"].get<std::string>() +
                     " " + std::to_string(l["token"].get<uint64_t>()) + " " +
                     l["state"].get<std::string>());
    }
    std::sort(rows.begin(), rows.end());
    std::string out;
    for (const std::string& row : rows) out += row + "\n";
    return out;
  }

  RunResult LockOn(int i, const std::string& resource) {
    return RunLockmesh("lock",
                       {"lock", "--socket", Socket(i), "--no-autostart", "-w", "20", resource, "--",
                        "sh", "-c", "echo $LOCKMESH_TOKEN"},
                       Millis(30000));
  }

  // Runs the rogue against node i with `args` (plus --connect and the security flags).
  RunResult Rogue(int i, std::vector<std::string> args, const std::string& who = "evil") {
    return Finish(StartRogue(i, std::move(args), who), Millis(60000));
  }

  // Starts the rogue against node i (it redials until its --timeout-ms).
  Process* StartRogue(int i, std::vector<std::string> args, const std::string& who = "evil") {
    std::vector<std::string> argv = {LOCKMESH_ROGUE_PEER_BINARY,
                                     "--connect",
                                     Address(i),
                                     "--security",
                                     security_,
                                     "--timeout-ms",
                                     "15000"};
    if (security_ != "none") {
      for (const std::string& a : Tls(who)) argv.push_back(a);
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return Spawn("rogue", argv);
  }

  // The whole attack against node i, as the rogue `args` select.
  RunResult Attack(int i, const std::vector<std::string>& identity) {
    Json s = Status(i);
    const std::string term = std::to_string(s.value("term", 0));
    const std::string commit = std::to_string(s.value("commit_index", 0));
    std::vector<std::string> args = identity;
    for (const std::string& spec : std::vector<std::string>{
             "propose-expire:n2", "propose-acquire:n2:held", "heartbeat:50",
             "append:" + term + ":" + commit + ":" + term, "append:50:" + commit + ":" + term,
             "vote:60", "prevote:60", "timeout-now:" + term, "keepalive-ack:" + Id(i),
             "keepalive-ack:n2", "keepalive:n2", "join:n8"}) {
      args.push_back("--send");
      args.push_back(spec);
    }
    return Rogue(i, args);
  }

  // The checks after the rogue is done; `before` = Locks() of every node,
  // `term` the term before the attack.
  void ExpectNothingChanged(const std::string& before, uint64_t term, Process* holder) {
    // For a while (two session ttls: an expiry or a lapsed lease would show by then) the
    // lock stays held by n2 with its token, on every node, and the term does not move.
    auto until = Clock::now() + Millis(8000);
    while (Clock::now() < until) {
      for (int i = 1; i <= 3; ++i) {
        ASSERT_EQ(Locks(i), before) << "node n" << i << AllLogs();
        Json s = Status(i);
        ASSERT_FALSE(s.is_null());
        ASSERT_EQ(s["term"].get<uint64_t>(), term) << "node n" << i << AllLogs();
      }
      ASSERT_TRUE(holder->Running()) << holder->Stderr();
      usleep(500 * 1000);
    }
    // The mesh still grants, and no node's log diverged or froze: every node's commit and
    // applied index reach the highest commit index any node had after the grants. (Every
    // `lockmesh status` opens a client session, which costs log entries: the indexes are
    // never equal at the instants they are sampled, but none may stay behind.)
    RunResult r1 = LockOn(1, "after");
    EXPECT_EQ(r1.code(), 0) << r1.Describe() << AllLogs();
    RunResult r3 = LockOn(3, "after");
    EXPECT_EQ(r3.code(), 0) << r3.Describe() << AllLogs();
    uint64_t high = 0;
    for (int i = 1; i <= 3; ++i) {
      Json s = Status(i);
      ASSERT_FALSE(s.is_null());
      high = std::max(high, s["commit_index"].get<uint64_t>());
    }
    std::string seen;
    EXPECT_TRUE(WaitFor(
        [&] {
          seen.clear();
          bool all = true;
          for (int i = 1; i <= 3; ++i) {
            Json s = Status(i);
            if (s.is_null()) return false;
            seen += "n" + std::to_string(i) + ": commit " + s["commit_index"].dump() +
                    ", applied " + s["applied_index"].dump() + "; ";
            all = all && s["commit_index"].get<uint64_t>() >= high &&
                  s["applied_index"].get<uint64_t>() >= high;
          }
          return all;
        },
        Millis(20000), Millis(200)))
        << "every node should reach commit " << high << ": " << seen << AllLogs();
    for (int i = 1; i <= 3; ++i) EXPECT_EQ(Locks(i), before) << "node n" << i;
  }

  // Every node logged the rogue's refused messages with its id, address and fingerprint.
  void ExpectRefusalsLogged(const std::string& rogue_id, const std::string& fingerprint) {
    const std::string who = "refused from peer '" + rogue_id + "' at 127.0.0.1:";
    for (int i = 1; i <= 3; ++i) {
      std::string log = NodeLog(i);
      EXPECT_NE(log.find(who), std::string::npos) << "node n" << i << "\n" << log;
      EXPECT_NE(log.find("(certificate " + fingerprint + ")"), std::string::npos)
          << "node n" << i << "\n"
          << log;
      for (const char* what :
           {"PROPOSE in term", "HEARTBEAT in term 50", "APPEND in term", "VOTE in term 60",
            "TIMEOUT_NOW", "KeepaliveAck from '", "Keepalive for 'n2'", "JoinRequest for 'n8'"}) {
        EXPECT_NE(log.find(what), std::string::npos) << "node n" << i << ": " << what << "\n"
                                                     << log;
      }
    }
  }

  int base_port_ = 0;
  std::string security_ = "none";
  std::map<int, Process*> nodes_;
};

TEST_F(MeshRogueTest, CaSignedNonMemberChangesNothingAndIsLogged) {
  MakeCerts();
  StartMesh("mutual");
  ASSERT_TRUE(WaitFormed(Millis(40000))) << AllLogs();
  Process* holder = Lockmesh(
      "holder", {"lock", "--socket", Socket(2), "--no-autostart", "held", "--", "sleep", "600"});
  ASSERT_TRUE(WaitFor([&] { return Locks(1).find("held n2") != std::string::npos; }, Millis(20000)))
      << AllLogs();
  const std::string before = Locks(1);
  for (int i = 2; i <= 3; ++i) ASSERT_EQ(Locks(i), before);
  const uint64_t term = Status(1)["term"].get<uint64_t>();

  for (int i = 1; i <= 3; ++i) {
    RunResult r = Attack(i, {"--node-id", "evil"});
    // Mutual lets a CA-signed certificate in (the CA is the admission to the link): the
    // rogue gets its link and sends everything.
    ASSERT_EQ(r.code(), 0) << r.Describe() << r.out;
  }
  ExpectNothingChanged(before, term, holder);
  ExpectRefusalsLogged("evil", FingerprintOf(Path("evil/cert.pem")));
  for (int i = 1; i <= 3; ++i) {
    EXPECT_NE(NodeLog(i).find("--security mutual: a peer speaks only as"), std::string::npos);
  }

  // Under a member's id: the handshake refuses a certificate whose CN is not the claimed id.
  RunResult r = Rogue(1, {"--node-id", "evil", "--claim-id", "n2", "--send", "heartbeat:50"});
  EXPECT_EQ(r.code(), 2) << r.Describe() << r.out;
  EXPECT_NE(r.out.find("refused by the target"), std::string::npos) << r.out;
  EXPECT_NE(NodeLog(1).find("certificate CN 'evil' does not match the node id 'n2'"),
            std::string::npos)
      << NodeLog(1);
  EXPECT_EQ(Status(1)["term"].get<uint64_t>(), term);
}

// Membership is automatic: a CA-signed rogue that first asks to join is added as a learner
// (logged). A learner still may not lead: its HEARTBEAT and APPEND in term 50, sent once it
// is in the configuration, move no term and change no lock (core/admission.h, R2).
TEST_F(MeshRogueTest, CaSignedLearnerCannotLead) {
  MakeCerts();
  StartMesh("mutual");
  ASSERT_TRUE(WaitFormed(Millis(40000))) << AllLogs();
  Process* holder = Lockmesh(
      "holder", {"lock", "--socket", Socket(2), "--no-autostart", "held", "--", "sleep", "600"});
  ASSERT_TRUE(WaitFor([&] { return Locks(1).find("held n2") != std::string::npos; }, Millis(20000)))
      << AllLogs();
  const std::string before = Locks(1);
  const uint64_t term = Status(1)["term"].get<uint64_t>();
  const std::string commit = std::to_string(Status(1)["commit_index"].get<uint64_t>());
  const std::string leader = Status(1)["leader_id"].get<std::string>();
  const int l = leader == "n1" ? 1 : leader == "n2" ? 2 : 3;
  // The learner is added within a few hundred ms; keepalives (taken for the sender's own id)
  // keep the link from going silent meanwhile.
  std::vector<std::string> args = {"--node-id", "evil", "--gap-ms", "400", "--send", "join:evil"};
  for (int k = 0; k < 5; ++k) {
    args.push_back("--send");
    args.push_back("keepalive:evil");
  }
  for (const std::string& spec :
       {std::string("heartbeat:50"), "append:50:" + commit + ":" + std::to_string(term)}) {
    args.push_back("--send");
    args.push_back(spec);
  }
  RunResult r = Rogue(l, args);
  ASSERT_EQ(r.code(), 0) << r.Describe() << r.out << AllLogs();
  ASSERT_NE(NodeLog(l).find("adding evil"), std::string::npos)
      << "the rogue should have been added as a learner before it sent its heartbeat" << AllLogs();
  ExpectNothingChanged(before, term, holder);
  EXPECT_NE(NodeLog(l).find("a learner of this node's configuration"), std::string::npos)
      << NodeLog(l);
}

// A fresh node is not captured by a peer that claims to lead (core/join_choice.h): the
// CA-signed rogue gossips the real cluster's id and that it leads it in term 1000, and sends
// a fresh node forged leader traffic (an APPEND of a forged entry at index 1, heartbeats in
// term 1000). The fresh node n4 sees one real member (the leader and the other follower are
// frozen, so nothing can give n4 a configuration meanwhile, whatever arrives first), and the
// rogue, whose id sorts after every member's: the node that trusted a claim to lead (the
// old rule) asked the rogue and took its log. Now nobody other than the rogue names the
// rogue, so n4 refuses its traffic, and joins the real cluster once the others run again.
TEST_F(MeshRogueTest, FreshNodeIsNotCapturedByAPeerThatClaimsToLead) {
  MakeCerts();
  StartMesh("mutual");
  ASSERT_TRUE(WaitFormed(Millis(40000))) << AllLogs();
  const Json s = Status(1);
  const std::string cluster_id = s["cluster_id"];
  const std::string leader = s["leader_id"];
  const int l = leader == "n1" ? 1 : leader == "n2" ? 2 : 3;
  const int running = l == 1 ? 2 : 1;
  const int frozen = 6 - l - running;
  nodes_[l]->Signal(SIGSTOP);
  nodes_[frozen]->Signal(SIGSTOP);

  StartNode(4, 4);
  std::vector<std::string> args = {"--node-id",     "rogue", "--gossip-cluster", cluster_id,
                                   "--gossip-term", "1000",  "--gap-ms",         "250",
                                   "--timeout-ms",  "30000"};
  for (int k = 0; k < 40; ++k) {
    for (const char* spec : {"append:1000:0:0", "heartbeat:1000"}) {
      args.push_back("--send");
      args.push_back(spec);
    }
  }
  Process* rogue = StartRogue(4, args, "rogue");
  // n4 makes its choice (after its formation wait) with the rogue in view: through n2, which
  // still names the frozen leader, or, once n2 names nobody, none. Then the rogue's leader
  // traffic is refused while n4 has chosen (refusals of one kind are logged once per 10 s:
  // the first may come before the choice).
  size_t chose = std::string::npos;
  EXPECT_TRUE(WaitFor(
      [&] {
        const std::string log = NodeLog(4);
        const size_t up = log.find("peer rogue up");
        if (up == std::string::npos) return false;
        for (const char* line : {"joining through '", "not joining yet: "}) {
          size_t at = log.find(line);
          if (at != std::string::npos && (chose == std::string::npos || at < chose)) chose = at;
        }
        return chose != std::string::npos;
      },
      Millis(30000)))
      << "n4 made no choice with the rogue in view\n"
      << AllLogs();
  EXPECT_TRUE(WaitFor(
      [&] {
        const std::string log = NodeLog(4);
        const size_t at = log.find("refused from peer 'rogue'", chose);
        return chose != std::string::npos && at != std::string::npos &&
               log.find("in term 1000 from 'rogue': this node has no configuration yet", at) !=
                   std::string::npos;
      },
      Millis(30000)))
      << "n4 did not refuse the rogue's leader traffic after its choice\n"
      << rogue->Stdout() << AllLogs();
  Json fresh = Status(4);
  ASSERT_FALSE(fresh.is_null()) << AllLogs();
  EXPECT_LT(fresh["term"].get<uint64_t>(), 1000u) << "n4 took the rogue's term" << AllLogs();

  nodes_[l]->Signal(SIGCONT);
  nodes_[frozen]->Signal(SIGCONT);
  // n4 joins the real cluster (a learner: the cluster has its 3 voters).
  std::string seen;
  EXPECT_TRUE(WaitFor(
      [&] {
        Json st = Status(4);
        if (st.is_null()) return false;
        seen = st.dump();
        if (st["cluster_id"] != cluster_id) return false;
        for (const Json& m : st["members"]) {
          if (m["node_id"] == "n4") return st["applied_index"].get<uint64_t>() > 0;
        }
        return false;
      },
      Millis(40000), Millis(200)))
      << seen << AllLogs();
  Json joined = Status(4);
  ASSERT_FALSE(joined.is_null());
  EXPECT_LT(joined["term"].get<uint64_t>(), 1000u) << AllLogs();
  EXPECT_EQ(NodeLog(4).find("asking rogue"), std::string::npos) << NodeLog(4);
  RunResult r = LockOn(4, "after");
  EXPECT_EQ(r.code(), 0) << r.Describe() << AllLogs();
  Finish(rogue, Millis(60000));
}

TEST_F(MeshRogueTest, PlaintextNonMemberChangesNothingAndIsLogged) {
  StartMesh("none");
  ASSERT_TRUE(WaitFormed(Millis(40000))) << AllLogs();
  Process* holder = Lockmesh(
      "holder", {"lock", "--socket", Socket(2), "--no-autostart", "held", "--", "sleep", "600"});
  ASSERT_TRUE(WaitFor([&] { return Locks(1).find("held n2") != std::string::npos; }, Millis(20000)))
      << AllLogs();
  const std::string before = Locks(1);
  const uint64_t term = Status(1)["term"].get<uint64_t>();
  for (int i = 1; i <= 3; ++i) {
    RunResult r = Attack(i, {"--claim-id", "n9"});
    ASSERT_EQ(r.code(), 0) << r.Describe() << r.out;
  }
  // A member's id in `from`, on the rogue's own link: refused too.
  RunResult r = Rogue(1, {"--claim-id", "n9", "--from", "n2", "--send", "heartbeat:50", "--send",
                          "propose-expire:n3"});
  ASSERT_EQ(r.code(), 0) << r.Describe() << r.out;
  ExpectNothingChanged(before, term, holder);
  ExpectRefusalsLogged("n9", "none (--security none)");
  EXPECT_NE(NodeLog(1).find("claiming to be from 'n2' on the link of 'n9'"), std::string::npos)
      << NodeLog(1);
  EXPECT_NE(NodeLog(1).find("a node id is only a claim"), std::string::npos);

  // With none a member's id is only a claim: with that member down, the rogue takes its id.
  // Even then the leader takes proposals only about the claimed member's own sessions, and
  // never an ExpireNode of another node.
  const std::string leader = Status(1)["leader_id"].get<std::string>();
  int l = leader == "n1" ? 1 : leader == "n2" ? 2 : 3;
  int member = l == 1 ? 3 : 1;  // neither the leader nor n2 (the holder's node)
  nodes_[member]->Kill();
  ASSERT_TRUE(WaitFor(
      [&] {
        Json st = Status(l);
        if (st.is_null()) return false;
        for (const Json& m : st["members"]) {
          if (m["node_id"] == Id(member)) return !m["connected"].get<bool>();
        }
        return false;
      },
      Millis(20000), Millis(200)));
  r = Rogue(l, {"--claim-id", Id(member), "--send", "propose-expire:n2", "--send",
                "propose-acquire:n2:held", "--send", "propose-expire:" + leader});
  ASSERT_EQ(r.code(), 0) << r.Describe() << r.out;
  EXPECT_TRUE(WaitFor(
      [&] {
        return NodeLog(l).find("[propose-expire-node]") != std::string::npos &&
               NodeLog(l).find("[propose-foreign-session]") != std::string::npos;
      },
      Millis(10000)))
      << NodeLog(l);
  auto until = Clock::now() + Millis(6000);
  while (Clock::now() < until) {
    ASSERT_NE(Locks(l).find("held n2"), std::string::npos) << NodeLog(l);
    ASSERT_TRUE(holder->Running());
    usleep(500 * 1000);
  }
}

}  // namespace
}  // namespace lockmesh::testing
