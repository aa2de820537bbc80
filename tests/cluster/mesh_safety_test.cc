// Safety under faults. Clients on all five hosts increment one shared
// counter under an exclusive lock for more than 60 s, while the harness kills and restarts the
// leader, takes a voter's link down and up, isolates a learner and rejoins it, and drops 10% of
// the packets of two hosts. At the end the critical sections are checked:
//   * no two critical sections overlap (start/end on CLOCK_MONOTONIC, one clock for all hosts);
//   * fencing tokens strictly increase in the order the sections started;
//   * the counter equals the number of increments that happened, every increment whose lock
//     reported success is among them, and the others are accounted for (see CheckHistory).
//
// The critical section is the `increment` subcommand of this binary's tool mode
// (support/mesh_cluster.cc), run by `lockmesh lock -x -w 30 counter -- <tool> increment ...`.
// It appends to the log of its host (one write per record):
//   S <token> <run> <start ns> <value read> <token of the section that wrote that value>
//   E <token> <run> <end ns>      the increment is done (it was the last step)
//   T <token> <run> <ns>          SIGTERM: the lock was lost, the command is stopped (exit 143)
// The counter file holds "<value> <token of its writer>", replaced by one rename() of a
// complete new file: an increment happened entirely or not at all, and every value names the
// section that wrote it.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cluster/support/mesh_cluster.h"

