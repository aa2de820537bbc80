#include "core/resource_name.h"

#include <algorithm>
#include <limits>
#include <set>
#include <string>

#include "core/timestamp_format.h"

namespace mesh::core {
namespace {

constexpr char kAcceptedForms[] =
    "accepted forms: simple `name` ([A-Za-z][A-Za-z0-9_-]*, or _RESOURCE), numeric "
    "`name[N]`, set `a.b.c`, hierarchical `/a/b/c`, sequence `_s_name[N]`, transactional "
    "sequence `_S_name[N]`, timestamp `_t_<format>[N]`";

bool IsAlpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsWordChar(char c) { return IsAlpha(c) || IsDigit(c) || c == '_' || c == '-'; }
bool IsControl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

// `[A-Za-z][A-Za-z0-9_-]*`
bool IsSimpleName(std::string_view s) {
  if (s.empty() || !IsAlpha(s[0])) return false;
  return std::all_of(s.begin(), s.end(), IsWordChar);
}

// Printable form of a name for messages: control characters shown as '?', long names cut.
std::string Quote(std::string_view name) {
  std::string out = "\"";
  const size_t shown = std::min<size_t>(name.size(), 64);
  for (size_t i = 0; i < shown; ++i) out += IsControl(name[i]) ? '?' : name[i];
  if (shown < name.size()) out += "...";
  out += "\"";
  return out;
}

Status Invalid(std::string_view name, std::string_view reason) {
  std::string m = "invalid resource name ";
  m += Quote(name);
  m += ": ";
  m += reason;
  m += "; ";
  m += kAcceptedForms;
  return Status::InvalidArgument(std::move(m));
}

// Splits `text` = `<base>[N]` into base and N (decimal, >= 1). False with a reason if the
// text does not end with a well-formed `[N]`.
bool SplitCapacity(std::string_view text, std::string_view* base, uint64_t* capacity,
                   std::string* reason) {
  if (text.empty() || text.back() != ']') {
    *reason = "missing the capacity suffix `[N]`";
    return false;
  }
  const size_t open = text.rfind('[');
  if (open == std::string_view::npos) {
    *reason = "`]` without `[`";
    return false;
  }
  const std::string_view digits = text.substr(open + 1, text.size() - open - 2);
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), IsDigit)) {
    *reason = "the capacity in `[N]` must be a decimal number";
    return false;
  }
  uint64_t value = 0;
  for (char c : digits) {
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - d) / 10) {
      *reason = "the capacity in `[N]` is too large";
      return false;
    }
    value = value * 10 + d;
  }
  if (value == 0) {
    *reason = "the capacity in `[N]` must be at least 1";
    return false;
  }
  *base = text.substr(0, open);
  *capacity = value;
  return true;
}

