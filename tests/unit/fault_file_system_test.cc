// Tests of the in-memory FaultFileSystem's crash model and fault injection, and of crc32c.
#include "core/storage/fault_file_system.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/storage/crc32c.h"

namespace mesh::core {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using TearMode = FaultFileSystem::TearMode;

std::string Read(FaultFileSystem& fs, const std::string& path) {
  std::string out;
  Status s = fs.ReadFile(path, &out);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

class FaultFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fs_.CreateDirs("/d/sub").ok()); }

  std::unique_ptr<WritableFile> Open(const std::string& path, uint64_t prealloc = 0) {
    std::unique_ptr<WritableFile> f;
    Status s = fs_.OpenWritable(path, prealloc, &f);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return f;
  }

  FaultFileSystem fs_{42};
};

TEST_F(FaultFileSystemTest, WriteReadAndDirectoryListing) {
  auto f = Open("/d/b");
  ASSERT_TRUE(f->WriteAt(0, "hello").ok());
  ASSERT_TRUE(f->WriteAt(7, "xy").ok());  // leaves a zero-filled hole
  EXPECT_EQ(Read(fs_, "/d/b"), std::string("hello\0\0xy", 9));
  Open("/d/a");
  std::vector<std::string> names;
  ASSERT_TRUE(fs_.ListDir("/d", &names).ok());
  EXPECT_THAT(names, ElementsAre("a", "b", "sub"));
  EXPECT_TRUE(fs_.Exists("/d/a"));
  EXPECT_TRUE(fs_.Exists("/d/sub"));
  EXPECT_FALSE(fs_.Exists("/d/c"));
  std::string out;
  EXPECT_TRUE(fs_.ReadFile("/d/c", &out).IsNotFound());
  EXPECT_TRUE(fs_.ListDir("/nope", &names).IsNotFound());
  EXPECT_TRUE(fs_.Remove("/d/c").IsNotFound());
  std::unique_ptr<WritableFile> g;
  EXPECT_TRUE(fs_.OpenWritable("/nope/x", 0, &g).IsNotFound());
  ASSERT_TRUE(f->Close().ok());
  EXPECT_TRUE(f->WriteAt(0, "z").IsIOError());
}

TEST_F(FaultFileSystemTest, CrashDropsUnsyncedWritesKeepsSynced) {
  auto f = Open("/d/f");
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE(f->WriteAt(0, "durable").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->WriteAt(0, "VOLATILE!").ok());
  EXPECT_EQ(Read(fs_, "/d/f"), "VOLATILE!");
  EXPECT_EQ(fs_.UnsyncedWriteCount(), 1u);
  fs_.Crash();
  EXPECT_EQ(Read(fs_, "/d/f"), "durable");
  EXPECT_EQ(fs_.UnsyncedWriteCount(), 0u);
}

