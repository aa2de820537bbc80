// `lockmesh locks` and mesh::Client::ListLocks against real `lockmesh node` processes with
// listings of many pages: every row once, --json one valid document,
// the --prefix and --node filters, usage errors, and the one-reply listing of a client that
// does not page (small: every row; large: a clear error, not a dropped connection).
//
// Before paging, a listing was one client frame and failed above ~1,100 locks; these tables
// are ten times that. Locks are taken through one pipelined connection per node, held by a
// thread of the test (its loop also renews the client lease of a mesh node).
#include <gtest/gtest.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "lockmesh.pb.h"
#include "mesh/client.h"
#include "net/support/process_harness.h"

namespace lockmesh::testing {
namespace {

using Json = nlohmann::json;

// Takes `names` (distinct resources, EX) through one AsyncClient connection to `socket`,
// at most kWindow requests in flight, and holds them until destroyed. The client lives on
// a loop run by a thread of its own and is touched only there.
class PipelinedLocks {
 public:
  PipelinedLocks(std::string socket, std::vector<std::string> names)
      : socket_(std::move(socket)), names_(std::move(names)) {
    thread_ = std::thread([this] { Run(); });
  }

  ~PipelinedLocks() {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return started_; });
    }
    uv_async_send(&stop_);
    thread_.join();
  }

  // Waits until every lock is held (true) or a request failed or `timeout` passed (false,
  // with error()).
  bool WaitHeld(Millis timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return granted_ == names_.size() || !error_.empty(); });
    if (granted_ != names_.size() && error_.empty()) {
      error_ = "only " + std::to_string(granted_) + " of " + std::to_string(names_.size()) +
               " locks granted in time";
    }
    return error_.empty();
  }
  std::string error() {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }

 private:
  static constexpr size_t kWindow = 256;

  void Run() {
    uv_loop_init(&loop_);
    stop_.data = this;
    uv_async_init(&loop_, &stop_, [](uv_async_t* a) {
      auto* self = static_cast<PipelinedLocks*>(a->data);
      self->client_->Close(
          [self] { uv_close(reinterpret_cast<uv_handle_t*>(&self->stop_), nullptr); });
    });
    mesh::ClientOptions options;
    options.socket_path = socket_;
    options.client_name = "listing test";
    client_ = mesh::AsyncClient::Create(&loop_, options);
    client_->Connect([this](const mesh::Status& st) {
      if (!st.ok()) return Fail("connect: " + st.ToString());
      Next();
    });
    {
      std::lock_guard<std::mutex> lock(mu_);
      started_ = true;
    }
    cv_.notify_all();
    uv_run(&loop_, UV_RUN_DEFAULT);
    client_.reset();
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }

  void Next() {
    while (in_flight_ < kWindow && next_ < names_.size()) {
      ++in_flight_;
      mesh::LockOptions lo;
      lo.timeout_ms = 60000;
      const std::string name = names_[next_++];
      client_->Lock(name, lo, [this, name](const mesh::Status& st, const mesh::Lock&) {
        --in_flight_;
        if (!st.ok()) return Fail("lock " + name + ": " + st.ToString());
        {
          std::lock_guard<std::mutex> lock(mu_);
          ++granted_;
        }
        cv_.notify_all();
        Next();
      });
    }
  }

  void Fail(const std::string& why) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (error_.empty()) error_ = why;
    }
    cv_.notify_all();
  }

  const std::string socket_;
  const std::vector<std::string> names_;
  std::thread thread_;
  uv_loop_t loop_;
  uv_async_t stop_;
  std::unique_ptr<mesh::AsyncClient> client_;  // loop thread only
  size_t next_ = 0;                            // loop thread only
  size_t in_flight_ = 0;                       // loop thread only
  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  size_t granted_ = 0;
  std::string error_;
};

// A 60-byte name: `tag`, a number, padding (pages are then bounded by bytes, not rows).
std::string Name(const std::string& tag, int i) {
  char number[16];
  snprintf(number, sizeof number, "%05d", i);
  std::string name = tag + number + "-";
  return name + std::string(60 - name.size(), 'p');
}

