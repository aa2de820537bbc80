// The node's log as an operator meets it (docs/cli.md `lockmesh node`): --log-format json
// writes one JSON object per line (time, level, event, msg, pid, fields) and nothing else on
// stderr; --log-level hides the less severe lines; the auto-started node's log file is capped
// and rotated (node.log -> node.log.1). Real `lockmesh node` processes, real files.
#include <signal.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

class NodeLogTest : public ProcessTest {
 protected:
  /// Stops a node with SIGTERM once it answers a client (so its signal handlers are in
  /// place: the socket accepts before the loop runs) and expects a clean exit.
  void Stop(Process* node) {
    RunResult status = RunLockmesh("status", {"status", "--socket", paths_.socket});
    EXPECT_EQ(status.code(), 0) << status.Describe();
    node->Signal(SIGTERM);
    auto st = node->Wait(Millis(20000));
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->code, 0) << *st;
  }
};

/// Parses every line of `text` as a log object with the documented keys; adds a failure
/// for each line that is not one. Returns the objects.
std::vector<nlohmann::json> ParseJsonLog(const std::string& text, const std::string& what) {
  static const std::regex kTime(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  static const std::set<std::string> kLevels = {"error", "warn", "info", "debug"};
  std::vector<nlohmann::json> out;
  for (const std::string& line : SplitLines(text)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << ": not JSON: " << line << " (" << e.what() << ")";
      continue;
    }
    bool ok = j.is_object() && j["time"].is_string() &&
              std::regex_match(j["time"].get<std::string>(), kTime) && j["level"].is_string() &&
              kLevels.count(j["level"].get<std::string>()) == 1 && j["event"].is_string() &&
              !j["event"].get<std::string>().empty() && j["msg"].is_string() &&
              j["pid"].is_number_integer();
    EXPECT_TRUE(ok) << what << ": a line without the log keys: " << line;
    out.push_back(j);
  }
  return out;
}

std::set<std::string> Events(const std::vector<nlohmann::json>& lines) {
  std::set<std::string> events;
  for (const auto& j : lines) events.insert(j.value("event", ""));
  return events;
}

TEST_F(NodeLogTest, JsonFormatWritesOneObjectPerLineAndNothingElse) {
  // --join on a local node is ignored with a warning: a warn line among the info lines.
  Process* node = StartTestNode({"--local", "--join", "127.0.0.1:9", "--log-format", "json"});
  ASSERT_NE(node, nullptr);
  RunResult lock = RunLockmesh("lock", LockArgs("r", {"true"}));
  EXPECT_EQ(lock.code(), 0) << lock.Describe();
  // A second node on the same socket fails to start: its error is a JSON line too.
  RunResult second = RunLockmesh("second", {"node", "--local", "--socket", paths_.socket,
                                            "--data-dir", Path("data2"), "--log-format", "json"});
  EXPECT_EQ(second.code(), 99) << second.Describe();
  Stop(node);

  std::vector<nlohmann::json> lines = ParseJsonLog(ReadFile(paths_.log), "node");
  ASSERT_GE(lines.size(), 4u) << ReadFile(paths_.log);
  for (const auto& j : lines) EXPECT_EQ(j["pid"], node->pid()) << j.dump();
  std::set<std::string> events = Events(lines);
  for (const char* e :
       {"node_serving", "node_settings", "cluster_flags_ignored", "stopping", "node_stopped"}) {
    EXPECT_EQ(events.count(e), 1u) << e << " missing in\n" << ReadFile(paths_.log);
  }
  for (const auto& j : lines) {
    if (j["event"] == "cluster_flags_ignored") EXPECT_EQ(j["level"], "warn") << j.dump();
    if (j["event"] == "node_serving") {
      EXPECT_EQ(j["level"], "info");
      EXPECT_EQ(j["socket"], paths_.socket) << j.dump();  // a field of the event
      EXPECT_EQ(j["data_dir"], paths_.data_dir) << j.dump();
    }
  }

  std::vector<nlohmann::json> failed = ParseJsonLog(second.err, "second node");
  ASSERT_FALSE(failed.empty()) << second.Describe();
  bool start_failed = false;
  for (const auto& j : failed) {
    start_failed |=
        j["event"] == "start_failed" && j["level"] == "error" &&
        j["msg"].get<std::string>().find("another node already serves") != std::string::npos;
  }
  EXPECT_TRUE(start_failed) << second.err;
}

