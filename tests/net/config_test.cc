// Tests of the lockmesh CLI's configuration loader (apps/lockmesh/config.cc): layer
// precedence and error messages that name the file, line and key.
#include "config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <string>

namespace lockmesh::cli {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lockmesh-config-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const auto& path : written_) unlink(path.c_str());
    rmdir(dir_.c_str());
  }

  /// Writes `text` to dir_/name and returns the path.
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    written_.push_back(path);
    return path;
  }

  /// Sources whose environment is env_.
  ConfigSources Sources(std::string system, std::string user, std::string explicit_file) {
    ConfigSources sources;
    sources.system_file = std::move(system);
    sources.user_file = std::move(user);
    sources.explicit_file = std::move(explicit_file);
    sources.getenv = [this](const char* name) -> const char* {
      auto it = env_.find(name);
      return it == env_.end() ? nullptr : it->second.c_str();
    };
    return sources;
  }

  std::string dir_;
  std::vector<std::string> written_;
  std::map<std::string, std::string> env_;
};

TEST_F(ConfigTest, DefaultsWithoutFilesOrEnvironment) {
  Config config;
  ASSERT_TRUE(LoadConfig(Sources(dir_ + "/none1", dir_ + "/none2", ""), &config).ok());
  EXPECT_EQ(config.node.cluster, "lockmesh");
  EXPECT_EQ(config.node.security, "none");
  EXPECT_TRUE(config.node.fsync);
  EXPECT_FALSE(config.node.idle_exit.has_value());
  EXPECT_EQ(config.node.expect, 1);
  EXPECT_EQ(config.node.voters, 3);
  EXPECT_EQ(config.lock.mode, mesh::LockMode::kEX);
  EXPECT_LT(config.lock.wait, 0);
  EXPECT_EQ(config.lock.on_lost, OnLost::kTerm);
  EXPECT_EQ(config.lock.grace, 5);
  EXPECT_TRUE(config.lock.autostart);
  EXPECT_TRUE(config.files.empty());
}

TEST_F(ConfigTest, LayersApplyInPrecedenceOrder) {
  std::string system = Write("system.toml",
                             "[node]\ncluster = \"sys\"\ndata_dir = \"/var/sys\"\n"
                             "idle_exit = 7\n[lock]\nmode = \"PR\"\ngrace = 1\n");
  std::string user = Write("user.toml", "[node]\ncluster = \"user\"\n[lock]\ngrace = 2.5\n");
  std::string extra = Write("extra.toml", "[node]\ncluster = \"extra\"\nfsync = false\n");
  env_["LOCKMESH_CLUSTER"] = "env";
  env_["LOCKMESH_ON_LOST"] = "kill";

  Config config;
  ASSERT_TRUE(LoadConfig(Sources(system, user, extra), &config).ok());
  EXPECT_EQ(config.node.cluster, "env");        // env beats every file
  EXPECT_EQ(config.node.data_dir, "/var/sys");  // only the system file sets it
  EXPECT_EQ(config.node.idle_exit.value_or(-1), 7);
  EXPECT_FALSE(config.node.fsync);  // --config file
  EXPECT_EQ(config.lock.mode, mesh::LockMode::kPR);
  EXPECT_DOUBLE_EQ(config.lock.grace, 2.5);  // user beats system
  EXPECT_EQ(config.lock.on_lost, OnLost::kKill);
  EXPECT_EQ(config.files, (std::vector<std::string>{system, user, extra}));

  // Flags come last and beat the environment.
  ASSERT_TRUE(ApplyText("node.cluster", "flag", "--cluster flag", &config).ok());
  EXPECT_EQ(config.node.cluster, "flag");
}

TEST_F(ConfigTest, ExplicitFileBeatsUserFile) {
  std::string user = Write("user.toml", "[lock]\nwait = 3\n");
  std::string extra = Write("extra.toml", "[lock]\nwait = 0.25\n");
  Config config;
  ASSERT_TRUE(LoadConfig(Sources("", user, extra), &config).ok());
  EXPECT_DOUBLE_EQ(config.lock.wait, 0.25);
}

TEST_F(ConfigTest, MissingSystemAndUserFilesAreFineMissingConfigIsNot) {
  Config config;
  mesh::Status st =
      LoadConfig(Sources(dir_ + "/no-sys", dir_ + "/no-user", dir_ + "/no-extra"), &config);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(dir_ + "/no-extra"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("--config"), std::string::npos) << st.message();
}

TEST_F(ConfigTest, UnknownKeyNamesFileLineAndKey) {
  std::string path = Write("bad.toml", "[node]\ncluster = \"x\"\nclustr = \"y\"\n");
  Config config;
  mesh::Status st = LoadConfig(Sources("", "", path), &config);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(path + ":3:"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("unknown key 'node.clustr'"), std::string::npos) << st.message();
}

