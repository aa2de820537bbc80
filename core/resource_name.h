// core/resource_name: FLoM's resource name syntax, from which a resource's type follows.
//
// Pure functions; thread-safe.
#ifndef LOCKMESH_CORE_RESOURCE_NAME_H_
#define LOCKMESH_CORE_RESOURCE_NAME_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mesh/status.h"

namespace mesh::core {

enum class ResourceType {
  kSimple,                 // name            all six modes
  kNumeric,                // name[N]         N units, `quantity` per request (EX only)
  kSet,                    // a.b.c           one free element per holder, round robin (EX only)
  kHierarchical,           // /a/b/c          conflicts with ancestors and descendants (all modes)
  kSequence,               // _s_name[N]      up to N holders, each gets the next integer (EX only)
  kTransactionalSequence,  // _S_name[N]  as _s_, a value is recycled on rollback or death
  kTimestamp,  // _t_fmt[N]       up to N holders, each gets a unique timestamp (EX only)
};

/// The longest accepted resource name, in bytes.
inline constexpr size_t kMaxResourceNameLength = 512;

/// A parsed resource name.
struct ResourceName {
  /// The type, inferred from the syntax.
  ResourceType type = ResourceType::kSimple;
  /// The name as given.
  std::string name;
  /// Names the resources that share one FIFO queue: "/" + first component for
  /// hierarchical names (one queue per root), the name itself otherwise.
  std::string queue_key;
  /// N of name[N], _s_/_S_/_t_ [N]; the number of elements of a set; 1 otherwise.
  uint64_t capacity = 1;
  /// Set elements, in order (empty for other types).
  std::vector<std::string> elements;
  /// Hierarchical components, root first (empty for other types).
  std::vector<std::string> path;
  /// Timestamp strftime format, with #f fractions (empty for other types).
  std::string format;
};

/// Parses `name` and writes it to `out`; InvalidArgument with a reason and the list of
/// accepted forms when it matches no type (`out` is then unchanged). Accepted, at most
/// kMaxResourceNameLength bytes:
///  - simple `[A-Za-z][A-Za-z0-9_-]*` or `_RESOURCE` (FLoM allows only letters and digits);
///  - numeric `name[N]`, name as simple, N >= 1 decimal;
///  - set `a.b.c`: two or more distinct elements `[A-Za-z0-9_-]+` separated by `.`;
///  - hierarchical `/a/b/c`: non-empty components without control characters, no trailing
///    `/` (any other byte is allowed in a component, as in FLoM);
///  - sequence `_s_name[N]`, transactional sequence `_S_name[N]`, name as simple;
///  - timestamp `_t_<format>[N]`, format as ValidateTimestampFormat (core/timestamp_format.h).
Status ParseResourceName(std::string_view name, ResourceName* out);

/// Name of a type for listings: "simple", "numeric", "set", "hierarchical", "sequence",
/// "transactional-sequence" or "timestamp".
const char* ResourceTypeName(ResourceType type);

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_RESOURCE_NAME_H_
