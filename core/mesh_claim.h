// core/mesh_claim: "one authority per host" (docs/mesh.md) — the claim a mesh node leaves
// on its socket and data dir, its text form, and the decision whether a node may start
// beside it.
//
// A mesh node writes a claim (net/local/mesh_claim.h does the file I/O) naming its cluster, node
// id, data dir, socket and start command, at `<data_dir>/mesh-claim` and
// `<socket>.mesh-claim`. The claim outlives the node (kill -9 and graceful stop alike): the
// host stays a member of its cluster until someone releases the claim on purpose. A node
// that is not a mesh node never serves a claimed socket or data dir, so that with the mesh
// node down no local node can hand out a lock the mesh also hands out.
//
// Pure logic: no I/O, no clocks. Thread-compatible.
#ifndef MESH_CORE_MESH_CLAIM_H_
#define MESH_CORE_MESH_CLAIM_H_

#include <string>
#include <string_view>
#include <vector>

#include "mesh/status.h"

namespace mesh::core {

/// What a mesh node records about itself. Plain data.
struct MeshClaim {
  std::string cluster;
  std::string node_id;
  std::string data_dir;
  std::string socket;
  /// The node's command line (argv), to tell people how to start it again; may be empty
  /// (an embedding application that did not say).
  std::vector<std::string> start_command;
};

/// The text form of a claim: a version line, one `key=value` line per field (values
/// backslash-escaped; one `arg=` line per argv element) and a last line with the CRC-32C
/// of everything before it, so that a truncated or damaged file is recognised as such.
std::string EncodeMeshClaim(const MeshClaim& claim);

/// Parses EncodeMeshClaim's output. Corruption (with what is wrong) for anything else: a
/// truncated file, a bad checksum, an unknown version.
Status DecodeMeshClaim(std::string_view text, MeshClaim* claim);

/// One claim file as found on disk.
struct FoundClaim {
  enum class State {
    kAbsent,      // no such file
    kValid,       // read and decoded: `claim` holds it
    kUnreadable,  // present but cannot be read or decoded: `error` says why
  };
  State state = State::kAbsent;
  std::string path;
  MeshClaim claim;
  std::string error;
};

/// Who is starting, and where.
struct Starter {
  bool mesh = false;     // a mesh node (MeshOptions::enabled)
  std::string cluster;   // its cluster name (mesh only)
  std::string node_id;   // its node id (mesh only; "" = not known yet)
  std::string socket;    // the socket it would serve
  std::string data_dir;  // the data dir it would use
};

/// The rule. A node that is not a mesh node may start only if no claim is present (a valid
/// or an unreadable one: an unreadable claim still says a mesh node was here). A mesh node
/// may start over a claim of its own cluster and node id, or over an unreadable one (it
/// rewrites it), but not over another cluster's or another node's claim. A refusal is
/// Status::PermissionDenied whose message names the claiming node and cluster, how to
/// start it, and how to release the claim (`lockmesh node --release-mesh-claim`).
Status DecideStart(const Starter& starter, const std::vector<FoundClaim>& claims);

/// The command that releases the claims of a host that has left its mesh for good.
std::string ReleaseCommand(const std::string& socket, const std::string& data_dir);

/// Joins argv for people to read and paste into a POSIX shell (quoting what needs it).
std::string ShellJoin(const std::vector<std::string>& argv);

}  // namespace mesh::core

#endif  // MESH_CORE_MESH_CLAIM_H_
