// The tofu store and the allow-list (see known_peers.h for the file formats).
#include "net/tls/known_peers.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <sstream>

#include "core/path_text.h"
#include "core/time_text.h"
#include "net/support/errno_text.h"
#include "net/support/posix_file_system.h"

namespace mesh::net {
namespace {

constexpr size_t kMaxFileSize = 16u << 20;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Reads the whole file; *missing is set (and OK returned) when it does not exist.
Status ReadWholeFile(const std::string& path, std::string* data, bool* missing) {
  *missing = false;
  data->clear();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      *missing = true;
      return Status::OK();
    }
    return Status::IOError(ErrnoMessage("cannot open " + path, errno));
  }
  char buffer[8192];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int saved = errno;
      close(fd);
      return Status::IOError(ErrnoMessage("cannot read " + path, saved));
    }
    if (n == 0) break;
    data->append(buffer, static_cast<size_t>(n));
    if (data->size() > kMaxFileSize) {
      close(fd);
      return Status::Corruption(path + " is larger than 16 MiB");
    }
  }
  close(fd);
  return Status::OK();
}

using core::FormatIsoUtc;
using core::ParseIsoUtc;

// A node id as the store accepts it: printable ASCII without spaces, not starting with '#'.
Status ValidateNodeId(const std::string& id) {
  if (id.empty()) return Status::InvalidArgument("the node id is empty");
  if (id.size() > 256) return Status::InvalidArgument("the node id is longer than 256 characters");
  if (id[0] == '#') return Status::InvalidArgument("a node id cannot start with '#'");
  for (char c : id) {
    if (c <= 0x20 || c > 0x7e) {
      return Status::InvalidArgument("the node id '" + id +
                                     "' may hold only printable ASCII characters without spaces");
    }
  }
  return Status::OK();
}

using PeerMap = std::map<std::string, KnownPeer>;

Status ParseStore(const std::string& path, const std::string& data, PeerMap* peers) {
  peers->clear();
  std::istringstream in(data);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string where = path + ":" + std::to_string(number) + ": ";
    std::string_view text = Trim(line);
    if (text.empty() || text[0] == '#') continue;
    std::istringstream fields{std::string(text)};
    std::string id, fingerprint, first_seen, extra;
    fields >> id >> fingerprint >> first_seen;
    if (first_seen.empty() || (fields >> extra)) {
      return Status::Corruption(where +
                                "expected three fields: NODE_ID FINGERPRINT FIRST_SEEN (e.g. "
                                "2026-11-23T17:40:00Z), found '" +
                                std::string(text) + "'");
    }
    KnownPeer peer;
    peer.node_id = id;
    Status st = ValidateNodeId(id);
    if (!st.ok()) return Status::Corruption(where + st.message());
    st = Fingerprint::Parse(fingerprint, &peer.fingerprint);
    if (!st.ok()) return Status::Corruption(where + st.message());
    if (!ParseIsoUtc(first_seen, &peer.first_seen)) {
      return Status::Corruption(where + "'" + first_seen +
                                "' is not a UTC time like 2026-11-23T17:40:00Z");
    }
    if (peers->count(id)) {
      return Status::Corruption(where + "node id '" + id + "' is listed twice");
    }
    (*peers)[id] = peer;
  }
  return Status::OK();
}

Status ReadStore(const std::string& path, PeerMap* peers) {
  std::string data;
  bool missing = false;
  MESH_RETURN_IF_ERROR(ReadWholeFile(path, &data, &missing));
  if (missing) {
    peers->clear();
    return Status::OK();
  }
  return ParseStore(path, data, peers);
}

// Rewrites the store atomically: temporary file, fsync, rename, fsync of the directory.
Status WriteStore(const std::string& path, const PeerMap& peers) {
  std::string out =
      "# lockmesh known_peers: node id, SHA-256 fingerprint of its certificate, first seen "
      "(UTC).\n# Change it with `lockmesh trust list|accept|forget`.\n";
  for (const auto& [id, peer] : peers) {
    out += id + " " + peer.fingerprint.ToCompact() + " " + FormatIsoUtc(peer.first_seen) + "\n";
  }
  return PosixFileSystem()->WriteFileAtomic(path, out);  // under the StoreLock
}

// Holds the lock on "<path>.lock" (FileSystem::LockFile, waiting) for its lifetime.
class StoreLock {
 public:
  Status Acquire(const std::string& path) {
    MESH_RETURN_IF_ERROR(MakeDirs(core::DirName(path), 0700));
    return PosixFileSystem()->LockFile(path + ".lock", core::LockWait::kWait, &lock_);
  }

 private:
  std::unique_ptr<core::FileLock> lock_;
};

}  // namespace

std::string KnownPeersPath(const std::string& data_dir) { return data_dir + "/known_peers"; }

