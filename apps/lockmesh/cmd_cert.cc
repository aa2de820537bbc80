// `lockmesh cert ca | node | self-signed | show`: certificates without openssl (docs/design.md §6).
// The work is done by net/tls/certificate.h; this file parses flags and prints.
#include <cstdio>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_support.h"
#include "commands.h"
#include "core/time_text.h"
#include "exit_codes.h"
#include "mesh/node.h"
#include "net/tls/certificate.h"

namespace lockmesh::cli {
namespace {

using mesh::Status;
using mesh::net::CertificateInfo;
using mesh::net::CertificateKind;
using Json = nlohmann::ordered_json;

constexpr const char* kMakeExitCodes =
    "Exit status: 0 written; 2 usage error (bad flag, bad date, bad CN); 99 any other error "
    "(DIR/cert.pem or\nDIR/key.pem exists and --force was not given, unreadable CA, I/O).";

/// Flags of `cert ca`, `cert node` and `cert self-signed`.
struct MakeFlags {
  CommonOptions common;  // --config, --socket, and --node-id / --data-dir for the default CN
  std::string out;
  std::string ca;
  std::string cn;
  int days = 0;
  std::string not_before;
  std::string not_after;
  bool force = false;
};

/// Parses "2026-11-23", "2026-11-23T17:40:00Z", "2026-11-23 17:40:00" (UTC) or an offset
/// from `now` such as "+30d", "-1h", "-90s", "+10m", "now".
bool ParseWhen(const std::string& text, int64_t now, int64_t* out) {
  if (text == "now") {
    *out = now;
    return true;
  }
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    char unit = 0;
    long long n = 0;
    int consumed = 0;
    if (sscanf(text.c_str() + 1, "%lld%c%n", &n, &unit, &consumed) != 2 ||
        static_cast<size_t>(consumed) + 1 != text.size() || n < 0 || n > 3650LL * 100) {
      return false;
    }
    int64_t scale = unit == 's'   ? 1
                    : unit == 'm' ? 60
                    : unit == 'h' ? 3600
                    : unit == 'd' ? 86400
                                  : 0;
    if (scale == 0) return false;
    *out = now + (text[0] == '-' ? -1 : 1) * n * scale;
    return true;
  }
  int y, mo, d, h = 0, mi = 0, s = 0;
  int consumed = 0;
  char sep = 0;
  bool ok = false;
  if (sscanf(text.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &consumed) == 3 &&
      static_cast<size_t>(consumed) == text.size()) {
    ok = true;
  } else if (sscanf(text.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &s,
                    &consumed) == 7 &&
             (sep == 'T' || sep == ' ')) {
    std::string rest = text.substr(consumed);
    ok = rest.empty() || rest == "Z";
  }
  if (!ok || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) return false;
  *out = mesh::core::UnixFromUtc(y, mo, d, h, mi, s);
  return true;
}

/// This node's unique id, as `lockmesh unique-id` prints it.
int ResolveNodeId(const CommonOptions& common, std::string* id) {
  Config config;
  if (int code = LoadEffectiveConfig(common, &config); code != 0) return code;
  *id = config.node.node_id;
  if (id->empty()) {
    std::string data_dir = EffectiveDataDir(config, EffectiveSocket(config));
    Status st = mesh::UniqueId(data_dir, id);
    if (!st.ok()) {
      PrintError("cannot find this node's unique id for the CN (give --cn ID): " + st.message());
      return kExitError;
    }
  }
  return kExitOk;
}

void PrintSummary(const CertificateInfo& info) {
  int64_t now = static_cast<int64_t>(time(nullptr));
  printf("  subject     %s\n", info.subject.c_str());
  printf("  issuer      %s\n", info.issuer.c_str());
  printf("  validity    %s .. %s (%s)\n", mesh::net::FormatUtc(info.not_before).c_str(),
         mesh::net::FormatUtc(info.not_after).c_str(),
         mesh::net::ValidityName(info.ValidityAt(now)));
  printf("  %s\n  %s\n", info.fingerprint.ToOpenSsl().c_str(),
         info.fingerprint.ToCompact().c_str());
}

int RunMake(CertificateKind kind, const MakeFlags& flags) {
  int64_t now = static_cast<int64_t>(time(nullptr));
  mesh::net::CertificateSpec spec;
  spec.kind = kind;
  spec.common_name = flags.cn;
  if (spec.common_name.empty()) {
    if (kind == CertificateKind::kCa) {
      spec.common_name = "lockmesh CA";
    } else if (int code = ResolveNodeId(flags.common, &spec.common_name); code != 0) {
      return code;
    }
  }
  mesh::net::DefaultValidity(now, flags.days, &spec);
  if (!flags.not_before.empty() && !ParseWhen(flags.not_before, now, &spec.not_before)) {
    PrintError("--not-before: '" + flags.not_before +
               "' is not a UTC date (2026-11-23, 2026-11-23T17:40:00Z) or an offset (-1h, +30d)");
    return kExitUsage;
  }
  if (!flags.not_after.empty() && !ParseWhen(flags.not_after, now, &spec.not_after)) {
    PrintError("--not-after: '" + flags.not_after +
               "' is not a UTC date (2026-11-23, 2026-11-23T17:40:00Z) or an offset (-1h, +30d)");
    return kExitUsage;
  }
  std::unique_ptr<mesh::net::CertificateChain> ca_cert;
  std::unique_ptr<mesh::net::PrivateKey> ca_key;
  if (kind == CertificateKind::kNode) {
    ca_cert = std::make_unique<mesh::net::CertificateChain>();
    ca_key = std::make_unique<mesh::net::PrivateKey>();
    Status st =
        mesh::net::LoadCertificateAuthority(AbsolutePath(flags.ca), ca_cert.get(), ca_key.get());
    if (!st.ok()) {
      PrintError("--ca " + flags.ca + ": " + st.message());
      return kExitError;
    }
  }
  mesh::net::PemPair pair;
  Status st = mesh::net::GenerateCertificate(spec, ca_cert.get(), ca_key.get(), &pair);
  if (!st.ok()) {
    PrintError(st.message());
    return st.IsInvalidArgument() ? kExitUsage : kExitError;
  }
  std::string out = AbsolutePath(flags.out);
  st = mesh::net::WriteCertificateFiles(out, pair, flags.force);
  if (!st.ok()) {
    PrintError(st.message());
    return kExitError;
  }
  mesh::net::CertificateChain written;
  st = mesh::net::CertificateChain::Parse(pair.cert_pem, out + "/cert.pem", &written);
  if (!st.ok()) {
    PrintError("internal error: the new certificate does not parse: " + st.message());
    return kExitError;
  }
  printf("wrote %s/%s (0644) and %s/%s (0600)\n", out.c_str(), mesh::net::kCertificateFileName,
         out.c_str(), mesh::net::kPrivateKeyFileName);
  PrintSummary(written.Inspect().front());
  switch (kind) {
    case CertificateKind::kCa:
      printf(
          "next: on each node, `lockmesh cert node --ca %s --out DIR`; give every node "
          "--tls-ca %s/cert.pem.\nKeep %s/key.pem secret: whoever has it can make members.\n",
          mesh::net::ShellQuote(out).c_str(), mesh::net::ShellQuote(out).c_str(),
          mesh::net::ShellQuote(out).c_str());
      break;
    case CertificateKind::kNode:
      printf(
          "use: lockmesh node --security mutual --tls-cert %s/cert.pem --tls-key %s/key.pem "
          "--tls-ca %s/cert.pem\n",
          mesh::net::ShellQuote(out).c_str(), mesh::net::ShellQuote(out).c_str(),
          mesh::net::ShellQuote(AbsolutePath(flags.ca)).c_str());
      break;
    case CertificateKind::kSelfSigned:
      printf("use: lockmesh node --security tofu --tls-cert %s/cert.pem --tls-key %s/key.pem\n",
             mesh::net::ShellQuote(out).c_str(), mesh::net::ShellQuote(out).c_str());
      break;
  }
  return kExitOk;
}

Json InfoJson(const CertificateInfo& info, int64_t now) {
  const std::string iso[2] = {mesh::core::FormatIsoUtc(info.not_before),
                              mesh::core::FormatIsoUtc(info.not_after)};
  return {{"subject", info.subject},
          {"issuer", info.issuer},
          {"common_name", info.common_name},
          {"dns_names", info.dns_names},
          {"not_before", iso[0]},
          {"not_after", iso[1]},
          {"validity", mesh::net::ValidityName(info.ValidityAt(now))},
          {"is_ca", info.is_ca},
          {"self_signed", info.self_signed},
          {"key", info.key_type},
          {"signature", info.signature},
          {"serial", info.serial},
          {"fingerprint_openssl", info.fingerprint.ToOpenSsl()},
          {"fingerprint", info.fingerprint.ToCompact()}};
}

int RunShow(const std::string& file, bool json) {
  mesh::net::CertificateChain chain;
  Status st = mesh::net::CertificateChain::Load(file, &chain);
  if (!st.ok()) {
    PrintError(st.message());
    return kExitError;
  }
  int64_t now = static_cast<int64_t>(time(nullptr));
  std::vector<CertificateInfo> infos = chain.Inspect();
  if (json) {
    Json out = {{"file", file}, {"certificates", Json::array()}};
    for (const auto& info : infos) out["certificates"].push_back(InfoJson(info, now));
    puts(out.dump(2).c_str());
    return kExitOk;
  }
  for (size_t i = 0; i < infos.size(); ++i) {
    const CertificateInfo& info = infos[i];
    if (i) puts("");
    printf("%s: certificate %zu of %zu%s\n", file.c_str(), i + 1, infos.size(),
           i == 0 ? " (leaf)" : "");
    printf("  subject      %s\n", info.subject.c_str());
    printf("  issuer       %s\n", info.issuer.c_str());
    printf("  CN           %s\n", info.common_name.empty() ? "(none)" : info.common_name.c_str());
    std::string names;
    for (const auto& n : info.dns_names) names += (names.empty() ? "" : ", ") + n;
    printf("  SAN DNS      %s\n", names.empty() ? "(none)" : names.c_str());
    printf("  not before   %s\n", mesh::net::FormatUtc(info.not_before).c_str());
    printf("  not after    %s\n", mesh::net::FormatUtc(info.not_after).c_str());
    printf("  validity     %s\n", mesh::net::ValidityName(info.ValidityAt(now)));
    printf("  CA           %s\n", info.is_ca ? "yes" : "no");
    printf("  self-signed  %s\n", info.self_signed ? "yes" : "no");
    printf("  key          %s\n", info.key_type.c_str());
    printf("  signature    %s\n", info.signature.c_str());
    printf("  serial       %s\n", info.serial.c_str());
    printf("  fingerprint  %s\n", info.fingerprint.ToCompact().c_str());
    printf("%s\n", info.fingerprint.ToOpenSsl().c_str());
  }
  return kExitOk;
}

CLI::App* AddMakeCommand(CLI::App* cert, const std::string& name, const std::string& help,
                         CertificateKind kind, std::shared_ptr<MakeFlags> flags,
                         std::function<int()>* runner) {
  CLI::App* cmd = cert->add_subcommand(name, help);
  cmd->add_option("--out", flags->out,
                  "Directory to write cert.pem (0644) and key.pem (0600) into; created 0700 if "
                  "missing (required)")
      ->required()
      ->type_name("DIR");
  if (kind == CertificateKind::kNode) {
    cmd->add_option("--ca", flags->ca,
                    "Directory of the CA (cert.pem and key.pem, as `cert ca` writes them) "
                    "(required)")
        ->required()
        ->type_name("DIR");
  }
  if (kind == CertificateKind::kCa) {
    cmd->add_option("--cn", flags->cn, "The CA's common name (default: \"lockmesh CA\")")
        ->type_name("NAME");
    flags->days = 3650;
  } else {
    cmd->add_option("--cn", flags->cn,
                    "Common name (default: this node's unique id, as `lockmesh unique-id` "
                    "prints it)")
        ->type_name("ID");
    flags->days = 825;
    flags->common.overrides
        .AddOption(cmd, "--node-id", "node.node_id", "Node id to use as the default CN")
        ->type_name("ID");
    flags->common.overrides
        .AddOption(cmd, "--data-dir", "node.data_dir",
                   "Data dir holding a generated id, for the default CN (default: as for "
                   "`lockmesh node`)")
        ->type_name("DIR");
  }
  cmd->add_option(
         "--days", flags->days,
         std::string("Validity in days from now (default: ") + std::to_string(flags->days) + ")")
      ->check(CLI::Range(1, 36500))
      ->type_name("N");
  cmd->add_option("--not-before", flags->not_before,
                  "Start of validity: UTC date (2026-11-23, 2026-11-23T17:40:00Z) or offset "
                  "from now (-1h, +2d) (default: -1h, for clock skew)")
      ->type_name("WHEN");
  cmd->add_option("--not-after", flags->not_after,
                  "End of validity, same forms; overrides --days (default: --days from now)")
      ->type_name("WHEN");
  cmd->add_flag("--force", flags->force, "Replace existing cert.pem and key.pem in DIR");
  AddCommonOptions(cmd, &flags->common);
  cmd->footer(kMakeExitCodes);
  *runner = [kind, flags] { return RunMake(kind, *flags); };
  return cmd;
}

}  // namespace