class LockListingTest : public ProcessTest {
 protected:
  // `lockmesh locks --socket S args...`.
  RunResult Locks(const std::string& socket, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"locks", "--socket", socket};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunLockmesh("locks", argv, Millis(120000));
  }

  // `lockmesh locks --json` parsed; fails the test unless it exits 0 with one valid
  // document whose rows all have a distinct lock id.
  Json LocksJson(const std::string& socket, const std::vector<std::string>& args) {
    std::vector<std::string> all = {"--json"};
    all.insert(all.end(), args.begin(), args.end());
    RunResult r = Locks(socket, all);
    EXPECT_EQ(r.code(), 0) << r.Describe();
    Json doc = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(doc.is_discarded())
        << "not one valid JSON document: " << r.out.substr(0, 300) << " ... "
        << r.out.substr(r.out.size() - std::min<size_t>(r.out.size(), 300));
    if (doc.is_discarded() || !doc.contains("locks") || !doc["locks"].is_array()) {
      return Json::array();
    }
    // Written row by row, laid out as before paging (the whole document's dump(2)).
    // (Compared by hand: gtest's diff of two megabyte strings would take gigabytes.)
    const std::string dumped = nlohmann::ordered_json::parse(r.out).dump(2) + "\n";
    if (dumped != r.out) {
      size_t at = 0;
      while (at < dumped.size() && at < r.out.size() && dumped[at] == r.out[at]) ++at;
      const size_t from = at < 80 ? 0 : at - 80;
      ADD_FAILURE() << "--json layout differs from dump(2) at byte " << at << ":\n"
                    << r.out.substr(from, 160) << "\n--- expected ---\n"
                    << dumped.substr(from, 160);
    }
    std::set<uint64_t> ids;
    for (const Json& row : doc["locks"]) ids.insert(row["lock_id"].get<uint64_t>());
    EXPECT_EQ(ids.size(), doc["locks"].size()) << "a row listed twice";
    return doc["locks"];
  }

  // The node id of the node at `socket` (`lockmesh status --json`).
  std::string NodeId(const std::string& socket) {
    RunResult r = RunLockmesh("status", {"status", "--socket", socket, "--json"}, Millis(20000));
    Json s = Json::parse(r.out, nullptr, false);
    return s.is_discarded() ? "" : s.value("node_id", "");
  }

  // One ListLocksRequest over a raw connection, as a client before paging sends it
  // (no `paged`); the node's answer.
  mesh::pb::ClientResponse UnpagedListing(const std::string& socket) {
    mesh::pb::ClientResponse resp;
    int fd = ConnectUnix(socket);
    EXPECT_GE(fd, 0);
    if (fd < 0) return resp;
    mesh::pb::ClientRequest hello;
    hello.set_request_id(1);
    hello.mutable_hello()->set_protocol_version(1);
    hello.mutable_hello()->set_client_name("client before paging");
    mesh::pb::ClientRequest list;
    list.set_request_id(2);
    list.mutable_list_locks();
    EXPECT_EQ(SendAll(fd, Frame(hello.SerializeAsString()) + Frame(list.SerializeAsString())), 0);
    std::string body;
    for (int frames = 0; frames < 10; ++frames) {
      if (!ReadFrame(fd, Millis(20000), &body)) {
        ADD_FAILURE() << "no answer to the listing (connection closed or frame too large)";
        break;
      }
      if (resp.ParseFromString(body) && resp.request_id() == 2) break;
      resp.Clear();
    }
    close(fd);
    return resp;
  }
};

