// An independent checker for the histories of the real-process chaos test
// (tests/cluster/chaos_test.cc): it knows nothing of lockmesh, only what the commands run under
// one exclusive lock recorded, what the client loops saw, and the final shared counter.
//
// A history is a set of critical sections of ONE exclusive resource, each with times on one
// clock (CLOCK_MONOTONIC of the machine: every network namespace shares it), and the runs of
// `lockmesh lock` that the client loops made. The checker asserts:
//   1. No overlap: no two sections share an instant. A section is [start, end], where end is,
//      in this order of preference: its own end mark (E), its SIGTERM mark (T), or, when the
//      command was killed without a chance to write either (SIGKILL after --grace), the time
//      its `lockmesh lock` exited, as its client loop measured it (`lockmesh lock` exits only
//      after its command did, so that is an upper bound). The last progress mark is a lower
//      bound only and is never used as an end; a section with no upper bound is a violation
//      of its own (its end cannot be bounded, so safety cannot be shown).
//   2. Tokens rise in grant order: ordered by start, each section's fencing token is greater
//      than the one before (sections do not overlap, so start order is grant order).
//   3. An exact counter: the counter file's final value equals the number of increments that
//      completed. An increment completed if its section recorded it (W, after write + fsync)
//      or if a later reader, or the final file, names that section as the writer of the value
//      it saw (the command was stopped after the fsync, before its W). The values written are
//      then exactly 1..N, each once (a lost update writes one value twice).
//   4. Exit codes: a run whose `lockmesh lock` exited 0 has a section in the history that ran
//      to its end mark and completed its increment.
// Every violation names the sections involved (run, host, token, start, end and how the end
// was known), so the first one printed says what went wrong and where.
//
// Plain C++ (no gtest, no I/O besides parsing text given to it), so that its own unit test
// (tests/unit/history_checker_test.cc) can feed it made-up histories.
#ifndef LOCKMESH_TESTS_CLUSTER_SUPPORT_HISTORY_CHECKER_H_
#define LOCKMESH_TESTS_CLUSTER_SUPPORT_HISTORY_CHECKER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lockmesh::testing::history {

/// One critical section: what one command run under the lock recorded.
struct Section {
  std::string run;           // the client run it belongs to ("h2-17"), the key into History::runs
  std::string host;          // where it ran ("h2"), for messages
  uint64_t token = 0;        // LOCKMESH_TOKEN
  int64_t start_ns = 0;      // S: first thing the command did (0: no start record)
  int64_t end_ns = 0;        // E: last thing the command did (0: none)
  int64_t term_ns = 0;       // T: SIGTERM arrived, the command stopped at once (0: none)
  int64_t last_mark_ns = 0;  // latest progress mark P (or start), a lower bound of its end
  int64_t read_value = 0;    // counter value it read
  uint64_t read_writer = 0;  // token of the section that wrote that value (0: initial file)
  bool incremented = false;  // W: it wrote read_value + 1 and fsynced
  int64_t write_ns = 0;      // when W was recorded
};

/// One `lockmesh lock` run of a client loop.
struct Run {
  std::string id;
  std::string host;
  int exit_code = -1;    // -1: it hung and the loop killed it
  int64_t begin_ns = 0;  // the loop started it
  int64_t exit_ns = 0;   // the loop saw it exit (0: unknown)
};

struct History {
  std::vector<Section> sections;
  std::map<std::string, Run> runs;  // by id
  /// Times in messages are shown relative to this (0: the earliest start).
  int64_t origin_ns = 0;
  int64_t counter = 0;          // final value of the counter file
  uint64_t counter_writer = 0;  // token the final file names as its writer (0: none)
  /// Records the parser could not read (each is reported as a violation).
  std::vector<std::string> malformed;
};

/// How the end of a section was known (see the file comment).
enum class EndKind { kEndMark, kTermMark, kLockExit, kUnknown };
const char* EndKindName(EndKind kind);

/// The end used for a section and how it was known. kUnknown: 0.
int64_t SectionEnd(const History& h, const Section& s, EndKind* kind);

enum class ViolationKind {
  kMalformed,       // a record that cannot be read, a duplicate, an end without a start
  kUnboundedEnd,    // no end mark, no SIGTERM mark, no exit time of its lock
  kOverlap,         // two sections share an instant
  kTokenOrder,      // a token not greater than the one of the section before it
  kCounter,         // the final counter differs from the increments that completed
  kLostUpdate,      // a value written twice, or a value nobody wrote
  kSuccessMissing,  // lock exit 0 without a completed section
};
const char* ViolationKindName(ViolationKind kind);

struct Violation {
  ViolationKind kind;
  std::string message;  // one line (two sections described in full where two are involved)
  int64_t at_ns = 0;    // when it happened (the later section's start), 0 if not a moment
};

struct Verdict {
  std::vector<Violation> violations;  // in the order found: malformed, ends, order, counter
  size_t sections_checked = 0;        // sections with a start
  int64_t completed_increments = 0;
  int64_t max_overlap_ns = 0;  // the longest overlap found (0: none)
  bool ok() const { return violations.empty(); }
  /// How many violations of `kind`.
  size_t Count(ViolationKind kind) const;
  /// "OK: N sections, ..." or the first violation followed by the count of each kind.
  std::string Summary() const;
};

/// Checks a history (see the file comment). Pure function.
Verdict Check(const History& h);

/// One line of text describing a section: run, host, token, start, end and end kind; times
/// relative to `origin_ns` (in seconds) when origin_ns > 0.
std::string Describe(const History& h, const Section& s, int64_t origin_ns = 0);

/// Parses the record file of one section, as the chaos test's command writes it (one record
/// per line; times are CLOCK_MONOTONIC ns):
///   S <token> <start> <value read> <writer token read>
///   P <time>                       progress mark, every ~20 ms while inside
///   W <value written> <time>       after the counter file was written and fsynced
///   E <time>                       the last step: the command is done
///   T <time>                       SIGTERM: the command stops (exit 143)
/// Returns false (and appends to h->malformed) on a record it cannot read. A file that is
/// empty (the command never got to its first record) adds no section.
bool ParseSectionRecords(const std::string& run, const std::string& host, const std::string& text,
                         History* h);

/// Parses the counter file: "<value> <writer token>" (an empty or missing file is 0 0).
bool ParseCounter(const std::string& text, History* h);

}  // namespace lockmesh::testing::history

#endif  // LOCKMESH_TESTS_CLUSTER_SUPPORT_HISTORY_CHECKER_H_
