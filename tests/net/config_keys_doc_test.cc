// The configuration keys the code accepts (apps/lockmesh/config.cc's one table, through
// ConfigKeys()) are the keys documented: docs/cli.md's configuration table (key and
// environment variable), the config key column of its `lockmesh node` flag table, and the
// commented example docker/lockmesh.toml.example. A key added to the code without its
// documentation, or documented without the code, fails here. The example cannot go stale
// either: each value it shows is the code's built-in default (a default changed in the code
// fails here), except values marked `# e.g.`, which illustrate a key whose default is
// computed at run time or empty, and must still be accepted.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "config.h"

namespace lockmesh::cli {
namespace {

std::string ReadSource(const std::string& relative) {
  std::ifstream in(std::string(LOCKMESH_SOURCE_DIR) + "/" + relative);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// The lines of the markdown section whose heading is `heading`, up to the next heading of
/// the same level.
std::vector<std::string> Section(const std::string& markdown, const std::string& heading) {
  std::vector<std::string> lines;
  std::istringstream in(markdown);
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) {
      if (inside) break;
      inside = line == heading;
      continue;
    }
    if (inside) lines.push_back(line);
  }
  return lines;
}

/// Cells of a table row "| a | b |" (trimmed, without the outer pipes); {} for other lines.
/// An escaped pipe (\|) stays inside its cell.
std::vector<std::string> Cells(const std::string& line) {
  std::vector<std::string> cells;
  if (line.rfind("|", 0) != 0) return cells;
  std::string cell;
  for (size_t i = 1; i < line.size(); ++i) {
    if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
      cell += '|';
      ++i;
    } else if (line[i] == '|') {
      size_t b = cell.find_first_not_of(' '), e = cell.find_last_not_of(' ');
      cells.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
      cell.clear();
    } else {
      cell += line[i];
    }
  }
  return cells;
}

std::map<std::string, std::string> CodeKeys() {
  std::map<std::string, std::string> keys;
  for (const ConfigKeyInfo& k : ConfigKeys()) keys[k.key] = k.env;
  return keys;
}

TEST(ConfigKeysDocTest, ConfigurationTableListsEveryKeyTheCodeAccepts) {
  const std::string doc = ReadSource("docs/cli.md");
  ASSERT_FALSE(doc.empty());
  std::map<std::string, std::string> documented;  // key -> environment variable
  static const std::regex kKey(R"(`((node|lock)\.[a-z0-9_]+)`)");
  for (const std::string& line : Section(doc, "## Configuration")) {
    std::vector<std::string> cells = Cells(line);
    std::smatch m;
    if (cells.size() < 5 || !std::regex_match(cells[0], m, kKey)) continue;
    EXPECT_EQ(documented.count(m[1]), 0u) << m[1] << " is listed twice";
    std::smatch env;
    static const std::regex kEnv(R"(`(LOCKMESH_[A-Z0-9_]+)`.*)");
    documented[m[1]] = std::regex_match(cells[3], env, kEnv) ? env[1].str() : cells[3];
  }
  const std::map<std::string, std::string> code = CodeKeys();
  ASSERT_GT(code.size(), 30u);
  for (const auto& [key, env] : code) {
    auto it = documented.find(key);
    if (it == documented.end()) {
      ADD_FAILURE() << "docs/cli.md's configuration table does not list " << key;
      continue;
    }
    EXPECT_EQ(it->second, env) << key << ": environment variable";
  }
  for (const auto& [key, env] : documented) {
    EXPECT_EQ(code.count(key), 1u) << "docs/cli.md lists " << key << ", which the code refuses";
  }
}

TEST(ConfigKeysDocTest, NodeFlagTableNamesEveryNodeKey) {
  const std::string doc = ReadSource("docs/cli.md");
  std::set<std::string> documented;
  for (const std::string& line : Section(doc, "## `lockmesh node`")) {
    std::vector<std::string> cells = Cells(line);
    if (cells.size() < 4 || cells[2].size() < 3 || cells[2].front() != '`') continue;
    documented.insert(cells[2].substr(1, cells[2].size() - 2));
  }
  std::set<std::string> code;
  for (const auto& [key, env] : CodeKeys()) {
    if (key.rfind("node.", 0) == 0) code.insert(key);
  }
  EXPECT_EQ(documented, code);
}

TEST(ConfigKeysDocTest, ExampleFileShowsEveryKey) {
  const std::string example = ReadSource("docker/lockmesh.toml.example");
  ASSERT_FALSE(example.empty());
  std::set<std::string> shown;
  std::string uncommented;  // the example with every key set as shown
  std::istringstream in(example);
  std::string line, table;
  static const std::regex kTable(R"(\[(node|lock)\])");
  static const std::regex kAssignment(R"(# ([a-z0-9_]+) = .*)");
  const Config defaults;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, kTable)) {
      table = m[1];
      uncommented += line + "\n";
    } else if (!table.empty() && std::regex_match(line, m, kAssignment)) {
      shown.insert(table + "." + m[1].str());
      uncommented += line.substr(2) + "\n";
      if (line.size() >= 6 && line.compare(line.size() - 6, 6, "# e.g.") == 0) continue;
      // Not an illustration: the value shown is the built-in default.
      Config one;
      mesh::Status st = ApplyTomlText("[" + table + "]\n" + line.substr(2) + "\n", line, &one);
      EXPECT_TRUE(st.ok()) << st.ToString();
      EXPECT_TRUE(one.node == defaults.node && one.lock == defaults.lock)
          << "docker/lockmesh.toml.example shows '" << line.substr(2)
          << "', which is not the code's default (or mark it '# e.g.')";
    }
  }
  // Every value shown is one the code accepts.
  Config config;
  mesh::Status st = ApplyTomlText(uncommented, "lockmesh.toml.example", &config);
  EXPECT_TRUE(st.ok()) << st.ToString() << "\n" << uncommented;
  std::set<std::string> code;
  for (const auto& [key, env] : CodeKeys()) code.insert(key);
  EXPECT_EQ(shown, code);
}

}  // namespace
}  // namespace lockmesh::cli
