// libFuzzer target: the lock table applying arbitrary log commands. The input is split into
// length-prefixed chunks, each parsed as a pb::Command and applied at the next index; every
// tenth command the table is snapshotted, restored into a twin, and both must list the same
// locks. A replicated state machine must never crash on a command, whatever it says.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/lock_table.h"
#include "lockmesh.pb.h"

namespace {

bool SameRows(const std::vector<mesh::core::LockRow>& a, const std::vector<mesh::core::LockRow>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].resource != b[i].resource || a[i].lock_id != b[i].lock_id ||
        a[i].token != b[i].token || a[i].held != b[i].held || a[i].element != b[i].element) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mesh::core::LockTable table;
  uint64_t index = 0;
  size_t at = 0;
  while (at < size && index < 2000) {
    size_t n = data[at++];
    if (at + n > size) n = size - at;
    mesh::pb::Command cmd;
    if (cmd.ParseFromArray(data + at, static_cast<int>(n))) {
      table.Apply(++index, cmd);
      if (index % 10 == 0) {
        mesh::pb::LockTableSnapshot snap;
        table.Snapshot(&snap);
        mesh::core::LockTable twin;
        if (!twin.Restore(snap).ok()) __builtin_trap();
        if (!SameRows(table.List(), twin.List())) __builtin_trap();
      }
    }
    at += n;
  }
  return 0;
}
