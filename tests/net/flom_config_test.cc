// FLoM's INI configuration files for the `flom` front end (docs/flom.md): the loader itself
// (apps/lockmesh/flom_config.cc, compiled into this test) and the real `flom` reading
// ~/.flom and -c FILE below its command-line options.
#include "flom_config.h"

#include <sys/stat.h>

#include <string>
#include <vector>

#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

using cli::FlomConfigSources;
using cli::FlomSettings;
using mesh::Status;

Status Apply(const std::string& text, FlomSettings* s,
             std::vector<std::string>* warnings = nullptr) {
  std::vector<std::string> ignored;
  return cli::ApplyFlomIniText(text, "f.ini", s, warnings != nullptr ? warnings : &ignored);
}

TEST(FlomIniTest, EveryGroupAndKeyWithFlomNames) {
  FlomSettings s;
  ASSERT_TRUE(Apply(R"(# a comment
; another comment
[Trace]
Verbose=yes
[Resource]
Name=limit[4]
Timeout=250
Quantity=3
LockMode=ProtectedRead
Create=no
IdleLifespan=1000
[Daemon]
SocketName=/tmp/x/flom.sock
Lifespan=-1
UnicastPort=28016
MulticastPort=28017
[Monitor]
IgnoredSignals=SIGTERM;SIGQUIT;1
[Network]
DiscoveryAttempts=4
DiscoveryTimeout=100
DiscoveryTTL=2
TcpKeepaliveTime=30
[TLS]
TlsCertificate=/c.pem
TlsPrivateKey=/k.pem
TlsCaCertificate=/ca.pem
TlsCheckPeerId=yes
)",
                    &s)
                  .ok());
  EXPECT_TRUE(s.verbose);
  EXPECT_EQ(s.resource_name, "limit[4]");
  EXPECT_EQ(s.resource_timeout_ms, 250);
  EXPECT_EQ(s.resource_quantity, 3);
  EXPECT_EQ(s.lock_mode, mesh::LockMode::kPR);
  EXPECT_FALSE(s.resource_create);
  EXPECT_EQ(s.resource_idle_lifespan_ms, 1000);
  EXPECT_EQ(s.socket_name, "/tmp/x/flom.sock");
  EXPECT_EQ(s.daemon_lifespan_ms, -1);
  EXPECT_EQ(s.unicast_port, 28016);
  EXPECT_EQ(s.multicast_port, 28017);
  EXPECT_EQ(s.ignored_signals, (std::vector<int>{SIGTERM, SIGQUIT, SIGHUP}));
  EXPECT_EQ(s.discovery_attempts, 4);
  EXPECT_EQ(s.discovery_timeout_ms, 100);
  EXPECT_EQ(s.discovery_ttl, 2);
  EXPECT_EQ(s.tcp_keepalive_time, 30);
  EXPECT_EQ(s.tls_certificate, "/c.pem");
  EXPECT_TRUE(s.tls_check_peer_id);
}

TEST(FlomIniTest, DefaultsAreFlomDefaults) {
  FlomSettings s;
  EXPECT_EQ(s.resource_name, "_RESOURCE");
  EXPECT_EQ(s.resource_timeout_ms, -1);
  EXPECT_EQ(s.resource_quantity, 1);
  EXPECT_EQ(s.lock_mode, mesh::LockMode::kEX);
  EXPECT_TRUE(s.resource_create);
  EXPECT_EQ(s.daemon_lifespan_ms, 5000);
  EXPECT_EQ(s.unicast_port, 28015);
  EXPECT_EQ(s.discovery_attempts, 2);
  EXPECT_EQ(s.discovery_timeout_ms, 500);
  EXPECT_EQ(cli::DefaultFlomSocket().rfind("/tmp/flom-", 0), 0u);
}

