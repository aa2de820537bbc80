// `lockmesh discover` (hidden, for debugging and the multi-host tests): runs net::Discovery
// alone — beacons out, beacons in — and prints what it learns as JSON lines on stdout. No node
// is started and no connection is made: it shows what a node would be *suggested*.
#include <signal.h>
#include <sys/random.h>
#include <unistd.h>
#include <uv.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_support.h"
#include "commands.h"
#include "core/hex.h"
#include "exit_codes.h"
#include "net/discovery/discovery.h"

namespace lockmesh::cli {
namespace {

using mesh::Status;
using mesh::net::DiscoveredPeer;
using mesh::net::Discovery;
using mesh::net::DiscoveryOptions;
using mesh::net::PeerEvent;
using Json = nlohmann::ordered_json;

struct DiscoverFlags {
  DiscoveryOptions options;
  std::string family = "both";  // 4 | 6 | both
  std::string join;             // comma-separated
  bool no_multicast = false;
  double seconds = 0;  // 0 = until SIGINT/SIGTERM
  int peer_port = mesh::net::kDefaultDiscoveryPort;
};

std::string Hex(uint64_t v) { return mesh::core::HexUint64(v); }

void PrintLine(const Json& j) {
  std::string line = j.dump();
  line += '\n';
  fwrite(line.data(), 1, line.size(), stdout);
  fflush(stdout);
}

Json PeerJson(const char* event, const DiscoveredPeer& p) {
  Json j = {{"event", event},
            {"node_id", p.beacon.node_id},
            {"address", p.address},
            {"source", p.source}};
  if (!p.join_entry.empty()) {
    j["join"] = p.join_entry;
    return j;
  }
  j["cluster"] = p.beacon.cluster_name;
  j["cluster_id"] = p.beacon.cluster_id;
  j["instance"] = Hex(p.beacon.instance);
  j["protocol_version"] = p.beacon.protocol_version;
  j["security"] = p.beacon.security;
  j["fingerprint"] = p.beacon.fingerprint;
  j["sequence"] = p.beacon.sequence;
  return j;
}

Json StatsJson(const mesh::net::DiscoveryStats& s) {
  return {{"event", "stats"},
          {"sent", s.sent},
          {"send_errors", s.send_errors},
          {"received", s.received},
          {"accepted", s.accepted},
          {"own", s.own},
          {"other_cluster", s.other_cluster},
          {"other_version", s.other_version},
          {"duplicate_id", s.duplicate_id},
          {"malformed", s.malformed},
          {"oversized", s.oversized},
          {"rate_limited", s.rate_limited},
          {"table_full", s.table_full}};
}

int RunDiscover(DiscoverFlags* flags) {
  DiscoveryOptions& o = flags->options;
  if (o.node_id.empty()) {
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != sizeof r) r = static_cast<uint64_t>(getpid());
    o.node_id = "discover-" + Hex(r);
  }
  if (flags->family == "4") {
    o.ipv6 = false;
  } else if (flags->family == "6") {
    o.ipv4 = false;
  }
  o.multicast = !flags->no_multicast;
  o.advert.peer_port = static_cast<uint16_t>(flags->peer_port);
  for (size_t start = 0; start < flags->join.size();) {
    size_t comma = flags->join.find(',', start);
    if (comma == std::string::npos) comma = flags->join.size();
    if (comma > start) o.join.push_back(flags->join.substr(start, comma - start));
    start = comma + 1;
  }
  o.log = [](mesh::net::DiscoveryLogLevel level, const std::string& line) {
    const char* tag = level == mesh::net::DiscoveryLogLevel::kWarning ? "warning: "
                      : level == mesh::net::DiscoveryLogLevel::kDebug ? "debug: "
                                                                      : "";
    fprintf(stderr, "lockmesh discover: %s%s\n", tag, line.c_str());
  };

  uv_loop_t* loop = uv_default_loop();
  Discovery discovery(loop, o);
  Status st = discovery.Start(
      [](PeerEvent e, const DiscoveredPeer& p) { PrintLine(PeerJson(PeerEventName(e), p)); },
      [](const DiscoveredPeer& p) { PrintLine(PeerJson("duplicate_id", p)); });
  if (!st.ok()) {
    PrintError("cannot start discovery: " + st.ToString());
    return st.IsInvalidArgument() ? kExitUsage : kExitError;
  }
  PrintLine({{"event", "started"},
             {"node_id", o.node_id},
             {"cluster", o.cluster_name},
             {"instance", Hex(discovery.instance())},
             {"ipv4", discovery.ipv4_up()},
             {"ipv6", discovery.ipv6_up()},
             {"port", o.port}});

