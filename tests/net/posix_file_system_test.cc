// Tests of net::PosixFileSystem on a real temporary directory, and of core::LogStore on it.
#include "net/support/posix_file_system.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/storage/log_store.h"

namespace mesh::net {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class PosixFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lockmesh-posix-fs-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  core::FileSystem* fs_ = PosixFileSystem();
  std::string root_;
};

TEST_F(PosixFileSystemTest, SingletonIsStable) { EXPECT_EQ(PosixFileSystem(), fs_); }

TEST_F(PosixFileSystemTest, BasicOperations) {
  const std::string dir = root_ + "/a/b";
  ASSERT_TRUE(fs_->CreateDirs(dir).ok());
  ASSERT_TRUE(fs_->CreateDirs(dir).ok());  // exists: fine
  struct stat st;
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  std::unique_ptr<core::WritableFile> f;
  ASSERT_TRUE(fs_->OpenWritable(dir + "/seg", 3 << 20, &f).ok());
  std::string content;
  ASSERT_TRUE(fs_->ReadFile(dir + "/seg", &content).ok());
  EXPECT_EQ(content, std::string(3 << 20, '\0'));
  ASSERT_TRUE(f->WriteAt(5, "hello").ok());
  ASSERT_TRUE(f->WriteAt((3 << 20) + 2, "grow").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Close().ok());
  ASSERT_TRUE(fs_->ReadFile(dir + "/seg", &content).ok());
  EXPECT_EQ(content.size(), (3u << 20) + 6);
  EXPECT_EQ(content.substr(5, 5), "hello");
  EXPECT_EQ(content.substr(3 << 20), std::string("\0\0grow", 6));

  ASSERT_TRUE(fs_->WriteFileAtomic(dir + "/snap", "v1").ok());
  ASSERT_TRUE(fs_->WriteFileAtomic(dir + "/snap", "version 2").ok());
  ASSERT_TRUE(fs_->ReadFile(dir + "/snap", &content).ok());
  EXPECT_EQ(content, "version 2");
  EXPECT_FALSE(fs_->Exists(dir + "/snap.tmp"));

  std::vector<std::string> names;
  ASSERT_TRUE(fs_->ListDir(dir, &names).ok());
  EXPECT_THAT(names, ElementsAre("seg", "snap"));
  ASSERT_TRUE(fs_->Rename(dir + "/snap", dir + "/snap2").ok());
  ASSERT_TRUE(fs_->Truncate(dir + "/seg", 7).ok());
  ASSERT_TRUE(fs_->ReadFile(dir + "/seg", &content).ok());
  EXPECT_EQ(content, std::string("\0\0\0\0\0he", 7));
  ASSERT_TRUE(fs_->Remove(dir + "/seg").ok());
  ASSERT_TRUE(fs_->SyncDir(dir).ok());
  ASSERT_TRUE(fs_->ListDir(dir, &names).ok());
  EXPECT_THAT(names, ElementsAre("snap2"));
  EXPECT_TRUE(fs_->Exists(dir));
  EXPECT_FALSE(fs_->Exists(dir + "/seg"));
}

TEST_F(PosixFileSystemTest, ErrorsNamePathAndCause) {
  std::string content;
  Status s = fs_->ReadFile(root_ + "/missing", &content);
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_THAT(s.message(), HasSubstr(root_ + "/missing"));
  EXPECT_THAT(s.message(), HasSubstr("No such file or directory"));
  std::vector<std::string> names;
  EXPECT_TRUE(fs_->ListDir(root_ + "/missing", &names).IsNotFound());
  EXPECT_TRUE(fs_->Remove(root_ + "/missing").IsNotFound());
  ASSERT_TRUE(fs_->WriteFileAtomic(root_ + "/file", "x").ok());
  s = fs_->CreateDirs(root_ + "/file/sub");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr(root_ + "/file"));
  std::unique_ptr<core::WritableFile> f;
  s = fs_->OpenWritable(root_ + "/no/dir/file", 0, &f);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

