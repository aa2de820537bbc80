#include "core/storage/fault_file_system.h"

#include <algorithm>
#include <unordered_set>
#include <utility>

#include "core/path_text.h"

namespace mesh::core {

// A handle on one inode. Writes go through the file system so faults and the unsynced-write
// journal apply.
class FaultFileSystem::File : public WritableFile {
 public:
  File(FaultFileSystem* fs, std::shared_ptr<Inode> inode, std::string path)
      : fs_(fs), inode_(std::move(inode)), path_(std::move(path)) {}

  Status WriteAt(uint64_t offset, std::string_view data) override {
    if (closed_) return Status::IOError(path_ + ": write on a closed file");
    return fs_->FileWriteAt(inode_, path_, offset, data);
  }
  Status Allocate(uint64_t size) override {
    if (closed_) return Status::IOError(path_ + ": allocate on a closed file");
    return fs_->FileAllocate(inode_, path_, size);
  }
  Status Sync() override {
    if (closed_) return Status::IOError(path_ + ": sync on a closed file");
    return fs_->FileSync(inode_, path_);
  }
  Status Close() override {
    closed_ = true;
    return Status::OK();
  }

 private:
  FaultFileSystem* fs_;
  std::shared_ptr<Inode> inode_;
  std::string path_;
  bool closed_ = false;
};

// A held LockFile lock: a name in locked_ while it lives.
class FaultFileSystem::Lock : public FileLock {
 public:
  Lock(FaultFileSystem* fs, std::string path) : fs_(fs), path_(std::move(path)) {}
  ~Lock() override { fs_->locked_.erase(path_); }

