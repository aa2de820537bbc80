// Tests of net/support/errno_text: the text of errno values and the Status each maps to.
#include "net/support/errno_text.h"

#include <errno.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "core/storage/file_system.h"

namespace mesh::net {
namespace {

using ::testing::HasSubstr;

TEST(ErrnoTextTest, TextAndMessage) {
  EXPECT_EQ(ErrnoText(ENOENT), "No such file or directory");
  EXPECT_EQ(ErrnoText(EACCES), "Permission denied");
  EXPECT_THAT(ErrnoText(99999), HasSubstr("99999"));  // unknown: still says which
  EXPECT_EQ(ErrnoMessage("cannot open /x", ENOTDIR), "cannot open /x: Not a directory");
}

TEST(ErrnoTextTest, StatusCodes) {
  Status missing = ErrnoStatus("/x: open", ENOENT);
  EXPECT_TRUE(missing.IsNotFound());
  EXPECT_EQ(missing.message(), "/x: open: No such file or directory");
  Status full = ErrnoStatus("/x: pwrite", ENOSPC);
  EXPECT_TRUE(core::IsNoSpace(full)) << full.ToString();
  EXPECT_THAT(full.message(), HasSubstr("/x: pwrite"));
  Status quota = ErrnoStatus("/x: pwrite", EDQUOT);
  EXPECT_TRUE(core::IsNoSpace(quota)) << quota.ToString();
  EXPECT_THAT(quota.message(), HasSubstr("disk quota exceeded"));
  Status io = ErrnoStatus("/x: fsync", EIO);
  EXPECT_TRUE(io.IsIOError());
  EXPECT_FALSE(core::IsNoSpace(io));
  EXPECT_EQ(io.message(), "/x: fsync: Input/output error");
}

TEST(ErrnoTextTest, ThreadSafe) {
  // strerror_r, not strerror's shared buffer: threads asking for different codes at once
  // each get their own text.
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  const int codes[] = {ENOENT, EACCES, EIO, ENOSPC};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const std::string want = ErrnoText(codes[t]);
      for (int i = 0; i < 20000; ++i) {
        if (ErrnoText(codes[t]) != want) ++wrong[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace mesh::net