namespace lockmesh::testing {
namespace {

double Seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

// One `lockmesh lock` run of a client loop.
struct ClientRun {
  std::string id;  // h<i>-<k>
  size_t host = 0;
  int code = -1;  // exit code of `lockmesh lock` (-1: hung, killed by the test)
  int64_t begin_ns = 0, end_ns = 0;
  std::string output;  // when code != 0
};

// One critical section, from the records of its command.
struct Section {
  uint64_t token = 0;
  std::string run;
  bool started = false;
  int64_t start_ns = 0;
  int64_t end_ns = 0;   // E
  int64_t term_ns = 0;  // T
  long long read_value = 0;
  uint64_t read_writer = 0;
  int64_t Until() const { return end_ns ? end_ns : term_ns; }
};

struct History {
  std::map<uint64_t, Section> sections;  // by token
  std::map<std::string, ClientRun> runs;       // by run id
  long long counter = 0;                 // final value
  uint64_t counter_writer = 0;
  std::vector<std::string> problems;  // malformed or duplicate records
};

void ParseLog(const std::string& text, History* h) {
  for (const std::string& line : SplitLines(text)) {
    std::istringstream in(line);
    std::string kind, run;
    uint64_t token = 0;
    int64_t ns = 0;
    in >> kind >> token >> run >> ns;
    if (!in || token == 0) {
      h->problems.push_back("malformed record: " + line);
      continue;
    }
    Section& s = h->sections[token];
    if (!s.run.empty() && s.run != run) {
      h->problems.push_back("token " + std::to_string(token) + " handed to two runs: " + s.run +
                            " and " + run);
    }
    s.token = token;
    s.run = run;
    if (kind == "S") {
      if (s.started) h->problems.push_back("two starts with token " + std::to_string(token));
      s.started = true;
      s.start_ns = ns;
      in >> s.read_value >> s.read_writer;
    } else if (kind == "E") {
      s.end_ns = ns;
    } else if (kind == "T") {
      s.term_ns = ns;
    } else {
      h->problems.push_back("unknown record: " + line);
    }
  }
}

std::string Describe(const History& h, const Section& s) {
  std::string d = "token " + std::to_string(s.token) + " (run " + s.run;
  auto r = h.runs.find(s.run);
  if (r != h.runs.end()) d += ", lock exit " + std::to_string(r->second.code);
  d += ") start " + std::to_string(s.start_ns) + " end " + std::to_string(s.end_ns) + " term " +
       std::to_string(s.term_ns);
  return d;
}

// The verdict on a history. Counting (why "counter == successes" needs care): a run whose
// `lockmesh lock` exits 0 ran its section to the end while holding the lock, so its increment
// happened exactly once. A run whose lock was lost mid-section (exit 95: the command got
// SIGTERM and was stopped) or whose node vanished (99) may or may not have made its increment:
// the rename is atomic, so either the new value (naming that section's token) was written or
// nothing was. Which one is known from the chain of writers: every section records the writer
// of the value it read, and the final file names the last writer. So:
//   committed  = { writers read by some section } + { the final writer }
//   every success is committed, the values written by the committed sections are exactly
//   1..counter (no lost or doubled increment), and
//   counter == successes + |committed sections whose lock did not report success|
// the last term being the ambiguous increments, listed with their exit codes.
void CheckHistory(const History& h, int64_t* successes_out) {
  for (const std::string& p : h.problems) ADD_FAILURE() << p;
  // Sections in start order.
  std::vector<const Section*> order;
  for (const auto& [token, s] : h.sections) {
    if (!s.started) {
      // SIGTERM before the start record: the command did nothing (no read, no write).
      if (s.end_ns) ADD_FAILURE() << "an end without a start: " << Describe(h, s);
      continue;
    }
    if (s.Until() == 0) {
      ADD_FAILURE() << "a critical section that never ended (neither E nor T): "
                    << Describe(h, s);
      continue;
    }
    order.push_back(&s);
  }
  std::sort(order.begin(), order.end(),
            [](const Section* a, const Section* b) { return a->start_ns < b->start_ns; });
  int overlaps = 0, disorders = 0;
  const Section* latest_end = nullptr;  // the section that ends last among those before
  for (size_t k = 0; k < order.size(); ++k) {
    const Section* s = order[k];
    if (k > 0 && s->token <= order[k - 1]->token && ++disorders <= 10) {
      ADD_FAILURE() << "tokens do not increase in start order: " << Describe(h, *order[k - 1])
                    << " then " << Describe(h, *s);
    }
    if (latest_end && s->start_ns <= latest_end->Until() && ++overlaps <= 10) {
      ADD_FAILURE() << "critical sections overlap by "
                    << Seconds(latest_end->Until() - s->start_ns) << " s: "
                    << Describe(h, *latest_end) << " and " << Describe(h, *s);
    }
    if (!latest_end || s->Until() > latest_end->Until()) latest_end = s;
  }
  EXPECT_EQ(overlaps, 0);
  EXPECT_EQ(disorders, 0);

  std::set<uint64_t> committed;
  for (const Section* s : order) {
    if (s->read_writer != 0) committed.insert(s->read_writer);
  }
  if (h.counter_writer != 0) committed.insert(h.counter_writer);
  std::map<long long, uint64_t> written;  // value -> writer
  for (uint64_t t : committed) {
    auto it = h.sections.find(t);
    if (it == h.sections.end() || !it->second.started) {
      ADD_FAILURE() << "a value was written by token " << t << ", which has no critical section";
      continue;
    }
    long long v = it->second.read_value + 1;
    if (written.count(v)) {
      ADD_FAILURE() << "value " << v << " written twice (a lost update): tokens " << written[v]
                    << " and " << t;
    }
    written[v] = t;
  }
  EXPECT_EQ(static_cast<long long>(committed.size()), h.counter)
      << "the counter does not equal the number of increments that happened";
  for (long long v = 1; v <= h.counter; ++v) {
    if (!written.count(v)) {
      ADD_FAILURE() << "no committed section wrote value " << v;
      break;
    }
  }

  // Runs: every success ran a complete section that is committed.
  std::map<std::string, uint64_t> token_of_run;
  for (const auto& [token, s] : h.sections) token_of_run[s.run] = token;
  int64_t successes = 0;
  std::map<int, int> ambiguous_codes;
  int64_t ambiguous = 0;
  for (const auto& [id, r] : h.runs) {
    auto t = token_of_run.find(id);
    if (r.code == 0) {
      ++successes;
      if (t == token_of_run.end()) {
        ADD_FAILURE() << "run " << id << " reported success but its command never ran";
        continue;
      }
      const Section& s = h.sections.at(t->second);
      EXPECT_TRUE(s.end_ns != 0 && s.term_ns == 0)
          << "run " << id << " reported success but its section did not end normally: "
          << Describe(h, s);
      EXPECT_TRUE(committed.count(s.token))
          << "run " << id << " reported success but its increment is lost: " << Describe(h, s);
    } else if (t != token_of_run.end() && committed.count(t->second)) {
      ++ambiguous;
      ++ambiguous_codes[r.code];
    }
  }
  EXPECT_EQ(h.counter, successes + ambiguous);
  std::string codes;
  for (auto [code, n] : ambiguous_codes) {
    codes += " " + std::to_string(n) + " x exit " + std::to_string(code);
  }
  printf("counter %lld = %lld increments whose lock reported success + %lld whose lock was lost "
         "after the increment was made (%s )\n",
         h.counter, static_cast<long long>(successes), static_cast<long long>(ambiguous),
         codes.c_str());
  printf("%zu critical sections checked: no overlap found: %s, tokens rising: %s\n", order.size(),
         overlaps == 0 ? "yes" : "NO", disorders == 0 ? "yes" : "NO");
  *successes_out = successes;
}

class MeshSafetyTest : public MeshTest {};

TEST_F(MeshSafetyTest, SharedCounterUnderFaultsNeverOverlapsAndTokensRise) {
  LOCKMESH_REQUIRE_NETNS();
  constexpr double kMinClientSeconds = 65;
  MeshOptions options;
  options.net.hosts = 5;
  options.security = "mutual";
  options.expect = 3;
  options.voters = 3;
  options.session_ttl_s = 4;
  options.election_timeout_ms = 1000;
  ASSERT_NO_FATAL_FAILURE(Make(options));
  mesh_->StartAll();
  std::string why;
  ASSERT_TRUE(mesh_->WaitFormed(mesh_->HostsExcept(), 3, 5, Millis(30000), &why))
      << why << mesh_->Describe();

  // Roles at the start: the leader, the other voters, the learners.
  std::optional<size_t> leader = mesh_->WaitLeader(mesh_->HostsExcept(), Millis(10000));
  ASSERT_TRUE(leader.has_value());
  std::set<std::string> voter_ids = mesh_->Status(*leader).VoterIds();
  std::vector<size_t> followers, learners;
  for (size_t i = 0; i < mesh_->size(); ++i) {
    if (i == *leader) continue;
    (voter_ids.count(MeshCluster::NodeId(i)) ? followers : learners).push_back(i);
  }
  ASSERT_EQ(followers.size(), 2u);
  ASSERT_EQ(learners.size(), 2u);

  const std::string dir = mesh_->Path("safety");
  ASSERT_EQ(RunCommand({"mkdir", "-p", dir}).code, 0);
  std::mutex mu;
  std::map<std::string, ClientRun> runs;
  std::atomic<bool> stop{false};
  std::atomic<int> ok_count{0};
  std::vector<std::thread> clients;
  for (size_t i = 0; i < mesh_->size(); ++i) {
    clients.emplace_back([&, i] {
      const std::string log = dir + "/cs-" + MeshCluster::NodeId(i) + ".log";
      // Bounded: stopped by the test, at most 5000 runs per host.
      for (int k = 0; k < 5000 && !stop.load(); ++k) {
        ClientRun r;
        r.id = MeshCluster::NodeId(i) + "-" + std::to_string(k);
        r.host = i;
        r.begin_ns = MonotonicNs();
        CommandResult c =
            mesh_->Lock(i, "counter", {"-x", "-w", "30", "--grace", "2"},
                        ToolArgv({"increment", dir, log, r.id, "20"}), Millis(60000));
        r.end_ns = MonotonicNs();
        r.code = c.code;
        if (c.code != 0) r.output = c.output.substr(0, 1000);
        if (c.code == 0) ++ok_count;
        {
          std::lock_guard<std::mutex> lock(mu);
          runs[r.id] = r;
        }
        if (c.code != 0) usleep(300 * 1000);
      }
    });
  }
  const int64_t t0 = MonotonicNs();
  std::vector<std::string> schedule;
  {
    // Node logs are stamped with UTC wall time: say which wall time +0 is.
    timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    char buf[64];
    strftime(buf, sizeof buf, "%H:%M:%S", gmtime(&wall.tv_sec));
    schedule.push_back(std::string("+  0.00 s = ") + buf + "." +
                       std::to_string(wall.tv_nsec / 1000000) + "Z in the node logs");
  }
  auto note = [&](const std::string& what) {
    char buf[64];
    snprintf(buf, sizeof buf, "+%6.2f s  ", Seconds(MonotonicNs() - t0));
    schedule.push_back(buf + what + " (successes so far " + std::to_string(ok_count.load()) +
                       ")");
  };
  auto expect_ok = [&](const mesh::Status& st, const std::string& what) {
    EXPECT_TRUE(st.ok()) << what << ": " << st.ToString();
    note(what + (st.ok() ? "" : " FAILED: " + st.ToString()));
  };
  // A pause of the schedule, during which the clients run: bounded by `seconds`.
  auto run_for = [&](double seconds) {
    int64_t until = MonotonicNs() + static_cast<int64_t>(seconds * 1e9);
    while (MonotonicNs() < until) usleep(100 * 1000);
  };
  auto wait_rejoined = [&](size_t host, const std::string& what) {
    bool ok = WaitFor(
        [&] {
          NodeView v = mesh_->Status(host);
          return v.ok && !v.leader_id.empty() && v.HasMember(MeshCluster::NodeId(host)) &&
                 mesh_->AgreedLeader(mesh_->HostsExcept()).has_value();
        },
        Millis(40000), Millis(200));
    EXPECT_TRUE(ok) << what << ": not back in the cluster\n" << mesh_->Describe();
    note(what + (ok ? ": back, one leader agreed by all" : ": NOT back"));
  };

  ASSERT_TRUE(WaitFor([&] { return ok_count.load() >= 10; }, Millis(60000), Millis(100)))
      << "the clients make no progress before any fault\n"
      << mesh_->Describe();
  note("clients running");
  // 10% loss on a follower and a learner, for the whole run.
  expect_ok(mesh_->net().SetLoss(followers[1], 10),
            "10% loss on " + MeshCluster::NodeId(followers[1]) + " (voter)");
  expect_ok(mesh_->net().SetLoss(learners[1], 10),
            "10% loss on " + MeshCluster::NodeId(learners[1]) + " (learner)");
  run_for(4);

  // 1. The leader is killed (kill -9 of its node; its clients stay and see their node go),
  //    and restarted with its data a few seconds later.
  mesh_->KillNode(*leader);
  note("kill -9 of the leader " + MeshCluster::NodeId(*leader));
  std::optional<size_t> next =
      mesh_->WaitLeader(mesh_->HostsExcept({*leader}), Millis(30000), *leader);
  EXPECT_TRUE(next.has_value()) << "no new leader\n" << mesh_->Describe();
  note("new leader " + (next ? MeshCluster::NodeId(*next) : std::string("NONE")));
  run_for(4);
  mesh_->RestartNode(*leader);
  note("restarted " + MeshCluster::NodeId(*leader));
  wait_rejoined(*leader, "restarted " + MeshCluster::NodeId(*leader));
  run_for(4);

  // 2. A voter that does not lead now: link down for 8 s, then up.
  std::optional<size_t> now_leader = mesh_->AgreedLeader(mesh_->HostsExcept());
  size_t voter = followers[0];
  for (const std::string& id : mesh_->Status(now_leader.value_or(0)).VoterIds()) {
    auto h = mesh_->HostOf(id);
    if (h && (!now_leader || *h != *now_leader)) {
      voter = *h;
      break;
    }
  }
  expect_ok(mesh_->net().LinkDown(voter), "link down: voter " + MeshCluster::NodeId(voter));
  run_for(8);
  expect_ok(mesh_->net().LinkUp(voter), "link up: voter " + MeshCluster::NodeId(voter));
  wait_rejoined(voter, "voter " + MeshCluster::NodeId(voter));
  run_for(4);

  // 3. A learner isolated for 10 s (longer than the session ttl: its locks are lost), then
  //    rejoined.
  expect_ok(mesh_->net().Isolate(learners[0]),
            "isolated: learner " + MeshCluster::NodeId(learners[0]));
  run_for(10);
  expect_ok(mesh_->net().Rejoin(learners[0]),
            "rejoined: learner " + MeshCluster::NodeId(learners[0]));
  wait_rejoined(learners[0], "learner " + MeshCluster::NodeId(learners[0]));

  // The rest of the minimum time with loss only, then the clients stop.
  while (Seconds(MonotonicNs() - t0) < kMinClientSeconds) usleep(100 * 1000);
  // What every node holds and queues just before the clients stop (shown if it got stuck).
  std::string tables;
  for (size_t i = 0; i < mesh_->size(); ++i) {
    CommandResult locks = RunCommand(
        {LockmeshBinary(), "locks", "--socket", mesh_->Socket(i), "--json"}, Millis(5000));
    tables += "  " + MeshCluster::NodeId(i) + ": " + mesh_->Status(i).Summary() + "\n    locks: " +
              locks.output.substr(0, 1500) + "\n";
  }
  mesh_->net().ClearImpairment(followers[1]);
  mesh_->net().ClearImpairment(learners[1]);
  note("loss removed; stopping the clients");
  stop = true;
  for (std::thread& t : clients) t.join();
  note("clients stopped");
  printf("fault schedule:\n");
  for (const std::string& s : schedule) printf("  %s\n", s.c_str());

  History h;
  h.runs = runs;
  for (size_t i = 0; i < mesh_->size(); ++i) {
    ParseLog(ReadFile(dir + "/cs-" + MeshCluster::NodeId(i) + ".log"), &h);
  }
  {
    std::istringstream in(ReadFile(dir + "/counter"));
    in >> h.counter >> h.counter_writer;
  }
  std::map<size_t, std::map<int, int>> codes;  // host -> exit code -> runs
  for (const auto& [id, r] : runs) ++codes[r.host][r.code];
  for (const auto& [host, by_code] : codes) {
    std::string line;
    for (auto [code, n] : by_code) line += " " + std::to_string(n) + " x " + std::to_string(code);
    printf("client on %s: runs by exit code:%s\n", MeshCluster::NodeId(host).c_str(),
           line.c_str());
  }
  // The unusual ends first (hung, crashed, lost), then a few "no node" / timeouts.
  int shown = 0;
  for (const auto& [id, r] : runs) {
    if (r.code != 0 && r.code != 94 && r.code != 98 && r.code != 99 && shown++ < 20) {
      printf("  run %s exit %d at +%.2f s: %s\n", id.c_str(), r.code, Seconds(r.begin_ns - t0),
             r.output.substr(0, 300).c_str());
    }
  }
  for (const auto& [id, r] : runs) {
    if ((r.code == 94 || r.code == 98 || r.code == 99) && shown++ < 26) {
      printf("  run %s exit %d at +%.2f s: %s\n", id.c_str(), r.code, Seconds(r.begin_ns - t0),
             r.output.substr(0, 300).c_str());
    }
  }
  // Liveness, reported with the safety verdict: the longest time in which no client on any
  // host completed an increment. Every fault here heals or fails over within a few seconds
  // (session ttl 4 s, election timeout 1 s), so a long stall means a lock got stuck.
  std::vector<int64_t> done;
  for (const auto& [id, r] : runs) {
    if (r.code == 0) done.push_back(r.end_ns);
  }
  std::sort(done.begin(), done.end());
  int64_t prev = t0, worst_gap = 0, worst_at = t0;
  for (int64_t d : done) {
    if (d - prev > worst_gap) {
      worst_gap = d - prev;
      worst_at = prev;
    }
    prev = d;
  }
  const int64_t end_of_run = MonotonicNs();
  if (end_of_run - prev > worst_gap) {
    worst_gap = end_of_run - prev;
    worst_at = prev;
  }
  printf("longest time without a successful increment on any host: %.2f s, from +%.2f s\n",
         Seconds(worst_gap), Seconds(worst_at - t0));
  EXPECT_LT(Seconds(worst_gap), 20.0)
      << "the counter lock was stuck (no client on any host got it) for " << Seconds(worst_gap)
      << " s from +" << Seconds(worst_at - t0)
      << " s; see the fault schedule above. Lock tables at the end of the run:\n"
      << tables;
  // `lockmesh lock` never crashes: a lost node connection is an exit code (95 or 99), not
  // an abort (128 + SIGABRT).
  int crashed = 0;
  std::string crash;
  for (const auto& [id, r] : runs) {
    if (r.code >= 128) {
      ++crashed;
      if (crash.empty()) crash = id + ": " + r.output.substr(0, 400);
    }
  }
  EXPECT_EQ(crashed, 0) << "lockmesh lock runs ended by a signal, e.g. " << crash;
  int64_t successes = 0;
  CheckHistory(h, &successes);
  printf("%.1f s of clients on 5 hosts, %lld successful increments\n",
         Seconds(MonotonicNs() - t0), static_cast<long long>(successes));
  EXPECT_GE(successes, 50) << "too little progress to say anything";
  // Everyone is back in one cluster at the end.
  EXPECT_TRUE(mesh_->WaitFormed(mesh_->HostsExcept(), 3, 5, Millis(30000), &why)) << why;
}

}  // namespace
}  // namespace lockmesh::testing
