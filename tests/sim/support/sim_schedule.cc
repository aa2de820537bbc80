#include "sim/support/sim_schedule.h"

#include <algorithm>
#include <string>
#include <vector>

namespace mesh::sim {
namespace {

constexpr Time kSecond = 1'000'000;
constexpr Time kFaultPhase = 60 * kSecond;
constexpr Time kSettle = 5 * kSecond;
constexpr Time kServeLimit = 10 * kSecond;
// Once a removal leaves fewer voters than the schedule started with, they are restored as
// net/ restores them (ManageMembership: a joiner becomes a learner, a caught-up learner is
// promoted up to --voters), one step this often.
constexpr Time kRepairEvery = 1'500'000;

using TearMode = core::FaultFileSystem::TearMode;

struct Undo {
  Time at;
  int kind;  // 0 heal, 1 restart node `node`, 2 restore link, 3 end loss burst, 4 repair,
             // 5 free node `node`'s disk
  int node;
  int to;
};

}  // namespace

bool ParseFaultKinds(const std::string& text, uint32_t* out) {
  uint32_t bits = 0;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string word =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (word == "freeze")
      bits |= kFreeze;
    else if (word == "jump")
      bits |= kClockJump;
    else if (word == "wall")
      bits |= kWallStep;
    else if (word == "rogue")
      bits |= kRogue;
    else if (word == "disk")
      bits |= kDiskFull;
    else if (word == "all")
      bits |= kFreeze | kClockJump | kWallStep | kRogue | kDiskFull;
    else if (word != "none")
      return false;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  *out = bits;
  return true;
}

std::string ReplayCommand(uint64_t seed) {
  return "build-sim/tests/sim_soak --seed " + std::to_string(seed) + " --verbose";
}

ScheduleResult RunSchedule(uint64_t seed, bool verbose, uint32_t faults) {
  SimRandom pick(seed ^ 0x5eed5eed5eed5eedull);
  SimOptions options;
  options.seed = seed;
  options.voters = pick.Chance(0.5) ? 3 : 5;
  options.spares = 1;
  options.verbose = verbose;
  // Fewer heartbeats, keepalives and client requests per virtual second than the defaults:
  // the same faults and races at a third of the cost, so that many more schedules run.
  options.heartbeat_interval = 200'000;
  options.keepalive_interval = 500'000;
  options.client_think_max = 1'500'000;
  options.client_lease_interval = 1'000'000;  // the node's lease runs ~2.9 s past each ack
  // A third of the schedules replicate one entry per APPEND with a small pipeline, so that
  // followers' match indexes move one entry at a time (commit-rule races) and probing runs.
  if (pick.Chance(0.33)) {
    options.max_append_bytes = 1;
    options.max_inflight = 1 + pick.Below(4);
  }
  // Most schedules stream snapshots in chunks of a few dozen bytes (a lock table here is a
  // few hundred bytes to a few KB), with a window of 1 to 4 chunks.
  if (pick.Chance(0.75)) {
    options.max_snapshot_chunk_bytes = 16 + pick.Below(240);
    options.max_snapshot_chunks_inflight = 1 + pick.Below(4);
  }
  Cluster cluster(options);
  cluster.Start();
  SimRandom& rng = cluster.fault_random();
  const int n = cluster.size();

  std::vector<Undo> undo{{kRepairEvery, 4, 0, 0}};
  Time next_fault = 2 * kSecond + rng.Below(2 * kSecond);
  while (!cluster.failed() && cluster.now() < kFaultPhase) {
    Time next = next_fault;
    for (const Undo& u : undo) next = std::min(next, u.at);
    next = std::min(next, kFaultPhase);
    cluster.RunFor(next - cluster.now());
    if (cluster.failed()) break;
    // Undo what is due.
    for (size_t k = 0; k < undo.size();) {
      const Undo u = undo[k];
      if (u.at > cluster.now()) {
        ++k;
        continue;
      }
      undo.erase(undo.begin() + k);
      switch (u.kind) {
        case 0: cluster.Heal(); break;
        case 1: cluster.Restart(u.node); break;
        case 2: cluster.SetLink(u.node, u.to, true); break;
        case 3: cluster.SetLoss(0.01); break;
        case 5: cluster.FreeDisk(u.node); break;
        case 4: {
          // Restore the voter count (net/'s automatic membership; no random draw, so the
          // schedule's faults are drawn as before): promote a learner (refused until it
          // has caught up), else add a spare; again later until the voters are back.
          undo.push_back({cluster.now() + kRepairEvery, 4, 0, 0});
          if (cluster.VoterCount() >= options.voters) break;
          std::vector<int> spares, learners;
          for (int i = 0; i < n; ++i) {
            if (!cluster.up(i)) continue;
            if (!cluster.IsMember(i)) {
              spares.push_back(i);
            } else if (!cluster.IsVoter(i)) {
              learners.push_back(i);
            }
          }
          if (cluster.Leader() >= 0) {
            if (!learners.empty()) {
              cluster.Promote(learners.front());
            } else if (!spares.empty()) {
              cluster.AddLearner(spares.front());
            }
          }
          break;
        }
      }
    }
    if (cluster.now() < next_fault) continue;
    next_fault = cluster.now() + kSecond + rng.Below(6 * kSecond);
    const Time duration = 500'000 + rng.Below(5 * kSecond);
    // The extra fault kinds take three of eleven draws, each enabled kind a share.
    uint64_t kind = rng.Below(11);
    std::vector<uint32_t> extra;
    for (uint32_t bit : {kFreeze, kClockJump, kWallStep, kRogue, kDiskFull}) {
      if (faults & bit) extra.push_back(bit);
    }
    if (kind >= 8) {
      if (extra.empty()) {
        kind = rng.Below(8);
      } else {
        const uint32_t bit = extra[rng.Below(extra.size())];
        kind = bit == kFreeze      ? 8
               : bit == kClockJump ? 9
               : bit == kWallStep  ? 10
               : bit == kRogue     ? 11
                                   : 12;
      }
    }
    switch (kind) {
      case 0: {  // symmetric partition into two groups
        std::vector<int> a, b;
        for (int i = 0; i < n; ++i) (rng.Chance(0.5) ? a : b).push_back(i);
        cluster.Partition({a, b});
        undo.push_back({cluster.now() + duration, 0, 0, 0});
        break;
      }
      case 1: {  // isolate the leader
        const int l = cluster.Leader();
        if (l < 0) break;
        cluster.Partition({{l}});
        undo.push_back({cluster.now() + duration, 0, 0, 0});
        break;
      }
      case 2: {  // one-way link cuts
        const int from = static_cast<int>(rng.Below(n));
        for (int k = 0; k < 2; ++k) {
          const int to = static_cast<int>(rng.Below(n));
          if (to == from) continue;
          cluster.SetLink(from, to, false);
          undo.push_back({cluster.now() + duration, 2, from, to});
        }
        break;
      }
      case 3:
      case 4: {  // crash (sometimes the leader) and restart later
        int victim = rng.Chance(0.4) ? cluster.Leader() : static_cast<int>(rng.Below(n));
        if (victim < 0 || !cluster.up(victim)) break;
        const uint64_t m = rng.Below(3);
        const TearMode mode = m == 0   ? TearMode::kDropUnsynced
                              : m == 1 ? TearMode::kTearLastWrite
                                       : TearMode::kGarbleLastWrite;
        if (rng.Chance(0.5)) {
          cluster.Crash(victim, mode);
        } else {
          cluster.CrashAfterNextWrite(victim, mode);  // the worst moment, if it comes soon
        }
        undo.push_back({cluster.now() + rng.Between(200'000, 6 * kSecond), 1, victim, 0});
        break;
      }
      case 5: {  // loss burst
        cluster.SetLoss(0.2 + 0.4 * rng.Unit());
        undo.push_back({cluster.now() + std::min<Time>(duration, 3 * kSecond), 3, 0, 0});
        break;
      }
      case 8: {  // freeze a node (the leader 30% of the time), past the ttl half of the time
        const int victim = rng.Chance(0.3) ? cluster.Leader() : static_cast<int>(rng.Below(n));
        if (victim < 0 || !cluster.up(victim)) break;
        const Time d = rng.Chance(0.5) ? options.session_ttl + rng.Between(500'000, 5 * kSecond)
                                       : rng.Between(200'000, 2'500'000);
        cluster.Freeze(victim, d);
        break;
      }
      case 9: {  // a monotonic jump past the election timeout (the leader half of the time)
        const int victim = rng.Chance(0.5) ? cluster.Leader() : static_cast<int>(rng.Below(n));
        if (victim < 0 || !cluster.up(victim)) break;
        cluster.JumpClock(victim, options.election_timeout + rng.Below(6 * kSecond));
        break;
      }
      case 10: {  // a wall-clock step (up to 2 h either way), then often a restart
        const int victim = static_cast<int>(rng.Below(n));
        if (!cluster.up(victim)) break;
        const int64_t step = static_cast<int64_t>(rng.Between(kSecond, 7200 * kSecond));
        cluster.StepWall(victim, rng.Chance(0.6) ? -step : step);
        if (rng.Chance(0.6)) {
          cluster.Crash(victim, TearMode::kDropUnsynced);
          undo.push_back({cluster.now() + rng.Between(200'000, 3 * kSecond), 1, victim, 0});
        }
        break;
      }
      case 11:  // a burst of forged messages, as a non-member or claiming members' ids;
                // now and then the rogue first asks to join and becomes a learner
        if (!cluster.RogueIsMember() && rng.Chance(0.25)) cluster.RogueJoin();
        cluster.RogueBurst(static_cast<int>(rng.Between(5, 40)), rng.Chance(0.5));
        break;
      case 12: {  // a disk fills (the leader's a third of the time), for up to ~8 s
        const int victim = rng.Chance(0.33) ? cluster.Leader() : static_cast<int>(rng.Below(n));
        if (victim < 0) break;
        // Most often no room at all; else a few KB, which a segment's growth or the next
        // snapshot outruns.
        const uint64_t slack = rng.Chance(0.6) ? 0 : rng.Below(16 << 10);
        cluster.FillDisk(victim, slack);
        undo.push_back({cluster.now() + duration + rng.Below(3 * kSecond), 5, victim, 0});
        break;
      }
      default: {  // membership: add a spare, promote a learner, or remove a member
        std::vector<int> spares, learners, voters;
        for (int i = 0; i < n; ++i) {
          if (!cluster.up(i)) continue;
          if (!cluster.IsMember(i)) spares.push_back(i);
          else if (cluster.IsVoter(i)) voters.push_back(i);
          else learners.push_back(i);
        }
        if (!learners.empty() && rng.Chance(0.7)) {
          cluster.Promote(learners[rng.Below(learners.size())]);
        } else if (!spares.empty() && learners.empty()) {
          cluster.AddLearner(spares[rng.Below(spares.size())]);
        } else if (static_cast<int>(voters.size()) > options.voters - 1 ||
                   (!learners.empty() && rng.Chance(0.5))) {
          std::vector<int>& from = !learners.empty() && rng.Chance(0.3) ? learners : voters;
          if (!from.empty()) cluster.Remove(from[rng.Below(from.size())]);
        }
        break;
      }
    }
  }
  // Settle: heal everything, restart what is down, let the cluster converge.
  if (!cluster.failed()) {
    cluster.Heal();
    for (const Undo& u : undo) {
      if (u.kind == 1) cluster.Restart(u.node);
      if (u.kind == 5) cluster.FreeDisk(u.node);
    }
    cluster.RunFor(kSettle);
  }
  // Liveness after the settle: every running member serves clients again (its client ids
  // are ready, a session is open) within kServeLimit: a node whose new sessions are all
  // refused, or whose ids never come, fails the schedule.
  std::string not_serving;
  if (!cluster.failed() &&
      !cluster.RunUntil([&] { return cluster.AllMembersServe(&not_serving); }, kServeLimit)) {
    cluster.mutable_checker().Fail(cluster.now(), "liveness: " + not_serving + " " +
                                                      std::to_string(kServeLimit / kSecond) +
                                                      " s after the cluster settled");
  }

  ScheduleResult result;
  result.ok = !cluster.failed();
  result.voters = options.voters;
  result.virtual_time = cluster.now();
  result.stats = cluster.stats();
  result.leader_terms = cluster.checker().leader_terms();
  result.max_applied = cluster.checker().max_applied();
  result.rich = result.virtual_time >= kFaultPhase && result.stats.client_ops >= 100 &&
                result.stats.faults >= 5 && (options.voters == 3 || options.voters == 5);
  if (!result.ok || !result.rich) {
    result.report = cluster.Report() + (result.rich ? "" : "NOT RICH ENOUGH: ") +
                    "ops=" + std::to_string(result.stats.client_ops) +
                    " faults=" + std::to_string(result.stats.faults) +
                    " virtual=" + std::to_string(result.virtual_time / kSecond) + "s\n" +
                    "replay: " + ReplayCommand(seed) + "\n";
  }
  return result;
}

}  // namespace mesh::sim
