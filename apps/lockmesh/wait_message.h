// What `lockmesh lock` says while it waits for a lock: after 1 s, one line on stderr naming
// the holder (pid, node, command, how long it has held the lock as far as this client can
// tell), this request's place in the queue, or that the node has no leader or quorum.
//
// On a terminal (isatty(2)) the line is rewritten in place ("\r", the line, clear to the end
// of the line), at most once per second, and cleared when the wait ends; without a terminal
// nothing is printed unless asked (WaitReport::kVerbose), and then one line per change of
// what it says (not per second).
//
// The facts come from the node: one GetStatus and, when the node has a leader and quorum,
// one ListLocks filtered by the resource (its queue's root for a hierarchical name), at most
// one such poll per second and never two at once. The lock table keeps no grant time, so
// "held for" is a lower bound this client observes: the time since the holder was first
// seen, or since this request was sent when the holder's grant (its token, an entry index)
// precedes this request's entry (its lock id).
#ifndef LOCKMESH_APPS_LOCKMESH_WAIT_MESSAGE_H_
#define LOCKMESH_APPS_LOCKMESH_WAIT_MESSAGE_H_

#include <uv.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mesh/client.h"

namespace lockmesh::cli {

/// What to say while waiting for a lock.
enum class WaitReport {
  kQuiet,     // nothing (`lockmesh lock --quiet`; the `flom` front end without -V)
  kTerminal,  // the in-place line when stderr is a terminal, else nothing (`lockmesh lock`)
  kVerbose,   // also without a terminal, one line per change; a final line once granted
};

/// What one poll of the node found about the wait. Filled by WaitMessage; pure data.
struct WaitFacts {
  bool status_failed = false;  // the status or the listing could not be read
  std::string error;           // ... why
  bool no_quorum = false;      // mesh node without a leader or without a valid lease
  std::string node_role;       // this node's role and term, for the no-quorum case
  std::string leader_id;
  uint64_t term = 0;
  bool found_self = false;  // this request is in the listing (committed)
  uint64_t position = 0;    // 1-based among the waiters of overlapping resources
  uint64_t waiters = 0;     // how many of them
  uint64_t holders = 0;     // holders of overlapping resources
  mesh::LockInfo holder;    // the longest-held of them (lowest token), when holders > 0
  bool truncated = false;   // the listing was cut off (too many rows): counts are lower bounds
};

/// The waiting line (without "program: " and without a newline) for `facts`, `waited_s`
/// seconds into the wait for `resource`, the holder known for at least `held_s` seconds
/// (ignored if there is no holder). `no_create`: the request waits for the resource to exist.
std::string FormatWaitLine(const std::string& resource, bool no_create, const WaitFacts& facts,
                           int64_t waited_s, int64_t held_s);

/// The same line with the varying seconds left out: a change of this text is a change of
/// what the line says (WaitReport::kVerbose without a terminal prints one line per change).
std::string WaitLineKey(const std::string& resource, bool no_create, const WaitFacts& facts);

/// Whether two resource names conflict by name: equal, or (hierarchical names, starting
/// with '/') one is an ancestor path of the other.
bool ResourcesOverlap(const std::string& a, const std::string& b);

/// Drives the waiting line for one lock request. Runs on `loop`'s thread (the LockRunner's
/// loop); `client` (not owned) must stay open until Stop has been called. The object must
/// outlive the loop's run (its timer is closed by Stop, and callbacks of a poll still
/// pending at Stop may run later: they do nothing then).
class WaitMessage {
 public:
  /// `program`: the prefix of every line ("lockmesh", "flom").
  WaitMessage(uv_loop_t* loop, mesh::AsyncClient* client, std::string program, std::string resource,
              bool no_create, WaitReport report);
  WaitMessage(const WaitMessage&) = delete;
  WaitMessage& operator=(const WaitMessage&) = delete;

  /// The lock request has just been sent: the first poll is due in 1 s. Does nothing for
  /// kQuiet, or for kTerminal without a terminal. Call at most once.
  void Start();
  /// The wait has ended (granted: the lock was granted). Clears the line on a terminal and,
  /// for kVerbose, says how long the wait took if anything was printed. Idempotent; call
  /// before printing anything else on stderr.
  void Stop(bool granted);

 private:
  void Poll();
  void OnStatus(const mesh::Status& st, const mesh::NodeStatus& status);
  void OnRows(const std::vector<mesh::LockInfo>& page);
  void OnListed(const mesh::Status& st);
  void Render();
  void Write(const std::string& text);
  int64_t SecondsSince(uint64_t start_ms) const;

  uv_loop_t* loop_;
  mesh::AsyncClient* client_;
  std::string program_;
  std::string resource_;
  bool no_create_;
  WaitReport report_;
  bool terminal_ = false;  // stderr is a terminal
  bool started_ = false;   // the timer exists (Start did not return early)
  bool stopped_ = false;
  bool polling_ = false;    // a status or listing request is outstanding
  bool shown_ = false;      // something was printed
  bool line_open_ = false;  // the terminal line is shown (not yet cleared)
  uv_timer_t timer_;
  uint64_t start_ms_ = 0;  // uv_now when the request was sent

  // The poll in progress.
  WaitFacts facts_;
  std::string node_id_;  // this node's id (from the status)
  uint64_t self_lock_id_ = 0;
  std::vector<uint64_t> waiter_ids_;  // lock ids of waiters of overlapping resources
  uint64_t rows_seen_ = 0;

  // Across polls.
  uint64_t holder_lock_id_ = 0;  // the holder shown last
  uint64_t holder_since_ms_ = 0;
  std::string last_key_;  // WaitLineKey of the last line printed without a terminal
};

}  // namespace lockmesh::cli

#endif  // LOCKMESH_APPS_LOCKMESH_WAIT_MESSAGE_H_