TEST_F(ConfigTest, UnknownTableIsRefused) {
  std::string path = Write("bad.toml", "[nodes]\ncluster = \"x\"\n");
  Config config;
  mesh::Status st = ApplyTomlFile(path, true, &config);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(path + ":1:"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("'nodes'"), std::string::npos) << st.message();
}

TEST_F(ConfigTest, WrongTypeNamesFileLineKeyAndExpectation) {
  std::string path = Write("bad.toml", "\n[node]\nidle_exit = \"soon\"\n");
  Config config;
  mesh::Status st = ApplyTomlFile(path, true, &config);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(path + ":3:"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("node.idle_exit"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("number of seconds"), std::string::npos) << st.message();
}

TEST_F(ConfigTest, BadValuesAreRefusedWithTheKey) {
  struct Case {
    const char* text;
    const char* key;
  } cases[] = {
      {"[node]\nsecurity = \"tls\"\n", "node.security"},
      {"[node]\nvoters = 0\n", "node.voters"},
      {"[node]\nlisten = \"nohostport\"\n", "node.listen"},
      {"[node]\njoin = [\"a:1\", \"b:99999\"]\n", "node.join"},
      {"[node]\ncluster = \"has space\"\n", "node.cluster"},
      {"[lock]\nmode = \"XX\"\n", "lock.mode"},
      {"[lock]\non_lost = \"stop\"\n", "lock.on_lost"},
      {"[lock]\ngrace = -1\n", "lock.grace"},
      {"[lock]\nquantity = 0\n", "lock.quantity"},
  };
  for (const Case& c : cases) {
    Config config;
    mesh::Status st = ApplyTomlText(c.text, "t.toml", &config);
    ASSERT_FALSE(st.ok()) << c.text;
    EXPECT_NE(st.message().find("t.toml:2: " + std::string(c.key) + ":"), std::string::npos)
        << st.message();
  }
}

TEST_F(ConfigTest, SyntaxErrorNamesLine) {
  Config config;
  mesh::Status st = ApplyTomlText("[node]\ncluster = \n", "s.toml", &config);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("s.toml:2"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("TOML syntax error"), std::string::npos) << st.message();
}

TEST_F(ConfigTest, EnvironmentErrorsNameTheVariable) {
  env_["LOCKMESH_IDLE_EXIT"] = "abc";
  Config config;
  mesh::Status st = LoadConfig(Sources("", "", ""), &config);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("LOCKMESH_IDLE_EXIT=abc"), std::string::npos) << st.message();
}

TEST_F(ConfigTest, EnvironmentParsesEveryKind) {
  env_["LOCKMESH_FSYNC"] = "no";
  env_["LOCKMESH_VOTERS"] = "5";
  env_["LOCKMESH_WAIT"] = "1.5";
  env_["LOCKMESH_JOIN"] = "a:1, [::1]:2";
  env_["LOCKMESH_MODE"] = "shared";
  Config config;
  ASSERT_TRUE(LoadConfig(Sources("", "", ""), &config).ok());
  EXPECT_FALSE(config.node.fsync);
  EXPECT_EQ(config.node.voters, 5);
  EXPECT_DOUBLE_EQ(config.lock.wait, 1.5);
  EXPECT_EQ(config.node.join, (std::vector<std::string>{"a:1", "[::1]:2"}));
  EXPECT_EQ(config.lock.mode, mesh::LockMode::kPR);
}

TEST_F(ConfigTest, FlagErrorsNameTheFlag) {
  Config config;
  mesh::Status st = ApplyText("lock.wait", "soon", "--wait soon", &config);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("--wait soon: ", 0), 0u) << st.message();
}

TEST_F(ConfigTest, JoinAcceptsArrayOrCommaString) {
  Config config;
  ASSERT_TRUE(ApplyTomlText("[node]\njoin = \"a:1,b:2\"\n", "j.toml", &config).ok());
  EXPECT_EQ(config.node.join, (std::vector<std::string>{"a:1", "b:2"}));
  ASSERT_TRUE(ApplyTomlText("[node]\njoin = [\"c:3\"]\n", "j.toml", &config).ok());
  EXPECT_EQ(config.node.join, (std::vector<std::string>{"c:3"}));
}

TEST_F(ConfigTest, UserConfigPathFollowsXdg) {
  std::map<std::string, std::string> env = {{"HOME", "/home/u"}};
  auto getenv = [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  EXPECT_EQ(DefaultUserConfigPath(getenv), "/home/u/.config/lockmesh/lockmesh.toml");
  env["XDG_CONFIG_HOME"] = "/xdg";
  EXPECT_EQ(DefaultUserConfigPath(getenv), "/xdg/lockmesh/lockmesh.toml");
}

}  // namespace
}  // namespace lockmesh::cli
