// The two ways the docker tests build the lockmesh image of docker/Dockerfile, on a private
// engine (docker_harness.h):
//  * From the binary the host build made (BuildImageFromBinary): the Dockerfile's runtime
//    stage alone, its files laid out by docker/install-files.sh — the script the build stage
//    runs — in a context of its own. About a minute on a loaded 2-core machine, so the
//    scenarios of compose_test.cc keep most of their budget.
//  * From the sources (BuildImageFromSources): the whole Dockerfile, its build stage
//    compiling lockmesh in the container (several minutes): image_build_test.cc checks it
//    still builds an image that runs.
// Both print the build's output into `log_file`.
#ifndef LOCKMESH_TESTS_DOCKER_SUPPORT_IMAGE_BUILD_H_
#define LOCKMESH_TESTS_DOCKER_SUPPORT_IMAGE_BUILD_H_

#include <string>

#include "docker/support/docker_harness.h"

namespace lockmesh::docker_testing {

/// Builds `image` from docker/Dockerfile's runtime stage (everything after its last FROM),
/// with its `COPY --from=build /out/ /` replaced by a copy of the files that
/// docker/install-files.sh lays out from `binary`. The context is a new directory under
/// engine.dir(). A code other than 0 says why in `output` (or in `log_file`), e.g. when the
/// Dockerfile has no such COPY line any more.
CommandResult BuildImageFromBinary(const DockerEngine& engine, const std::string& source_dir,
                                   const std::string& binary, const std::string& image,
                                   double timeout_s, const std::string& log_file);

/// Builds `image` from the whole docker/Dockerfile, with `source_dir` as the context.
CommandResult BuildImageFromSources(const DockerEngine& engine, const std::string& source_dir,
                                    const std::string& image, double timeout_s,
                                    const std::string& log_file);

/// Expects `image` to run as the lockmesh user, with no machine id baked in, and its
/// `lockmesh --version` to print what `host_binary --version` prints (the same sources; it
/// also proves the binary needs no library the runtime stage lacks).
void ExpectRunnableImage(const DockerEngine& engine, const std::string& image,
                         const std::string& host_binary);

}  // namespace lockmesh::docker_testing

#endif  // LOCKMESH_TESTS_DOCKER_SUPPORT_IMAGE_BUILD_H_
