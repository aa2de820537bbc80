#include "cluster/support/history_checker.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>

namespace lockmesh::testing::history {
namespace {

std::string Time(int64_t ns, int64_t origin_ns) {
  char buf[48];
  if (origin_ns > 0) {
    snprintf(buf, sizeof buf, "+%.6f s", static_cast<double>(ns - origin_ns) / 1e9);
  } else {
    snprintf(buf, sizeof buf, "%lld ns", static_cast<long long>(ns));
  }
  return buf;
}

std::string Seconds(int64_t ns) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.6f s", static_cast<double>(ns) / 1e9);
  return buf;
}

// The earliest start of all sections, as the origin of the times in messages.
int64_t Origin(const History& h) {
  if (h.origin_ns != 0) return h.origin_ns;
  int64_t origin = 0;
  for (const Section& s : h.sections) {
    if (s.start_ns > 0 && (origin == 0 || s.start_ns < origin)) origin = s.start_ns;
  }
  return origin;
}

}  // namespace

const char* EndKindName(EndKind kind) {
  switch (kind) {
    case EndKind::kEndMark:
      return "end mark";
    case EndKind::kTermMark:
      return "SIGTERM mark";
    case EndKind::kLockExit:
      return "no mark: exit of its lockmesh lock";
    case EndKind::kUnknown:
      return "UNKNOWN (last progress mark shown)";
  }
  return "?";
}

const char* ViolationKindName(ViolationKind kind) {
  switch (kind) {
    case ViolationKind::kMalformed:
      return "malformed";
    case ViolationKind::kUnboundedEnd:
      return "unbounded end";
    case ViolationKind::kOverlap:
      return "overlap";
    case ViolationKind::kTokenOrder:
      return "token order";
    case ViolationKind::kCounter:
      return "counter";
    case ViolationKind::kLostUpdate:
      return "lost update";
    case ViolationKind::kSuccessMissing:
      return "success without section";
  }
  return "?";
}

int64_t SectionEnd(const History& h, const Section& s, EndKind* kind) {
  EndKind k = EndKind::kUnknown;
  int64_t end = 0;
  if (s.end_ns != 0) {
    k = EndKind::kEndMark;
    end = s.end_ns;
  } else if (s.term_ns != 0) {
    k = EndKind::kTermMark;
    end = s.term_ns;
  } else {
    auto r = h.runs.find(s.run);
    if (r != h.runs.end() && r->second.exit_ns != 0) {
      k = EndKind::kLockExit;
      end = std::max(r->second.exit_ns, s.last_mark_ns);
    }
  }
  if (kind) *kind = k;
  return end;
}

std::string Describe(const History& h, const Section& s, int64_t origin_ns) {
  EndKind kind;
  int64_t end = SectionEnd(h, s, &kind);
  std::string d = "[run " + s.run + " on " + s.host + ", token " + std::to_string(s.token) +
                  ", start " + Time(s.start_ns, origin_ns) + ", end " +
                  Time(kind == EndKind::kUnknown ? s.last_mark_ns : end, origin_ns) + " (" +
                  EndKindName(kind) + ")";
  if (s.last_mark_ns != 0 && kind != EndKind::kUnknown) {
    d += ", last mark " + Time(s.last_mark_ns, origin_ns);
  }
  auto r = h.runs.find(s.run);
  if (r != h.runs.end()) {
    d += ", lock exit " + std::to_string(r->second.exit_code);
    if (r->second.exit_ns != 0) d += " at " + Time(r->second.exit_ns, origin_ns);
  } else {
    d += ", no run record";
  }
  d += s.incremented ? ", wrote " + std::to_string(s.read_value + 1) : ", no W";
  return d + "]";
}

size_t Verdict::Count(ViolationKind kind) const {
  size_t n = 0;
  for (const Violation& v : violations) n += v.kind == kind ? 1 : 0;
  return n;
}

std::string Verdict::Summary() const {
  std::string s;
  if (ok()) {
    s = "OK: " + std::to_string(sections_checked) + " critical sections, no overlap, tokens " +
        "rising, counter = " + std::to_string(completed_increments) + " completed increments";
    return s;
  }
  s = "VIOLATION (first found): " + std::string(ViolationKindName(violations[0].kind)) + ": " +
      violations[0].message + "\n  all violations:";
  for (ViolationKind k :
       {ViolationKind::kMalformed, ViolationKind::kUnboundedEnd, ViolationKind::kOverlap,
        ViolationKind::kTokenOrder, ViolationKind::kCounter, ViolationKind::kLostUpdate,
        ViolationKind::kSuccessMissing}) {
    if (size_t n = Count(k)) s += " " + std::to_string(n) + " x " + ViolationKindName(k) + ";";
  }
  if (max_overlap_ns > 0) s += " longest overlap " + Seconds(max_overlap_ns) + ";";
  s += " " + std::to_string(sections_checked) + " sections checked";
  return s;
}