  // Stop on SIGINT/SIGTERM or after --seconds: close everything, print the counters.
  struct Stopper {
    Discovery* discovery;
    uv_signal_t signals[2];
    uv_timer_t timer;
    bool stopping = false;
    void Stop() {
      if (stopping) return;
      stopping = true;
      PrintLine(StatsJson(discovery->stats()));
      for (auto& s : signals) uv_close(reinterpret_cast<uv_handle_t*>(&s), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
      discovery->Close(nullptr);
    }
  } stopper{&discovery, {}, {}};
  int signums[2] = {SIGINT, SIGTERM};
  for (int i = 0; i < 2; ++i) {
    uv_signal_init(loop, &stopper.signals[i]);
    stopper.signals[i].data = &stopper;
    uv_signal_start(
        &stopper.signals[i], [](uv_signal_t* h, int) { static_cast<Stopper*>(h->data)->Stop(); },
        signums[i]);
  }
  uv_timer_init(loop, &stopper.timer);
  stopper.timer.data = &stopper;
  if (flags->seconds > 0) {
    uv_timer_start(
        &stopper.timer, [](uv_timer_t* t) { static_cast<Stopper*>(t->data)->Stop(); },
        static_cast<uint64_t>(flags->seconds * 1000), 0);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  return kExitOk;
}

}  // namespace

CommandRunner AddDiscoverCommand(CLI::App* app) {
  auto flags = std::make_shared<DiscoverFlags>();
  DiscoveryOptions& o = flags->options;
  CLI::App* cmd = app->add_subcommand(
      "discover",
      "Debugging aid: run multicast discovery alone and print suggested peers as JSON lines");
  cmd->group("");  // hidden from `lockmesh --help`
  cmd->add_option("--cluster", o.cluster_name, "Cluster name (default: lockmesh)");
  cmd->add_option("--node-id", o.node_id, "Node id to announce (default: discover-<random>)");
  cmd->add_option("--port", o.port, "UDP port (default: 28017)")->check(CLI::Range(1, 65535));
  cmd->add_option("--group4", o.group4, "IPv4 multicast group (default: 239.255.28.17)");
  cmd->add_option("--group6", o.group6, "IPv6 multicast group (default: ff12::2817)");
  cmd->add_option("--ttl", o.ttl, "Multicast TTL / hop limit (default: 1)")
      ->check(CLI::Range(0, 255));
  cmd->add_option("--interface", o.interface,
                  "Interface to join and send on (default: the kernel's route to the group)");
  cmd->add_option("--family", flags->family, "4, 6 or both (default: both)")
      ->check(CLI::IsMember({"4", "6", "both"}));
  cmd->add_flag("--no-multicast", flags->no_multicast, "Use only the --join list");
  cmd->add_option("--join", flags->join, "Comma-separated HOST:PORT to suggest periodically");
  cmd->add_option("--peer-port", flags->peer_port, "Peer TCP port to advertise (default: 28017)")
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--advertise-host", o.advert.peer_host,
                  "Host to advertise (default: none; receivers use the source address)");
  cmd->add_option("--cluster-id", o.advert.cluster_id, "Cluster id to advertise (default: none)");
  cmd->add_option("--security", o.advert.security, "Security level to advertise (default: none)");
  cmd->add_option("--fingerprint", o.advert.fingerprint, "Fingerprint to advertise");
  cmd->add_option("--protocol-version", o.protocol_version, "Protocol version (default: 1)");
  cmd->add_option("--burst", o.burst_count, "Beacons in the start-up burst (default: 5)")
      ->check(CLI::Range(0, 100));
  cmd->add_option("--burst-interval-ms", o.burst_interval_ms, "Burst spacing (default: 200)")
      ->check(CLI::Range(1, 3600000));
  cmd->add_option("--period-ms", o.period_ms, "Steady beacon period (default: 2000)")
      ->check(CLI::Range(1, 3600000));
  cmd->add_option("--expire-ms", o.expire_ms,
                  "Report a peer expired after this long unheard (default: 3 periods + burst)")
      ->check(CLI::Range(0, 3600000));
  cmd->add_option("--seconds", flags->seconds, "Stop after this long (default: 0 = on a signal)")
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_flag("--debug", o.debug_log, "Also log ignored and dropped datagrams (rate-limited)");
  cmd->footer(
      "Output, one JSON object per line: started; suggested / changed / expired (a peer);\n"
      "duplicate_id (our node id in another process); stats (counters, at the end).\n"
      "Exit status: 0 stopped by a signal or --seconds; 2 usage error or bad option value;\n"
      "99 discovery could not start (no usable socket).");
  return [flags] { return RunDiscover(flags.get()); };
}

}  // namespace lockmesh::cli
