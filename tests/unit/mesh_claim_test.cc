// Unit tests of core/mesh_claim: the claim's text form and the "one authority per host" rule.
#include "core/mesh_claim.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mesh::core {
namespace {

using ::testing::HasSubstr;

MeshClaim Sample() {
  MeshClaim c;
  c.cluster = "prod";
  c.node_id = "n1";
  c.data_dir = "/var/lib/lockmesh";
  c.socket = "/run/lockmesh/node.sock";
  c.start_command = {
      "/usr/bin/lockmesh", "node", "--cluster", "prod", "--join", "a weird\nvalue\\with 'quotes'"};
  return c;
}

FoundClaim Found(const MeshClaim& c) {
  FoundClaim f;
  f.state = FoundClaim::State::kValid;
  f.path = c.socket + ".mesh-claim";
  f.claim = c;
  return f;
}

TEST(MeshClaimTest, RoundTripsEveryField) {
  MeshClaim in = Sample();
  MeshClaim out;
  ASSERT_TRUE(DecodeMeshClaim(EncodeMeshClaim(in), &out).ok());
  EXPECT_EQ(out.cluster, in.cluster);
  EXPECT_EQ(out.node_id, in.node_id);
  EXPECT_EQ(out.data_dir, in.data_dir);
  EXPECT_EQ(out.socket, in.socket);
  EXPECT_EQ(out.start_command, in.start_command);
}

TEST(MeshClaimTest, EveryTruncationAndEveryFlippedByteIsCorruption) {
  const std::string text = EncodeMeshClaim(Sample());
  MeshClaim out;
  for (size_t n = 0; n < text.size(); ++n) {
    EXPECT_TRUE(DecodeMeshClaim(text.substr(0, n), &out).IsCorruption()) << "length " << n;
  }
  for (size_t i = 0; i < text.size(); ++i) {
    std::string bad = text;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    EXPECT_FALSE(DecodeMeshClaim(bad, &out).ok()) << "byte " << i;
  }
}

TEST(MeshClaimTest, LocalNodeRefusesAnyClaimAndSaysHowToStartTheMeshNode) {
  Starter local;
  local.socket = "/run/lockmesh/node.sock";
  local.data_dir = "/var/lib/lockmesh";
  EXPECT_TRUE(DecideStart(local, {}).ok());
  FoundClaim absent;
  EXPECT_TRUE(DecideStart(local, {absent, absent}).ok());
  Status st = DecideStart(local, {absent, Found(Sample())});
  ASSERT_EQ(st.code(), Status::Code::kPermissionDenied);
  EXPECT_THAT(st.message(), HasSubstr("mesh node n1 of cluster 'prod'"));
  EXPECT_THAT(st.message(),
              HasSubstr("start the mesh node: /usr/bin/lockmesh node --cluster prod --join "
                        "'a weird\nvalue\\with '\\''quotes'\\'''"));
  EXPECT_THAT(st.message(), HasSubstr("lockmesh node --release-mesh-claim --socket "
                                      "/run/lockmesh/node.sock --data-dir /var/lib/lockmesh"));
  FoundClaim broken;
  broken.state = FoundClaim::State::kUnreadable;
  broken.path = "/run/lockmesh/node.sock.mesh-claim";
  broken.error = "it is a symbolic link";
  st = DecideStart(local, {broken});
  ASSERT_EQ(st.code(), Status::Code::kPermissionDenied);
  EXPECT_THAT(st.message(), HasSubstr("unreadable (it is a symbolic link)"));
}

TEST(MeshClaimTest, MeshNodeTakesOnlyItsOwnOrAnUnreadableClaim) {
  Starter mesh;
  mesh.mesh = true;
  mesh.cluster = "prod";
  mesh.node_id = "n1";
  mesh.socket = "/run/lockmesh/node.sock";
  mesh.data_dir = "/var/lib/lockmesh";
  EXPECT_TRUE(DecideStart(mesh, {Found(Sample())}).ok());
  FoundClaim broken;
  broken.state = FoundClaim::State::kUnreadable;
  EXPECT_TRUE(DecideStart(mesh, {broken}).ok());
  Starter other_cluster = mesh;
  other_cluster.cluster = "test";
  EXPECT_EQ(DecideStart(other_cluster, {Found(Sample())}).code(), Status::Code::kPermissionDenied);
  Starter other_id = mesh;
  other_id.node_id = "n2";
  EXPECT_EQ(DecideStart(other_id, {Found(Sample())}).code(), Status::Code::kPermissionDenied);
}

}  // namespace
}  // namespace mesh::core
