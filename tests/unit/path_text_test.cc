// core/path_text: DirName and BaseName on the shapes of path the node meets.
#include "core/path_text.h"

#include <gtest/gtest.h>

namespace mesh::core {
namespace {

TEST(PathTextTest, DirName) {
  EXPECT_EQ(DirName("/run/user/1000/lockmesh/node.sock"), "/run/user/1000/lockmesh");
  EXPECT_EQ(DirName("data/known_peers"), "data");
  EXPECT_EQ(DirName("/node.sock"), "/");
  EXPECT_EQ(DirName("/"), "/");
  EXPECT_EQ(DirName("node.sock"), ".");
  EXPECT_EQ(DirName(""), ".");
  EXPECT_EQ(DirName("a/b/"), "a/b");
  EXPECT_EQ(DirName("a//b"), "a/");
}

TEST(PathTextTest, BaseName) {
  EXPECT_EQ(BaseName("/run/lockmesh/node.sock"), "node.sock");
  EXPECT_EQ(BaseName("node.sock"), "node.sock");
  EXPECT_EQ(BaseName("/"), "");
  EXPECT_EQ(BaseName("a/"), "");
  EXPECT_EQ(BaseName(""), "");
}

}  // namespace
}  // namespace mesh::core
