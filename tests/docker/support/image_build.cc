#include "docker/support/image_build.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace lockmesh::docker_testing {
namespace {

constexpr const char* kCopyFromBuild = "COPY --from=build /out/ /";

CommandResult Failed(const std::string& why) {
  CommandResult r;
  r.code = 1;
  r.output = why;
  return r;
}

// The runtime stage of `dockerfile`: from its last FROM line to the end, with the one copy
// from the build stage taking the context's out/ instead. "" with `*why` if it has no
// such stage or no such line.
std::string RuntimeStage(const std::string& dockerfile, std::string* why) {
  std::istringstream in(dockerfile);
  std::vector<std::string> lines;
  size_t last_from = std::string::npos;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("FROM ", 0) == 0) last_from = lines.size();
    lines.push_back(line);
  }
  if (last_from == std::string::npos) {
    *why = "docker/Dockerfile has no FROM line";
    return "";
  }
  std::string stage;
  int copies = 0;
  for (size_t i = last_from; i < lines.size(); ++i) {
    if (lines[i] == kCopyFromBuild) {
      stage += "COPY out/ /\n";
      ++copies;
    } else {
      stage += lines[i] + "\n";
    }
  }
  if (copies != 1) {
    *why = "docker/Dockerfile's runtime stage has " + std::to_string(copies) + " lines '" +
           kCopyFromBuild + "' (expected exactly 1): update tests/docker/support/image_build.cc";
    return "";
  }
  return stage;
}

}  // namespace

CommandResult BuildImageFromBinary(const DockerEngine& engine, const std::string& source_dir,
                                   const std::string& binary, const std::string& image,
                                   double timeout_s, const std::string& log_file) {
  std::string why;
  const std::string stage = RuntimeStage(ReadFile(source_dir + "/docker/Dockerfile"), &why);
  if (stage.empty()) return Failed(why);
  const std::string context = engine.dir() + "/image-context";
  CommandResult made = RunCommand({"rm", "-rf", context}, 60);
  if (made.code == 0) made = RunCommand({"mkdir", "-p", context}, 10);
  if (made.code != 0) return Failed("cannot make " + context + ": " + made.output);
  CommandResult files = RunCommand(
      {"sh", source_dir + "/docker/install-files.sh", source_dir, binary, context + "/out"}, 120);
  if (files.code != 0) {
    return Failed("docker/install-files.sh failed (" + std::to_string(files.code) + "):\n" +
                  files.output);
  }
  {
    std::ofstream out(context + "/Dockerfile");
    out << "# docker/Dockerfile's runtime stage, with the host build's binary "
           "(tests/docker/support/image_build.cc)\n"
        << stage;
    if (!out.good()) return Failed("cannot write " + context + "/Dockerfile");
  }
  return RunCommand({DockerBinary(), "build", "--network", "host", "-t", image, context}, timeout_s,
                    engine.env(), log_file);
}

CommandResult BuildImageFromSources(const DockerEngine& engine, const std::string& source_dir,
                                    const std::string& image, double timeout_s,
                                    const std::string& log_file) {
  return RunCommand({DockerBinary(), "build", "--network", "host", "-f",
                     source_dir + "/docker/Dockerfile", "-t", image, source_dir},
                    timeout_s, engine.env(), log_file);
}

void ExpectRunnableImage(const DockerEngine& engine, const std::string& image,
                         const std::string& host_binary) {
  // Non-root, no machine id (each container makes its node id), only libc/libm needed.
  CommandResult who = engine.Docker({"run", "--rm", image, "sh", "-c",
                                     "id -un; test ! -s /etc/machine-id && echo no-machine-id"});
  // (The engine may add "WARNING: IPv4 forwarding is disabled": it is, on purpose.)
  EXPECT_NE(who.output.find("lockmesh\nno-machine-id\n"), std::string::npos) << who.output;
  CommandResult host = RunCommand({host_binary, "--version"}, 30);
  ASSERT_EQ(host.code, 0) << host.output;
  CommandResult inside =
      engine.Docker({"run", "--rm", "--entrypoint", "/usr/local/bin/lockmesh", image, "--version"});
  EXPECT_EQ(inside.code, 0) << inside.output;
  EXPECT_NE(inside.output.find(host.output), std::string::npos)
      << "the image's lockmesh --version:\n"
      << inside.output << "the host's:\n"
      << host.output;
}

}  // namespace lockmesh::docker_testing