Status LoadKnownPeers(const std::string& path, std::vector<KnownPeer>* peers) {
  PeerMap map;
  MESH_RETURN_IF_ERROR(ReadStore(path, &map));
  peers->clear();
  for (auto& [id, peer] : map) peers->push_back(peer);
  return Status::OK();
}

Status CheckAndRecordPeer(const std::string& path, const std::string& node_id,
                          const Fingerprint& fingerprint, int64_t now, TofuVerdict* verdict,
                          KnownPeer* stored) {
  MESH_RETURN_IF_ERROR(ValidateNodeId(node_id));
  StoreLock lock;
  MESH_RETURN_IF_ERROR(lock.Acquire(path));
  PeerMap peers;
  MESH_RETURN_IF_ERROR(ReadStore(path, &peers));
  auto it = peers.find(node_id);
  if (it != peers.end()) {
    if (stored) *stored = it->second;
    *verdict = it->second.fingerprint == fingerprint ? TofuVerdict::kKnown : TofuVerdict::kChanged;
    return Status::OK();
  }
  KnownPeer peer{node_id, fingerprint, now};
  peers[node_id] = peer;
  MESH_RETURN_IF_ERROR(WriteStore(path, peers));
  if (stored) *stored = peer;
  *verdict = TofuVerdict::kFirstContact;
  return Status::OK();
}

Status AcceptPeer(const std::string& path, const std::string& node_id,
                  const Fingerprint& fingerprint, int64_t now,
                  std::optional<Fingerprint>* previous) {
  MESH_RETURN_IF_ERROR(ValidateNodeId(node_id));
  StoreLock lock;
  MESH_RETURN_IF_ERROR(lock.Acquire(path));
  PeerMap peers;
  MESH_RETURN_IF_ERROR(ReadStore(path, &peers));
  auto it = peers.find(node_id);
  if (previous) {
    *previous =
        it == peers.end() ? std::nullopt : std::optional<Fingerprint>(it->second.fingerprint);
  }
  if (it != peers.end() && it->second.fingerprint == fingerprint) return Status::OK();
  peers[node_id] = KnownPeer{node_id, fingerprint, now};
  return WriteStore(path, peers);
}

Status ForgetPeer(const std::string& path, const std::string& node_id) {
  StoreLock lock;
  MESH_RETURN_IF_ERROR(lock.Acquire(path));
  PeerMap peers;
  MESH_RETURN_IF_ERROR(ReadStore(path, &peers));
  if (peers.erase(node_id) == 0) {
    return Status::NotFound("node id '" + node_id + "' is not in " + path);
  }
  return WriteStore(path, peers);
}

std::string TrustAcceptCommand(const std::string& node_id, const Fingerprint& fingerprint,
                               const std::string& data_dir) {
  std::string command = "lockmesh trust accept";
  if (!data_dir.empty()) command += " --data-dir " + ShellQuote(data_dir);
  // "--" only when needed: an id starting with '-' must not be read as a flag.
  command += node_id[0] == '-' ? " -- " : " ";
  command += ShellQuote(node_id) + " " + ShellQuote(fingerprint.ToCompact());
  return command;
}

std::string FingerprintChangedMessage(const std::string& node_id, const KnownPeer& known,
                                      const Fingerprint& presented, const std::string& data_dir) {
  return "certificate fingerprint of node '" + node_id + "' changed: known " +
         known.fingerprint.ToCompact() + " (first seen " + FormatUtc(known.first_seen) +
         "), presented " + presented.ToCompact() +
         "; if the change is expected (the node has a new certificate), accept it with: " +
         TrustAcceptCommand(node_id, presented, data_dir);
}

Status TrustedFingerprints::Load(const std::string& path, TrustedFingerprints* out) {
  std::string data;
  bool missing = false;
  MESH_RETURN_IF_ERROR(ReadWholeFile(path, &data, &missing));
  if (missing) return Status::NotFound("trusted fingerprints file " + path + " does not exist");
  TrustedFingerprints list;
  list.path_ = path;
  std::istringstream in(data);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string_view text = line;
    if (size_t hash = text.find('#'); hash != std::string_view::npos) text = text.substr(0, hash);
    text = Trim(text);
    if (text.empty()) continue;
    Fingerprint fp;
    Status st = Fingerprint::Parse(text, &fp);
    if (!st.ok()) {
      return Status::InvalidArgument(path + ":" + std::to_string(number) + ": " + st.message());
    }
    list.set_.insert(fp);
  }
  if (list.set_.empty()) {
    return Status::InvalidArgument(path +
                                   " lists no fingerprint (one per line, e.g. the output of "
                                   "`lockmesh cert show FILE` or `openssl x509 -noout "
                                   "-fingerprint -sha256 -in FILE`)");
  }
  *out = std::move(list);
  return Status::OK();
}

}  // namespace mesh::net