Verdict Check(const History& h) {
  Verdict v;
  const int64_t origin = Origin(h);
  auto describe = [&](const Section& s) { return Describe(h, s, origin); };
  auto add = [&](ViolationKind kind, const std::string& message, int64_t at_ns = 0) {
    v.violations.push_back(Violation{kind, message, at_ns});
  };
  for (const std::string& m : h.malformed) add(ViolationKind::kMalformed, m);

  // The sections that started, in start order (ties by token, so the verdict is stable).
  std::vector<const Section*> order;
  for (const Section& s : h.sections) {
    if (s.start_ns == 0) {
      if (s.end_ns != 0 || s.incremented) {
        add(ViolationKind::kMalformed,
            "a section with an end or a write but no start: " + describe(s));
      }
      continue;  // stopped before its first record: it did nothing
    }
    order.push_back(&s);
  }
  std::sort(order.begin(), order.end(), [](const Section* a, const Section* b) {
    return a->start_ns != b->start_ns ? a->start_ns < b->start_ns : a->token < b->token;
  });
  v.sections_checked = order.size();

  // 1 and 2: overlap and token order, one pass in start order. `reach` is the section that
  // ends last among those before: a later start at or before its end is an overlap.
  const Section* reach = nullptr;
  int64_t reach_end = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const Section& s = *order[k];
    EndKind kind;
    int64_t end = SectionEnd(h, s, &kind);
    if (kind == EndKind::kUnknown) {
      add(ViolationKind::kUnboundedEnd,
          "a section whose end cannot be bounded (no end or SIGTERM mark, no exit time of its "
          "lock; its last progress mark is used, a lower bound only): " +
              describe(s),
          s.start_ns);
      end = std::max(s.last_mark_ns, s.start_ns);
    } else if (end < s.start_ns) {
      add(ViolationKind::kMalformed, "a section that ends before it starts: " + describe(s));
      end = s.start_ns;
    }
    if (k > 0 && s.token <= order[k - 1]->token) {
      add(ViolationKind::kTokenOrder,
          "fencing token " + std::to_string(s.token) + " is not above " +
              std::to_string(order[k - 1]->token) + " of the section that started before it: " +
              describe(*order[k - 1]) + " then " + describe(s),
          s.start_ns);
    }
    if (reach != nullptr && s.start_ns <= reach_end) {
      int64_t overlap = std::min(reach_end, end) - s.start_ns;
      v.max_overlap_ns = std::max(v.max_overlap_ns, std::max<int64_t>(overlap, 1));
      add(ViolationKind::kOverlap,
          "two critical sections overlap by " + Seconds(overlap) + ": " + describe(*reach) +
              " and " + describe(s),
          s.start_ns);
    }
    if (reach == nullptr || end > reach_end) {
      reach = &s;
      reach_end = end;
    }
  }

  // 3: the counter. Completed increments: the sections that recorded their write, and those
  // named as writers by a later reader or by the final file.
  // A token may name several sections (two authorities handing out tokens): a reader's
  // writer is then the one of them that wrote the value it read, if any.
  std::multimap<uint64_t, const Section*> by_token;
  for (const Section* s : order) by_token.emplace(s->token, s);  // duplicates: reported above
  std::set<const Section*> completed;
  for (const Section* s : order) {
    if (s->incremented) completed.insert(s);
  }
  auto named_writer = [&](uint64_t writer, int64_t value, const std::string& by) {
    if (writer == 0) {
      if (value != 0) {
        add(ViolationKind::kLostUpdate,
            by + " read value " + std::to_string(value) + " with no writer named");
      }
      return;
    }
    auto [first, last] = by_token.equal_range(writer);
    if (first == last) {
      add(ViolationKind::kLostUpdate, by + " read value " + std::to_string(value) +
                                          " written by token " + std::to_string(writer) +
                                          ", which has no critical section in the history");
      return;
    }
    const Section* w = first->second;
    for (auto it = first; it != last; ++it) {
      if (it->second->read_value + 1 == value) w = it->second;
    }
    if (w->read_value + 1 != value) {
      add(ViolationKind::kLostUpdate, by + " read value " + std::to_string(value) + " from token " +
                                          std::to_string(writer) + ", which wrote " +
                                          std::to_string(w->read_value + 1) + ": " + describe(*w));
    }
    completed.insert(w);
  };
  for (const Section* s : order) {
    named_writer(s->read_writer, s->read_value, "section " + describe(*s));
  }
  named_writer(h.counter_writer, h.counter, "the final counter file");
  v.completed_increments = static_cast<int64_t>(completed.size());
  std::map<int64_t, const Section*> wrote;  // value -> section
  for (const Section* w : order) {          // in start order, so that messages are stable
    if (completed.count(w) == 0) continue;
    int64_t value = w->read_value + 1;
    auto [it, fresh] = wrote.emplace(value, w);
    if (!fresh) {
      add(ViolationKind::kLostUpdate,
          "value " + std::to_string(value) + " written twice (an increment lost): " +
              describe(*it->second) + " and " + describe(*w),
          std::max(it->second->start_ns, w->start_ns));
    }
  }
  if (h.counter != v.completed_increments) {
    int64_t recorded = 0;
    for (const Section* s : order) recorded += s->incremented ? 1 : 0;
    add(ViolationKind::kCounter,
        "the counter file says " + std::to_string(h.counter) + " but " +
            std::to_string(v.completed_increments) + " increments completed (" +
            std::to_string(recorded) + " with a W record, " +
            std::to_string(v.completed_increments - recorded) +
            " known only from the value a later reader or the final file saw)");
  }
  for (int64_t value = 1; value <= h.counter; ++value) {
    if (wrote.count(value) == 0) {
      add(ViolationKind::kLostUpdate, "no completed increment wrote value " +
                                          std::to_string(value) + " (of 1.." +
                                          std::to_string(h.counter) + ")");
      break;
    }
  }

  // 4: every success has its whole section.
  std::map<std::string, std::vector<const Section*>> by_run;
  for (const Section& s : h.sections) by_run[s.run].push_back(&s);
  for (const auto& [id, r] : h.runs) {
    if (r.exit_code != 0) continue;
    auto found = by_run.find(id);
    bool whole = false;
    if (found != by_run.end()) {
      for (const Section* s : found->second) {
        whole = whole ||
                (s->start_ns != 0 && s->end_ns != 0 && s->term_ns == 0 && completed.count(s) != 0);
      }
    }
    if (!whole) {
      std::string what = found == by_run.end() ? std::string("no section at all")
                                               : describe(*found->second.front());
      add(ViolationKind::kSuccessMissing,
          "run " + id + " on " + r.host + ": lockmesh lock exited 0 at " + Time(r.exit_ns, origin) +
              " but its section did not run to its end with its increment: " + what,
          r.exit_ns);
    }
  }
  return v;
}

