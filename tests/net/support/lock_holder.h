// LockHolder: a test's big lock table. One mesh::AsyncClient session on a thread and libuv
// loop of its own takes many exclusive locks, pipelined, and keeps them (its loop renews the
// session) until the holder is destroyed, which closes the session (the node then releases
// every lock of it).
#ifndef LOCKMESH_TESTS_NET_SUPPORT_LOCK_HOLDER_H_
#define LOCKMESH_TESTS_NET_SUPPORT_LOCK_HOLDER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "mesh/status.h"

namespace lockmesh::testing {

class LockHolder {
 public:
  /// Takes `count` distinct locks through the node at `socket`, named `prefix` followed by
  /// the lock's number, zero-padded to `name_bytes` bytes in all (or longer if the number
  /// needs it), at most `window` requests in flight. Blocks until all are held or one fails
  /// (that status is returned and nothing is kept).
  static mesh::Status Start(const std::string& socket, uint64_t count, size_t name_bytes,
                            const std::string& prefix, std::unique_ptr<LockHolder>* out,
                            size_t window = 256);
  /// Closes the session and joins the thread.
  ~LockHolder();
  LockHolder(const LockHolder&) = delete;
  LockHolder& operator=(const LockHolder&) = delete;

  /// False once a held lock was reported lost (the session ended, the node went away).
  /// Any thread.
  bool healthy() const;
  /// The name of lock `i` (what Start asked for).
  static std::string Name(const std::string& prefix, uint64_t i, size_t name_bytes);

 private:
  LockHolder();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockmesh::testing

#endif  // LOCKMESH_TESTS_NET_SUPPORT_LOCK_HOLDER_H_