TEST_F(PosixFileSystemTest, MakeDirsIsMkdirP) {
  const std::string dir = root_ + "/x/y/z";
  ASSERT_TRUE(MakeDirs(dir, 0750).ok());
  EXPECT_EQ(ModeOf(root_ + "/x") & 0700, 0700u);
  EXPECT_EQ(ModeOf(dir) & ~0750u, 0u);  // the umask may narrow it, never widen it
  Status again = MakeDirs(dir, 0750);   // every component exists (EEXIST): fine
  EXPECT_TRUE(again.ok()) << again.ToString();
  EXPECT_TRUE(MakeDirs(dir + "/", 0700).ok());  // a trailing slash too
  // A component that is a file: an error naming it, whatever the depth.
  ASSERT_TRUE(fs_->WriteFileAtomic(root_ + "/x/file", "x").ok());
  for (const std::string& bad : {root_ + "/x/file", root_ + "/x/file/sub", root_ + "/x/file/a/b"}) {
    Status s = MakeDirs(bad, 0700);
    EXPECT_TRUE(s.IsIOError()) << bad << ": " << s.ToString();
    EXPECT_THAT(s.message(), HasSubstr(root_ + "/x/file")) << s.ToString();
    EXPECT_THAT(s.message(), HasSubstr("Not a directory")) << s.ToString();
  }
  EXPECT_TRUE(MakeDirs("", 0700).IsInvalidArgument());
}

TEST_F(PosixFileSystemTest, WriteFileAtomicOptions) {
  const std::string path = root_ + "/cert.pem";
  core::AtomicWriteOptions public_file;
  public_file.mode = 0644;
  public_file.overwrite = false;
  public_file.unique_temp = true;
  const mode_t old_umask = ::umask(077);  // the exact mode wins over the umask
  Status s = fs_->WriteFileAtomic(path, "one", public_file);
  ::umask(old_umask);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(ModeOf(path), 0644u);
  s = fs_->WriteFileAtomic(path, "two", public_file);  // no overwrite: refused, old file kept
  EXPECT_EQ(s.code(), Status::Code::kAlreadyExists) << s.ToString();
  std::string content;
  ASSERT_TRUE(fs_->ReadFile(path, &content).ok());
  EXPECT_EQ(content, "one");
  public_file.overwrite = true;
  ASSERT_TRUE(fs_->WriteFileAtomic(path, "three", public_file).ok());
  ASSERT_TRUE(fs_->ReadFile(path, &content).ok());
  EXPECT_EQ(content, "three");
  std::vector<std::string> names;
  ASSERT_TRUE(fs_->ListDir(root_, &names).ok());
  EXPECT_THAT(names, ElementsAre("cert.pem"));  // no temporary file left behind
  EXPECT_EQ(ModeOf(path), 0644u);

  // A symlink where the temporary file goes is removed, never followed.
  const std::string target = root_ + "/target";
  ASSERT_EQ(::symlink(target.c_str(), (root_ + "/snap.tmp").c_str()), 0);
  ASSERT_TRUE(fs_->WriteFileAtomic(root_ + "/snap", "data").ok());
  EXPECT_FALSE(fs_->Exists(target));
  EXPECT_EQ(ModeOf(root_ + "/snap"), 0600u);
}

TEST_F(PosixFileSystemTest, LockFileIsExclusiveUntilReleased) {
  const std::string path = root_ + "/node.lock";
  std::unique_ptr<core::FileLock> first;
  ASSERT_TRUE(fs_->LockFile(path, core::LockWait::kTry, &first).ok());
  EXPECT_EQ(ModeOf(path), 0600u);
  std::unique_ptr<core::FileLock> second;
  Status s = fs_->LockFile(path, core::LockWait::kTry, &second);  // flock: per open file
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr(path));
  EXPECT_EQ(second, nullptr);
  // A waiting locker gets it once the first is released.
  Status waited;
  std::thread waiter([&] { waited = fs_->LockFile(path, core::LockWait::kWait, &second); });
  first.reset();
  waiter.join();
  EXPECT_TRUE(waited.ok()) << waited.ToString();
  EXPECT_NE(second, nullptr);
  second.reset();
  EXPECT_TRUE(fs_->LockFile(path, core::LockWait::kTry, &first).ok());

  // Never through a symbolic link; a missing directory is NotFound.
  ASSERT_EQ(::symlink(path.c_str(), (root_ + "/link.lock").c_str()), 0);
  s = fs_->LockFile(root_ + "/link.lock", core::LockWait::kTry, &second);
  EXPECT_EQ(s.code(), Status::Code::kPermissionDenied) << s.ToString();
  EXPECT_TRUE(fs_->LockFile(root_ + "/no/dir.lock", core::LockWait::kTry, &second).IsNotFound());
}

