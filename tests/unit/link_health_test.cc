// Unit tests of core/link_health: a link silent for max(4 gossip intervals, 2 election
// timeouts) is closed once (L1), and a late tick of this node's own loop is not counted
// against its links (L2).
#include "core/link_health.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mesh::core {
namespace {

using Ids = std::vector<std::string>;

LinkWatchOptions Options(uint64_t election_timeout_ms) {
  return LinkWatchOptions{50, 500, election_timeout_ms * 1000};
}

TEST(LinkHealth, TheLimitIsFourGossipIntervalsOrTwoElectionTimeouts) {
  EXPECT_EQ(SilentLinkLimitMs(Options(1000)), 2000u);
  EXPECT_EQ(SilentLinkLimitMs(Options(300)), 2000u) << "4 x 500 ms";
  EXPECT_EQ(SilentLinkLimitMs(Options(5000)), 10'000u);
  EXPECT_EQ(SilentLinkLimitMs(LinkWatchOptions{50, 500, 1'500'500}), 3001u);
}

TEST(LinkHealth, ALateTickIsCreditedLessOneTick) {
  const LinkWatchOptions o = Options(1000);
  EXPECT_EQ(StallCreditMs(o, 0, 10'000), 0u) << "no tick before";
  EXPECT_EQ(StallCreditMs(o, 1000, 1050), 0u);
  EXPECT_EQ(StallCreditMs(o, 1000, 1200), 0u) << "4 ticks late is still on time";
  EXPECT_EQ(StallCreditMs(o, 1000, 1201), 151u);
  EXPECT_EQ(StallCreditMs(o, 1000, 3000), 1950u);
}

// Ticks every 50 ms from `from` to `to` (inclusive), collecting what is closed.
Ids TickEvery50(LinkWatch* w, uint64_t from, uint64_t to) {
  Ids closed;
  for (uint64_t t = from; t <= to; t += 50) {
    for (std::string& id : w->Tick(t)) closed.push_back(std::move(id));
  }
  return closed;
}

TEST(LinkHealth, ASilentLinkIsClosedOnceAndAHeardOneIsKept) {
  LinkWatch w(Options(1000));
  w.Up("a", 1000);
  w.Up("b", 1000);
  for (uint64_t t = 1000; t <= 3000; t += 50) {
    w.Heard("b", t);
    EXPECT_TRUE(w.Tick(t).empty()) << t;  // 2000 ms of silence is not more than the limit
  }
  EXPECT_EQ(w.Tick(3050), Ids{"a"});
  // b went silent at 3000: its turn comes after 2000 ms more; a is not reported again.
  EXPECT_EQ(TickEvery50(&w, 3100, 5000), Ids{});
  EXPECT_EQ(TickEvery50(&w, 5050, 5050), Ids{"b"});
  EXPECT_EQ(TickEvery50(&w, 5100, 10'000), Ids{}) << "each reported once";
}

TEST(LinkHealth, ALinkThatComesUpAgainIsWatchedAfresh) {
  LinkWatch w(Options(1000));
  w.Up("a", 1000);
  EXPECT_EQ(TickEvery50(&w, 1000, 3050), Ids{"a"});
  w.Down("a");
  w.Up("a", 3100);
  EXPECT_EQ(TickEvery50(&w, 3100, 5100), Ids{});
  EXPECT_EQ(TickEvery50(&w, 5150, 5150), Ids{"a"});
}

TEST(LinkHealth, MessagesOnUnknownLinksAreIgnored) {
  LinkWatch w(Options(1000));
  w.Heard("x", 100);
  EXPECT_EQ(TickEvery50(&w, 100, 10'000), Ids{});
}

TEST(LinkHealth, AStallOfThisNodesLoopIsNotCountedAgainstItsLinks) {
  LinkWatch w(Options(1000));
  w.Up("a", 1000);
  EXPECT_TRUE(w.Tick(1000).empty());
  // The loop was held up for 2.5 s: a's frames may be waiting unread. Not closed.
  EXPECT_TRUE(w.Tick(3500).empty());
  // From then on, a's silence counts again: 3500 - 50 credited, so closed past 3450 + 2000.
  EXPECT_EQ(TickEvery50(&w, 3550, 5450), Ids{});
  EXPECT_EQ(TickEvery50(&w, 5500, 5500), Ids{"a"});
}

TEST(LinkHealth, TheCreditNeverMovesALinkPastNow) {
  LinkWatch w(Options(1000));
  w.Up("a", 1000);
  w.Tick(1000);
  w.Heard("a", 1100);
  // A stall of 10 s: a's last message (1100) + 9950 credited would be past now (11'000).
  EXPECT_TRUE(w.Tick(11'000).empty());
  EXPECT_EQ(TickEvery50(&w, 11'050, 13'000), Ids{});
  EXPECT_EQ(TickEvery50(&w, 13'050, 13'050), Ids{"a"});
}

}  // namespace
}  // namespace mesh::core