CommandRunner AddCertCommand(CLI::App* app) {
  CLI::App* cert = app->add_subcommand(
      "cert", "Make a CA, node or self-signed certificate, or show one (no openssl needed)");
  cert->require_subcommand(1);
  cert->footer(
      "Keys are EC P-256, certificates X.509 v3 signed with ECDSA-SHA256. Node certificates "
      "have CN (and SAN)\n= the node's unique id, as --security mutual requires. See "
      "`lockmesh cert SUBCOMMAND --help`.");
  struct Runners {
    std::function<int()> ca, node, self_signed;
    std::string show_file;
    bool show_json = false;
    CLI::App *ca_cmd, *node_cmd, *self_cmd, *show_cmd;
  };
  auto runners = std::make_shared<Runners>();
  runners->ca_cmd =
      AddMakeCommand(cert, "ca", "Make a certificate authority (CA:TRUE)", CertificateKind::kCa,
                     std::make_shared<MakeFlags>(), &runners->ca);
  runners->node_cmd =
      AddMakeCommand(cert, "node", "Make a node certificate signed by a CA, CN = node id",
                     CertificateKind::kNode, std::make_shared<MakeFlags>(), &runners->node);
  runners->self_cmd = AddMakeCommand(
      cert, "self-signed", "Make a self-signed certificate (for --security tofu)",
      CertificateKind::kSelfSigned, std::make_shared<MakeFlags>(), &runners->self_signed);
  CLI::App* show = cert->add_subcommand(
      "show", "Show a certificate file: subject, issuer, CN, validity, CA, fingerprints");
  show->add_option("FILE", runners->show_file, "PEM or DER certificate (every one in the file)")
      ->required();
  show->add_flag("--json", runners->show_json, "Print JSON for scripts instead of text");
  show->footer(
      "The line `sha256 Fingerprint=AB:CD:...` is exactly what `openssl x509 -noout -fingerprint "
      "-sha256`\nprints; `sha256$abcd...` is the compact form (known_peers, logs). Either form "
      "can go into a\n--trusted-fingerprints file or `lockmesh trust accept`.\nJSON: {file, "
      "certificates: [{subject, issuer, common_name, dns_names, not_before, not_after,\n"
      "validity (valid|expired|not yet valid), is_ca, self_signed, key, signature, serial, "
      "fingerprint_openssl,\nfingerprint}]}.\n\n"
      "Exit status: 0 shown (also for an expired certificate: see `validity`); 2 usage error; "
      "99 the file\nis missing or holds no certificate.");
  runners->show_cmd = show;
  return [runners]() -> int {
    if (runners->ca_cmd->parsed()) return runners->ca();
    if (runners->node_cmd->parsed()) return runners->node();
    if (runners->self_cmd->parsed()) return runners->self_signed();
    return RunShow(runners->show_file, runners->show_json);
  };
}

}  // namespace lockmesh::cli