TEST_F(LockListingTest, TenThousandLocksListedWholeInTableJsonAndApiWithPrefixFilter) {
  ASSERT_NE(StartTestNode(), nullptr);
  // 3 small ones first: a client that does not page still gets them, held then waiting.
  {
    PipelinedLocks few(paths_.socket, {"zz", "aa", "mm"});
    ASSERT_TRUE(few.WaitHeld(Millis(60000))) << few.error();
    mesh::pb::ClientResponse small = UnpagedListing(paths_.socket);
    ASSERT_TRUE(small.has_locks()) << small.ShortDebugString();
    ASSERT_EQ(small.locks().locks_size(), 3);
    EXPECT_EQ(small.locks().locks(0).resource(), "aa");
    EXPECT_EQ(small.locks().locks(2).resource(), "zz");
    EXPECT_FALSE(small.locks().more());
  }
  // 8,000 simple names, 2,000 paths under one hierarchical root, 2 that JSON must escape.
  std::vector<std::string> names;
  for (int i = 0; i < 8000; ++i) names.push_back(Name("job-", i));
  for (int i = 0; i < 2000; ++i) {
    names.push_back("/tree/b" + std::to_string(i % 20) + "/" + Name("n", i));
  }
  names.push_back("/esc/\"quoted\"\\back");  // escaped in JSON
  names.push_back("/esc/\u00e9t\u00e9");     // UTF-8 as is
  PipelinedLocks holder(paths_.socket, names);
  ASSERT_TRUE(holder.WaitHeld(Millis(180000))) << holder.error();
  const size_t total = names.size();

  // The table: a header and one line per lock, each resource once.
  RunResult table = Locks(paths_.socket, {});
  ASSERT_EQ(table.code(), 0) << table.Describe();
  std::vector<std::string> lines = SplitLines(table.out);
  ASSERT_EQ(lines.size(), total + 1) << table.out.substr(0, 500);
  EXPECT_EQ(lines[0].rfind("RESOURCE", 0), 0u);
  std::set<std::string> listed;
  for (size_t i = 1; i < lines.size(); ++i) listed.insert(lines[i].substr(0, lines[i].find(' ')));
  EXPECT_EQ(listed, std::set<std::string>(names.begin(), names.end()));

  // --json: one document with every lock, in listing order (queue, resource, lock id).
  Json all = LocksJson(paths_.socket, {});
  ASSERT_EQ(all.size(), total);
  std::vector<std::string> order;
  for (const Json& row : all) {
    EXPECT_EQ(row["state"], "held");
    order.push_back(row["resource"]);
  }
  std::vector<std::string> expected = names;
  std::sort(expected.begin(), expected.end());  // "/tree" sorts before "job-"
  EXPECT_EQ(order, expected);

  // --prefix: a range of simple names, a subtree, and nothing.
  Json jobs = LocksJson(paths_.socket, {"--prefix", "job-01"});
  EXPECT_EQ(jobs.size(), 1000u);
  for (const Json& row : jobs) EXPECT_EQ(row["resource"].get<std::string>().rfind("job-01", 0), 0u);
  Json subtree = LocksJson(paths_.socket, {"--prefix", "/tree/b1/"});
  EXPECT_EQ(subtree.size(), 100u);  // i % 20 == 1
  Json b1x = LocksJson(paths_.socket, {"--prefix", "/tree/b1"});
  EXPECT_EQ(b1x.size(), 1100u);  // b1 and b10..b19
  EXPECT_EQ(LocksJson(paths_.socket, {"--prefix", "nothing"}).size(), 0u);
  RunResult none = Locks(paths_.socket, {"--prefix", "nothing"});
  EXPECT_EQ(none.code(), 0) << none.Describe();
  EXPECT_EQ(none.out, "no matching locks held or awaited\n");

  // --node: this node's id keeps everything, another id nothing.
  const std::string id = NodeId(paths_.socket);
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(LocksJson(paths_.socket, {"--node", id}).size(), total);
  EXPECT_EQ(LocksJson(paths_.socket, {"--node", "someone-else"}).size(), 0u);
  EXPECT_EQ(LocksJson(paths_.socket, {"--node", id, "--prefix", "job-00"}).size(), 1000u);

  // The library: everything at once, and streamed in small pages.
  std::unique_ptr<mesh::Client> client;
  mesh::ClientOptions co;
  co.socket_path = paths_.socket;
  ASSERT_TRUE(mesh::Client::Connect(co, &client).ok());
  std::vector<mesh::LockInfo> rows;
  ASSERT_TRUE(client->ListLocks(&rows).ok());
  EXPECT_EQ(rows.size(), total);
  mesh::ListLocksOptions lo;
  lo.prefix = "job-";
  lo.page_rows = 100;
  size_t pages = 0, streamed = 0;
  mesh::Status st = client->ListLocks(lo, [&](const std::vector<mesh::LockInfo>& page) {
    ++pages;
    EXPECT_LE(page.size(), 100u);
    streamed += page.size();
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(streamed, 8000u);
  EXPECT_GE(pages, 80u);
  // Stopping early is fine and leaves the client usable.
  pages = 0;
  st = client->ListLocks(lo, [&](const std::vector<mesh::LockInfo>&) { return ++pages < 3; });
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(pages, 3u);
  // The node refuses an oversized filter, clearly.
  mesh::ListLocksOptions too_long;
  too_long.prefix = std::string(mesh::kMaxListFilterBytes + 1, 'j');
  std::vector<mesh::LockInfo> refused;
  st = client->ListLocks(too_long, &refused);
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
  EXPECT_NE(st.message().find("at most 512 bytes"), std::string::npos) << st.ToString();
  mesh::NodeStatus status;
  EXPECT_TRUE(client->GetStatus(&status).ok());
  EXPECT_EQ(status.locks_held, total);

  // A client that does not page gets a clear error, not a frame it cannot read.
  mesh::pb::ClientResponse big = UnpagedListing(paths_.socket);
  EXPECT_TRUE(big.has_error()) << big.ShortDebugString().substr(0, 300);
  EXPECT_NE(big.error().find("too many locks"), std::string::npos) << big.error();
}

// Parses "YYYY-MM-DDTHH:MM:SSZ" as seconds since the epoch (UTC); -1 if it is not that form.
int64_t ParseIsoUtc(const std::string& text) {
  struct tm utc {};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &utc);
  if (end == nullptr || *end != '\0' || text.size() != 20) return -1;
  return static_cast<int64_t>(timegm(&utc));
}

// SINCE: a held lock shows when it was granted, in the table and in --json ("since"), as ISO
// UTC to the second, between the moment the test asked for it and the moment it listed it;
// a lock granted later shows a time no earlier than one granted before it.
TEST_F(LockListingTest, SinceIsTheGrantTimeInTableAndJson) {
  ASSERT_NE(StartTestNode(), nullptr);
  const int64_t before = static_cast<int64_t>(time(nullptr));
  PipelinedLocks first(paths_.socket, {"since-a"});
  ASSERT_TRUE(first.WaitHeld(Millis(60000))) << first.error();
  // The second is granted at least a second later than the first.
  const int64_t first_listed = static_cast<int64_t>(time(nullptr));
  while (static_cast<int64_t>(time(nullptr)) <= first_listed) usleep(50 * 1000);
  PipelinedLocks second(paths_.socket, {"since-b"});
  ASSERT_TRUE(second.WaitHeld(Millis(60000))) << second.error();
  const int64_t after = static_cast<int64_t>(time(nullptr));

  Json rows = LocksJson(paths_.socket, {"--prefix", "since-"});
  ASSERT_EQ(rows.size(), 2u);
  std::map<std::string, int64_t> since;
  std::map<std::string, std::string> since_text;
  for (const Json& row : rows) {
    ASSERT_TRUE(row["since"].is_string()) << row.dump();
    const std::string text = row["since"].get<std::string>();
    const int64_t t = ParseIsoUtc(text);
    ASSERT_GE(t, 0) << "not ISO UTC: " << text;
    EXPECT_GE(t, before) << text;
    EXPECT_LE(t, after) << text;
    since[row["resource"].get<std::string>()] = t;
    since_text[row["resource"].get<std::string>()] = text;
  }
  EXPECT_LE(since["since-a"], first_listed);
  EXPECT_GT(since["since-b"], since["since-a"]);

  // The table: a SINCE column after TOKEN, each row's value the JSON's.
  RunResult table = Locks(paths_.socket, {"--prefix", "since-"});
  ASSERT_EQ(table.code(), 0) << table.Describe();
  std::vector<std::string> lines = SplitLines(table.out);
  ASSERT_EQ(lines.size(), 3u) << table.out;
  std::vector<std::string> header;
  {
    std::istringstream in(lines[0]);
    for (std::string w; in >> w;) header.push_back(w);
  }
  const auto at = std::find(header.begin(), header.end(), "SINCE");
  ASSERT_NE(at, header.end()) << lines[0];
  ASSERT_NE(at, header.begin());
  EXPECT_EQ(*(at - 1), "TOKEN") << lines[0];
  const size_t column = static_cast<size_t>(at - header.begin());
  for (size_t i = 1; i < lines.size(); ++i) {
    std::istringstream in(lines[i]);
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(w);
    ASSERT_GT(words.size(), column) << lines[i];
    EXPECT_EQ(words[column], since_text[words[0]]) << lines[i];
  }
}

TEST_F(LockListingTest, BadFlagsAreUsageErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--prefix", ""}, "--prefix"},
      {{"--node", ""}, "--node"},
      {{"--prefix", std::string(513, 'a')}, "at most 512"},
      {{"--node", std::string(600, 'n')}, "at most 512"},
      {{"--prefix"}, "--prefix"},
      {{"--page-size", "10"}, "--page-size"},
  };
  for (const Case& c : cases) {
    RunResult r = Locks(paths_.socket, c.args);  // no node needed: refused before connecting
    EXPECT_EQ(r.code(), 2) << c.args[0] << ": " << r.Describe();
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
  }
}

