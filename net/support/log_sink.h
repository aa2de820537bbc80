// net/support/log_sink: where a node process writes its log lines (net/support/log_line.h): stderr, or a
// file that is capped and rotated. Lines below the level threshold are dropped; the rest are
// written in the chosen format, one per line.
//
// Rotation (a file with max_bytes > 0): before a line that would take the file past
// max_bytes, the file is renamed to `<path>.1` (replacing the older one) and a new file is
// begun with a `log_rotated` line. So the file holds at most max_bytes (or one longer line)
// and at most one older file is kept: the log costs at most 2 x max_bytes on disk. The
// sink of the node that holds the data dir is the only one writing there for long; if the
// file was renamed by another process (a node that failed to start and wrote one line), the
// sink does not rename again but opens the new file.
//
// Not thread-safe: one thread writes (the node's loop thread, in `lockmesh node`).
#ifndef LOCKMESH_NET_SUPPORT_LOG_SINK_H_
#define LOCKMESH_NET_SUPPORT_LOG_SINK_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "net/support/log_line.h"

namespace mesh::net {

struct LogSinkOptions {
  /// The file to append to; "" = stderr. Its directory is created (0700) on the first line.
  std::string path;
  /// Cap of the file in bytes; 0 = no cap (the file grows without rotation).
  uint64_t max_bytes = 0;
  /// Lines less severe than this are dropped.
  LogLevel level = LogLevel::kInfo;
  LogFormat format = LogFormat::kText;
};

class LogSink {
 public:
  explicit LogSink(LogSinkOptions options);
  ~LogSink();
  LogSink(const LogSink&) = delete;
  LogSink& operator=(const LogSink&) = delete;

  /// Writes `line` (FormatLogLine's form; any other text is stamped now) unless its level is
  /// below the threshold. Errors writing are ignored (a log cannot report its own failure).
  void Write(const std::string& line);
  /// Write(FormatLogLine(message)).
  void Note(const std::string& message) { Write(FormatLogLine(message)); }

  const LogSinkOptions& options() const { return options_; }
  /// Files renamed to `<path>.1` so far (for tests).
  uint64_t rotations() const { return rotations_; }

 private:
  /// Opens options_.path for appending if it is not open; false if it cannot be.
  bool Open();
  /// Renames the file to `<path>.1` (unless someone already moved it) and opens a new one.
  void Rotate();
  void WriteOut(const std::string& text);

  LogSinkOptions options_;
  int fd_ = -1;
  uint64_t size_ = 0;  // bytes in the open file
  ino_t inode_ = 0;    // of the open file
  dev_t device_ = 0;
  uint64_t rotations_ = 0;
};

}  // namespace mesh::net

#endif  // LOCKMESH_NET_SUPPORT_LOG_SINK_H_