TEST(FlomIniTest, ErrorsNameFileAndLine) {
  struct Case {
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"[Resource]\nName=ok\nTimeout=abc\n",
       "f.ini:3: [Resource] Timeout: 'abc' is not an integer"},
      {"[Resource\nName=x\n", "f.ini:1: syntax error"},
      {"[Resource]\nthis line has no value\n", "f.ini:2: syntax error"},
      {"Name=x\n", "f.ini:1: key 'Name' outside of any [group]"},
      {"[Resource]\n\nLockMode=XX\n", "f.ini:3: [Resource] LockMode: unknown lock mode 'XX'"},
      {"[Resource]\nName=bad name\n", "f.ini:2: [Resource] Name:"},
      {"[Resource]\nCreate=perhaps\n", "f.ini:2: [Resource] Create: 'perhaps' is not yes or no"},
      {"[Daemon]\nUnicastPort=70000\n", "f.ini:2: [Daemon] UnicastPort: port must be 1-65535"},
      {"[Monitor]\nIgnoredSignals=SIGTERM;SIGKILL\n", "f.ini:2: [Monitor] IgnoredSignals:"},
      {"[Resource]\nName=" + std::string(300, 'a') + "\n", "f.ini:2: line longer than"},
  };
  for (const Case& c : cases) {
    FlomSettings s;
    Status st = Apply(c.text, &s);
    EXPECT_FALSE(st.ok()) << c.text;
    EXPECT_EQ(st.message().rfind(c.message, 0), 0u) << "got: " << st.message();
  }
}

TEST(FlomIniTest, IndentedLinesUnknownKeysAndEscapes) {
  FlomSettings s;
  std::vector<std::string> warnings;
  ASSERT_TRUE(Apply("[Resource]\n  Name=first\n  Timeout=5\n[Resource]\nFoo=1\n[Other]\nX=y\n"
                    "[Daemon]\nSocketName=/tmp/with\\sspace\n",
                    &s, &warnings)
                  .ok());
  EXPECT_EQ(s.resource_name, "first") << "an indented line is a key, not a continuation";
  EXPECT_EQ(s.resource_timeout_ms, 5);
  EXPECT_EQ(s.socket_name, "/tmp/with space");
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[0], "f.ini:5: unknown key 'Foo' in group [Resource] (ignored, as FLoM does)");
}

TEST(FlomIniTest, FilesApplyInOrderSystemUserExplicit) {
  TempDir dir("lmflom");
  std::string system = dir.Join("flom.conf");
  std::string user = dir.Join("user.flom");
  std::string explicit_file = dir.Join("extra.ini");
  WriteFile(system, "[Resource]\nName=sys\nTimeout=1\nQuantity=2\n");
  WriteFile(user, "[Resource]\nName=usr\nTimeout=2\n");
  WriteFile(explicit_file, "[Resource]\nName=cfg\n");
  FlomConfigSources sources;
  sources.system_file = system;
  sources.user_file = user;
  sources.explicit_file = explicit_file;
  FlomSettings s;
  std::vector<std::string> warnings;
  ASSERT_TRUE(cli::LoadFlomConfig(sources, &s, &warnings).ok());
  EXPECT_EQ(s.resource_name, "cfg");
  EXPECT_EQ(s.resource_timeout_ms, 2);
  EXPECT_EQ(s.resource_quantity, 2);
  EXPECT_EQ(s.files, (std::vector<std::string>{system, user, explicit_file}));

  // Missing system and user files are fine; a missing -c file is not.
  sources.system_file = dir.Join("none1");
  sources.user_file = dir.Join("none2");
  FlomSettings t;
  EXPECT_TRUE(cli::LoadFlomConfig({dir.Join("none1"), dir.Join("none2"), ""}, &t, &warnings).ok());
  sources.explicit_file = dir.Join("none3");
  Status st = cli::LoadFlomConfig(sources, &t, &warnings);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("none3"), std::string::npos) << st.message();
  // A broken user file is an error (FLoM skips it silently).
  WriteFile(user, "[Resource]\nTimeout=x\n");
  sources.user_file = user;
  sources.explicit_file = "";
  st = cli::LoadFlomConfig(sources, &t, &warnings);
  EXPECT_EQ(st.message(), user + ":2: [Resource] Timeout: 'x' is not an integer");
}

TEST(FlomIniTest, FormatIsFlomsVerboseDump) {
  FlomSettings s;
  s.socket_name = "/tmp/flom-u";
  std::string dump = cli::FormatFlomSettings(s);
  EXPECT_NE(dump.find("[Resource]/Name='_RESOURCE'\n"), std::string::npos) << dump;
  EXPECT_NE(dump.find("[Resource]/Timeout=-1\n"), std::string::npos) << dump;
  EXPECT_NE(dump.find("[Daemon]/Lifespan=5000\n"), std::string::npos) << dump;
  EXPECT_NE(dump.find("[TLS]/TlsCheckPeerId=0\n"), std::string::npos) << dump;
}

