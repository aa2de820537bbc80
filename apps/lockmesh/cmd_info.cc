// `lockmesh locks`, `lockmesh status` and `lockmesh unique-id`: read-only views. None of
// them starts a node.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "autostart.h"
#include "cli_support.h"
#include "commands.h"
#include "exit_codes.h"
#include "health_check.h"
#include "core/time_text.h"
#include "mesh/client.h"
#include "mesh/node.h"
#include "net/support/errno_text.h"

namespace lockmesh::cli {
namespace {

using mesh::Status;
using Json = nlohmann::ordered_json;

constexpr const char* kInfoExitCodes =
    "Exit status: 0 success; 94 no node is running at the socket (no node is started; also when\n"
    "the socket belongs to a mesh node that is down: the message says which and how to start it);"
    "\n2 usage error; 99 any other error (bad configuration, I/O, protocol).\n"
    "With --json, an error also prints {\"error\": MESSAGE} on stdout.";

/// Flags shared by `locks` and `status`.
struct InfoFlags {
  CommonOptions common;
  bool json = false;
  bool check = false;  // status --check
};

/// Prints `message` as an error (stderr); with --json also as {"error": message} on stdout.
void ReportError(const InfoFlags& flags, const std::string& message) {
  PrintError(message);
  if (flags.json) puts(Json({{"error", message}}).dump(2).c_str());
}

/// Connects to the node named by the configuration; prints the error and sets `*code` on
/// failure. When no node answers and a mesh node has claimed the socket or the data dir, the
/// error is the claim's (which mesh node, which cluster, how to start it), as `lockmesh lock`
/// says it.
std::unique_ptr<mesh::Client> ConnectForInfo(const InfoFlags& flags, const char* name, int* code) {
  Config config;
  if (int c = LoadEffectiveConfig(flags.common, &config); c != 0) {
    *code = c;
    return nullptr;
  }
  mesh::ClientOptions options;
  options.socket_path = EffectiveSocket(config);
  options.client_name = name;
  std::unique_ptr<mesh::Client> client;
  Status st = mesh::Client::Connect(options, &client);
  if (st.IsUnavailable()) {
    // "no node is running/listening at S (reason)" from the client, or a timeout.
    std::string message = st.message();
    if (message.rfind("no node", 0) == 0) {
      Status claim = CheckNoMeshClaim(options.socket_path,
                                      AbsolutePath(EffectiveDataDir(config, options.socket_path)));
      message = claim.ok() ? "no node is running at " + options.socket_path : claim.message();
    }
    ReportError(flags, message);
    *code = kExitNoNode;
    return nullptr;
  }
  if (!st.ok()) {
    ReportError(flags, "cannot connect to " + options.socket_path + ": " + st.ToString());
    *code = kExitError;
    return nullptr;
  }
  return client;
}

/// Prints rows as left-aligned columns separated by two spaces.
void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    puts(line.c_str());
  }
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

/// "3d4h", "2h5m", "4m10s", "12.3s".
std::string FormatUptime(int64_t ms) {
  int64_t s = ms / 1000;
  char buffer[64];
  if (s >= 86400) {
    snprintf(buffer, sizeof buffer, "%lldd%lldh", (long long)(s / 86400),
             (long long)(s % 86400 / 3600));
  } else if (s >= 3600) {
    snprintf(buffer, sizeof buffer, "%lldh%lldm", (long long)(s / 3600),
             (long long)(s % 3600 / 60));
  } else if (s >= 60) {
    snprintf(buffer, sizeof buffer, "%lldm%llds", (long long)(s / 60), (long long)(s % 60));
  } else {
    snprintf(buffer, sizeof buffer, "%.1fs", ms / 1000.0);
  }
  return buffer;
}

/// Flags of `locks`.
struct LocksFlags {
  InfoFlags info;
  std::string prefix;  // --prefix: "" for all
  std::string node;    // --node: "" for all
};

/// CLI11 check of a --prefix / --node value: not empty, at most mesh::kMaxListFilterBytes.
CLI::Validator FilterValue() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        if (value.empty()) return "must not be empty (omit the flag to list everything)";
        if (value.size() > mesh::kMaxListFilterBytes) {
          return "is " + std::to_string(value.size()) + " bytes; at most " +
                 std::to_string(mesh::kMaxListFilterBytes);
        }
        return "";
      },
      "", "FilterValue");
}

/// A JSON string literal; bytes that are not UTF-8 (a hierarchical name may hold any byte
/// but control characters) become U+FFFD instead of failing the listing.
std::string JsonString(const std::string& s) {
  return Json(s).dump(-1, ' ', false, Json::error_handler_t::replace);
}

