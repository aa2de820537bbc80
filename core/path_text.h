// core/path_text: the directory and the last component of a path, as text (no file-system
// access: symlinks and "." / ".." are not resolved). The one copy for every file that needs
// "the directory this file lives in" (the node's lock files, the socket directory,
// known_peers' atomic rewrite, the file systems' directory syncs).
//
// Pure functions; thread-safe.
#ifndef LOCKMESH_CORE_PATH_TEXT_H_
#define LOCKMESH_CORE_PATH_TEXT_H_

#include <string>
#include <string_view>

namespace mesh::core {

/// The path up to its last '/': DirName("a/b/c") == "a/b", DirName("/c") == "/",
/// DirName("c") == "." (the current directory, where a relative name lives). A trailing
/// '/' is not stripped first: DirName("a/b/") == "a/b".
std::string DirName(std::string_view path);

/// The path after its last '/': BaseName("a/b/c") == "c", BaseName("c") == "c",
/// BaseName("a/") == "".
std::string BaseName(std::string_view path);

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_PATH_TEXT_H_
