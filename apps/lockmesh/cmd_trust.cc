// `lockmesh trust list | accept NODE_ID FINGERPRINT | forget NODE_ID`: the tofu store
// (known_peers in the data dir, net/tls/known_peers.h) seen and edited by people.
#include <cstdio>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli_support.h"
#include "commands.h"
#include "core/time_text.h"
#include "exit_codes.h"
#include "net/tls/known_peers.h"

namespace lockmesh::cli {
namespace {

using mesh::Status;
using mesh::net::Fingerprint;
using mesh::net::KnownPeer;
using Json = nlohmann::ordered_json;

constexpr const char* kTrustExitCodes =
    "Exit status: 0 done; 1 `forget`: the node id is not known; 2 usage error (bad fingerprint, "
    "bad node id);\n99 any other error (corrupt known_peers, I/O).";

struct TrustFlags {
  CommonOptions common;
  bool json = false;
  std::string node_id;
  std::vector<std::string> fingerprint;  // one word, or OpenSSL's two when left unquoted
};

/// The data dir (as `lockmesh node` would use it) and its known_peers path.
int ResolveStore(const TrustFlags& flags, std::string* data_dir, std::string* path) {
  Config config;
  if (int code = LoadEffectiveConfig(flags.common, &config); code != 0) return code;
  *data_dir = EffectiveDataDir(config, EffectiveSocket(config));
  *path = mesh::net::KnownPeersPath(*data_dir);
  return kExitOk;
}

std::string IsoUtc(int64_t t) { return mesh::core::FormatIsoUtc(t); }

int RunList(const TrustFlags& flags) {
  std::string data_dir, path;
  if (int code = ResolveStore(flags, &data_dir, &path); code != 0) return code;
  std::vector<KnownPeer> peers;
  Status st = mesh::net::LoadKnownPeers(path, &peers);
  if (!st.ok()) {
    PrintError(st.message());
    return kExitError;
  }
  if (flags.json) {
    Json out = {{"file", path}, {"peers", Json::array()}};
    for (const auto& p : peers) {
      out["peers"].push_back({{"node_id", p.node_id},
                              {"fingerprint", p.fingerprint.ToCompact()},
                              {"fingerprint_openssl", p.fingerprint.ToOpenSsl()},
                              {"first_seen", IsoUtc(p.first_seen)}});
    }
    puts(out.dump(2).c_str());
    return kExitOk;
  }
  if (peers.empty()) {
    printf("no known peers in %s\n", path.c_str());
    return kExitOk;
  }
  size_t width = 7;
  for (const auto& p : peers) width = std::max(width, p.node_id.size());
  printf("%-*s  %-71s  %s\n", static_cast<int>(width), "NODE ID", "FINGERPRINT", "FIRST SEEN");
  for (const auto& p : peers) {
    printf("%-*s  %-71s  %s\n", static_cast<int>(width), p.node_id.c_str(),
           p.fingerprint.ToCompact().c_str(), IsoUtc(p.first_seen).c_str());
  }
  return kExitOk;
}

int RunAccept(const TrustFlags& flags) {
  std::string text;
  for (const auto& word : flags.fingerprint) text += (text.empty() ? "" : " ") + word;
  Fingerprint fingerprint;
  Status st = Fingerprint::Parse(text, &fingerprint);
  if (!st.ok()) {
    std::string hint;
    // `sha256$abcd...` unquoted: the shell replaced `$abcd...` with nothing.
    if (text == "sha256" || text == "sha256$" || text == "SHA256") {
      hint = " (did the shell expand `$...`? put the fingerprint in single quotes: 'sha256$...')";
    }
    PrintError(st.message() + hint);
    return kExitUsage;
  }
  std::string data_dir, path;
  if (int code = ResolveStore(flags, &data_dir, &path); code != 0) return code;
  std::optional<Fingerprint> previous;
  st = mesh::net::AcceptPeer(path, flags.node_id, fingerprint, static_cast<int64_t>(time(nullptr)),
                             &previous);
  if (!st.ok()) {
    PrintError(st.message());
    return st.IsInvalidArgument() ? kExitUsage : kExitError;
  }
  if (!previous) {
    printf("trusting node %s with %s (%s)\n", flags.node_id.c_str(),
           fingerprint.ToCompact().c_str(), path.c_str());
  } else if (*previous == fingerprint) {
    printf("node %s was already trusted with %s\n", flags.node_id.c_str(),
           fingerprint.ToCompact().c_str());
  } else {
    printf("trusting node %s with %s instead of %s (%s)\n", flags.node_id.c_str(),
           fingerprint.ToCompact().c_str(), previous->ToCompact().c_str(), path.c_str());
  }
  return kExitOk;
}

int RunForget(const TrustFlags& flags) {
  std::string data_dir, path;
  if (int code = ResolveStore(flags, &data_dir, &path); code != 0) return code;
  Status st = mesh::net::ForgetPeer(path, flags.node_id);
  if (st.IsNotFound()) {
    PrintError(st.message());
    return kExitNotFound;
  }
  if (!st.ok()) {
    PrintError(st.message());
    return kExitError;
  }
  printf("forgot node %s; its next certificate will be trusted on first use\n",
         flags.node_id.c_str());
  return kExitOk;
}

void AddStoreOptions(CLI::App* cmd, TrustFlags* flags) {
  flags->common.overrides
      .AddOption(cmd, "--data-dir", "node.data_dir",
                 "The node's data dir, which holds known_peers (default: as for `lockmesh node`)")
      ->type_name("DIR");
  AddCommonOptions(cmd, &flags->common);
  cmd->footer(kTrustExitCodes);
}

}  // namespace

CommandRunner AddTrustCommand(CLI::App* app) {
  CLI::App* trust = app->add_subcommand(
      "trust", "List, accept or forget peers' certificate fingerprints (--security tofu)");
  trust->require_subcommand(1);
  trust->footer(
      "With --security tofu a node records each peer's certificate fingerprint on first "
      "contact in\n<data-dir>/known_peers and refuses a peer whose fingerprint later changes; "
      "its refusal prints the\n`lockmesh trust accept` command that accepts the new one.");
  auto list_flags = std::make_shared<TrustFlags>();
  auto accept_flags = std::make_shared<TrustFlags>();
  auto forget_flags = std::make_shared<TrustFlags>();
  CLI::App* list =
      trust->add_subcommand("list", "List known peers: node id, fingerprint, first seen");
  list->add_flag("--json", list_flags->json, "Print JSON for scripts instead of a table");
  AddStoreOptions(list, list_flags.get());
  CLI::App* accept = trust->add_subcommand(
      "accept", "Trust NODE_ID with FINGERPRINT, replacing what was known for it");
  accept->add_option("NODE_ID", accept_flags->node_id, "The peer's node id")->required();
  accept
      ->add_option("FINGERPRINT", accept_flags->fingerprint,
                   "'sha256$abcd...' (single quotes: it holds a $), sha256 Fingerprint=AB:CD:... "
                   "as OpenSSL prints it, or AB:CD:...")
      ->required()
      ->expected(1, 2);
  AddStoreOptions(accept, accept_flags.get());
  CLI::App* forget = trust->add_subcommand("forget", "Forget NODE_ID's fingerprint");
  forget->add_option("NODE_ID", forget_flags->node_id, "The peer's node id")->required();
  AddStoreOptions(forget, forget_flags.get());
  return [=]() -> int {
    if (list->parsed()) return RunList(*list_flags);
    if (accept->parsed()) return RunAccept(*accept_flags);
    return RunForget(*forget_flags);
  };
}

}  // namespace lockmesh::cli