/// A row's since-when: "2026-11-23T17:40:00Z" (core/time_text's FormatIsoUtc, the form the
/// node writes times in), or "" when the node did not say (0).
std::string SinceText(uint32_t since_unix_s) {
  return since_unix_s == 0 ? "" : mesh::core::FormatIsoUtc(since_unix_s);
}

/// Appends one listing row as a JSON object indented for the "locks" array, the fields of
/// docs/cli.md in that order (exactly what nlohmann's dump(2) of the document would give).
void AppendLockJson(const mesh::LockInfo& l, std::string* out) {
  auto field = [out](const char* name, const std::string& json_value, bool last = false) {
    *out += "      \"";
    *out += name;
    *out += "\": ";
    *out += json_value;
    *out += last ? "\n" : ",\n";
  };
  *out += "{\n";
  field("resource", JsonString(l.resource));
  field("state", l.held ? "\"held\"" : "\"waiting\"");
  field("mode", JsonString(mesh::LockModeName(l.mode)));
  field("quantity", std::to_string(l.quantity));
  field("lock_id", std::to_string(l.lock_id));
  field("token", std::to_string(l.token));
  field("since", l.since_unix_s != 0 ? JsonString(SinceText(l.since_unix_s)) : "null");
  field("element", JsonString(l.element));
  field("node_id", JsonString(l.node_id));
  field("client_id", std::to_string(l.client_id));
  field("pid", std::to_string(l.pid));
  field("uid", std::to_string(l.uid));
  field("client_name", JsonString(l.client_name), /*last=*/true);
  *out += "    }";
}

/// Writes the listing to stdout as pages arrive, never holding more than one page: a table
/// (columns as wide as the header and the first page, wider later if a row needs it) or
/// one JSON document {"locks": [...]} in the layout of nlohmann's dump(2).
class LocksPrinter {
 public:
  explicit LocksPrinter(bool json) : json_(json) {}

  /// Prints one page; false once stdout cannot be written (the listing then stops).
  bool Page(const std::vector<mesh::LockInfo>& page) {
    if (json_) {
      std::string out = rows_ == 0 ? "{\n  \"locks\": [" : "";
      for (const auto& l : page) {
        out += rows_++ == 0 ? "\n    " : ",\n    ";
        AppendLockJson(l, &out);
      }
      return Write(out);
    }
    std::vector<std::vector<std::string>> rows;
    if (rows_ == 0) rows.push_back(kHeader);
    for (const auto& l : page) {
      rows.push_back({l.resource, l.held ? "held" : "waiting", mesh::LockModeName(l.mode),
                      std::to_string(l.quantity), l.held ? std::to_string(l.token) : "-",
                      OrDash(SinceText(l.since_unix_s)),
                      OrDash(l.element), OrDash(l.node_id), std::to_string(l.client_id),
                      l.pid ? std::to_string(l.pid) : "-", std::to_string(l.uid),
                      OrDash(l.client_name)});
    }
    rows_ += page.size();
    widths_.resize(kHeader.size());
    for (const auto& row : rows) {
      for (size_t i = 0; i < row.size(); ++i) widths_[i] = std::max(widths_[i], row[i].size());
    }
    std::string out;
    for (const auto& row : rows) {
      for (size_t i = 0; i < row.size(); ++i) {
        out += row[i];
        if (i + 1 < row.size()) out += std::string(widths_[i] - row[i].size() + 2, ' ');
      }
      out += '\n';
    }
    return Write(out);
  }

  /// Ends the output after the last page. `error` (if not ok) ends the listing early: with
  /// --json it becomes the document's "error" member once rows were printed. Returns the
  /// exit code.
  int Finish(const Status& error, const LocksFlags& flags) {
    if (write_failed_) {
      if (write_errno_ != EPIPE)
        PrintError(std::string("cannot write the listing: ") + mesh::net::ErrnoText(write_errno_));
      return kExitError;
    }
    const bool filtered = !flags.prefix.empty() || !flags.node.empty();
    if (!error.ok()) {
      const std::string message = "cannot list locks: " + error.ToString();
      if (json_ && rows_ > 0) {
        PrintError(message);
        Write("\n  ],\n  \"error\": " + JsonString(message) + "\n}\n");
      } else {
        ReportError(flags.info, message);
      }
      return kExitError;
    }
    if (json_) {
      Write(rows_ == 0 ? "{\n  \"locks\": []\n}\n" : "\n  ]\n}\n");
    } else if (rows_ == 0) {
      puts(filtered ? "no matching locks held or awaited" : "no locks held or awaited");
    }
    if (fflush(stdout) != 0 || write_failed_) {
      PrintError(std::string("cannot write the listing: ") + mesh::net::ErrnoText(errno));
      return kExitError;
    }
    return kExitOk;
  }

