// Tests of net/support/log_line: levels from markers and the table of known messages, event names
// and fields, the text line read back, and the JSON form (parsed by nlohmann/json).
#include "net/support/log_line.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace mesh::net {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

TEST(LogLineTest, MarkersGiveTheLevel) {
  EXPECT_EQ(ClassifyLogMessage("warning: something odd").level, LogLevel::kWarn);
  EXPECT_EQ(ClassifyLogMessage("warning: something odd").event, "warning");
  EXPECT_EQ(ClassifyLogMessage("error: broken").level, LogLevel::kError);
  EXPECT_EQ(ClassifyLogMessage("fatal: broken").event, "fatal");
  EXPECT_EQ(ClassifyLogMessage("debug: detail").level, LogLevel::kDebug);
  EXPECT_EQ(ClassifyLogMessage("cannot open x: no such file").level, LogLevel::kError);
  EXPECT_EQ(ClassifyLogMessage("refusing to do y").level, LogLevel::kError);
  LogEvent plain = ClassifyLogMessage("something happened");
  EXPECT_EQ(plain.level, LogLevel::kInfo);
  EXPECT_EQ(plain.event, "message");
  EXPECT_TRUE(plain.fields.empty());
}

TEST(LogLineTest, KnownMessagesHaveEventsAndFields) {
  LogEvent up = ClassifyLogMessage("peer n2 up (127.0.0.1:28017, dialled, no TLS)");
  EXPECT_EQ(up.event, "peer_up");
  EXPECT_EQ(up.level, LogLevel::kInfo);
  EXPECT_EQ(up.fields, (Fields{{"peer", "n2"}, {"address", "127.0.0.1:28017"}}));

  LogEvent down = ClassifyLogMessage("peer n3 down ([::1]:28018): connection reset: peer closed");
  EXPECT_EQ(down.event, "peer_down");
  EXPECT_EQ(down.level, LogLevel::kWarn);
  EXPECT_EQ(down.fields, (Fields{{"peer", "n3"},
                                 {"address", "[::1]:28018"},
                                 {"reason", "connection reset: peer closed"}}));

  LogEvent serving =
      ClassifyLogMessage("node n1 serving /tmp/s/node.sock, data /tmp/d, log index 7, fsync OFF");
  EXPECT_EQ(serving.event, "node_serving");
  EXPECT_EQ(serving.fields, (Fields{{"node_id", "n1"},
                                    {"socket", "/tmp/s/node.sock"},
                                    {"data_dir", "/tmp/d"},
                                    {"index", "7"}}));

  EXPECT_EQ(ClassifyLogMessage("node stopped").level, LogLevel::kInfo);
  LogEvent stopped = ClassifyLogMessage("node stopped: Unavailable: disk gone");
  EXPECT_EQ(stopped.event, "node_stopped");
  EXPECT_EQ(stopped.level, LogLevel::kError);

  // "cannot" is an error unless the table says otherwise: a dial that fails is retried.
  EXPECT_EQ(ClassifyLogMessage("cannot dial 10.0.0.1:28017: refused").level, LogLevel::kWarn);
  EXPECT_EQ(ClassifyLogMessage("cannot start node: another node already serves x").event,
            "start_failed");

  LogEvent summary = ClassifyLogMessage("suppressed 12 similar lines in 10 s: refused peer: x");
  EXPECT_EQ(summary.event, "lines_suppressed");
  EXPECT_EQ(summary.fields,
            (Fields{{"count", "12"}, {"seconds", "10"}, {"key", "refused peer: x"}}));

  // A marker keeps the table's event and fields, and its own level.
  LogEvent marked = ClassifyLogMessage("warning: idle for 5 ms; exiting");
  EXPECT_EQ(marked.event, "idle_exit");
  EXPECT_EQ(marked.level, LogLevel::kWarn);
  EXPECT_EQ(marked.fields, (Fields{{"idle_ms", "5"}}));
}

// (The table is compiled on first use and aborts on a pattern with two parts in a row or a
// field named like a key of the record: every test here would crash.)
TEST(LogLineTest, EventNamesAreShortSnakeCase) {
  for (const std::string& e : KnownLogEvents()) {
    EXPECT_FALSE(e.empty());
    EXPECT_LE(e.size(), 32u) << e;
    EXPECT_EQ(e.find_first_not_of("abcdefghijklmnopqrstuvwxyz_"), std::string::npos) << e;
  }
}

