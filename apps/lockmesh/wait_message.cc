// The waiting line of `lockmesh lock` (wait_message.h).
#include "wait_message.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <utility>

namespace lockmesh::cli {
namespace {

using mesh::Status;

/// The first poll, and the time between polls.
constexpr uint64_t kPollMs = 1000;
/// Rows of a listing examined per poll at most (a huge hierarchy under one root): beyond,
/// the counts are lower bounds.
constexpr uint64_t kMaxRowsPerPoll = 10000;
/// Rows per page asked of the node.
constexpr uint32_t kPageRows = 500;

/// The listing prefix that covers every resource overlapping `resource`: the resource
/// itself, or a hierarchical name's root ("/" + first component), which is its queue.
std::string ListPrefix(const std::string& resource) {
  if (resource.size() < 2 || resource[0] != '/') return resource;
  size_t slash = resource.find('/', 1);
  return slash == std::string::npos ? resource : resource.substr(0, slash);
}

/// "1st", "2nd", ... is not worth it: "position 3 of 5".
std::string Plural(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

/// `text` with control characters (a command's newlines, escapes) replaced by spaces, so
/// that the line stays one line and cannot drive the terminal.
std::string Printable(const std::string& text) {
  std::string out = text;
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = ' ';
  }
  return out;
}

/// `text` cut to `columns` characters (UTF-8 code points; 0 = no limit), "..." at the end
/// when cut. The in-place update only works on one physical line: "\r" returns to the
/// start of the last row of a wrapped line.
std::string FitColumns(const std::string& text, size_t columns) {
  if (columns == 0) return text;
  size_t chars = 0;
  for (unsigned char c : text) chars += (c & 0xc0) != 0x80;
  if (chars <= columns) return text;
  const size_t keep = columns > 3 ? columns - 3 : columns;
  size_t seen = 0;
  size_t i = 0;
  for (; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xc0) != 0x80) {
      if (seen == keep) break;
      ++seen;
    }
  }
  return text.substr(0, i) + (columns > 3 ? "..." : "");
}

size_t TerminalColumns() {
  winsize ws{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) return 0;
  // One column short: writing the last column makes some terminals wrap at once.
  return ws.ws_col > 1 ? ws.ws_col - 1 : 1;
}

// The line in two parts: what it says (`key`) and the seconds that vary with each poll.
std::string Describe(const std::string& resource, bool no_create, const WaitFacts& f,
                     int64_t waited_s, int64_t held_s, bool with_seconds) {
  std::string line = "waiting";
  if (with_seconds) line += " " + std::to_string(waited_s) + " s";
  line += " for '" + resource + "'";
  if (f.status_failed) return line + " (cannot ask the node: " + f.error + ")";
  if (f.no_quorum) {
    line += ": no leader/quorum (this node: " + f.node_role;
    if (f.term != 0) line += ", term " + std::to_string(f.term);
    line += f.leader_id.empty() ? ", no leader" : ", leader " + f.leader_id + " not confirmed";
    return line + "); the request waits until the cluster commits again";
  }
  if (!f.found_self) {
    line += "; the request is not in the lock table yet";
  } else {
    std::string of = std::to_string(f.waiters) + (f.truncated ? "+" : "");
    line += ", queue position " + std::to_string(f.position) + " of " + of;
  }
  if (f.holders == 0) {
    return line + (no_create ? "; not held: waiting for someone to lock it (--no-create)"
                             : "; not held (the grant is on its way)");
  }
  const mesh::LockInfo& h = f.holder;
  line += "; held";
  if (with_seconds) line += " " + std::to_string(held_s) + "+ s";
  line += " by pid " + (h.pid != 0 ? std::to_string(h.pid) : std::string("?"));
  line += " on node " + (h.node_id.empty() ? std::string("?") : h.node_id);
  line += " (" + std::string(mesh::LockModeName(h.mode));
  if (f.holders > 1) line += ", +" + Plural(f.holders - 1, "other holder", "other holders");
  if (h.resource != resource) line += ", on '" + h.resource + "'";
  line += ")";
  if (!h.client_name.empty()) line += ": " + h.client_name;
  return line;
}

}  // namespace

std::string FormatWaitLine(const std::string& resource, bool no_create, const WaitFacts& facts,
                           int64_t waited_s, int64_t held_s) {
  return Describe(resource, no_create, facts, waited_s, held_s, /*with_seconds=*/true);
}

std::string WaitLineKey(const std::string& resource, bool no_create, const WaitFacts& facts) {
  return Describe(resource, no_create, facts, 0, 0, /*with_seconds=*/false);
}

bool ResourcesOverlap(const std::string& a, const std::string& b) {
  if (a == b) return true;
  if (a.empty() || b.empty() || a[0] != '/' || b[0] != '/') return false;
  const std::string& shorter = a.size() < b.size() ? a : b;
  const std::string& longer = a.size() < b.size() ? b : a;
  return longer.compare(0, shorter.size(), shorter) == 0 && longer[shorter.size()] == '/';
}

WaitMessage::WaitMessage(uv_loop_t* loop, mesh::AsyncClient* client, std::string program,
                         std::string resource, bool no_create, WaitReport report)
    : loop_(loop),
      client_(client),
      program_(std::move(program)),
      resource_(std::move(resource)),
      no_create_(no_create),
      report_(report) {}

void WaitMessage::Start() {
  if (started_ || stopped_ || report_ == WaitReport::kQuiet) return;
  terminal_ = isatty(STDERR_FILENO) == 1;
  if (!terminal_ && report_ != WaitReport::kVerbose) return;
  started_ = true;
  start_ms_ = uv_now(loop_);
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  uv_timer_start(
      &timer_, [](uv_timer_t* t) { static_cast<WaitMessage*>(t->data)->Poll(); }, kPollMs, kPollMs);
}