core::LogEntry Entry(uint64_t index, uint64_t term) {
  return core::LogEntry{index, term, "command " + std::to_string(index) + std::string(80, '.')};
}

TEST_F(PosixFileSystemTest, LogStoreRoundTripReopenAndTruncatedTail) {
  const std::string dir = root_ + "/node";
  core::LogStoreOptions options;
  options.segment_bytes = 4096;
  std::unique_ptr<core::LogStore> store;
  ASSERT_TRUE(core::LogStore::Open(fs_, dir, options, &store).ok());
  for (uint64_t i = 1; i <= 100; i += 10) {
    std::vector<core::LogEntry> batch;
    for (uint64_t j = i; j < i + 10; ++j) batch.push_back(Entry(j, 1 + j / 50));
    ASSERT_TRUE(store->Append(batch).ok());
    ASSERT_TRUE(store->SetHardState(core::HardState{1 + i / 50, "node-a", i}).ok());
    ASSERT_TRUE(store->Sync().ok());
  }
  ASSERT_TRUE(store->Append({Entry(96, 9), Entry(97, 9)}).ok());  // conflict: replaces 96..100
  ASSERT_TRUE(store->Sync().ok());
  store.reset();

  Status s = core::LogStore::Open(fs_, dir, options, &store);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(store->last_index(), 97u);
  for (uint64_t i = 1; i <= 95; ++i) {
    EXPECT_EQ(store->entry(i).term, 1 + i / 50);
    EXPECT_EQ(store->entry(i).data, Entry(i, 0).data);
  }
  EXPECT_EQ(store->entry(97).term, 9u);
  EXPECT_EQ(store->hard_state().vote, "node-a");
  EXPECT_EQ(store->hard_state().commit, 91u);
  size_t segments = store->segment_count();
  EXPECT_GT(segments, 2u);

  // Cut the real last segment in the middle of its last record.
  std::vector<std::string> names;
  ASSERT_TRUE(fs_->ListDir(dir + "/wal", &names).ok());
  ASSERT_EQ(names.size(), segments);
  const std::string last = dir + "/wal/" + names.back();
  uint64_t used = 0;
  {
    std::string content;
    ASSERT_TRUE(fs_->ReadFile(last, &content).ok());
    used = content.find_last_not_of('\0') + 1;
  }
  store.reset();
  ASSERT_EQ(::truncate(last.c_str(), static_cast<off_t>(used - 30)), 0);

  s = core::LogStore::Open(fs_, dir, options, &store);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(store->last_index(), 96u);  // entry 97 was the last record
  ASSERT_TRUE(store->Append({Entry(97, 10), Entry(98, 10)}).ok());
  ASSERT_TRUE(store->SaveSnapshot(core::SnapshotData{90, 2, "state"}).ok());
  store.reset();

  ASSERT_TRUE(core::LogStore::Open(fs_, dir, options, &store).ok());
  EXPECT_EQ(store->snapshot().index, 90u);
  EXPECT_EQ(store->first_index(), 91u);
  EXPECT_EQ(store->last_index(), 98u);
  EXPECT_EQ(store->entry(98).term, 10u);
  EXPECT_LT(store->segment_count(), segments);

  // A flipped byte in an early record is refused.
  store.reset();
  ASSERT_TRUE(fs_->ListDir(dir + "/wal", &names).ok());
  const std::string first = dir + "/wal/" + names.front();
  {
    std::unique_ptr<core::WritableFile> f;
    ASSERT_TRUE(fs_->OpenWritable(first, 0, &f).ok());
    ASSERT_TRUE(f->WriteAt(20, "\x7f").ok());
    ASSERT_TRUE(f->Sync().ok());
  }
  s = core::LogStore::Open(fs_, dir, options, &store);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr(first + " offset 0"));
}

}  // namespace
}  // namespace mesh::net