bool ParseSectionRecords(const std::string& run, const std::string& host, const std::string& text,
                         History* h) {
  Section s;
  s.run = run;
  s.host = host;
  bool ok = true;
  bool any = false;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    std::istringstream in(line);
    std::string kind;
    in >> kind;
    bool good = true;
    if (kind == "S") {
      long long start = 0, value = 0;
      unsigned long long token = 0, writer = 0;
      good = static_cast<bool>(in >> token >> start >> value >> writer) && token != 0 &&
             s.start_ns == 0;
      if (good) {
        s.token = token;
        s.start_ns = start;
        s.last_mark_ns = std::max<int64_t>(s.last_mark_ns, start);
        s.read_value = value;
        s.read_writer = writer;
      }
    } else if (kind == "P" || kind == "E" || kind == "T") {
      long long t = 0;
      good = static_cast<bool>(in >> t) && t > 0 && s.start_ns != 0;
      if (good) {
        s.last_mark_ns = std::max<int64_t>(s.last_mark_ns, t);
        if (kind == "E") s.end_ns = t;
        if (kind == "T") s.term_ns = t;
      }
    } else if (kind == "W") {
      long long value = 0, t = 0;
      good = static_cast<bool>(in >> value >> t) && s.start_ns != 0 && value == s.read_value + 1;
      if (good) {
        s.incremented = true;
        s.write_ns = t;
        s.last_mark_ns = std::max<int64_t>(s.last_mark_ns, t);
      }
    } else {
      good = false;
    }
    if (!good) {
      h->malformed.push_back("run " + run + " on " + host +
                             ": unreadable or out-of-order record '" + line + "'");
      ok = false;
      continue;
    }
    any = true;
  }
  if (any) h->sections.push_back(s);
  return ok;
}

bool ParseCounter(const std::string& text, History* h) {
  h->counter = 0;
  h->counter_writer = 0;
  if (text.find_first_not_of(" \n\t") == std::string::npos) return true;
  std::istringstream in(text);
  long long value = 0;
  unsigned long long writer = 0;
  if (!(in >> value >> writer)) {
    h->malformed.push_back("unreadable counter file '" + text + "'");
    return false;
  }
  h->counter = value;
  h->counter_writer = writer;
  return true;
}

}  // namespace lockmesh::testing::history
