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
  kSimple,        // name            all six modes
  kNumeric,       // name[N]         N units, `quantity` per request (EX only)
  kSet,           // a.b.c           one free element per holder, round robin (EX only)
  kHierarchical,  // /a/b/c          conflicts with ancestors and descendants (all modes)
  kSequence,      // _s_name[N]      up to N holders, each gets the next integer (EX only)
  kTransactionalSequence,  // _S_name[N]  as _s_, a value is recycled on rollback or death
  kTimestamp,     // _t_fmt[N]       up to N holders, each gets a unique timestamp (EX only)
};

/// The longest accepted resource name, in bytes.
inline constexpr size_t kMaxResourceNameLength = 512;

/// A parsed resource name.
struct ResourceName {
  ResourceType type = ResourceType::kSimple;
  std::string name;                   // as given
  std::string queue_key;              // resources sharing a queue (hierarchical: "/" + root)
  uint64_t capacity = 1;              // N of name[N], _s_/_S_/_t_ [N]
  std::vector<std::string> elements;  // set elements, in order
  std::vector<std::string> path;      // hierarchical components
  std::string format;                 // timestamp strftime format (with #f fractions)
};

/// Parses `name`; InvalidArgument with a reason when it matches no type.
Status ParseResourceName(std::string_view name, ResourceName* out);

/// Name of a type for listings: "simple", "numeric", ...
const char* ResourceTypeName(ResourceType type);

}  // namespace mesh::core

#endif  // LOCKMESH_CORE_RESOURCE_NAME_H_