TEST(LogLineTest, TextLineReadsBack) {
  std::string line = FormatLogLine("peer n2 up (1.2.3.4:5, no TLS)");
  LogRecord r;
  ASSERT_TRUE(ParseLogLine(line, &r)) << line;
  EXPECT_EQ(r.pid, getpid());
  EXPECT_EQ(r.message, "peer n2 up (1.2.3.4:5, no TLS)");
  EXPECT_EQ(r.time.size(), 24u);
  EXPECT_EQ(r.time.back(), 'Z');
  EXPECT_EQ(RenderLogLine(line, LogFormat::kText), line);

  LogRecord foreign;
  EXPECT_FALSE(ParseLogLine("lockmesh: not a log line", &foreign));
  EXPECT_EQ(foreign.message, "lockmesh: not a log line");
  EXPECT_EQ(foreign.pid, getpid());
}

TEST(LogLineTest, ExplicitLevelReadsBack) {
  for (LogLevel level : {LogLevel::kError, LogLevel::kWarn, LogLevel::kInfo, LogLevel::kDebug}) {
    for (const char* message :
         {"something happened", "cannot open x", "peer n2 down (a): b", "warning: odd"}) {
      LogRecord r;
      ASSERT_TRUE(ParseLogLine(FormatLogLine(message, level), &r));
      EXPECT_EQ(ClassifyLogMessage(r.message).level, level) << message;
    }
  }
  // A message that already implies its level is left as it is.
  LogRecord r;
  ParseLogLine(FormatLogLine("warning: odd", LogLevel::kWarn), &r);
  EXPECT_EQ(r.message, "warning: odd");
  ParseLogLine(FormatLogLine("peer n2 down (a): b", LogLevel::kWarn), &r);
  EXPECT_EQ(r.message, "peer n2 down (a): b");
}

TEST(LogLineTest, JsonLineHasTheKeysAndParses) {
  std::string line = FormatLogLine("peer n3 down ([::1]:28018): reset");
  nlohmann::json j = nlohmann::json::parse(RenderLogLine(line, LogFormat::kJson));
  LogRecord r;
  ParseLogLine(line, &r);
  EXPECT_EQ(j["time"], r.time);
  EXPECT_EQ(j["level"], "warn");
  EXPECT_EQ(j["event"], "peer_down");
  EXPECT_EQ(j["msg"], "peer n3 down ([::1]:28018): reset");
  EXPECT_EQ(j["pid"], getpid());
  EXPECT_EQ(j["peer"], "n3");
  EXPECT_EQ(j["address"], "[::1]:28018");
  EXPECT_EQ(j["reason"], "reset");
  // A foreign line is stamped and still one object.
  nlohmann::json f = nlohmann::json::parse(RenderLogLine("plain", LogFormat::kJson));
  EXPECT_EQ(f["msg"], "plain");
  EXPECT_EQ(f["event"], "message");
  EXPECT_EQ(f["level"], "info");
}

TEST(LogLineTest, JsonQuoteEscapesAndRepairsUtf8) {
  EXPECT_EQ(JsonQuote("a\"b\\c\n\t\x01"), "\"a\\\"b\\\\c\\n\\t\\u0001\"");
  EXPECT_EQ(JsonQuote("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x94\x92"),
            "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x94\x92\"");
  // Invalid bytes (a peer's id, say): each becomes U+FFFD and the result parses.
  for (std::string bad : {std::string("\xff"), std::string("a\xc3"), std::string("\xc0\xaf"),
                          std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"),
                          std::string("x\x80y"), std::string("\xe0\x80\x80")}) {
    std::string quoted = JsonQuote(bad);
    nlohmann::json j;
    ASSERT_NO_THROW(j = nlohmann::json::parse(quoted)) << quoted;
    EXPECT_NE(j.get<std::string>().find("\xef\xbf\xbd"), std::string::npos) << quoted;
  }
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  EXPECT_NO_THROW(nlohmann::json::parse(JsonQuote(all)));
}

TEST(LogLineTest, LevelAndFormatNames) {
  LogLevel level;
  for (const char* name : {"error", "warn", "info", "debug"}) {
    ASSERT_TRUE(ParseLogLevel(name, &level)) << name;
    EXPECT_STREQ(LogLevelName(level), name);
  }
  ASSERT_TRUE(ParseLogLevel("warning", &level));
  EXPECT_EQ(level, LogLevel::kWarn);
  EXPECT_FALSE(ParseLogLevel("WARN", &level));
  EXPECT_FALSE(ParseLogLevel("", &level));
  LogFormat format;
  EXPECT_TRUE(ParseLogFormat("json", &format));
  EXPECT_EQ(format, LogFormat::kJson);
  EXPECT_TRUE(ParseLogFormat("text", &format));
  EXPECT_EQ(format, LogFormat::kText);
  EXPECT_FALSE(ParseLogFormat("yaml", &format));
}

}  // namespace
}  // namespace mesh::net
