// docker/Dockerfile built whole, from the sources: compose_test.cc builds
// only its runtime stage, from the host build's binary, so that its scenarios keep their
// budget; this test keeps the build stage honest. It compiles lockmesh inside the container
// (several minutes on a loaded 2-core machine), then checks that the image runs: as the
// lockmesh user, no machine id baked in, and its `lockmesh --version` is the host build's.
// The same private engine and base image as compose_test.cc (docker_harness.h); the two
// never run at once (tests/CMakeLists.txt: one engine at a time).
#include "docker/support/image_build.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "docker/support/docker_harness.h"

namespace lockmesh::docker_testing {
namespace {

/// The build's own deadline (it took 729 s on this 2-core machine beside two simulator soaks
/// and a compile); this test's CTest timeout is 1500 s (tests/CMakeLists.txt).
constexpr double kBuildTimeoutS = 1300;

TEST(DockerImageTest, DockerfileBuildsFromTheSourcesAndRuns) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "the docker image is built in the plain build only (.ci/test), not under ASan";
#endif
  const Clock::time_point start = Clock::now();
  auto note = [&](const std::string& text) {
    printf("[docker-image %6.1f s] %s\n", SecondsSince(start), text.c_str());
    fflush(stdout);
  };
  if (geteuid() != 0) SKIP_OR_FAIL("needs root (dockerd, apt-get)");
  std::string leftovers = CleanUpLeftovers();
  if (!leftovers.empty()) note("removed leftovers of an earlier run:\n" + leftovers);
  std::string missing = InstallMissingPackages({"docker.io", "debootstrap"});
  if (!missing.empty()) SKIP_OR_FAIL(missing);

  DockerEngine engine;
  std::string started = engine.Start();
  if (!started.empty()) SKIP_OR_FAIL("cannot start dockerd: " + started);
  note("private dockerd up (" + engine.dir() + ")");
  ASSERT_EQ(engine.EnsureBaseImage("debian:bookworm"), "") << "no Debian base image";
  note("base image debian:bookworm ready");

  const std::string image = "lockmesh-full:" + engine.tag();
  const std::string log = engine.dir() + "/build.log";
  CommandResult built =
      BuildImageFromSources(engine, LOCKMESH_SOURCE_DIR, image, kBuildTimeoutS, log);
  ASSERT_EQ(built.code, 0) << "docker build -f docker/Dockerfile failed"
                           << (built.timed_out ? " (out of time)" : "") << ":\n"
                           << built.output << TailLines(ReadFile(log), 40);
  note("image " + image + " built from the sources in " + std::to_string(built.seconds) + " s");
  ExpectRunnableImage(engine, image, LOCKMESH_BINARY);
  printf("[docker-image] cleanup: %s", engine.Stop().c_str());
}

}  // namespace
}  // namespace lockmesh::docker_testing