Status ParseHierarchical(std::string_view name, ResourceName* r) {
  std::vector<std::string> path;
  size_t pos = 1;
  while (true) {
    const size_t slash = name.find('/', pos);
    const std::string_view part =
        name.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    if (part.empty()) {
      return Invalid(name, slash == std::string_view::npos
                               ? "a hierarchical name must not end with `/`"
                               : "a hierarchical name must not have empty components (`//`)");
    }
    if (std::any_of(part.begin(), part.end(), IsControl)) {
      return Invalid(name, "a hierarchical name must not contain control characters");
    }
    path.emplace_back(part);
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  r->type = ResourceType::kHierarchical;
  r->queue_key = "/" + path[0];
  r->path = std::move(path);
  return Status::OK();
}

Status ParseSequence(std::string_view name, ResourceName* r) {
  std::string_view base;
  uint64_t capacity = 0;
  std::string reason;
  if (!SplitCapacity(name, &base, &capacity, &reason)) {
    return Invalid(name, "a sequence resource is `_s_name[N]` or `_S_name[N]`: " + reason);
  }
  const std::string_view inner = base.substr(3);
  if (!IsSimpleName(inner)) {
    return Invalid(name, "the name of a sequence resource must match [A-Za-z][A-Za-z0-9_-]*");
  }
  r->type = name[1] == 's' ? ResourceType::kSequence : ResourceType::kTransactionalSequence;
  r->capacity = capacity;
  r->queue_key = r->name;
  return Status::OK();
}

Status ParseTimestamp(std::string_view name, ResourceName* r) {
  std::string_view base;
  uint64_t capacity = 0;
  std::string reason;
  if (!SplitCapacity(name, &base, &capacity, &reason)) {
    return Invalid(name, "a timestamp resource is `_t_<format>[N]`: " + reason);
  }
  const std::string_view format = base.substr(3);
  const Status s = ValidateTimestampFormat(format);
  if (!s.ok()) return Invalid(name, s.message());
  r->type = ResourceType::kTimestamp;
  r->capacity = capacity;
  r->format = std::string(format);
  r->queue_key = r->name;
  return Status::OK();
}

Status ParseSet(std::string_view name, ResourceName* r) {
  std::vector<std::string> elements;
  std::set<std::string_view> seen;
  size_t pos = 0;
  while (true) {
    const size_t dot = name.find('.', pos);
    const std::string_view part =
        name.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos);
    if (part.empty()) {
      return Invalid(name, "a set `a.b.c` must not have empty elements");
    }
    if (!std::all_of(part.begin(), part.end(), IsWordChar)) {
      return Invalid(name, "set elements may only contain letters, digits, `_` and `-`");
    }
    if (!seen.insert(part).second) {
      return Invalid(name, "set element `" + std::string(part) + "` appears twice");
    }
    elements.emplace_back(part);
    if (dot == std::string_view::npos) break;
    pos = dot + 1;
  }
  r->type = ResourceType::kSet;
  r->capacity = elements.size();
  r->elements = std::move(elements);
  r->queue_key = r->name;
  return Status::OK();
}

Status ParseNumeric(std::string_view name, ResourceName* r) {
  std::string_view base;
  uint64_t capacity = 0;
  std::string reason;
  if (!SplitCapacity(name, &base, &capacity, &reason)) {
    return Invalid(name, "a numeric resource is `name[N]`: " + reason);
  }
  if (!IsSimpleName(base)) {
    return Invalid(name, "the name of a numeric resource must match [A-Za-z][A-Za-z0-9_-]*");
  }
  r->type = ResourceType::kNumeric;
  r->capacity = capacity;
  r->queue_key = r->name;
  return Status::OK();
}

}  // namespace

Status ParseResourceName(std::string_view name, ResourceName* out) {
  if (name.empty()) return Invalid(name, "empty name");
  if (name.size() > kMaxResourceNameLength) {
    return Invalid(name, "longer than " + std::to_string(kMaxResourceNameLength) + " bytes");
  }
  ResourceName r;
  r.name = std::string(name);
  Status s;
  if (name[0] == '/') {
    s = ParseHierarchical(name, &r);
  } else if (name == "_RESOURCE") {
    r.type = ResourceType::kSimple;
    r.queue_key = r.name;
  } else if (name.substr(0, 3) == "_s_" || name.substr(0, 3) == "_S_") {
    s = ParseSequence(name, &r);
  } else if (name.substr(0, 3) == "_t_") {
    s = ParseTimestamp(name, &r);
  } else if (std::any_of(name.begin(), name.end(), IsControl)) {
    s = Invalid(name, "control characters are not allowed");
  } else if (name.find('.') != std::string_view::npos) {
    s = ParseSet(name, &r);
  } else if (name.back() == ']' || name.find('[') != std::string_view::npos) {
    s = ParseNumeric(name, &r);
  } else if (IsSimpleName(name)) {
    r.type = ResourceType::kSimple;
    r.queue_key = r.name;
  } else {
    s = Invalid(name, IsAlpha(name[0])
                          ? "a simple name may only contain letters, digits, `_` and `-`"
                          : "a simple name must start with a letter");
  }
  if (!s.ok()) return s;
  *out = std::move(r);
  return Status::OK();
}

const char* ResourceTypeName(ResourceType type) {
  switch (type) {
    case ResourceType::kSimple:
      return "simple";
    case ResourceType::kNumeric:
      return "numeric";
    case ResourceType::kSet:
      return "set";
    case ResourceType::kHierarchical:
      return "hierarchical";
    case ResourceType::kSequence:
      return "sequence";
    case ResourceType::kTransactionalSequence:
      return "transactional-sequence";
    case ResourceType::kTimestamp:
      return "timestamp";
  }
  return "unknown";
}

}  // namespace mesh::core
