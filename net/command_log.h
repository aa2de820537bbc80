// net/command_log: the node's durable, group-committed log of lock commands (single voter).
//
// Proposals are buffered and written to the LogStore with one fsync per batch — at the
// end of a loop iteration, or under load a little later to gather the batch (OnCheck) —
// then applied to the LockTable in order; only then are the results handed to the node
// (persist -> apply -> acknowledge, DESIGN.md §2). The consensus issue replaces the
// single-voter commit rule with Raft behind this same interface.
//
// Threading: the loop's thread only. Owns its libuv handles; Close() must be called and
// its callback awaited before destruction.
#ifndef LOCKMESH_NET_COMMAND_LOG_H_
#define LOCKMESH_NET_COMMAND_LOG_H_

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/lock_table.h"
#include "core/storage/log_store.h"
#include "lockmesh.pb.h"
#include "mesh/status.h"

namespace mesh::net {

class CommandLog {
 public:
  /// Called for every applied entry, in log order, after it is durable.
  using ApplyHandler =
      std::function<void(uint64_t index, const pb::Command& command, const core::ApplyResult&)>;
  /// Called once if storage fails; the log refuses further proposals afterwards.
  using FailureHandler = std::function<void(const Status& why)>;

  struct Options {
    std::string data_dir;
    bool fsync = true;
    uint64_t snapshot_every = 100000;
    uint64_t wal_segment_bytes = 64ull << 20;
    /// Longest wait, in microseconds, for more commands before syncing a batch smaller
    /// than the last one (see OnCheck); 0 syncs at the end of every loop iteration.
    uint64_t gather_us = 150;
  };

  CommandLog(uv_loop_t* loop, Options options, core::FileSystem* fs);
  ~CommandLog();

  /// Opens the store and replays it into the table. Call once, before Propose.
  Status Open();
  /// Called after the last entry of a batch was applied.
  using BatchDoneHandler = std::function<void()>;
  void SetHandlers(ApplyHandler on_apply, FailureHandler on_failure,
                   BatchDoneHandler on_batch_done = nullptr);

  /// Buffers a command; it is made durable and applied at the end of this loop iteration
  /// (or a little later under load, see OnCheck). An OpenSession alone waits for the next
  /// command, or for Flush().
  /// Returns Unavailable after a storage failure or Close().
  Status Propose(pb::Command command);
  /// Writes, syncs and applies everything buffered now (Stop uses it).
  void Flush();

  const core::LockTable& table() const { return table_; }
  uint64_t applied_index() const { return table_.applied_index(); }
  uint64_t last_index() const;
  bool failed() const { return !failure_.ok(); }

  /// Closes the libuv handles; `done` runs from the last close callback.
  void Close(std::function<void()> done);

 private:
  static void OnCheck(uv_check_t* h);
  static void OnIdle(uv_idle_t* h);
  void Fail(const Status& why);
  void MaybeSnapshot();

  uv_loop_t* loop_;
  Options options_;
  core::FileSystem* fs_;
  std::unique_ptr<core::FileSystem> no_sync_fs_;
  std::unique_ptr<core::LogStore> store_;
  core::LockTable table_;
  std::vector<pb::Command> pending_;
  uv_check_t check_;
  uv_idle_t idle_;
  int open_handles_ = 0;
  std::function<void()> close_done_;
  ApplyHandler on_apply_;
  FailureHandler on_failure_;
  BatchDoneHandler on_batch_done_;
  Status failure_;
  bool closing_ = false;
  uint64_t last_snapshot_index_ = 0;
  size_t last_batch_size_ = 0;      // commands in the last synced batch
  size_t urgent_pending_ = 0;       // pending commands other than OpenSession
  uint64_t gather_started_ns_ = 0;  // uv_hrtime() when this batch began to wait; 0 = not
};

}  // namespace mesh::net

#endif  // LOCKMESH_NET_COMMAND_LOG_H_