TEST_F(NodeLogTest, LevelWarnHidesInfoLinesButShowsWarnings) {
  Process* node = StartTestNode({"--local", "--join", "127.0.0.1:9", "--log-level", "warn"});
  ASSERT_NE(node, nullptr);
  RunResult lock = RunLockmesh("lock", LockArgs("r", {"true"}));
  EXPECT_EQ(lock.code(), 0) << lock.Describe();
  Stop(node);
  std::string log = ReadFile(paths_.log);
  EXPECT_NE(log.find("warning: a local node (--local, or auto-started) has no peers"),
            std::string::npos)
      << log;
  for (const char* info : {"node settings:", " serving ", "SIGTERM: stopping", "node stopped"}) {
    EXPECT_EQ(log.find(info), std::string::npos) << info << " shown at warn:\n" << log;
  }
  // Text lines keep their form: "<stamp> lockmesh[<pid>] <message>".
  for (const std::string& line : SplitLines(log)) {
    EXPECT_NE(line.find(" lockmesh[" + std::to_string(node->pid()) + "] "), std::string::npos)
        << line;
  }

  // error hides the warning too; debug shows everything info shows.
  size_t before = FileSize(paths_.log);
  node = StartTestNode({"--local", "--join", "127.0.0.1:9", "--log-level", "error"});
  ASSERT_NE(node, nullptr);
  Stop(node);
  EXPECT_EQ(ReadFileFrom(paths_.log, before), "");
  node = StartTestNode({"--local", "--log-level", "debug"});
  ASSERT_NE(node, nullptr);
  Stop(node);
  std::string debug = ReadFileFrom(paths_.log, before);
  EXPECT_NE(debug.find("node settings:"), std::string::npos) << debug;
  EXPECT_NE(debug.find("node stopped"), std::string::npos) << debug;

  RunResult bad = RunLockmesh("bad", {"node", "--local", "--log-level", "verbose"});
  EXPECT_EQ(bad.code(), 2) << bad.Describe();
  EXPECT_NE(bad.err.find("--log-level verbose"), std::string::npos) << bad.err;
  bad = RunLockmesh("bad", {"node", "--local", "--log-format", "xml"});
  EXPECT_EQ(bad.code(), 2) << bad.Describe();
  bad = RunLockmesh("bad", {"node", "--local", "--log-max-bytes", "100"});
  EXPECT_EQ(bad.code(), 2) << bad.Describe();
}

struct FileId {
  ino_t inode = 0;
  off_t size = -1;
  bool operator==(const FileId& o) const { return inode == o.inode && size == o.size; }
};
FileId Identify(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return {};
  return {st.st_ino, st.st_size};
}

TEST_F(NodeLogTest, AutoStartedNodeLogIsCappedAndRotated) {
  constexpr size_t kCap = 2048;
  // The auto-started node inherits the environment: a small cap, and JSON lines.
  const std::map<std::string, std::optional<std::string>> env = {
      {"LOCKMESH_LOG_MAX_BYTES", std::to_string(kCap)}, {"LOCKMESH_LOG_FORMAT", "json"}};
  RunResult lock = RunLockmesh("lock", {"lock", "r", "--", "true"}, Millis(30000), env);
  ASSERT_EQ(lock.code(), 0) << lock.Describe();
  std::vector<pid_t> nodes = NodePidsServing(paths_.socket);
  ASSERT_EQ(nodes.size(), 1u);
  const std::string log = paths_.data_dir + "/node.log";
  const std::string old = log + ".1";
  ASSERT_TRUE(FileExists(log));

  // Each SIGHUP is one line ("SIGHUP: no certificates to reload ..."), ~200 bytes in JSON:
  // 40 of them are about four caps' worth. One at a time, each waited for.
  int rotations = 0;
  for (int i = 0; i < 40; ++i) {
    FileId before = Identify(log);
    ASSERT_EQ(kill(nodes[0], SIGHUP), 0);
    // (Between the rename and the new file's creation there is no node.log for a moment.)
    ASSERT_TRUE(WaitFor(
        [&] {
          FileId now = Identify(log);
          return now.size >= 0 && !(now == before);
        },
        Millis(20000)))
        << "no log line after SIGHUP " << i << "\n"
        << Tail(log);
    FileId now = Identify(log);
    if (now.inode != before.inode) ++rotations;
    ASSERT_LE(static_cast<size_t>(now.size), kCap) << "node.log past its cap after " << i;
  }
  EXPECT_GE(rotations, 2);
  ASSERT_TRUE(FileExists(old));
  EXPECT_LE(FileSize(old), kCap);
  EXPECT_GT(FileSize(old), kCap / 2);    // it was full when it was rotated
  EXPECT_FALSE(FileExists(log + ".2"));  // one old file is kept

  // Both files are whole JSON lines; the new one begins by naming the old one.
  std::vector<nlohmann::json> current = ParseJsonLog(ReadFile(log), "node.log");
  std::vector<nlohmann::json> previous = ParseJsonLog(ReadFile(old), "node.log.1");
  ASSERT_FALSE(current.empty());
  EXPECT_EQ(current.front()["event"], "log_rotated") << current.front().dump();
  EXPECT_EQ(current.front()["previous"], old);
  EXPECT_EQ(Events(previous).count("reload_ignored"), 1u);
  EXPECT_EQ(ReadFile(old).back(), '\n');

  // The node still serves.
  lock = RunLockmesh("lock", {"lock", "--no-autostart", "r", "--", "true"}, Millis(30000), env);
  EXPECT_EQ(lock.code(), 0) << lock.Describe();
}

TEST_F(NodeLogTest, HelpListsTheLogFlags) {
  RunResult help = RunLockmesh("help", {"node", "--help"});
  EXPECT_EQ(help.code(), 0) << help.Describe();
  for (const char* flag : {"--log-level", "--log-format", "--log-max-bytes"}) {
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag << "\n" << help.out;
  }
}

}  // namespace
}  // namespace lockmesh::testing