void WaitMessage::Stop(bool granted) {
  if (stopped_) return;
  stopped_ = true;
  if (!started_) return;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
  std::string out;
  if (line_open_) out = "\r\033[K";
  line_open_ = false;
  if (granted && shown_ && report_ == WaitReport::kVerbose) {
    uint64_t ms = uv_now(loop_) - start_ms_;
    char seconds[32];
    snprintf(seconds, sizeof seconds, "%.1f", static_cast<double>(ms) / 1000.0);
    out += program_ + ": got '" + Printable(resource_) + "' after " + seconds + " s\n";
  }
  if (!out.empty()) Write(out);
}

void WaitMessage::Poll() {
  // A poll that has not answered within the second is not doubled: one at a time.
  if (stopped_ || polling_) return;
  polling_ = true;
  client_->GetStatus(
      [this](const Status& st, const mesh::NodeStatus& status) { OnStatus(st, status); });
}

void WaitMessage::OnStatus(const Status& st, const mesh::NodeStatus& status) {
  if (stopped_) return;
  facts_ = WaitFacts{};
  if (!st.ok()) {
    facts_.status_failed = true;
    facts_.error = st.message().empty() ? st.ToString() : st.message();
    Render();
    return;
  }
  node_id_ = status.node_id;
  // A local node is its own leader. A mesh node without a leader, or whose session lease
  // has lapsed (no quorum has acknowledged it lately), cannot commit the request; its
  // listing is only what it applied before.
  if (status.mesh && (status.leader_id.empty() || status.lease_ms < 0)) {
    facts_.no_quorum = true;
    facts_.node_role = status.role;
    facts_.leader_id = status.leader_id;
    facts_.term = status.term;
    Render();
    return;
  }
  self_lock_id_ = 0;
  waiter_ids_.clear();
  rows_seen_ = 0;
  mesh::ListLocksOptions options;
  options.prefix = ListPrefix(resource_);
  options.page_rows = kPageRows;
  client_->ListLocks(
      options,
      [this](const std::vector<mesh::LockInfo>& page) {
        OnRows(page);
        return !stopped_ && !facts_.truncated;
      },
      [this](const Status& listed) { OnListed(listed); });
}

void WaitMessage::OnRows(const std::vector<mesh::LockInfo>& page) {
  if (stopped_) return;
  const uint32_t self_pid = static_cast<uint32_t>(getpid());
  for (const mesh::LockInfo& row : page) {
    if (++rows_seen_ > kMaxRowsPerPoll) {
      facts_.truncated = true;
      return;
    }
    if (!ResourcesOverlap(row.resource, resource_)) continue;
    if (row.held) {
      if (facts_.holders == 0 || row.token < facts_.holder.token) facts_.holder = row;
      ++facts_.holders;
      continue;
    }
    // This process has one session, on this node, and one request in it.
    if (row.pid == self_pid && row.node_id == node_id_ && row.resource == resource_) {
      self_lock_id_ = row.lock_id;
    }
    waiter_ids_.push_back(row.lock_id);
  }
}

void WaitMessage::OnListed(const Status& st) {
  if (stopped_) return;
  if (!st.ok()) {
    facts_ = WaitFacts{};
    facts_.status_failed = true;
    facts_.error = st.message().empty() ? st.ToString() : st.message();
    Render();
    return;
  }
  facts_.waiters = waiter_ids_.size();
  if (self_lock_id_ != 0) {
    facts_.found_self = true;
    // Strict FIFO among waiters of overlapping resources: lock ids are entry indexes.
    facts_.position =
        1 + static_cast<uint64_t>(std::count_if(waiter_ids_.begin(), waiter_ids_.end(),
                                                [&](uint64_t id) { return id < self_lock_id_; }));
  }
  Render();
}

int64_t WaitMessage::SecondsSince(uint64_t start_ms) const {
  uint64_t now = uv_now(loop_);
  return now > start_ms ? static_cast<int64_t>((now - start_ms) / 1000) : 0;
}

void WaitMessage::Render() {
  polling_ = false;
  if (stopped_) return;
  uint64_t now = uv_now(loop_);
  if (facts_.holders > 0 && facts_.holder.lock_id != holder_lock_id_) {
    holder_lock_id_ = facts_.holder.lock_id;
    // Granted by an entry before this request's own: held since before it was sent, at
    // least. Otherwise: since now, as far as this client knows.
    holder_since_ms_ = facts_.found_self && facts_.holder.token < self_lock_id_ ? start_ms_ : now;
  }
  const std::string head = program_ + ": ";
  if (terminal_) {
    std::string line =
        Printable(head + FormatWaitLine(resource_, no_create_, facts_, SecondsSince(start_ms_),
                                        SecondsSince(holder_since_ms_)));
    Write("\r" + FitColumns(line, TerminalColumns()) + "\033[K");
    line_open_ = true;
    shown_ = true;
    return;
  }
  std::string key = WaitLineKey(resource_, no_create_, facts_);
  if (key == last_key_) return;
  last_key_ = key;
  Write(Printable(head + FormatWaitLine(resource_, no_create_, facts_, SecondsSince(start_ms_),
                                        SecondsSince(holder_since_ms_))) +
        "\n");
  shown_ = true;
}

void WaitMessage::Write(const std::string& text) {
  fputs(text.c_str(), stderr);
  fflush(stderr);
}

}  // namespace lockmesh::cli