TEST_F(FaultFileSystemTest, CreationNeedsDirectorySync) {
  auto f = Open("/d/new");
  ASSERT_TRUE(f->WriteAt(0, "data").ok());
  ASSERT_TRUE(f->Sync().ok());  // the data is durable, the name is not
  auto g = Open("/d/sub/other");
  ASSERT_TRUE(fs_.SyncDir("/d/sub").ok());  // another directory does not help /d
  fs_.Crash();
  EXPECT_FALSE(fs_.Exists("/d/new"));
  EXPECT_TRUE(fs_.Exists("/d/sub/other"));

  f = Open("/d/new");
  ASSERT_TRUE(f->WriteAt(0, "data").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  fs_.Crash();
  EXPECT_EQ(Read(fs_, "/d/new"), "data");
}

TEST_F(FaultFileSystemTest, RenameAndRemoveNeedDirectorySync) {
  auto f = Open("/d/a");
  ASSERT_TRUE(f->WriteAt(0, "A").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(fs_.SyncDir("/d").ok());

  ASSERT_TRUE(fs_.Rename("/d/a", "/d/b").ok());
  EXPECT_FALSE(fs_.Exists("/d/a"));
  fs_.Crash();
  EXPECT_TRUE(fs_.Exists("/d/a"));
  EXPECT_FALSE(fs_.Exists("/d/b"));

  ASSERT_TRUE(fs_.Rename("/d/a", "/d/b").ok());
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  fs_.Crash();
  EXPECT_FALSE(fs_.Exists("/d/a"));
  EXPECT_EQ(Read(fs_, "/d/b"), "A");

  ASSERT_TRUE(fs_.Remove("/d/b").ok());
  fs_.Crash();
  EXPECT_EQ(Read(fs_, "/d/b"), "A");
  ASSERT_TRUE(fs_.Remove("/d/b").ok());
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  fs_.Crash();
  EXPECT_FALSE(fs_.Exists("/d/b"));
}

TEST_F(FaultFileSystemTest, WriteFileAtomicIsDurableAndAtomic) {
  ASSERT_TRUE(fs_.WriteFileAtomic("/d/snap", "v1").ok());
  fs_.Crash();
  EXPECT_EQ(Read(fs_, "/d/snap"), "v1");
  // The directory sync fails: the new version is visible but not durable.
  fs_.FailNextSyncs(1, 1);
  EXPECT_TRUE(fs_.WriteFileAtomic("/d/snap", "v2").IsIOError());
  EXPECT_EQ(Read(fs_, "/d/snap"), "v2");
  fs_.Crash();
  EXPECT_EQ(Read(fs_, "/d/snap"), "v1");
  // The write fails: nothing changes.
  fs_.FailNextWrites(1);
  EXPECT_TRUE(fs_.WriteFileAtomic("/d/snap", "v3").IsIOError());
  EXPECT_EQ(Read(fs_, "/d/snap"), "v1");
}

TEST_F(FaultFileSystemTest, WriteFileAtomicWithoutOverwriteRefusesAnExistingFile) {
  AtomicWriteOptions create_only;
  create_only.overwrite = false;
  ASSERT_TRUE(fs_.WriteFileAtomic("/d/key", "k1", create_only).ok());
  EXPECT_EQ(fs_.WriteFileAtomic("/d/key", "k2", create_only).code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(Read(fs_, "/d/key"), "k1");
  EXPECT_FALSE(fs_.Exists("/d/key.tmp"));
}

TEST_F(FaultFileSystemTest, LockFileIsExclusiveUntilReleased) {
  std::unique_ptr<FileLock> lock;
  ASSERT_TRUE(fs_.LockFile("/d/node.lock", LockWait::kTry, &lock).ok());
  EXPECT_TRUE(fs_.Exists("/d/node.lock"));
  std::unique_ptr<FileLock> other;
  EXPECT_TRUE(fs_.LockFile("/d/node.lock", LockWait::kTry, &other).IsBusy());
  EXPECT_TRUE(fs_.LockFile("/d/node.lock", LockWait::kWait, &other).IsBusy());  // one thread
  EXPECT_TRUE(fs_.LockFile("/d/sub/other.lock", LockWait::kTry, &other).ok());  // another file
  lock.reset();
  EXPECT_TRUE(fs_.LockFile("/d/node.lock", LockWait::kTry, &lock).ok());
  EXPECT_TRUE(fs_.LockFile("/nodir/x.lock", LockWait::kTry, &other).IsNotFound());
}

// A wrapper forwards every call it does not override to its target.
class CountingSyncs final : public FileSystemWrapper {
 public:
  using FileSystemWrapper::FileSystemWrapper;
  Status SyncDir(const std::string& dir) override {
    ++dir_syncs;
    return target()->SyncDir(dir);
  }
  Status OpenWritable(const std::string& path, uint64_t preallocate,
                      std::unique_ptr<WritableFile>* out) override {
    std::unique_ptr<WritableFile> file;
    MESH_RETURN_IF_ERROR(target()->OpenWritable(path, preallocate, &file));
    *out = std::make_unique<File>(this, std::move(file));
    return Status::OK();
  }
  int dir_syncs = 0;
  int file_syncs = 0;

 private:
  class File final : public WritableFileWrapper {
   public:
    File(CountingSyncs* fs, std::unique_ptr<WritableFile> file)
        : WritableFileWrapper(std::move(file)), fs_(fs) {}
    Status Sync() override {
      ++fs_->file_syncs;
      return target()->Sync();
    }

   private:
    CountingSyncs* fs_;
  };
};

TEST_F(FaultFileSystemTest, WrapperForwardsEverythingItDoesNotOverride) {
  CountingSyncs wrapped(&fs_);
  EXPECT_EQ(wrapped.target(), &fs_);
  ASSERT_TRUE(wrapped.CreateDirs("/w/x").ok());
  std::unique_ptr<WritableFile> f;
  ASSERT_TRUE(wrapped.OpenWritable("/w/x/seg", 8, &f).ok());
  ASSERT_TRUE(f->WriteAt(0, "abc").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Close().ok());
  ASSERT_TRUE(wrapped.SyncDir("/w/x").ok());
  ASSERT_TRUE(wrapped.WriteFileAtomic("/w/x/snap", "s").ok());
  ASSERT_TRUE(wrapped.Rename("/w/x/snap", "/w/x/snap2").ok());
  ASSERT_TRUE(wrapped.Truncate("/w/x/seg", 3).ok());
  std::vector<std::string> names;
  ASSERT_TRUE(wrapped.ListDir("/w/x", &names).ok());
  EXPECT_THAT(names, ElementsAre("seg", "snap2"));
  EXPECT_TRUE(wrapped.Exists("/w/x/snap2"));
  ASSERT_TRUE(wrapped.Remove("/w/x/snap2").ok());
  EXPECT_FALSE(fs_.Exists("/w/x/snap2"));
  std::unique_ptr<FileLock> lock;
  ASSERT_TRUE(wrapped.LockFile("/w/x/l", LockWait::kTry, &lock).ok());
  EXPECT_TRUE(fs_.LockFile("/w/x/l", LockWait::kTry, &lock).IsBusy());
  std::string content;
  ASSERT_TRUE(wrapped.ReadFile("/w/x/seg", &content).ok());
  EXPECT_EQ(content, "abc");
  // The overrides ran; the syncs inside the target's own WriteFileAtomic are the target's.
  EXPECT_EQ(wrapped.file_syncs, 1);
  EXPECT_EQ(wrapped.dir_syncs, 1);
  fs_.Crash();
  EXPECT_EQ(Read(fs_, "/w/x/seg"), "abc");
}

TEST_F(FaultFileSystemTest, PreallocationAndTruncateAreDurable) {
  auto f = Open("/d/seg", 64);
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  EXPECT_EQ(Read(fs_, "/d/seg"), std::string(64, '\0'));
  ASSERT_TRUE(f->WriteAt(10, "abc").ok());
  fs_.Crash();
  EXPECT_EQ(Read(fs_, "/d/seg"), std::string(64, '\0'));
  ASSERT_TRUE(fs_.Truncate("/d/seg", 16).ok());
  fs_.Crash();
  EXPECT_EQ(Read(fs_, "/d/seg").size(), 16u);
  ASSERT_TRUE(fs_.Truncate("/d/seg", 32).ok());
  EXPECT_EQ(Read(fs_, "/d/seg"), std::string(32, '\0'));
  Open("/d/seg", 8);  // never shrinks
  EXPECT_EQ(Read(fs_, "/d/seg").size(), 32u);
}

TEST_F(FaultFileSystemTest, TearKeepsEarlierWritesAndAPrefixOfTheLast) {
  bool saw_partial = false;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    FaultFileSystem fs(seed);
    ASSERT_TRUE(fs.CreateDirs("/d").ok());
    std::unique_ptr<WritableFile> f;
    ASSERT_TRUE(fs.OpenWritable("/d/f", 0, &f).ok());
    ASSERT_TRUE(fs.SyncDir("/d").ok());
    ASSERT_TRUE(f->WriteAt(0, "first-").ok());
    ASSERT_TRUE(f->WriteAt(6, "0123456789").ok());
    fs.Crash(TearMode::kTearLastWrite);
    std::string got = Read(fs, "/d/f");
    ASSERT_GE(got.size(), 6u);
    ASSERT_LT(got.size(), 16u);
    EXPECT_EQ(got, std::string("first-0123456789").substr(0, got.size()));
    saw_partial |= got.size() > 6;
  }
  EXPECT_TRUE(saw_partial);
}

TEST_F(FaultFileSystemTest, GarbleKeepsAPrefixThenRandomBytes) {
  bool saw_garbage = false;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    FaultFileSystem fs(seed);
    ASSERT_TRUE(fs.CreateDirs("/d").ok());
    std::unique_ptr<WritableFile> f;
    ASSERT_TRUE(fs.OpenWritable("/d/f", 0, &f).ok());
    ASSERT_TRUE(fs.SyncDir("/d").ok());
    const std::string data(32, 'q');
    ASSERT_TRUE(f->WriteAt(0, data).ok());
    fs.Crash(TearMode::kGarbleLastWrite);
    std::string got = Read(fs, "/d/f");
    ASSERT_EQ(got.size(), data.size());  // the whole range is written, partly with garbage
    size_t same = 0;
    while (same < got.size() && got[same] == 'q') ++same;
    saw_garbage |= same < got.size();
  }
  EXPECT_TRUE(saw_garbage);
}

TEST_F(FaultFileSystemTest, TearIsReproducibleFromTheSeed) {
  auto run = [](uint64_t seed) {
    FaultFileSystem fs(seed);
    EXPECT_TRUE(fs.CreateDirs("/d").ok());
    std::unique_ptr<WritableFile> f;
    EXPECT_TRUE(fs.OpenWritable("/d/f", 0, &f).ok());
    EXPECT_TRUE(fs.SyncDir("/d").ok());
    EXPECT_TRUE(f->WriteAt(0, std::string(100, 'x')).ok());
    fs.Crash(TearMode::kGarbleLastWrite);
    return Read(fs, "/d/f");
  };
  EXPECT_EQ(run(5), run(5));
  EXPECT_NE(run(5), run(6));
}

TEST_F(FaultFileSystemTest, SyncedWritesAreNeverTorn) {
  auto f = Open("/d/f");
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE(f->WriteAt(0, "synced").ok());
  ASSERT_TRUE(f->Sync().ok());
  fs_.Crash(TearMode::kGarbleLastWrite);
  EXPECT_EQ(Read(fs_, "/d/f"), "synced");
}

TEST_F(FaultFileSystemTest, FailNextWritesAndSyncs) {
  auto f = Open("/d/f");
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  fs_.FailNextWrites(2, 1);
  EXPECT_TRUE(f->WriteAt(0, "a").ok());
  Status s = f->WriteAt(1, "b");
  EXPECT_TRUE(s.IsIOError());
  EXPECT_THAT(s.message(), HasSubstr("/d/f"));
  EXPECT_TRUE(f->WriteAt(1, "b").IsIOError());
  EXPECT_TRUE(f->WriteAt(1, "c").ok());
  EXPECT_EQ(Read(fs_, "/d/f"), "ac");  // failed writes changed nothing

  fs_.FailNextSyncs(1);
  EXPECT_TRUE(f->Sync().IsIOError());
  fs_.Crash();
  EXPECT_EQ(Read(fs_, "/d/f"), "");  // the failed sync made nothing durable
  EXPECT_TRUE(f->WriteAt(0, "x").ok());
  EXPECT_TRUE(f->Sync().ok());
  EXPECT_TRUE(fs_.SyncDir("/d").ok());
}

TEST_F(FaultFileSystemTest, SpaceLimitFailsGrowthOnly) {
  auto f = Open("/d/seg", 100);
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  fs_.SetSpaceLimit(120);
  EXPECT_EQ(fs_.UsedBytes(), 100u);
  EXPECT_TRUE(f->WriteAt(0, std::string(100, 'x')).ok());   // in place: fine
  EXPECT_TRUE(f->WriteAt(100, std::string(20, 'y')).ok());  // exactly fills the disk
  Status s = f->WriteAt(120, "z");
  EXPECT_TRUE(s.IsIOError());
  EXPECT_THAT(s.message(), HasSubstr("No space left on device"));
  std::unique_ptr<WritableFile> g;
  EXPECT_TRUE(fs_.OpenWritable("/d/seg2", 10, &g).IsIOError());
  EXPECT_TRUE(fs_.WriteFileAtomic("/d/snap", "s").IsIOError());
  fs_.SetSpaceLimit(UINT64_MAX);
  EXPECT_TRUE(f->WriteAt(120, "z").ok());
}

TEST(Crc32cTest, KnownValues) {
  EXPECT_EQ(crc32c::Value(""), 0u);
  EXPECT_EQ(crc32c::Value("123456789"), 0xE3069283u);  // RFC 3720 check value
  EXPECT_EQ(crc32c::Value(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c::Value(std::string(32, '\xff')), 0x62A8AB43u);
}

TEST(Crc32cTest, ExtendAndPortableAgree) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 131 + 7));
  for (size_t cut : {0u, 1u, 7u, 8u, 9u, 500u, 999u, 1000u}) {
    uint32_t whole = crc32c::Value(data);
    uint32_t split =
        crc32c::Extend(crc32c::Extend(0, data.data(), cut), data.data() + cut, data.size() - cut);
    EXPECT_EQ(whole, split);
    size_t n = std::min(cut, data.size() - 3);  // unaligned start
    EXPECT_EQ(crc32c::ExtendPortable(0, data.data() + 3, n), crc32c::Extend(0, data.data() + 3, n));
  }
}

