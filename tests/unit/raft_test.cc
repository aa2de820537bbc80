// Unit tests of core/raft: elections, replication, the commit rule, forwarding, leases,
// restarts and hostile input, on the in-memory network of support/raft_network.h.
#include "core/raft/raft.h"

#include <gtest/gtest.h>

#include "support/raft_network.h"

namespace mesh::core::raft {
namespace {

using testing::MakeConfig;
using testing::Network;
using testing::SeqRandom;

const std::vector<std::string> kThree = {"n1", "n2", "n3"};
const std::vector<std::string> kFive = {"n1", "n2", "n3", "n4", "n5"};

TEST(RaftTest, OpenRejectsBadOptionsAndState) {
  SeqRandom random(1);
  std::unique_ptr<Raft> raft;
  RaftOptions o;
  EXPECT_TRUE(Raft::Open(o, {}, &random, 0, &raft).IsInvalidArgument());  // no id
  o.id = "n1";
  o.heartbeat_interval = o.election_timeout;
  EXPECT_TRUE(Raft::Open(o, {}, &random, 0, &raft).IsInvalidArgument());
  o = RaftOptions{};
  o.id = "n1";
  PersistentState gap;
  gap.entries.resize(1);
  gap.entries[0].set_index(2);
  gap.entries[0].set_term(1);
  EXPECT_TRUE(Raft::Open(o, gap, &random, 0, &raft).IsCorruption());
  PersistentState decreasing;
  decreasing.entries.resize(2);
  decreasing.entries[0].set_index(1);
  decreasing.entries[0].set_term(2);
  decreasing.entries[1].set_index(2);
  decreasing.entries[1].set_term(1);
  EXPECT_TRUE(Raft::Open(o, decreasing, &random, 0, &raft).IsCorruption());
  EXPECT_TRUE(Raft::Open(o, {}, &random, 0, &raft).ok());
}

TEST(RaftTest, SingleNodeElectsItselfAndCommits) {
  Network net({"n1"});
  net.BootstrapAll({"n1"});
  EXPECT_EQ(net.raft("n1").role(), Role::kLeader);  // the only voter campaigns at once
  ASSERT_TRUE(net.Propose("n1", "a").ok());
  ASSERT_TRUE(net.Propose("n1", "b").ok());
  EXPECT_EQ(net.node("n1").commands, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(net.raft("n1").HasLeaderLease(net.now()));
  EXPECT_TRUE(net.raft("n1").Bootstrap(net.now(), MakeConfig({"n1"})).IsUnavailable());
}

TEST(RaftTest, ThreeNodesElectOneLeaderAndReplicate) {
  Network net(kThree);
  net.BootstrapAll(kThree);
  std::string leader = net.WaitForLeader();
  ASSERT_FALSE(leader.empty());
  // Elected within two election timeouts (first timer in [T, 2T)), plus pre-vote round trips.
  EXPECT_LE(net.now(), 2'100'000u);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(net.Propose(leader, "c" + std::to_string(i)).ok());
  net.Run(200'000);
  for (const auto& id : kThree) {
    EXPECT_EQ(net.node(id).commands.size(), 10u) << id;
    EXPECT_EQ(net.raft(id).leader(), leader);
    EXPECT_EQ(net.raft(id).commit_index(), net.raft(leader).last_index());
  }
}

TEST(RaftTest, ElectionsOverManySeedsHaveOneLeaderPerTerm) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    Network net(kFive, Network::DefaultOptions(), seed);
    net.BootstrapAll(kFive);
    ASSERT_FALSE(net.WaitForLeader().empty()) << seed;
    // Partition the leader away repeatedly; the network checks one leader per term.
    for (int round = 0; round < 3; ++round) {
      std::string leader = net.Leader();
      net.Isolate(leader);
      net.Run(3'000'000);
      net.Heal();
      net.Run(1'000'000);
      ASSERT_FALSE(net.Leader().empty()) << "seed " << seed;
      ASSERT_TRUE(net.Propose(net.Leader(), "x").ok());
    }
  }
}

TEST(RaftTest, IsolatedLeaderStepsDownByCheckQuorum) {
  Network net(kThree);
  net.BootstrapAll(kThree);
  std::string old_leader = net.WaitForLeader();
  Time isolated_at = net.now();
  net.Isolate(old_leader);
  ASSERT_TRUE(net.RunUntil([&] { return net.raft(old_leader).role() != Role::kLeader; }));
  // It hears from nobody: it steps down within election_timeout + heartbeat_interval.
  EXPECT_LE(net.now() - isolated_at, 1'100'000u + 10'000u);
  EXPECT_FALSE(net.raft(old_leader).HasLeaderLease(net.now()));
  ASSERT_TRUE(net.RunUntil([&] {
    std::string l = net.Leader();
    return !l.empty() && l != old_leader;
  }));
  net.Heal();
  net.Run(1'000'000);
  EXPECT_NE(net.Leader(), old_leader);
}

TEST(RaftTest, PreVoteKeepsAPartitionedFollowerFromDisruptingTheLeader) {
  Network net(kThree);
  net.BootstrapAll(kThree);
  std::string leader = net.WaitForLeader();
  std::string follower = leader == "n1" ? "n2" : "n1";
  uint64_t term = net.raft(leader).term();
  net.Isolate(follower);
  net.Run(10'000'000);  // many election timeouts
  EXPECT_EQ(net.raft(follower).term(), term);  // pre-votes never bump the term
  EXPECT_EQ(net.raft(follower).role(), Role::kPreCandidate);
  net.Heal();
  net.Run(3'000'000);
  EXPECT_EQ(net.Leader(), leader);
  EXPECT_EQ(net.raft(leader).term(), term);
  EXPECT_EQ(net.raft(follower).leader(), leader);
}

TEST(RaftTest, CheckQuorumVotersIgnoreACandidateWhileTheyHearFromALeader) {
  // Without pre-vote, a partitioned follower bumps its term; on rejoining, its vote requests
  // are ignored by voters that hear from the leader, and the leader ignores them too.
  RaftOptions o = Network::DefaultOptions();
  o.pre_vote = false;
  Network net(kThree, o);
  net.BootstrapAll(kThree);
  std::string leader = net.WaitForLeader();
  std::string follower = leader == "n1" ? "n2" : "n1";
  net.Isolate(follower);
  net.Run(5'000'000);
  EXPECT_GT(net.raft(follower).term(), net.raft(leader).term());
  net.Heal();
  net.Run(200'000);
  // The follower's higher term reaches the leader through its APPEND_RESPONSE, so the
  // leader steps down (as in etcd) — but no vote went to the stale candidate.
  ASSERT_FALSE(net.WaitForLeader().empty());
}

TEST(RaftTest, LeaderLeaseHoldsWhileAQuorumAcknowledges) {
  Network net(kThree);
  net.BootstrapAll(kThree);
  std::string leader = net.WaitForLeader();
  net.Run(300'000);
  EXPECT_TRUE(net.raft(leader).HasLeaderLease(net.now()));
  // One follower gone: still a quorum.
  std::string f1 = leader == "n1" ? "n2" : "n1";
  net.Isolate(f1);
  net.Run(2'000'000);
  EXPECT_TRUE(net.raft(leader).HasLeaderLease(net.now()));
  // Both gone: the lease ends within election_timeout * (1 - drift) of the last ack.
  net.Heal();
  net.Run(200'000);
  net.Isolate(leader);
  Time cut = net.now();
  net.RunUntil([&] { return !net.raft(leader).HasLeaderLease(net.now()); }, 2'000'000, 1'000);
  EXPECT_FALSE(net.raft(leader).HasLeaderLease(net.now()));
  EXPECT_LE(net.now() - cut, 990'000u + 1'000u);
  // Every node that acknowledged refuses votes until election_timeout after the last
  // contact, so no new leader exists before the old lease ran out.
  for (const auto& id : kThree) {
    if (id == leader) continue;
    EXPECT_NE(net.raft(id).role(), Role::kLeader);
  }
}

TEST(RaftTest, NewLeaderIsElectedOnlyAfterTheOldLeaseExpires) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Network net(kThree, Network::DefaultOptions(), seed);
    net.BootstrapAll(kThree);
    std::string leader = net.WaitForLeader();
    net.Run(500'000);
    net.Isolate(leader);
    Time lease_end = net.now();
    while (net.raft(leader).HasLeaderLease(lease_end)) lease_end += 1'000;
    ASSERT_TRUE(net.RunUntil(
        [&] {
          std::string l = net.Leader();
          return !l.empty() && l != leader;
        },
        30'000'000, 1'000));
    EXPECT_GE(net.now(), lease_end) << "seed " << seed;
  }
}

TEST(RaftTest, FollowerForwardsProposalsToTheLeader) {
  Network net(kThree);
  net.BootstrapAll(kThree);
  std::string leader = net.WaitForLeader();
  std::string follower = leader == "n3" ? "n2" : "n3";
  uint64_t index = 99;
  ASSERT_TRUE(net.raft(follower).Propose(net.now(), "fwd", &index).ok());
  EXPECT_EQ(index, 0u);
  net.Process(follower);
  net.Deliver();
  net.Run(200'000);
  for (const auto& id : kThree) {
    ASSERT_EQ(net.node(id).commands.size(), 1u) << id;
    EXPECT_EQ(net.node(id).commands[0], "fwd");
  }
  // No leader known: Unavailable.
  Network lonely({"a", "b"});
  lonely.BootstrapAll({"a", "b"});
  EXPECT_TRUE(lonely.raft("a").Propose(0, "x").IsUnavailable());
}

TEST(RaftTest, BatchingSendsManyProposalsInFewAppends) {
  Network net(kThree);
  net.BootstrapAll(kThree);
  std::string leader = net.WaitForLeader();
  net.Run(100'000);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(net.raft(leader).Propose(net.now(), "p").ok());
  Batch b = net.raft(leader).TakeBatch();
  EXPECT_EQ(b.entries.size(), 1000u);
  size_t appends = 0;
  for (const auto& m : b.messages) {
    if (m.type() == pb::APPEND) {
      ++appends;
      EXPECT_EQ(m.entries_size(), 1000);
    }
  }
  EXPECT_EQ(appends, 2u);
  net.raft(leader).Advance(b);
}

TEST(RaftTest, MaxAppendBytesAndMaxInflightBoundWhatIsSent) {
  RaftOptions o = Network::DefaultOptions();
  o.max_append_bytes = 1000;
  o.max_inflight = 4;
  Network net(kThree, o);
  net.BootstrapAll(kThree);
  std::string leader = net.WaitForLeader();
  net.Run(100'000);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(net.raft(leader).Propose(net.now(), std::string(100, 'x')).ok());
  }
  Batch b = net.raft(leader).TakeBatch();
  std::map<std::string, int> appends;
  for (const auto& m : b.messages) {
    if (m.type() != pb::APPEND) continue;
    ++appends[m.to()];
    size_t bytes = 0;
    for (const auto& e : m.entries()) bytes += e.data().size();
    EXPECT_LE(bytes, 1000u);
  }
  for (const auto& [to, n] : appends) EXPECT_EQ(n, 4) << to;  // the pipelining window
  net.raft(leader).Advance(b);
  for (auto& m : b.messages) net.queue().push_back(m);
  net.Deliver();
  net.Run(500'000);
  for (const auto& id : kThree) EXPECT_EQ(net.node(id).commands.size(), 100u) << id;
}

TEST(RaftTest, DivergentFollowerLogIsRepaired) {
  Network net(kFive);
  net.BootstrapAll(kFive);
  std::string old_leader = net.WaitForLeader();
  ASSERT_TRUE(net.Propose(old_leader, "committed").ok());
  net.Run(200'000);
  // The old leader appends entries nobody else receives.
  net.Isolate(old_leader);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(net.raft(old_leader).Propose(net.now(), "lost" + std::to_string(i)).ok());
  }
  net.Process(old_leader);
  ASSERT_TRUE(net.RunUntil([&] {
    std::string l = net.Leader();
    return !l.empty() && l != old_leader;
  }));
  std::string leader = net.Leader();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(net.Propose(leader, "new" + std::to_string(i)).ok());
  size_t rejects = 0;
  net.filter = [&](const pb::RaftMessage& m) {
    if (m.type() == pb::APPEND_RESPONSE && m.reject()) ++rejects;
    return true;
  };
  net.Heal();
  net.Run(1'000'000);
  EXPECT_EQ(net.raft(old_leader).last_index(), net.raft(leader).last_index());
  EXPECT_EQ(net.raft(old_leader).commit_index(), net.raft(leader).commit_index());
  for (const auto& c : net.node(old_leader).commands) EXPECT_EQ(c.rfind("lost", 0), std::string::npos);
  EXPECT_LE(rejects, 3u);  // fast backtracking: not one round trip per divergent entry
}

// Figure 8 of the Raft paper: an entry of an earlier term replicated on a majority is not
// committed by counting; it is committed with the first entry of the leader's term.
TEST(RaftTest, EntryOfAnEarlierTermIsNotCommittedByCounting) {
  SeqRandom random(7);
  PersistentState state;
  state.hard_state.term = 2;
  state.hard_state.commit = 1;
  state.entries.resize(2);
  state.entries[0].set_index(1);
  state.entries[0].set_term(1);
  state.entries[0].set_type(pb::ENTRY_CONFIG);
  state.entries[0].set_data(MakeConfig(kThree).SerializeAsString());
  state.entries[1].set_index(2);
  state.entries[1].set_term(2);
  state.entries[1].set_data("old");
  RaftOptions o = Network::DefaultOptions();
  o.id = "n1";
  std::unique_ptr<Raft> raft;
  ASSERT_TRUE(Raft::Open(o, state, &random, 0, &raft).ok());
  Time now = 5'000'000;
  raft->Tick(now);
  ASSERT_EQ(raft->role(), Role::kPreCandidate);
  auto reply = [&](pb::RaftMessageType type, uint64_t term) {
    pb::RaftMessage m;
    m.set_type(type);
    m.set_from("n2");
    m.set_to("n1");
    m.set_term(term);
    return m;
  };
  raft->Step(now, reply(pb::PRE_VOTE_RESPONSE, 3));
  ASSERT_EQ(raft->role(), Role::kCandidate);
  raft->Step(now, reply(pb::VOTE_RESPONSE, 3));
  ASSERT_EQ(raft->role(), Role::kLeader);
  ASSERT_EQ(raft->term(), 3u);
  ASSERT_EQ(raft->last_index(), 3u);  // the NOOP
  Batch b = raft->TakeBatch();
  raft->Advance(b);
  pb::RaftMessage ack = reply(pb::APPEND_RESPONSE, 3);
  ack.set_index(2);  // n2 holds entry 2 (term 2) but not the NOOP yet
  raft->Step(now, ack);
  EXPECT_EQ(raft->commit_index(), 1u);  // 2 of 3 hold entry 2: still not committed
  ack.set_index(3);
  raft->Step(now, ack);
  EXPECT_EQ(raft->commit_index(), 3u);  // the NOOP commits it
}

TEST(RaftTest, LeaderCountsItsOwnEntriesOnlyOnceDurable) {
  Network net({"n1"});
  net.BootstrapAll({"n1"});
  Raft& r = net.raft("n1");
  uint64_t commit = r.commit_index();
  ASSERT_TRUE(r.Propose(net.now(), "x").ok());
  Batch b = r.TakeBatch();
  EXPECT_EQ(r.commit_index(), commit);  // not persisted yet
  EXPECT_TRUE(b.committed.empty());
  r.Advance(b);
  EXPECT_EQ(r.commit_index(), commit + 1);
  Batch b2 = r.TakeBatch();
  ASSERT_EQ(b2.committed.size(), 1u);
  EXPECT_EQ(b2.committed[0].data(), "x");
  r.Advance(b2);
}

// ---------------------------------------------------------------- what may happen before the sync

// A node of kThree with the configuration at index 1 (term 1, committed), as a restart.
std::unique_ptr<Raft> OpenMember(const std::string& id, SeqRandom* random) {
  PersistentState state;
  state.hard_state.term = 1;
  state.hard_state.commit = 1;
  state.entries.resize(1);
  state.entries[0].set_index(1);
  state.entries[0].set_term(1);
  state.entries[0].set_type(pb::ENTRY_CONFIG);
  state.entries[0].set_data(MakeConfig(kThree).SerializeAsString());
  RaftOptions o = Network::DefaultOptions();
  o.id = id;
  std::unique_ptr<Raft> raft;
  EXPECT_TRUE(Raft::Open(o, state, random, 0, &raft).ok());
  Batch first = raft->TakeBatch();  // hands out entry 1 to apply
  raft->Advance(first);
  return raft;
}

pb::RaftMessage Append(uint64_t term, uint64_t prev, uint64_t prev_term, uint64_t commit,
                       const std::vector<std::string>& data) {
  pb::RaftMessage m;
  m.set_type(pb::APPEND);
  m.set_from("n2");
  m.set_to("n1");
  m.set_term(term);
  m.set_index(prev);
  m.set_log_term(prev_term);
  m.set_commit(commit);
  for (size_t i = 0; i < data.size(); ++i) {
    pb::Entry* e = m.add_entries();
    e->set_index(prev + 1 + i);
    e->set_term(term);
    e->set_data(data[i]);
  }
  return m;
}

TEST(RaftTest, FollowerAcknowledgesEntriesOnlyOnceDurableButAppliesCommittedOnesAtOnce) {
  SeqRandom random(3);
  std::unique_ptr<Raft> r = OpenMember("n1", &random);
  r->Step(10, Append(2, 1, 1, 2, {"a"}));
  Batch b1 = r->TakeBatch();
  ASSERT_EQ(b1.entries.size(), 1u);
  EXPECT_TRUE(b1.must_sync);
  EXPECT_TRUE(b1.messages.empty());  // the acknowledgement waits for the sync
  // Entry 2 is committed (the leader counted a quorum's durable copies): applied now, before
  // this node's own copy, in this very batch, is durable.
  ASSERT_EQ(b1.committed.size(), 1u);
  EXPECT_EQ(b1.committed[0].data(), "a");
  EXPECT_FALSE(r->HasBatch());
  r->Advance(b1);
  ASSERT_TRUE(r->HasBatch());
  Batch b2 = r->TakeBatch();
  EXPECT_FALSE(b2.must_sync);
  ASSERT_EQ(b2.messages.size(), 1u);
  EXPECT_EQ(b2.messages[0].type(), pb::APPEND_RESPONSE);
  EXPECT_FALSE(b2.messages[0].reject());
  EXPECT_EQ(b2.messages[0].index(), 2u);
  r->Advance(b2);
}

TEST(RaftTest, PipelinedFollowerBatchesReleaseEachAcknowledgementWithItsOwnSync) {
  SeqRandom random(3);
  std::unique_ptr<Raft> r = OpenMember("n1", &random);
  r->Step(10, Append(2, 1, 1, 1, {"a"}));
  Batch b1 = r->TakeBatch();
  r->Advance(b1);
  Batch ack = r->TakeBatch();
  ASSERT_EQ(ack.messages.size(), 1u);
  // Two batches in flight, the second taken before the first is persisted.
  r->Step(20, Append(2, 2, 2, 1, {"b"}));
  Batch b2 = r->TakeBatch();
  r->Step(30, Append(2, 3, 2, 1, {"c"}));
  Batch b3 = r->TakeBatch();
  EXPECT_TRUE(b2.messages.empty());
  EXPECT_TRUE(b3.messages.empty());
  // A heartbeat claims nothing about the disk: its answer goes at once, syncs or not.
  pb::RaftMessage hb;
  hb.set_type(pb::HEARTBEAT);
  hb.set_from("n2");
  hb.set_to("n1");
  hb.set_term(2);
  hb.set_commit(1);
  r->Step(40, hb);
  Batch b4 = r->TakeBatch();
  EXPECT_FALSE(b4.must_sync);
  ASSERT_EQ(b4.messages.size(), 1u);
  EXPECT_EQ(b4.messages[0].type(), pb::HEARTBEAT_RESPONSE);
  r->Advance(b2);
  Batch b5 = r->TakeBatch();
  ASSERT_EQ(b5.messages.size(), 1u);  // only b2's: entry 4 is not durable yet
  EXPECT_EQ(b5.messages[0].index(), 3u);
  // Advancing a later batch covers the earlier ones; an older one changes nothing.
  r->Advance(b4);
  Batch b6 = r->TakeBatch();
  ASSERT_EQ(b6.messages.size(), 1u);
  EXPECT_EQ(b6.messages[0].index(), 4u);
  r->Advance(b3);
  EXPECT_FALSE(r->HasBatch());
}

TEST(RaftTest, VotesAndCampaignsWaitForTheirTermAndVoteToBeDurable) {
  SeqRandom random(3);
  std::unique_ptr<Raft> voter = OpenMember("n1", &random);
  pb::RaftMessage vote;
  vote.set_type(pb::VOTE);
  vote.set_from("n2");
  vote.set_to("n1");
  vote.set_term(2);
  vote.set_index(1);
  vote.set_log_term(1);
  voter->Step(5'000'000, vote);
  Batch b = voter->TakeBatch();
  ASSERT_TRUE(b.hard_state.has_value());
  EXPECT_EQ(b.hard_state->vote, "n2");
  EXPECT_TRUE(b.must_sync);
  EXPECT_TRUE(b.messages.empty());
  voter->Advance(b);
  Batch granted = voter->TakeBatch();
  ASSERT_EQ(granted.messages.size(), 1u);
  EXPECT_EQ(granted.messages[0].type(), pb::VOTE_RESPONSE);
  EXPECT_FALSE(granted.messages[0].reject());

  SeqRandom random2(4);
  std::unique_ptr<Raft> c = OpenMember("n1", &random2);
  c->Tick(5'000'000);
  ASSERT_EQ(c->role(), Role::kPreCandidate);
  Batch pre = c->TakeBatch();
  EXPECT_FALSE(pre.must_sync);  // a pre-vote changes nothing durable: its requests go now
  EXPECT_EQ(pre.messages.size(), 2u);
  c->Advance(pre);
  pb::RaftMessage yes;
  yes.set_type(pb::PRE_VOTE_RESPONSE);
  yes.set_from("n2");
  yes.set_to("n1");
  yes.set_term(2);
  c->Step(5'000'001, yes);
  ASSERT_EQ(c->role(), Role::kCandidate);
  Batch campaign = c->TakeBatch();
  EXPECT_TRUE(campaign.must_sync);
  EXPECT_TRUE(campaign.messages.empty());  // its own vote is not durable yet
  c->Advance(campaign);
  Batch asks = c->TakeBatch();
  ASSERT_EQ(asks.messages.size(), 2u);
  EXPECT_EQ(asks.messages[0].type(), pb::VOTE);
}

TEST(RaftTest, LeaderSendsAppendsBeforeItsSyncAndCommitsOnTheFollowersDurableCopies) {
  Network net(kThree);
  net.BootstrapAll(kThree);
  std::string leader = net.WaitForLeader();
  net.Run(100'000);
  Raft& l = net.raft(leader);
  const uint64_t commit = l.commit_index();
  ASSERT_TRUE(l.Propose(net.now(), "x").ok());
  Batch b = l.TakeBatch();
  EXPECT_TRUE(b.must_sync);
  size_t appends = 0;
  for (pb::RaftMessage& m : b.messages) {
    if (m.type() == pb::APPEND) ++appends;
    net.queue().push_back(std::move(m));
  }
  EXPECT_EQ(appends, 2u);  // out before the leader's own copy is durable
  // Both followers persist and acknowledge; the leader has not advanced b. Two of three
  // durable copies: committed, and handed out to apply, while the leader's own is not.
  size_t delivered = 0;
  while (!net.queue().empty() && delivered < 100) {
    pb::RaftMessage m = std::move(net.queue().front());
    net.queue().pop_front();
    ++delivered;
    if (m.to() == leader) {
      l.Step(net.now(), m);
      continue;
    }
    std::string to = m.to();
    net.raft(to).Step(net.now(), std::move(m));
    net.Process(to);
  }
  EXPECT_EQ(l.commit_index(), commit + 1);
  Batch next = l.TakeBatch();
  ASSERT_EQ(next.committed.size(), 1u);
  EXPECT_EQ(next.committed[0].data(), "x");
  l.Advance(next);  // covers b too
}

TEST(RaftTest, RestartFromPersistentStateKeepsTheLog) {
  Network net(kThree);
  net.BootstrapAll(kThree);
  std::string leader = net.WaitForLeader();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(net.Propose(leader, "c" + std::to_string(i)).ok());
  net.Run(300'000);
  uint64_t term = net.raft(leader).term();
  uint64_t last = net.raft(leader).last_index();
  for (const auto& id : kThree) net.Crash(id);
  for (const auto& id : kThree) net.Restart(id);
  for (const auto& id : kThree) {
    EXPECT_EQ(net.raft(id).term(), term);
    EXPECT_EQ(net.raft(id).last_index(), last);
  }
  std::string next = net.WaitForLeader();
  ASSERT_FALSE(next.empty());
  EXPECT_GT(net.raft(next).term(), term);
  ASSERT_TRUE(net.Propose(next, "after").ok());
  net.Run(300'000);
  for (const auto& id : kThree) {
    ASSERT_FALSE(net.node(id).commands.empty());
    EXPECT_EQ(net.node(id).commands.back(), "after");
    EXPECT_EQ(net.node(id).commands.size(), 21u) << id;  // re-applied from the log
  }
}

TEST(RaftTest, RestartedVoterWaitsBeforeVoting) {
  // A restarted voter may have promised a leader not to vote; it refuses vote requests for
  // one election timeout after it starts.
  Network net(kThree);
  net.BootstrapAll(kThree);
  std::string leader = net.WaitForLeader();
  std::string f = leader == "n1" ? "n2" : "n1";
  net.Crash(f);
  net.Restart(f);
  pb::RaftMessage vote;
  vote.set_type(pb::VOTE);
  vote.set_from("n3" == leader ? "n1" : "n3");
  vote.set_to(f);
  vote.set_term(net.raft(f).term() + 5);
  vote.set_index(1000);
  vote.set_log_term(net.raft(f).term() + 5);
  net.raft(f).Step(net.now(), vote);
  EXPECT_EQ(net.raft(f).term(), net.raft(leader).term());  // ignored
  net.raft(f).Step(net.now() + 1'000'001, vote);
  EXPECT_EQ(net.raft(f).term(), vote.term());  // granted after the guard
}

// ---------------------------------------------------------------------------- hostile input

class HostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    net_ = std::make_unique<Network>(kThree);
    net_->BootstrapAll(kThree);
    leader_ = net_->WaitForLeader();
    ASSERT_TRUE(net_->Propose(leader_, "a").ok());
    net_->Run(200'000);
    follower_ = leader_ == "n1" ? "n2" : "n1";
    other_ = kThree[0] != leader_ && kThree[0] != follower_ ? kThree[0]
             : kThree[1] != leader_ && kThree[1] != follower_ ? kThree[1]
                                                                : kThree[2];
  }
  pb::RaftMessage Msg(pb::RaftMessageType type, const std::string& from, const std::string& to) {
    pb::RaftMessage m;
    m.set_type(type);
    m.set_from(from);
    m.set_to(to);
    m.set_term(net_->raft(to).term());
    return m;
  }
  // Steps `m` into its addressee and checks that nothing changed.
  void ExpectDropped(const pb::RaftMessage& m) {
    Raft& r = net_->raft(m.to());
    uint64_t term = r.term(), commit = r.commit_index(), last = r.last_index();
    Role role = r.role();
    r.Step(net_->now(), m);
    EXPECT_EQ(r.term(), term);
    EXPECT_EQ(r.commit_index(), commit);
    EXPECT_EQ(r.last_index(), last);
    EXPECT_EQ(r.role(), role);
    Batch b = r.TakeBatch();
    for (const auto& out : b.messages) {
      EXPECT_NE(out.to(), m.from()) << "answered a dropped message";
    }
    r.Advance(b);
  }
  std::unique_ptr<Network> net_;
  std::string leader_, follower_, other_;
};

TEST_F(HostileTest, MisaddressedAnonymousAndUnknownTypesAreDropped) {
  pb::RaftMessage m = Msg(pb::HEARTBEAT, leader_, follower_);
  m.set_to("nobody");
  net_->raft(follower_).Step(net_->now(), m);  // not for this node
  m = Msg(pb::HEARTBEAT, "", follower_);
  ExpectDropped(m);
  m = Msg(pb::HEARTBEAT, follower_, follower_);
  ExpectDropped(m);
  m = Msg(static_cast<pb::RaftMessageType>(77), leader_, follower_);
  ExpectDropped(m);
  m = Msg(pb::RAFT_UNKNOWN, leader_, follower_);
  ExpectDropped(m);
  m = Msg(pb::APPEND, leader_, follower_);
  m.set_term(0);
  ExpectDropped(m);
}

TEST_F(HostileTest, MalformedAppendsAreDropped) {
  Raft& f = net_->raft(follower_);
  uint64_t last = f.last_index();
  auto append = [&] {
    pb::RaftMessage m = Msg(pb::APPEND, leader_, follower_);
    m.set_index(last);
    m.set_log_term(f.term());
    m.set_commit(last + 1);
    return m;
  };
  pb::RaftMessage gap = append();
  gap.add_entries()->set_index(last + 2);  // not contiguous
  gap.mutable_entries(0)->set_term(f.term());
  ExpectDropped(gap);
  pb::RaftMessage future = append();
  future.add_entries()->set_index(last + 1);
  future.mutable_entries(0)->set_term(f.term() + 1);  // above the message's term
  ExpectDropped(future);
  pb::RaftMessage bad_type = append();
  bad_type.add_entries()->set_index(last + 1);
  bad_type.mutable_entries(0)->set_term(f.term());
  bad_type.mutable_entries(0)->set_type(static_cast<pb::EntryType>(9));
  ExpectDropped(bad_type);
  pb::RaftMessage bad_config = append();
  bad_config.add_entries()->set_index(last + 1);
  bad_config.mutable_entries(0)->set_term(f.term());
  bad_config.mutable_entries(0)->set_type(pb::ENTRY_CONFIG);
  bad_config.mutable_entries(0)->set_data("\xff\xff garbage");
  ExpectDropped(bad_config);
  pb::RaftMessage huge = append();
  huge.set_index(~uint64_t{0});
  huge.add_entries()->set_index(0);  // index + 1 overflows
  ExpectDropped(huge);
  pb::RaftMessage log_term = append();
  log_term.set_log_term(f.term() + 1);
  ExpectDropped(log_term);
}

TEST_F(HostileTest, AbsurdResponsesDoNotMoveTheLeader) {
  pb::RaftMessage ack = Msg(pb::APPEND_RESPONSE, follower_, leader_);
  ack.set_index(1'000'000);  // beyond the leader's log
  ExpectDropped(ack);
  pb::RaftMessage stranger = Msg(pb::APPEND_RESPONSE, "stranger", leader_);
  stranger.set_index(1);
  ExpectDropped(stranger);
  pb::RaftMessage reject = Msg(pb::APPEND_RESPONSE, follower_, leader_);
  reject.set_reject(true);
  reject.set_index(~uint64_t{0});
  reject.set_reject_hint(~uint64_t{0});
  reject.set_log_term(~uint64_t{0});
  ExpectDropped(reject);
  // Still replicates normally afterwards.
  ASSERT_TRUE(net_->Propose(leader_, "b").ok());
  net_->Run(200'000);
  EXPECT_EQ(net_->node(follower_).commands.back(), "b");
}

TEST_F(HostileTest, BadSnapshotsAndForwardedConfigEntriesAreDropped) {
  pb::RaftMessage snap = Msg(pb::SNAPSHOT, leader_, follower_);
  snap.mutable_snapshot_meta()->set_index(0);
  ExpectDropped(snap);
  snap.mutable_snapshot_meta()->set_index(100);
  snap.mutable_snapshot_meta()->set_term(snap.term() + 1);  // term from the future
  *snap.mutable_snapshot_meta()->mutable_config() = MakeConfig(kThree);
  ExpectDropped(snap);
  snap.mutable_snapshot_meta()->set_term(snap.term());
  snap.mutable_snapshot_meta()->clear_config();  // no voter
  ExpectDropped(snap);
  pb::RaftMessage prop = Msg(pb::PROPOSE, follower_, leader_);
  pb::Entry* e = prop.add_entries();
  e->set_type(pb::ENTRY_CONFIG);
  e->set_data(MakeConfig({follower_}).SerializeAsString());
  ExpectDropped(prop);
}

TEST_F(HostileTest, RandomGarbageNeverBreaksSafety) {
  SeqRandom rng(42);
  net_->check_safety = false;  // forged messages from real ids may rewrite logs: no crash is the bar
  std::vector<std::string> ids = {"n1", "n2", "n3", "x", ""};
  for (int i = 0; i < 20000; ++i) {
    pb::RaftMessage m;
    m.set_type(static_cast<pb::RaftMessageType>(rng.Next() % 13));
    m.set_from(ids[rng.Next() % ids.size()]);
    m.set_to(kThree[rng.Next() % 3]);
    Raft& r = net_->raft(m.to());
    // Mostly plausible numbers around the real ones, sometimes wild.
    auto near = [&](uint64_t v) {
      switch (rng.Next() % 4) {
        case 0: return v;
        case 1: return v + rng.Next() % 3;
        case 2: return v > 0 ? v - 1 : 0;
        default: return rng.Next();
      }
    };
    m.set_term(near(r.term()));
    m.set_index(near(r.last_index()));
    m.set_log_term(near(r.term()));
    m.set_commit(near(r.commit_index()));
    m.set_reject(rng.Next() % 2);
    m.set_reject_hint(near(r.last_index()));
    int n = rng.Next() % 3;
    for (int k = 0; k < n; ++k) {
      pb::Entry* e = m.add_entries();
      e->set_index(m.index() + 1 + k);
      e->set_term(near(m.term()));
      e->set_type(static_cast<pb::EntryType>(rng.Next() % 4));
      e->set_data("g");
    }
    if (m.type() == pb::SNAPSHOT) {
      m.mutable_snapshot_meta()->set_index(near(r.last_index()));
      m.mutable_snapshot_meta()->set_term(near(r.term()));
      *m.mutable_snapshot_meta()->mutable_config() = MakeConfig(kThree);
    }
    r.Step(net_->now(), m);
    net_->Process(m.to());
  }
  // Nothing crashed or asserted, and the cluster still elects a leader.
  net_->queue().clear();
  net_->Run(5'000'000);
  std::string leader = net_->WaitForLeader();
  ASSERT_FALSE(leader.empty());
}

}  // namespace
}  // namespace mesh::core::raft