// Two nodes on loopback, locks held through each: --node keeps one node's clients' locks.
TEST_F(LockListingTest, NodeFilterInATwoNodeMesh) {
  const int base = LoopbackPortBlock(3);
  auto address = [&](int i) { return "127.0.0.1:" + std::to_string(base + i); };
  auto socket = [&](int i) { return Path("n" + std::to_string(i) + ".sock"); };
  for (int i = 1; i <= 2; ++i) {
    Lockmesh("n" + std::to_string(i),
             {"node", "--node-id", "n" + std::to_string(i), "--socket", socket(i), "--data-dir",
              Path("d" + std::to_string(i)), "--listen", address(i), "--join",
              address(1) + "," + address(2), "--no-multicast", "--expect", "2", "--session-ttl",
              "30", "--election-timeout", "1000"});
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int i = 1; i <= 2; ++i) {
          RunResult r = RunLockmesh("status", {"status", "--socket", socket(i), "--json"});
          Json s = Json::parse(r.out, nullptr, false);
          if (s.is_discarded() || s.value("leader_id", "").empty() || s.value("lease_ms", -1) < 0) {
            return false;
          }
        }
        return true;
      },
      Millis(60000), Millis(300)));
  std::vector<std::string> on1, on2;
  for (int i = 0; i < 3000; ++i) on1.push_back(Name("one-", i));
  for (int i = 0; i < 2000; ++i) on2.push_back(Name("two-", i));
  PipelinedLocks h1(socket(1), on1);
  PipelinedLocks h2(socket(2), on2);
  ASSERT_TRUE(h1.WaitHeld(Millis(180000))) << h1.error();
  ASSERT_TRUE(h2.WaitHeld(Millis(180000))) << h2.error();
  // Node 1 lists node 2's locks once it has applied them.
  ASSERT_TRUE(WaitFor(
      [&] {
        std::vector<mesh::LockInfo> rows;
        return ListLocks(socket(1), &rows) && rows.size() == 5000;
      },
      Millis(60000), Millis(200)));
  Json of2 = LocksJson(socket(1), {"--node", "n2"});
  EXPECT_EQ(of2.size(), 2000u);
  for (const Json& row : of2) {
    EXPECT_EQ(row["node_id"], "n2");
    EXPECT_EQ(row["resource"].get<std::string>().rfind("two-", 0), 0u);
  }
  EXPECT_EQ(LocksJson(socket(1), {"--node", "n1"}).size(), 3000u);
  EXPECT_EQ(LocksJson(socket(2), {"--node", "n1", "--prefix", "one-01"}).size(), 1000u);
  EXPECT_EQ(LocksJson(socket(2), {"--node", "n2", "--prefix", "one-"}).size(), 0u);
  EXPECT_EQ(LocksJson(socket(2), {}).size(), 5000u);
}

}  // namespace
}  // namespace lockmesh::testing
