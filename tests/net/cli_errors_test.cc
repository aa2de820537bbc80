// The errors of the `lockmesh` command line: each is one clear
// line on stderr and the documented exit code. Real processes of the built binary; no node
// runs unless a test starts one (nothing here needs one: every error is found before).
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/resource_name.h"
#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

class CliErrorsTest : public ProcessTest {
 protected:
  /// Runs `lockmesh args...` and expects exit `code` and exactly `line` (plus '\n') on stderr.
  void ExpectError(const std::vector<std::string>& args, int code, const std::string& line) {
    std::string what = "lockmesh";
    for (const auto& a : args) what += " " + a;
    RunResult r = RunLockmesh("cli", args, Millis(60000));
    EXPECT_EQ(r.code(), code) << what << ": " << r.Describe();
    EXPECT_EQ(r.err, line + "\n") << what;
  }
};

std::string ReadSource(const std::string& relative) {
  std::ifstream in(std::string(LOCKMESH_SOURCE_DIR) + "/" + relative);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TEST_F(CliErrorsTest, UnknownSubcommandSuggestsTheClosest) {
  ExpectError({"lokc"}, 2,
              "lockmesh: unknown subcommand 'lokc' (did you mean 'lock'?); run 'lockmesh help' "
              "for the list");
  ExpectError({"stauts"}, 2,
              "lockmesh: unknown subcommand 'stauts' (did you mean 'status'?); run 'lockmesh "
              "help' for the list");
  ExpectError({"frobnicate"}, 2,
              "lockmesh: unknown subcommand 'frobnicate'; run 'lockmesh help' for the list");
  ExpectError({"help", "lokc"}, 2,
              "lockmesh: unknown subcommand 'lokc' (did you mean 'lock'?); run 'lockmesh help' "
              "for the list");
  ExpectError({}, 2, "lockmesh: no subcommand given; run 'lockmesh help' for the list");
}

TEST_F(CliErrorsTest, HelpListsSubcommandsAndHelpSubcommandShowsItsFlags) {
  RunResult all = RunLockmesh("help", {"help"});
  EXPECT_EQ(all.code(), 0) << all.Describe();
  EXPECT_EQ(all.err, "");
  for (const char* sub : {"lock", "locks", "status", "node", "cert", "trust"}) {
    EXPECT_NE(all.out.find("\n  " + std::string(sub) + " "), std::string::npos)
        << sub << " missing from `lockmesh help`:\n"
        << all.out;
  }
  RunResult lock = RunLockmesh("help-lock", {"help", "lock"});
  EXPECT_EQ(lock.code(), 0) << lock.Describe();
  EXPECT_NE(lock.out.find("Usage: lockmesh lock [OPTIONS] RESOURCE CMD..."), std::string::npos)
      << lock.out;
  RunResult nested = RunLockmesh("help-cert-ca", {"help", "cert", "ca"});
  EXPECT_EQ(nested.code(), 0) << nested.Describe();
  EXPECT_NE(nested.out.find("Usage: lockmesh cert ca [OPTIONS]"), std::string::npos)
      << nested.out;
  RunResult same = RunLockmesh("lock-help", {"lock", "--help"});
  EXPECT_EQ(same.code(), 0) << same.Describe();
  EXPECT_EQ(same.out, lock.out);
}

TEST_F(CliErrorsTest, UnknownOptionIsNamed) {
  ExpectError({"lock", "--bogus", "demo", "--", "true"}, 2,
              "lockmesh: lock: unknown option --bogus (run 'lockmesh lock --help' for usage)");
  ExpectError({"lock", "-n", "demo", "--bogus=1", "--", "true"}, 2,
              "lockmesh: lock: unknown option --bogus (run 'lockmesh lock --help' for usage)");
  ExpectError({"lock", "-nz", "demo", "--", "true"}, 2,
              "lockmesh: lock: unknown option -z (run 'lockmesh lock --help' for usage)");
  // An option's value that looks like an option is not an unknown option: -w -1 is valid,
  // and the error is then about the missing command.
  ExpectError({"lock", "-w", "-1", "demo"}, 2,
              "lockmesh: CMD is required (run 'lockmesh lock --help' for usage)");
  ExpectError({"status", "--bogus"}, 2,
              "lockmesh: status: unknown option --bogus (run 'lockmesh status --help' for usage)");
  ExpectError({"cert", "ca", "--bogus"}, 2,
              "lockmesh: cert ca: unknown option --bogus (run 'lockmesh cert ca --help' for "
              "usage)");
  ExpectError({"--bogus", "lock"}, 2,
              "lockmesh: unknown option --bogus before the subcommand; run 'lockmesh help' for "
              "usage");
}

TEST_F(CliErrorsTest, ConfigDirectoryIsRefused) {
  const std::string dir = dir_->MakeDir("conf.d");
  ExpectError({"lock", "--no-autostart", "--config", dir, "demo", "--", "true"}, 99,
              "lockmesh: --config: " + dir + ": is a directory, not a TOML file");
  ExpectError({"status", "--config", dir}, 99,
              "lockmesh: --config: " + dir + ": is a directory, not a TOML file");
}

// A socket that names a directory, a data dir that names a file: refused before a node is
// started or asked, naming the flag (exit 2) or the key and its variable (exit 99).
TEST_F(CliErrorsTest, SocketDirectoryAndDataDirFileAreRefused) {
  const std::string dir = dir_->MakeDir("sockdir");
  const std::string file = Path("plain-file");
  WriteFile(file, "x\n");
  ExpectError({"status", "--socket", dir}, 2,
              "lockmesh: --socket " + dir + ": is a directory, not the node's socket (e.g. " + dir +
                  "/node.sock)");
  ExpectError({"lock", "--socket", dir, "demo", "--", "true"}, 2,
              "lockmesh: --socket " + dir + ": is a directory, not the node's socket (e.g. " + dir +
                  "/node.sock)");
  RunResult env =
      RunLockmesh("env", {"lock", "demo", "--", "true"}, Millis(60000), {{"LOCKMESH_SOCKET", dir}});
  EXPECT_EQ(env.code(), 99) << env.Describe();
  EXPECT_EQ(env.err, "lockmesh: node.socket (or LOCKMESH_SOCKET) " + dir +
                         ": is a directory, not the node's socket (e.g. " + dir + "/node.sock)\n");
  ExpectError({"node", "--local", "--socket", Path("s2/node.sock"), "--data-dir", file}, 2,
              "lockmesh: --data-dir " + file + ": is not a directory");
  RunResult data = RunLockmesh("env-data", {"lock", "--no-autostart", "demo", "--", "true"},
                               Millis(60000), {{"LOCKMESH_DATA_DIR", file}});
  EXPECT_EQ(data.code(), 99) << data.Describe();
  EXPECT_EQ(data.err,
            "lockmesh: node.data_dir (or LOCKMESH_DATA_DIR) " + file + ": is not a directory\n");
}

TEST_F(CliErrorsTest, WaitIsDecimalOnly) {
  ExpectError({"lock", "--no-autostart", "-w", "0x10", "demo", "--", "true"}, 2,
              "lockmesh: --wait 0x10: '0x10' is not a number of seconds (decimal, e.g. 2.5)");
  ExpectError({"lock", "--no-autostart", "-w", "1e3", "demo", "--", "true"}, 2,
              "lockmesh: --wait 1e3: '1e3' is not a number of seconds (decimal, e.g. 2.5)");
  ExpectError({"lock", "--no-autostart", "--grace", "0x5", "demo", "--", "true"}, 2,
              "lockmesh: --grace 0x5: '0x5' is not a number of seconds (decimal, e.g. 2.5)");
  RunResult help = RunLockmesh("help", {"lock", "--help"});
  EXPECT_NE(help.out.find("decimal"), std::string::npos) << help.out;
}

// Checked in the CLI with the node's own parser: exit 2 and the parser's reason, before any
// node is asked (none runs: a check left to the node would exit 94, no node).
TEST_F(CliErrorsTest, BadResourceNameIsAUsageError) {
  for (const std::string name : {"bad[x", "9lives", "a..b", "_t_%Q[1]"}) {
    mesh::core::ResourceName parsed;
    mesh::Status st = mesh::core::ParseResourceName(name, &parsed);
    ASSERT_FALSE(st.ok()) << name;
    ExpectError({"lock", "--no-autostart", name, "--", "true"}, 2, "lockmesh: " + st.message());
  }
}

// One code for "no node answers here" across lock, locks and status (and bench).
TEST_F(CliErrorsTest, NoNodeIsOneExitCode) {
  const std::string line = "lockmesh: no node is running at " + paths_.socket;
  ExpectError({"lock", "--no-autostart", "demo", "--", "true"}, 94, line);
  ExpectError({"locks"}, 94, line);
  ExpectError({"status"}, 94, line);
  RunResult json = RunLockmesh("status-json", {"status", "--json"});
  EXPECT_EQ(json.code(), 94) << json.Describe();
}

// A node that cannot create its data dir has no log there: the error names the directory
// and errno's text, and points at no log.
TEST_F(CliErrorsTest, FailedAutostartNamesTheDirectoryNotALogInIt) {
  const std::string data_dir = "/proc/lockmesh-no-such-dir/data";
  RunResult r = RunLockmesh("autostart", {"lock", "demo", "--", "true"}, Millis(60000),
                            {{"LOCKMESH_DATA_DIR", data_dir}});
  EXPECT_EQ(r.code(), 99) << r.Describe();
  EXPECT_EQ(SplitLines(r.err).size(), 1u) << r.err;
  EXPECT_EQ(r.err.rfind("lockmesh: the auto-started node failed to start: cannot create the data "
                        "dir: /proc/lockmesh-no-such-dir",
                        0),
            0u)
      << r.err;
  EXPECT_NE(r.err.find("No such file or directory"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("node.log"), std::string::npos)
      << "points at a log that cannot exist: " << r.err;
  // A socket directory that cannot be created: the directory and errno's text, in one line.
  RunResult sock = RunLockmesh(
      "autostart-socket",
      {"lock", "--socket", "/proc/lockmesh-no-such-dir/node.sock", "demo", "--", "true"},
      Millis(60000));
  EXPECT_EQ(sock.code(), 99) << sock.Describe();
  EXPECT_EQ(SplitLines(sock.err).size(), 1u) << sock.err;
  EXPECT_EQ(
      sock.err.rfind("lockmesh: cannot create the socket directory /proc/lockmesh-no-such-dir", 0),
      0u)
      << sock.err;
  EXPECT_NE(sock.err.find("No such file or directory"), std::string::npos) << sock.err;
}

// --version and `flom -v` list the security levels the build runs (this build's mbedTLS has
// TLS 1.2: all four), the same in both.
TEST_F(CliErrorsTest, VersionTellsTheSecurityLevelsOfTheBuild) {
  RunResult v = RunLockmesh("version", {"--version"});
  EXPECT_EQ(v.code(), 0) << v.Describe();
  std::smatch m;
  ASSERT_TRUE(std::regex_match(
      v.out, m,
      std::regex("lockmesh [0-9.]+ \\(client protocol 1; security levels: ([a-z, ]+)\\)\n")))
      << v.out;
  EXPECT_EQ(m[1].str(), "none, encrypt, mutual, tofu");
  RunResult flom = RunLockmesh("flom-v", {"flom", "-v"});
  EXPECT_EQ(flom.code(), 0) << flom.Describe();
  EXPECT_NE(flom.out.find("Security levels in this build: none, encrypt, mutual, tofu "),
            std::string::npos)
      << flom.out;
}

// Every code apps/lockmesh/exit_codes.h defines is a row of README's and docs/cli.md's
// exit-code tables.
TEST_F(CliErrorsTest, ExitCodeTablesListEveryCode) {
  const std::string header = ReadSource("apps/lockmesh/exit_codes.h");
  std::set<std::string> codes;
  std::regex constant("inline constexpr int kExit(\\w+) = (\\d+);");
  for (auto it = std::sregex_iterator(header.begin(), header.end(), constant);
       it != std::sregex_iterator(); ++it) {
    if ((*it)[1] == "SignalBase") {
      codes.insert("128+N");
    } else {
      codes.insert((*it)[2]);
    }
  }
  ASSERT_GE(codes.size(), 9u) << header;
  for (const char* doc : {"README.md", "docs/cli.md"}) {
    std::string text = ReadSource(doc);
    for (const std::string& code : codes) {
      EXPECT_NE(text.find("\n| " + code + " |"), std::string::npos)
          << doc << " has no row for exit code " << code;
    }
  }
}

}  // namespace
}  // namespace lockmesh::testing
