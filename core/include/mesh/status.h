// mesh::Status: the outcome of an operation, in the manner of LevelDB's Status.
//
// No exception crosses a module boundary in lockmesh: functions that can fail return a
// Status (and their results through out-parameters or mesh::Result below). A Status is
// cheap to copy when ok() and carries a code and a human-readable message otherwise.
// Thread-compatible: distinct objects may be used from distinct threads.
#ifndef MESH_STATUS_H_
#define MESH_STATUS_H_

#include <string>
#include <string_view>
#include <utility>

namespace mesh {

class Status {
 public:
  /// Error classes. Callers branch on the code; the message is for people.
  enum class Code {
    kOk = 0,
    kNotFound,         // a file, lock, session or peer that does not exist
    kCorruption,       // stored data failed a checksum or does not parse
    kInvalidArgument,  // bad flag, resource name, mode, frame or message
    kIOError,          // the operating system refused a read, write, sync or socket call
    kBusy,             // a try-lock found the resource held (FLoM exit 98)
    kTimedOut,         // a deadline passed (FLoM exit 98)
    kImpossible,       // the request can never be granted (FLoM exit 99)
    kCantWait,         // resource missing and the caller would not wait (FLoM exit 96)
    kLost,             // a granted lock was lost (session expired, node gone)
    kUnavailable,      // the peer or node cannot serve now; retrying may help
    kPermissionDenied, // the caller is not allowed to do this
    kAlreadyExists,    // e.g. another node already owns this socket
    kInternal,         // a bug: an invariant did not hold
  };

  /// An ok status.
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status OK() { return Status(); }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status IOError(std::string m) { return {Code::kIOError, std::move(m)}; }
  static Status Busy(std::string m) { return {Code::kBusy, std::move(m)}; }
  static Status TimedOut(std::string m) { return {Code::kTimedOut, std::move(m)}; }
  static Status Impossible(std::string m) { return {Code::kImpossible, std::move(m)}; }
  static Status CantWait(std::string m) { return {Code::kCantWait, std::move(m)}; }
  static Status Lost(std::string m) { return {Code::kLost, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status PermissionDenied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsIOError() const { return code_ == Code::kIOError; }
  bool IsBusy() const { return code_ == Code::kBusy; }
  bool IsTimedOut() const { return code_ == Code::kTimedOut; }
  bool IsLost() const { return code_ == Code::kLost; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }

  /// "OK", or "<code name>: <message>".
  std::string ToString() const;

  /// Returns a copy whose message is "<context>: <message>" (unchanged when ok()).
  Status Annotate(std::string_view context) const;

  /// The code's name, e.g. "IO error".
  static const char* CodeName(Code code);

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace mesh

/// Returns early from the enclosing function if `expr` yields a non-ok Status.
#define MESH_RETURN_IF_ERROR(expr)              \
  do {                                          \
    ::mesh::Status _mesh_status = (expr);       \
    if (!_mesh_status.ok()) return _mesh_status; \
  } while (0)

#endif  // MESH_STATUS_H_
