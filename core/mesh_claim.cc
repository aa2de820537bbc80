#include "core/mesh_claim.h"

#include <cctype>
#include <cstdio>

#include "core/hex.h"
#include "core/storage/crc32c.h"

namespace mesh::core {
namespace {

constexpr std::string_view kVersionLine = "lockmesh-mesh-claim 1";
constexpr std::string_view kCrcKey = "crc32c=";

std::string Escape(const std::string& value) {
  std::string out;
  for (unsigned char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      AppendHexByte(&out, c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

bool Unescape(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c != '\\') {
      *out += c;
      continue;
    }
    if (++i >= in.size()) return false;
    if (in[i] == '\\') {
      *out += '\\';
    } else if (in[i] == 'n') {
      *out += '\n';
    } else if (in[i] == 'x' && i + 2 < in.size()) {
      unsigned v = 0;
      for (int k = 1; k <= 2; ++k) {
        char h = in[i + k];
        v <<= 4;
        if (h >= '0' && h <= '9') {
          v |= static_cast<unsigned>(h - '0');
        } else if (h >= 'a' && h <= 'f') {
          v |= static_cast<unsigned>(h - 'a' + 10);
        } else {
          return false;
        }
      }
      *out += static_cast<char>(v);
      i += 2;
    } else {
      return false;
    }
  }
  return true;
}

std::string Hex32(uint32_t v) {
  char buf[9];
  snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

std::string Describe(const MeshClaim& c) {
  return "mesh node " + c.node_id + " of cluster '" + c.cluster + "' (socket " + c.socket +
         ", data dir " + c.data_dir + ")";
}

}  // namespace

std::string EncodeMeshClaim(const MeshClaim& claim) {
  std::string body(kVersionLine);
  body += '\n';
  body += "cluster=" + Escape(claim.cluster) + "\n";
  body += "node-id=" + Escape(claim.node_id) + "\n";
  body += "data-dir=" + Escape(claim.data_dir) + "\n";
  body += "socket=" + Escape(claim.socket) + "\n";
  for (const std::string& arg : claim.start_command) body += "arg=" + Escape(arg) + "\n";
  return body + std::string(kCrcKey) + Hex32(crc32c::Value(body)) + "\n";
}

Status DecodeMeshClaim(std::string_view text, MeshClaim* claim) {
  *claim = MeshClaim();
  if (text.empty()) return Status::Corruption("the file is empty");
  if (text.back() != '\n') return Status::Corruption("the file is truncated (no final newline)");
  size_t crc_at = text.rfind(kCrcKey);
  if (crc_at == std::string_view::npos || (crc_at > 0 && text[crc_at - 1] != '\n')) {
    return Status::Corruption("the file is truncated (no checksum line)");
  }
  std::string_view body = text.substr(0, crc_at);
  std::string_view crc_text = text.substr(crc_at + kCrcKey.size());
  crc_text.remove_suffix(1);
  if (crc_text != Hex32(crc32c::Value(body))) {
    return Status::Corruption("checksum mismatch (the file is damaged)");
  }
  size_t pos = 0;
  bool first = true;
  bool have_cluster = false, have_id = false;
  while (pos < body.size()) {
    size_t end = body.find('\n', pos);
    std::string_view line = body.substr(pos, end - pos);
    pos = end + 1;
    if (first) {
      if (line != kVersionLine) {
        return Status::Corruption("unknown claim format '" + std::string(line.substr(0, 40)) + "'");
      }
      first = false;
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) return Status::Corruption("a line without '='");
    std::string_view key = line.substr(0, eq);
    std::string value;
    if (!Unescape(line.substr(eq + 1), &value)) return Status::Corruption("a bad escape");
    if (key == "cluster") {
      claim->cluster = value;
      have_cluster = true;
    } else if (key == "node-id") {
      claim->node_id = value;
      have_id = true;
    } else if (key == "data-dir") {
      claim->data_dir = value;
    } else if (key == "socket") {
      claim->socket = value;
    } else if (key == "arg") {
      claim->start_command.push_back(value);
    }  // unknown keys: written by a newer version; ignored
  }
  if (first || !have_cluster || !have_id) {
    return Status::Corruption("the claim names no cluster or node id");
  }
  return Status::OK();
}

std::string ShellJoin(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& arg : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !arg.empty();
    for (char c : arg) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) ||
            std::string_view("-_./:=,@%+").find(c) != std::string_view::npos)) {
        plain = false;
      }
    }
    if (plain) {
      out += arg;
      continue;
    }
    out += '\'';
    for (char c : arg) {
      if (c == '\'') {
        out += "'\\''";
      } else {
        out += c;
      }
    }
    out += '\'';
  }
  return out;
}

std::string ReleaseCommand(const std::string& socket, const std::string& data_dir) {
  return ShellJoin(
      {"lockmesh", "node", "--release-mesh-claim", "--socket", socket, "--data-dir", data_dir});
}

Status DecideStart(const Starter& starter, const std::vector<FoundClaim>& claims) {
  const std::string release = ReleaseCommand(starter.socket, starter.data_dir);
  for (const FoundClaim& f : claims) {
    if (f.state == FoundClaim::State::kAbsent) continue;
    if (f.state == FoundClaim::State::kUnreadable) {
      if (starter.mesh) continue;  // the mesh node rewrites it
      return Status::PermissionDenied(
          "a mesh node has claimed this host's socket or data dir, but its claim " + f.path +
          " is unreadable (" + f.error + "); a local node may not serve " + starter.socket +
          " beside a mesh (one authority per host, docs/mesh.md). Start this host's mesh node "
          "(`lockmesh node` with its flags), or, if this host has left the mesh for good, "
          "release the claim: " +
          release);
    }
    const MeshClaim& c = f.claim;
    if (starter.mesh) {
      if (c.cluster == starter.cluster &&
          (starter.node_id.empty() || c.node_id == starter.node_id)) {
        continue;
      }
      return Status::PermissionDenied(
          starter.socket + " / " + starter.data_dir + " belong to " + Describe(c) + " (claim " +
          f.path + "); a mesh node of cluster '" + starter.cluster + "'" +
          (starter.node_id.empty() ? "" : " with id " + starter.node_id) +
          " may not take them over. Use another --socket and --data-dir, or, if node " + c.node_id +
          " has left its mesh for good, release the claim: " + release);
    }
    std::string how = c.start_command.empty()
                          ? std::string("start the mesh node as it was started before")
                          : "start the mesh node: " + ShellJoin(c.start_command);
    return Status::PermissionDenied(
        starter.socket + " belongs to mesh node " + c.node_id + " of cluster '" + c.cluster +
        "' (claim " + f.path +
        "), which is not running. A local node may not serve it beside "
        "the mesh (one authority per host, docs/mesh.md): nothing is granted here. To lock, " +
        how + ". If this host has left the mesh for good, release the claim: " +
        ReleaseCommand(c.socket.empty() ? starter.socket : c.socket,
                       c.data_dir.empty() ? starter.data_dir : c.data_dir));
  }
  return Status::OK();
}

}  // namespace mesh::core
