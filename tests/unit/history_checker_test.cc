// The chaos test's history checker (tests/cluster/support/history_checker.h) on made-up
// histories: a clean one passes, and each kind of violation is found and named precisely.
#include "cluster/support/history_checker.h"

#include <gtest/gtest.h>

namespace lockmesh::testing::history {
namespace {

constexpr int64_t kMs = 1000000;
constexpr int64_t kT0 = 1000000 * kMs;  // an arbitrary CLOCK_MONOTONIC origin

// Builds histories: sections that ran [start, end] ms after kT0 with a token, each writing
// the next counter value (read from the previous writer given), and their runs (exit 0).
class Builder {
 public:
  Section& Add(const std::string& run, uint64_t token, int64_t start_ms, int64_t end_ms,
               int64_t read_value, uint64_t read_writer) {
    Section s;
    s.run = run;
    s.host = run.substr(0, run.find('-'));
    s.token = token;
    s.start_ns = kT0 + start_ms * kMs;
    s.end_ns = kT0 + end_ms * kMs;
    s.last_mark_ns = s.end_ns;
    s.read_value = read_value;
    s.read_writer = read_writer;
    s.incremented = true;
    s.write_ns = s.end_ns - kMs;
    h.sections.push_back(s);
    Run r;
    r.id = run;
    r.host = s.host;
    r.exit_code = 0;
    r.begin_ns = s.start_ns - 5 * kMs;
    r.exit_ns = s.end_ns + 3 * kMs;
    h.runs[run] = r;
    return h.sections.back();
  }
  void Counter(int64_t value, uint64_t writer) {
    h.counter = value;
    h.counter_writer = writer;
  }
  History h;
};

// Three sections one after the other, tokens 10 < 11 < 14, counter 3.
Builder Clean() {
  Builder b;
  b.Add("h0-0", 10, 0, 100, 0, 0);
  b.Add("h1-0", 11, 110, 200, 1, 10);
  b.Add("h2-0", 14, 205, 300, 2, 11);
  b.Counter(3, 14);
  return b;
}

TEST(HistoryCheckerTest, CleanHistoryPasses) {
  Builder b = Clean();
  Verdict v = Check(b.h);
  EXPECT_TRUE(v.ok()) << v.Summary();
  EXPECT_EQ(v.sections_checked, 3u);
  EXPECT_EQ(v.completed_increments, 3);
  EXPECT_EQ(v.max_overlap_ns, 0);
  EXPECT_NE(v.Summary().find("OK: 3 critical sections"), std::string::npos) << v.Summary();
}

TEST(HistoryCheckerTest, OverlapIsFoundWithBothSections) {
  Builder b = Clean();
  // h3-0 starts 50 ms before h2-0 ends (it read the counter h1-0 left, as h2-0 did).
  b.Add("h3-0", 15, 250, 320, 3, 14);
  b.Counter(4, 15);
  Verdict v = Check(b.h);
  ASSERT_EQ(v.Count(ViolationKind::kOverlap), 1u) << v.Summary();
  EXPECT_EQ(v.violations.size(), 1u) << v.Summary();
  const Violation& o = v.violations[0];
  EXPECT_NE(o.message.find("overlap by 0.050000 s"), std::string::npos) << o.message;
  EXPECT_NE(o.message.find("run h2-0 on h2, token 14"), std::string::npos) << o.message;
  EXPECT_NE(o.message.find("run h3-0 on h3, token 15"), std::string::npos) << o.message;
  EXPECT_EQ(o.at_ns, kT0 + 250 * kMs);
  EXPECT_EQ(v.max_overlap_ns, 50 * kMs);
  EXPECT_EQ(v.Summary().find("VIOLATION (first found): overlap: two critical sections"), 0u)
      << v.Summary();
}

TEST(HistoryCheckerTest, OverlapWithASectionThatStartedLongBefore) {
  // A long section (a frozen node's command running on) and a later one inside it, with
  // a short one between them that does not overlap the later one: the long one is found.
  Builder b;
  b.Add("h0-0", 10, 0, 5000, 0, 0);
  b.Add("h1-0", 20, 3500, 3600, 1, 10);
  b.Add("h2-0", 21, 3700, 3800, 2, 20);
  b.Counter(3, 21);
  Verdict v = Check(b.h);
  ASSERT_EQ(v.Count(ViolationKind::kOverlap), 2u) << v.Summary();
  for (const Violation& o : v.violations) {
    if (o.kind != ViolationKind::kOverlap) continue;
    EXPECT_NE(o.message.find("token 10"), std::string::npos) << o.message;
  }
  EXPECT_NE(v.violations[0].message.find("token 20"), std::string::npos);
  EXPECT_NE(v.violations[1].message.find("token 21"), std::string::npos);
  EXPECT_EQ(v.max_overlap_ns, 100 * kMs);
}

TEST(HistoryCheckerTest, TouchingSectionsOverlap) {
  // [start, end] is closed: one that starts at the very nanosecond another ends overlaps.
  Builder b;
  b.Add("h0-0", 10, 0, 100, 0, 0);
  b.Add("h1-0", 11, 100, 200, 1, 10);
  b.Counter(2, 11);
  Verdict v = Check(b.h);
  EXPECT_EQ(v.Count(ViolationKind::kOverlap), 1u) << v.Summary();
}

TEST(HistoryCheckerTest, FallingTokenIsFound) {
  // An auto-started local node hands out token 4 after the mesh's 11.
  Builder b;
  b.Add("h0-0", 10, 0, 100, 0, 0);
  b.Add("h1-0", 11, 110, 200, 1, 10);
  b.Add("h2-0", 4, 205, 300, 2, 11);
  b.Counter(3, 4);
  Verdict v = Check(b.h);
  ASSERT_EQ(v.violations.size(), 1u) << v.Summary();
  EXPECT_EQ(v.violations[0].kind, ViolationKind::kTokenOrder);
  EXPECT_NE(v.violations[0].message.find("fencing token 4 is not above 11"), std::string::npos)
      << v.violations[0].message;
  EXPECT_NE(v.violations[0].message.find("run h1-0"), std::string::npos);
  EXPECT_NE(v.violations[0].message.find("run h2-0"), std::string::npos);
}

TEST(HistoryCheckerTest, RepeatedTokenIsFound) {
  Builder b;
  b.Add("h0-0", 10, 0, 100, 0, 0);
  b.Add("h1-0", 10, 110, 200, 1, 10);
  b.Counter(2, 10);
  Verdict v = Check(b.h);
  EXPECT_EQ(v.Count(ViolationKind::kTokenOrder), 1u) << v.Summary();
}

TEST(HistoryCheckerTest, TokensHandedOutTwiceByTwoAuthorities) {
  // A local node beside the mesh hands out token 5 again: the token order says so, and the
  // counter is still read right (the reader's writer is the token-5 section that wrote 2).
  Builder b;
  b.Add("h0-0", 5, 0, 100, 0, 0);
  b.Add("h1-0", 5, 110, 200, 1, 5);
  b.Add("h2-0", 9, 205, 300, 2, 5);
  b.Counter(3, 9);
  Verdict v = Check(b.h);
  EXPECT_EQ(v.Count(ViolationKind::kTokenOrder), 1u) << v.Summary();
  EXPECT_EQ(v.violations.size(), 1u) << v.Summary();
  EXPECT_EQ(v.completed_increments, 3);
}

TEST(HistoryCheckerTest, WrongCounterIsFound) {
  Builder b = Clean();
  b.Counter(2, 11);  // the file lost the last increment (or it never was fsynced)
  Verdict v = Check(b.h);
  ASSERT_EQ(v.Count(ViolationKind::kCounter), 1u) << v.Summary();
  for (const Violation& x : v.violations) {
    if (x.kind == ViolationKind::kCounter) {
      EXPECT_NE(x.message.find("the counter file says 2 but 3 increments completed (3 with a W"),
                std::string::npos)
          << x.message;
    }
  }
}

TEST(HistoryCheckerTest, CounterTooHighIsFound) {
  Builder b = Clean();
  b.Counter(5, 14);  // names token 14, which wrote 3
  Verdict v = Check(b.h);
  EXPECT_EQ(v.Count(ViolationKind::kCounter), 1u) << v.Summary();
  EXPECT_GE(v.Count(ViolationKind::kLostUpdate), 1u) << v.Summary();
}

TEST(HistoryCheckerTest, LostUpdateIsFound) {
  // Two overlapping sections both read 1 and both write 2: the counter ends at 2 after three
  // increments.
  Builder b;
  b.Add("h0-0", 10, 0, 100, 0, 0);
  b.Add("h1-0", 11, 110, 200, 1, 10);
  b.Add("h2-0", 12, 150, 250, 1, 10);
  b.Counter(2, 12);
  Verdict v = Check(b.h);
  EXPECT_EQ(v.Count(ViolationKind::kOverlap), 1u) << v.Summary();
  ASSERT_EQ(v.Count(ViolationKind::kLostUpdate), 1u) << v.Summary();
  EXPECT_EQ(v.Count(ViolationKind::kCounter), 1u) << v.Summary();
  for (const Violation& x : v.violations) {
    if (x.kind == ViolationKind::kLostUpdate) {
      EXPECT_NE(x.message.find("value 2 written twice"), std::string::npos) << x.message;
      EXPECT_NE(x.message.find("token 11"), std::string::npos) << x.message;
      EXPECT_NE(x.message.find("token 12"), std::string::npos) << x.message;
    }
  }
}

TEST(HistoryCheckerTest, IncrementWithoutItsWRecordCountsWhenAReaderSawIt) {
  // h1-0 was stopped after its fsync, before its W record: h2-0 read its value, so the
  // increment happened and the counter of 3 is right.
  Builder b = Clean();
  b.h.sections[1].incremented = false;
  b.h.sections[1].end_ns = 0;
  b.h.sections[1].term_ns = kT0 + 199 * kMs;
  b.h.runs["h1-0"].exit_code = 95;
  Verdict v = Check(b.h);
  EXPECT_TRUE(v.ok()) << v.Summary();
  EXPECT_EQ(v.completed_increments, 3);
}

TEST(HistoryCheckerTest, KilledSectionEndsWhenItsLockExited) {
  // h1-0 was SIGKILLed (no E, no T): its last progress mark is at 150 ms, but it may have run
  // on until its `lockmesh lock` exited at 240 ms. h2-0 starts at 205 ms: an overlap.
  Builder b = Clean();
  Section& killed = b.h.sections[1];
  killed.end_ns = 0;
  killed.last_mark_ns = kT0 + 150 * kMs;
  b.h.runs["h1-0"].exit_code = 95;
  b.h.runs["h1-0"].exit_ns = kT0 + 240 * kMs;
  Verdict v = Check(b.h);
  ASSERT_EQ(v.Count(ViolationKind::kOverlap), 1u) << v.Summary();
  EXPECT_NE(v.violations[0].message.find("no mark: exit of its lockmesh lock"), std::string::npos)
      << v.violations[0].message;
  EXPECT_NE(v.violations[0].message.find("last mark +0.150000 s"), std::string::npos)
      << v.violations[0].message;
  EXPECT_EQ(v.max_overlap_ns, 35 * kMs);

  // Its lock exited at 202 ms instead: no overlap.
  b.h.runs["h1-0"].exit_ns = kT0 + 202 * kMs;
  EXPECT_TRUE(Check(b.h).ok()) << Check(b.h).Summary();
}

TEST(HistoryCheckerTest, SectionWithoutAnyBoundOnItsEndIsAViolation) {
  Builder b = Clean();
  Section& lost = b.h.sections[2];
  lost.end_ns = 0;
  lost.last_mark_ns = kT0 + 250 * kMs;
  b.h.runs.erase("h2-0");
  Verdict v = Check(b.h);
  ASSERT_EQ(v.Count(ViolationKind::kUnboundedEnd), 1u) << v.Summary();
  EXPECT_NE(v.violations[0].message.find("run h2-0"), std::string::npos);
  EXPECT_NE(v.violations[0].message.find("no run record"), std::string::npos);
}

TEST(HistoryCheckerTest, SuccessWithoutACompleteSectionIsFound) {
  Builder b = Clean();
  history::Run ghost;
  ghost.id = "h4-7";
  ghost.host = "h4";
  ghost.exit_code = 0;
  ghost.exit_ns = kT0 + 400 * kMs;
  b.h.runs[ghost.id] = ghost;
  // And one whose command was stopped by SIGTERM, though its lock reported success.
  b.h.sections[0].end_ns = 0;
  b.h.sections[0].term_ns = kT0 + 100 * kMs;
  Verdict v = Check(b.h);
  ASSERT_EQ(v.Count(ViolationKind::kSuccessMissing), 2u) << v.Summary();
  std::string all;
  for (const Violation& x : v.violations) all += x.message + "\n";
  EXPECT_NE(all.find("run h4-7 on h4: lockmesh lock exited 0 at +0.400000 s but its section "
                     "did not run to its end with its increment: no section at all"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("run h0-0 on h0: lockmesh lock exited 0"), std::string::npos) << all;
}

TEST(HistoryCheckerTest, ParsesRecordsAndTheCounter) {
  History h;
  EXPECT_TRUE(
      ParseSectionRecords("h1-3", "h1", "S 42 1000 6 41\nP 1020\nP 1040\nW 7 1050\nE 1060\n", &h));
  EXPECT_TRUE(ParseSectionRecords("h1-4", "h1", "S 43 2000 7 42\nP 2020\nT 2030\n", &h));
  EXPECT_TRUE(ParseSectionRecords("h1-5", "h1", "", &h));  // never started: no section
  ASSERT_EQ(h.sections.size(), 2u);
  const Section& a = h.sections[0];
  EXPECT_EQ(a.token, 42u);
  EXPECT_EQ(a.start_ns, 1000);
  EXPECT_EQ(a.read_value, 6);
  EXPECT_EQ(a.read_writer, 41u);
  EXPECT_TRUE(a.incremented);
  EXPECT_EQ(a.end_ns, 1060);
  EXPECT_EQ(a.last_mark_ns, 1060);
  const Section& b = h.sections[1];
  EXPECT_FALSE(b.incremented);
  EXPECT_EQ(b.term_ns, 2030);
  EXPECT_EQ(b.end_ns, 0);
  EXPECT_TRUE(ParseCounter("                   7                   42\n", &h));
  EXPECT_EQ(h.counter, 7);
  EXPECT_EQ(h.counter_writer, 42u);
  EXPECT_TRUE(ParseCounter("", &h));
  EXPECT_EQ(h.counter, 0);
}

TEST(HistoryCheckerTest, MalformedRecordsAreViolations) {
  History h;
  EXPECT_FALSE(ParseSectionRecords("h0-1", "h0", "P 10\nS 5 100 0 0\nW 3 120\nX 1\n", &h));
  EXPECT_FALSE(ParseCounter("garbage", &h));
  Verdict v = Check(h);
  EXPECT_EQ(v.Count(ViolationKind::kMalformed), 4u) << v.Summary();
  EXPECT_NE(v.violations[0].message.find("run h0-1 on h0: unreadable or out-of-order record "
                                         "'P 10'"),
            std::string::npos)
      << v.violations[0].message;
}

}  // namespace
}  // namespace lockmesh::testing::history