TEST(FaultFileSystemAllocateTest, AllocateIsADurableExtensionAndHonoursTheSpaceLimit) {
  FaultFileSystem fs(3);
  ASSERT_TRUE(fs.CreateDirs("/d").ok());
  std::unique_ptr<WritableFile> f;
  ASSERT_TRUE(fs.OpenWritable("/d/f", 0, &f).ok());
  ASSERT_TRUE(fs.SyncDir("/d").ok());
  ASSERT_TRUE(f->WriteAt(0, "abc").ok());  // unsynced
  ASSERT_TRUE(f->Allocate(100).ok());      // an fsync: the write is durable too
  EXPECT_EQ(fs.UnsyncedWriteCount(), 0u);
  ASSERT_TRUE(f->Allocate(50).ok());  // shorter: nothing to do
  fs.Crash();
  std::string content;
  ASSERT_TRUE(fs.ReadFile("/d/f", &content).ok());
  EXPECT_EQ(content, "abc" + std::string(97, '\0'));
  fs.SetSpaceLimit(fs.UsedBytes() + 10);
  Status full = f->Allocate(200);
  EXPECT_TRUE(IsNoSpace(full)) << full.ToString();
  ASSERT_TRUE(fs.ReadFile("/d/f", &content).ok());
  EXPECT_EQ(content.size(), 100u);  // nothing changed
  EXPECT_TRUE(f->Allocate(110).ok());
}

}  // namespace
}  // namespace mesh::core