 private:
  FaultFileSystem* fs_;
  std::string path_;
};

namespace {

void WriteInto(std::string* content, uint64_t offset, std::string_view data) {
  if (content->size() < offset + data.size()) content->resize(offset + data.size(), '\0');
  std::copy(data.begin(), data.end(), content->begin() + static_cast<ptrdiff_t>(offset));
}

}  // namespace

FaultFileSystem::FaultFileSystem(uint64_t seed) : rng_(seed) { dirs_.insert(""); }

FaultFileSystem::~FaultFileSystem() = default;

std::string FaultFileSystem::Parent(const std::string& path) {
  // A bare name has no directory entry of its own to sync here (the paths are absolute).
  if (path.find('/') == std::string::npos) return "";
  return DirName(path);
}

bool FaultFileSystem::DirExists(const std::string& dir) const {
  return dir.empty() || dir == "/" || dirs_.count(dir) > 0;
}

Status FaultFileSystem::CheckWrite(const std::string& path) {
  if (fail_writes_ > 0) {
    if (fail_writes_after_ > 0) {
      --fail_writes_after_;
    } else {
      --fail_writes_;
      return Status::IOError(path + ": write: Input/output error (injected)");
    }
  }
  return Status::OK();
}

Status FaultFileSystem::CheckSync(const std::string& path) {
  if (fail_syncs_ > 0) {
    if (fail_syncs_after_ > 0) {
      --fail_syncs_after_;
    } else {
      --fail_syncs_;
      return Status::IOError(path + ": sync: Input/output error (injected)");
    }
  }
  return Status::OK();
}

Status FaultFileSystem::CheckSpace(const std::string& path, uint64_t extra) {
  if (space_limit_ == UINT64_MAX || extra == 0) return Status::OK();
  if (UsedBytes() + extra > space_limit_) {
    return NoSpaceError(path + ": write (injected)");
  }
  return Status::OK();
}

uint64_t FaultFileSystem::UsedBytes() const {
  std::unordered_set<const Inode*> seen;
  uint64_t total = 0;
  for (const auto* names : {&current_names_, &durable_names_}) {
    for (const auto& [name, inode] : *names) {
      if (!seen.insert(inode.get()).second) continue;
      total += std::max(inode->current.size(), inode->durable.size());
    }
  }
  return total;
}

void FaultFileSystem::MakeDurable(const std::shared_ptr<Inode>& inode, bool whole) {
  if (whole) inode->durable = inode->current;
  auto it = std::remove_if(unsynced_.begin(), unsynced_.end(), [&](const PendingWrite& w) {
    if (w.inode != inode) return false;
    if (!whole) WriteInto(&inode->durable, w.offset, w.data);
    return true;
  });
  unsynced_.erase(it, unsynced_.end());
}

Status FaultFileSystem::FileWriteAt(const std::shared_ptr<Inode>& inode, const std::string& path,
                                    uint64_t offset, std::string_view data) {
  MESH_RETURN_IF_ERROR(CheckWrite(path));
  uint64_t end = offset + data.size();
  uint64_t size = std::max(inode->current.size(), inode->durable.size());
  MESH_RETURN_IF_ERROR(CheckSpace(path, end > size ? end - size : 0));
  WriteInto(&inode->current, offset, data);
  unsynced_.push_back(PendingWrite{inode, offset, std::string(data)});
  return Status::OK();
}

Status FaultFileSystem::FileAllocate(const std::shared_ptr<Inode>& inode, const std::string& path,
                                     uint64_t size) {
  if (size <= inode->current.size()) return Status::OK();
  MESH_RETURN_IF_ERROR(CheckWrite(path));
  uint64_t have = std::max(inode->current.size(), inode->durable.size());
  MESH_RETURN_IF_ERROR(CheckSpace(path, size > have ? size - have : 0));
  inode->current.resize(size, '\0');
  MESH_RETURN_IF_ERROR(CheckSync(path));
  MakeDurable(inode, /*whole=*/true);  // fsync: every earlier write of the file too
  return Status::OK();
}

Status FaultFileSystem::FileSync(const std::shared_ptr<Inode>& inode, const std::string& path) {
  MESH_RETURN_IF_ERROR(CheckSync(path));
  MakeDurable(inode, /*whole=*/false);  // durable + pending writes == current
  return Status::OK();
}

Status FaultFileSystem::OpenWritable(const std::string& path, uint64_t preallocate,
                                     std::unique_ptr<WritableFile>* out) {
  if (!DirExists(Parent(path))) {
    return Status::NotFound(path + ": open: No such file or directory");
  }
  auto it = current_names_.find(path);
  std::shared_ptr<Inode> inode;
  if (it == current_names_.end()) {
    inode = std::make_shared<Inode>();
    current_names_[path] = inode;  // not durable until SyncDir(parent)
  } else {
    inode = it->second;
  }
  if (preallocate > inode->current.size()) {
    MESH_RETURN_IF_ERROR(CheckWrite(path));
    uint64_t size = std::max(inode->current.size(), inode->durable.size());
    MESH_RETURN_IF_ERROR(CheckSpace(path, preallocate > size ? preallocate - size : 0));
    inode->current.resize(preallocate, '\0');
    MESH_RETURN_IF_ERROR(CheckSync(path));
    MakeDurable(inode, /*whole=*/true);
  }
  *out = std::make_unique<File>(this, inode, path);
  return Status::OK();
}

Status FaultFileSystem::ReadFile(const std::string& path, std::string* out) {
  auto it = current_names_.find(path);
  if (it == current_names_.end()) {
    return Status::NotFound(path + ": open: No such file or directory");
  }
  *out = it->second->current;
  return Status::OK();
}

Status FaultFileSystem::WriteFileAtomic(const std::string& path, std::string_view data,
                                        const AtomicWriteOptions& options) {
  std::string dir = Parent(path);
  if (!DirExists(dir)) return Status::NotFound(path + ": open: No such file or directory");
  if (!options.overwrite && current_names_.count(path)) {
    return Status::AlreadyExists(path + ": link: File exists");
  }
  std::string tmp = path + ".tmp";
  // write(tmp)
  MESH_RETURN_IF_ERROR(CheckWrite(tmp));
  auto old = current_names_.find(tmp);
  uint64_t old_size = old == current_names_.end() ? 0 : old->second->current.size();
  MESH_RETURN_IF_ERROR(CheckSpace(tmp, data.size() > old_size ? data.size() - old_size : 0));
  auto inode = std::make_shared<Inode>();
  inode->current.assign(data.data(), data.size());
  current_names_[tmp] = inode;
  unsynced_.push_back(PendingWrite{inode, 0, std::string(data)});
  // fsync(tmp)
  MESH_RETURN_IF_ERROR(CheckSync(tmp));
  MakeDurable(inode, /*whole=*/true);
  // rename(tmp, path); fsync(dir)
  MESH_RETURN_IF_ERROR(Rename(tmp, path));
  return SyncDir(dir);
}

Status FaultFileSystem::ListDir(const std::string& dir, std::vector<std::string>* names) {
  if (!DirExists(dir)) return Status::NotFound(dir + ": opendir: No such file or directory");
  std::set<std::string> found;
  std::string prefix = dir.empty() ? "" : (dir == "/" ? "/" : dir + "/");
  auto child = [&](const std::string& path) {
    if (path.size() <= prefix.size() || path.compare(0, prefix.size(), prefix) != 0) return;
    std::string rest = path.substr(prefix.size());
    if (rest.find('/') == std::string::npos) found.insert(rest);
  };
  for (const auto& [path, inode] : current_names_) child(path);
  for (const auto& d : dirs_) child(d);
  names->assign(found.begin(), found.end());
  return Status::OK();
}

Status FaultFileSystem::CreateDirs(const std::string& dir) {
  if (current_names_.count(dir)) return Status::IOError(dir + ": mkdir: File exists");
  std::string d = dir;
  while (!d.empty() && d != "/" && !dirs_.count(d)) {
    dirs_.insert(d);
    d = Parent(d);
  }
  return Status::OK();
}

Status FaultFileSystem::Remove(const std::string& path) {
  if (current_names_.erase(path) == 0) {
    return Status::NotFound(path + ": unlink: No such file or directory");
  }
  return Status::OK();
}

Status FaultFileSystem::Rename(const std::string& from, const std::string& to) {
  auto it = current_names_.find(from);
  if (it == current_names_.end()) {
    return Status::NotFound(from + ": rename: No such file or directory");
  }
  if (!DirExists(Parent(to))) return Status::NotFound(to + ": rename: No such file or directory");
  std::shared_ptr<Inode> inode = it->second;
  current_names_.erase(it);
  current_names_[to] = std::move(inode);
  return Status::OK();
}

Status FaultFileSystem::Truncate(const std::string& path, uint64_t size) {
  auto it = current_names_.find(path);
  if (it == current_names_.end()) {
    return Status::NotFound(path + ": truncate: No such file or directory");
  }
  const std::shared_ptr<Inode>& inode = it->second;
  uint64_t have = std::max(inode->current.size(), inode->durable.size());
  MESH_RETURN_IF_ERROR(CheckSpace(path, size > have ? size - have : 0));
  inode->current.resize(size, '\0');
  MESH_RETURN_IF_ERROR(CheckSync(path));
  MakeDurable(inode, /*whole=*/true);
  return Status::OK();
}

Status FaultFileSystem::SyncDir(const std::string& dir) {
  if (!DirExists(dir)) return Status::NotFound(dir + ": open: No such file or directory");
  MESH_RETURN_IF_ERROR(CheckSync(dir));
  auto in_dir = [&](const std::string& path) { return Parent(path) == dir; };
  for (auto it = durable_names_.begin(); it != durable_names_.end();) {
    it = in_dir(it->first) ? durable_names_.erase(it) : std::next(it);
  }
  for (const auto& [path, inode] : current_names_) {
    if (in_dir(path)) durable_names_[path] = inode;
  }
  return Status::OK();
}

bool FaultFileSystem::Exists(const std::string& path) {
  return current_names_.count(path) > 0 || (DirExists(path) && !path.empty());
}

Status FaultFileSystem::LockFile(const std::string& path, LockWait /*wait*/,
                                 std::unique_ptr<FileLock>* lock) {
  if (!DirExists(Parent(path))) return Status::NotFound(path + ": open: No such file or directory");
  if (!locked_.insert(path).second) return Status::Busy(path + ": already locked");
  if (!current_names_.count(path)) current_names_[path] = std::make_shared<Inode>();
  *lock = std::make_unique<Lock>(this, path);
  return Status::OK();
}

void FaultFileSystem::Crash(TearMode mode) {
  if (mode != TearMode::kDropUnsynced && !unsynced_.empty()) {
    for (size_t i = 0; i + 1 < unsynced_.size(); ++i) {
      const PendingWrite& w = unsynced_[i];
      WriteInto(&w.inode->durable, w.offset, w.data);
    }
    const PendingWrite& last = unsynced_.back();
    if (!last.data.empty()) {
      size_t keep = std::uniform_int_distribution<size_t>(0, last.data.size() - 1)(rng_);
      std::string landed = last.data.substr(0, keep);
      if (mode == TearMode::kGarbleLastWrite) {
        std::uniform_int_distribution<int> byte(0, 255);
        for (size_t i = keep; i < last.data.size(); ++i) {
          landed.push_back(static_cast<char>(byte(rng_)));
        }
      }
      WriteInto(&last.inode->durable, last.offset, landed);
    }
  }
  unsynced_.clear();
  current_names_ = durable_names_;
  for (const auto& [path, inode] : current_names_) {
    if (inode->current != inode->durable) inode->current = inode->durable;
  }
}

void FaultFileSystem::FailNextWrites(int n, int after) {
  fail_writes_ = n;
  fail_writes_after_ = after;
}

void FaultFileSystem::FailNextSyncs(int n, int after) {
  fail_syncs_ = n;
  fail_syncs_after_ = after;
}

void FaultFileSystem::SetSpaceLimit(uint64_t bytes) { space_limit_ = bytes; }

}  // namespace mesh::core