// The real `flom`: values from ~/.flom, -c FILE over ~/.flom, options over both, and a bad
// ~/.flom named with its line.
class FlomConfigFileTest : public ProcessTest {
 protected:
  void SetUp() override {
    ProcessTest::SetUp();
    if (HasFatalFailure()) return;
    flom_ = FlomBinary();
  }
  RunResult RunFlom(const std::string& name, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {flom_};
    argv.insert(argv.end(), args.begin(), args.end());
    return Finish(Spawn(name, argv), Millis(30000));
  }
  std::string flom_;
};

TEST_F(FlomConfigFileTest, UserFileExplicitFileAndOptionsInThatOrder) {
  WriteFile(home_ + "/.flom",
            "[Daemon]\nSocketName=" + paths_.socket + "\n[Resource]\nName=a.b\nTimeout=0\n");
  // Resource from ~/.flom (a set: the element is appended).
  RunResult user = RunFlom("user", {"--", "echo"});
  EXPECT_EQ(user.code(), 0) << user.Describe();
  EXPECT_EQ(user.out, "a\n");
  // -c FILE overrides ~/.flom.
  WriteFile(Path("extra.ini"), "[Resource]\nName=x.y\n");
  RunResult extra = RunFlom("extra", {"-c", Path("extra.ini"), "--", "echo"});
  EXPECT_EQ(extra.code(), 0) << extra.Describe();
  EXPECT_EQ(extra.out, "x\n");
  // Options override both.
  RunResult option = RunFlom("option", {"-c", Path("extra.ini"), "-r", "p.q", "--", "echo"});
  EXPECT_EQ(option.out, "p\n") << option.Describe();

  // Timeout=0 from ~/.flom: a busy resource exits 98 at once.
  Process* holder = Spawn("holder", {flom_, "-r", "a.b", "-q", "1", "--", "sh", "-c",
                                     "touch \"$D/h.started\"; while [ ! -e \"$D/h.release\" ]; "
                                     "do sleep 0.02; done"});
  ASSERT_TRUE(
      WaitFor([&] { return FileExists(Path("h.started")) || !holder->Running(); }, Millis(30000)));
  Process* holder2 = Spawn("holder", {flom_, "-r", "a.b", "--", "sh", "-c",
                                      "touch \"$D/h2.started\"; while [ ! -e \"$D/h.release\" ]; "
                                      "do sleep 0.02; done"});
  ASSERT_TRUE(WaitFor([&] { return FileExists(Path("h2.started")) || !holder2->Running(); },
                      Millis(30000)));
  RunResult busy = RunFlom("busy", {"--", "true"});
  EXPECT_EQ(busy.code(), 98) << "Timeout=0 in ~/.flom means no wait: " << busy.Describe();
  RunResult waits = RunFlom("waits", {"-o", "300", "--", "true"});
  EXPECT_EQ(waits.code(), 98) << waits.Describe();
  EXPECT_GE(waits.seconds, 0.25) << "-o 300 overrides Timeout=0: " << waits.Describe();
  ReleaseHolder(holder, "h");
  EXPECT_EQ(Finish(holder2, Millis(30000)).code(), 0);
}

TEST_F(FlomConfigFileTest, BadUserFileIsNamedWithItsLine) {
  WriteFile(home_ + "/.flom",
            "[Daemon]\nSocketName=" + paths_.socket + "\n[Resource]\nLockMode=Sideways\n");
  RunResult r = RunFlom("bad", {"--", "true"});
  EXPECT_EQ(r.code(), 99) << r.Describe();
  EXPECT_EQ(r.err, "flom: " + home_ +
                       "/.flom:4: [Resource] LockMode: unknown lock mode "
                       "'Sideways' (use NL, CR, CW, PR, PW, EX, shared or exclusive)\n");
  EXPECT_TRUE(NodePidsServing(paths_.socket).empty());
  WriteFile(home_ + "/.flom", "[Daemon]\nSocketName=" + paths_.socket + "\n");
  WriteFile(Path("bad.ini"), "[Resource]\nTimeout=1\n[Daemon\n");
  RunResult c = RunFlom("badc", {"-c", Path("bad.ini"), "--", "true"});
  EXPECT_EQ(c.code(), 99) << c.Describe();
  EXPECT_NE(c.err.find(Path("bad.ini") + ":3: syntax error"), std::string::npos) << c.err;
}

}  // namespace
}  // namespace lockmesh::testing
