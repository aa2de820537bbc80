// core/storage/disk_full_policy: see disk_full_policy.h.
#include "core/storage/disk_full_policy.h"

#include <algorithm>

#include "core/storage/file_system.h"

namespace mesh::core {

DiskFullPolicy::Verdict DiskFullPolicy::OnPersistFailed(const Status& error, uint64_t now_us) {
  if (!IsNoSpace(error)) return Verdict::kFatal;
  const bool began = !full_;
  if (began) {
    full_ = true;
    retries_ = 0;
    backoff_us_ = std::max<uint64_t>(1, options_.first_retry_us);
  } else {
    ++retries_;
    backoff_us_ = std::min(std::max<uint64_t>(1, options_.max_retry_us), backoff_us_ * 2);
  }
  why_ = error;
  next_retry_us_ = now_us + backoff_us_;
  return began ? Verdict::kBecameFull : Verdict::kStillFull;
}

bool DiskFullPolicy::OnPersisted() {
  if (!full_) return false;
  full_ = false;
  why_ = Status::OK();
  backoff_us_ = 0;
  return true;
}

Status DiskFullPolicy::Admit(const pb::Command& command) const {
  if (!full_ || !command.has_acquire()) return Status::OK();
  return Status::Unavailable(Describe());
}

std::string DiskFullPolicy::Describe() const {
  if (!full_) return "";
  return "disk full: " + why_.message() + "; new locks are refused until space returns (retrying)";
}

}  // namespace mesh::core