 private:
  bool Write(const std::string& text) {
    if (write_failed_) return false;
    if (fwrite(text.data(), 1, text.size(), stdout) != text.size()) {
      write_failed_ = true;
      write_errno_ = errno;
    }
    return !write_failed_;
  }

  inline static const std::vector<std::string> kHeader = {"RESOURCE", "STATE",   "MODE", "QTY",
                                                          "TOKEN",    "SINCE",   "ELEMENT", "NODE", "CLIENT",
                                                          "PID",      "UID",     "NAME"};
  const bool json_;
  size_t rows_ = 0;
  std::vector<size_t> widths_;
  bool write_failed_ = false;
  int write_errno_ = 0;
};

int RunLocks(const LocksFlags& flags) {
  int code = 0;
  auto client = ConnectForInfo(flags.info, "lockmesh locks", &code);
  if (!client) return code;
  mesh::ListLocksOptions options;
  options.prefix = flags.prefix;
  options.node_id = flags.node;
  LocksPrinter printer(flags.info.json);
  Status st = client->ListLocks(
      options, [&printer](const std::vector<mesh::LockInfo>& page) { return printer.Page(page); });
  return printer.Finish(st, flags);
}

int RunStatus(const InfoFlags& flags) {
  int code = 0;
  auto client = ConnectForInfo(flags, "lockmesh status", &code);
  if (!client) return code;
  mesh::NodeStatus s;
  Status st = client->GetStatus(&s);
  if (!st.ok()) {
    ReportError(flags, "cannot get status: " + st.ToString());
    return kExitError;
  }
  const HealthVerdict health = JudgeHealth(s);
  if (flags.check && !flags.json) {
    puts(((health.healthy ? "healthy: " : "unhealthy: ") + health.line).c_str());
    return health.healthy ? kExitOk : kExitUnhealthy;
  }
  if (flags.json) {
    Json members = Json::array();
    for (const auto& m : s.members) {
      members.push_back({{"node_id", m.node_id},
                         {"role", m.role},
                         {"voter", m.voter},
                         {"address", m.address},
                         {"leader", !s.leader_id.empty() && m.node_id == s.leader_id},
                         {"connected", m.connected},
                         {"match", m.match},
                         {"lag", m.lag},
                         {"found_at", m.found_at},
                         {"fingerprint", m.fingerprint}});
    }
    Json out = {{"node_id", s.node_id},
                {"cluster", s.cluster},
                {"cluster_id", s.cluster_id},
                {"mesh", s.mesh},
                {"lease_ms", s.lease_ms},
                {"warnings", s.warnings},
                {"role", s.role},
                {"leader_id", s.leader_id},
                {"term", s.term},
                {"commit_index", s.commit_index},
                {"applied_index", s.applied_index},
                {"clients", s.clients},
                {"locks_held", s.locks_held},
                {"locks_waiting", s.locks_waiting},
                {"data_dir", s.data_dir},
                {"socket", s.socket},
                {"security", s.security},
                {"fsync", s.fsync},
                {"uptime_ms", s.uptime_ms},
                {"version", s.version},
                {"members", members}};
    if (flags.check) {
      out["healthy"] = health.healthy;
      out["health"] = health.line;
    }
    puts(out.dump(2).c_str());
    return flags.check && !health.healthy ? kExitUnhealthy : kExitOk;
  }
  PrintTable({
      {"node", s.node_id + " (" + OrDash(s.role) + ")"},
      {"cluster", s.cluster + (s.cluster_id.empty() ? "" : " (id " + s.cluster_id + ")") +
                      (s.mesh ? "" : ", local node")},
      {"leader", OrDash(s.leader_id)},
      {"term", std::to_string(s.term)},
      {"commit/applied", std::to_string(s.commit_index) + " / " + std::to_string(s.applied_index)},
      {"clients", std::to_string(s.clients)},
      {"locks",
       std::to_string(s.locks_held) + " held, " + std::to_string(s.locks_waiting) + " waiting"},
      {"data dir", s.data_dir},
      {"socket", s.socket},
      {"security", OrDash(s.security)},
      {"fsync", s.fsync ? "on" : "off"},
      {"uptime", FormatUptime(s.uptime_ms)},
      {"version", OrDash(s.version)},
      {"lease", !s.mesh           ? "-"
                : s.lease_ms >= 0 ? std::to_string(s.lease_ms) + " ms left"
                                  : "none (locks are not handed out)"},
  });
  for (const std::string& w : s.warnings) printf("warning: %s\n", w.c_str());
  if (!s.members.empty()) {
    puts("");
    std::vector<std::vector<std::string>> rows = {
        {"MEMBER", "ROLE", "LEADER", "LINK", "ADDRESS", "FOUND AT", "LAG", "FINGERPRINT"}};
    for (const auto& m : s.members) {
      rows.push_back({m.node_id, m.role, m.node_id == s.leader_id ? "*" : "",
                      m.connected ? "up" : "down", OrDash(m.address), OrDash(m.found_at),
                      s.role == "leader" ? std::to_string(m.lag) : "-", OrDash(m.fingerprint)});
    }
    PrintTable(rows);
  }
  return kExitOk;
}

}  // namespace

