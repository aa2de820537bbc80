// net/support/log_sink.h: level filter, format, and a capped, rotated log file.
#include "net/support/log_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "net/support/posix_file_system.h"

namespace mesh::net {

LogSink::LogSink(LogSinkOptions options) : options_(std::move(options)) {}

LogSink::~LogSink() {
  if (fd_ >= 0) close(fd_);
}

void LogSink::Write(const std::string& line) {
  LogRecord record;
  const bool stamped = ParseLogLine(line, &record);
  LogEvent event = ClassifyLogMessage(record.message);
  if (event.level > options_.level) return;
  std::string text = options_.format == LogFormat::kText && stamped
                         ? line
                         : RenderLogRecord(record, event, options_.format);
  text += '\n';
  if (options_.path.empty()) {
    WriteOut(text);
    return;
  }
  if (!Open()) return;
  if (options_.max_bytes > 0 && size_ > 0 && size_ + text.size() > options_.max_bytes) Rotate();
  if (fd_ >= 0) WriteOut(text);
}

bool LogSink::Open() {
  if (fd_ >= 0) return true;
  const std::string& path = options_.path;
  size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    (void)MakeDirs(path.substr(0, slash), 0700);  // open says why if this failed
  }
  fd_ = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd_ < 0) return false;
  struct stat st;
  if (fstat(fd_, &st) == 0) {
    size_ = static_cast<uint64_t>(st.st_size);
    inode_ = st.st_ino;
    device_ = st.st_dev;
  }
  return true;
}

void LogSink::Rotate() {
  const std::string& path = options_.path;
  const std::string previous = path + ".1";
  struct stat st;
  const bool still_ours =
      stat(path.c_str(), &st) == 0 && st.st_ino == inode_ && st.st_dev == device_;
  if (still_ours && rename(path.c_str(), previous.c_str()) != 0) {
    return;  // cannot rotate (keep writing rather than lose lines)
  }
  close(fd_);
  fd_ = -1;
  size_ = 0;
  if (!Open()) return;
  if (still_ours) {
    ++rotations_;
    if (LogLevel::kInfo <= options_.level) {
      std::string line = FormatLogLine("log file rotated: " + previous + " holds the lines before");
      LogRecord record;
      ParseLogLine(line, &record);
      std::string text =
          options_.format == LogFormat::kText
              ? line
              : RenderLogRecord(record, ClassifyLogMessage(record.message), options_.format);
      WriteOut(text + '\n');
    }
  }
}

void LogSink::WriteOut(const std::string& text) {
  const int fd = options_.path.empty() ? STDERR_FILENO : fd_;
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  if (fd == fd_) size_ += done;
}

}  // namespace mesh::net