CommandRunner AddLocksCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand(
      "locks", "List held and awaited locks as the local node knows them (any number)");
  cmd->footer(
      std::string(
          "Rows come in pages from the node and are printed as they arrive, ordered by\n"
          "queue (the resource; for /a/b/c its root /a), then resource, then lock id. Not a\n"
          "snapshot: a lock that exists throughout is listed once; one taken or released\n"
          "meanwhile may or may not be.\n"
          "JSON (--json): one document {\"locks\": [{resource, state (held|waiting), mode "
          "(NL..EX),\nquantity, lock_id, token (0 while waiting), element, node_id, "
          "client_id, pid, uid,\nclient_name}]}; if the listing fails midway, the rows so "
          "far and \"error\": MESSAGE.\n\n") +
      kInfoExitCodes);
  auto flags = std::make_shared<LocksFlags>();
  cmd->add_flag("--json", flags->info.json, "Print JSON for scripts instead of a table");
  cmd->add_option("--prefix", flags->prefix,
                  "Only resources whose name starts with P (/a/b also matches /a/b/c and "
                  "/a/bc; 1-512 bytes)")
      ->type_name("P")
      ->check(FilterValue());
  cmd->add_option("--node", flags->node,
                  "Only locks of clients of the node with this id (see `status`; 1-512 bytes)")
      ->type_name("ID")
      ->check(FilterValue());
  AddCommonOptions(cmd, &flags->info.common);
  return [flags] { return RunLocks(*flags); };
}

CommandRunner AddStatusCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand("status", "Show the local node and its cluster members");
  cmd->footer(
      std::string("JSON (--json): {node_id, cluster, cluster_id, mesh (bool), lease_ms (-1: "
                  "none), warnings: [..],\nrole (leader|follower|candidate|pre-candidate|"
                  "learner|joining), leader_id, term, commit_index,\napplied_index, clients, "
                  "locks_held, locks_waiting, data_dir, socket, security, fsync,\nuptime_ms, "
                  "version, members: [{node_id, role (leader|follower|learner), voter, leader, "
                  "address,\nconnected, match, lag (leader only), found_at, fingerprint}]}.\n\n") +
      kInfoExitCodes + std::string("\n--check: 1 when the node answers but does not serve locks now."));
  auto flags = std::make_shared<InfoFlags>();
  cmd->add_flag("--json", flags->json, "Print JSON for scripts instead of text");
  cmd->add_flag("--check", flags->check,
                "Health check: print one line, \"healthy: ...\" or \"unhealthy: REASON\", and exit 0 "
                "when the node serves locks now (a local node that answers; a mesh node in a "
                "cluster, with a leader, a valid session lease and a disk that is not full), 1 "
                "when it answers but does not; with --json the document gains \"healthy\" and "
                "\"health\"");
  AddCommonOptions(cmd, &flags->common);
  return [flags] { return RunStatus(*flags); };
}

CommandRunner AddUniqueIdCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand(
      "unique-id",
      "Print this node's unique id: node_id if configured, else the machine id, else an id "
      "generated once and kept in the data dir");
  cmd->footer("Exit status: 0 printed; 2 usage error; 99 no id could be read or created.");
  auto common = std::make_shared<CommonOptions>();
  common->overrides
      .AddOption(cmd, "--data-dir", "node.data_dir",
                 "Data dir holding a generated id (default: as for `lockmesh node`)")
      ->type_name("DIR");
  AddCommonOptions(cmd, common.get());
  return [common]() -> int {
    Config config;
    if (int code = LoadEffectiveConfig(*common, &config); code != 0) return code;
    std::string id = config.node.node_id;
    if (id.empty()) {
      std::string data_dir = EffectiveDataDir(config, EffectiveSocket(config));
      Status st = mesh::UniqueId(data_dir, &id);
      if (!st.ok()) {
        PrintError(st.message());
        return kExitError;
      }
    }
    puts(id.c_str());
    return kExitOk;
  };
}

}  // namespace lockmesh::cli
