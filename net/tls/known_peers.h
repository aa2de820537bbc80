// net/tls/known_peers: trust on first use (docs/design.md §6, --security tofu) and the
// --trusted-fingerprints allow-list.
//
// The known_peers file lives in the node's data dir (KnownPeersPath). It is text, one peer a
// line, so that people can read and diff it:
//
//   # lockmesh known_peers: node id, SHA-256 fingerprint of its certificate, first seen (UTC).
//   # Change it with `lockmesh trust list|accept|forget`.
//   3f2a...e1 sha256$9c1b...04 2026-11-23T17:40:00Z
//
// Blank lines and lines starting with '#' are ignored; fields are separated by spaces or tabs;
// the fingerprint may be in either form Fingerprint::Parse accepts (without spaces, so the
// compact or the bare colon form); a node id appears at most once. A file that breaks these
// rules is refused with Corruption naming "<path>:<line>: <what>", never half-read.
//
// Every change is a locked read-modify-write: flock(2) on "<path>.lock" (so the node and
// `lockmesh trust` never lose each other's updates), the new contents written to a temporary
// file, fsynced, renamed over the old one and the directory fsynced (a crash leaves the old
// or the new file, never a torn one). The file is created 0600. These functions block on file
// I/O (and on the lock, which is held only for the update): call them off the hot path
// (a first contact is rare). Thread-safe and process-safe.
//
// The allow-list (--trusted-fingerprints FILE) is one fingerprint per line in either form
// (`sha256 Fingerprint=AB:..`, `sha256$ab..`, `AB:CD:..`), '#' starting a comment (whole line
// or after the fingerprint), blank lines ignored.
#ifndef LOCKMESH_NET_TLS_KNOWN_PEERS_H_
#define LOCKMESH_NET_TLS_KNOWN_PEERS_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mesh/status.h"
#include "net/tls/certificate.h"

namespace mesh::net {

/// One pinned peer.
struct KnownPeer {
  std::string node_id;
  Fingerprint fingerprint;
  int64_t first_seen = 0;  // Unix seconds, UTC: when this fingerprint was first recorded
};

/// `<data_dir>/known_peers`.
std::string KnownPeersPath(const std::string& data_dir);

/// Reads the store at `path` into `peers`, sorted by node id. A missing file is an empty
/// store (OK). Corruption "<path>:<line>: ..." for a malformed file; IOError if unreadable.
Status LoadKnownPeers(const std::string& path, std::vector<KnownPeer>* peers);

/// The outcome of checking a peer against the store on contact.
enum class TofuVerdict {
  kFirstContact,  // the node id was unknown; its fingerprint is now recorded
  kKnown,         // the node id is known with this very fingerprint
  kChanged,       // the node id is known with another fingerprint: refuse the peer
};

/// The tofu check, done by the node after a handshake in tofu mode: under the file lock, looks
/// `node_id` up; if absent, records (node_id, fingerprint, now) and returns kFirstContact; if
/// present returns kKnown or kChanged, and sets `*stored` (may be null) to the stored entry.
/// Errors (corrupt file, I/O) must make the caller refuse the peer.
Status CheckAndRecordPeer(const std::string& path, const std::string& node_id,
                          const Fingerprint& fingerprint, int64_t now, TofuVerdict* verdict,
                          KnownPeer* stored);

/// `lockmesh trust accept`: pins `node_id` to `fingerprint`, replacing any earlier one (its
/// first-seen time becomes `now`). `*previous` (may be null) gets the replaced entry's
/// fingerprint, or nullopt if the id was new. Creates the file (and its directory, 0700).
Status AcceptPeer(const std::string& path, const std::string& node_id,
                  const Fingerprint& fingerprint, int64_t now,
                  std::optional<Fingerprint>* previous);

/// `lockmesh trust forget`: removes `node_id`. NotFound ("node id X is not in <path>") if it
/// was not there (the file is then left untouched).
Status ForgetPeer(const std::string& path, const std::string& node_id);

/// The exact shell command that accepts `fingerprint` for `node_id`:
///   lockmesh trust accept [--data-dir DIR] NODE_ID 'sha256$...'
/// (`--data-dir` only when `data_dir` is non-empty, `--` before an id that starts with '-';
/// words quoted with ShellQuote, so it can be pasted as is). The TLS transport prints it in its
/// "fingerprint changed" refusal.
std::string TrustAcceptCommand(const std::string& node_id, const Fingerprint& fingerprint,
                               const std::string& data_dir);

/// The one-paragraph refusal both the node and tls-debug print for kChanged:
///   "certificate fingerprint of node N changed: known sha256$.. (first seen T), presented
///    sha256$..; if the change is expected (a new certificate), accept it with: <command>"
std::string FingerprintChangedMessage(const std::string& node_id, const KnownPeer& known,
                                      const Fingerprint& presented, const std::string& data_dir);

/// The --trusted-fingerprints allow-list. A value type; thread-compatible.
class TrustedFingerprints {
 public:
  /// Reads `path` (format above). NotFound if missing; InvalidArgument "<path>:<line>: ..."
  /// for a line that is not a fingerprint, and "<path> lists no fingerprint" for a file with
  /// none (an empty allow-list would refuse every peer, which is never what was meant).
  static Status Load(const std::string& path, TrustedFingerprints* out);

  bool Contains(const Fingerprint& fingerprint) const { return set_.count(fingerprint) != 0; }
  size_t size() const { return set_.size(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::set<Fingerprint> set_;
};

}  // namespace mesh::net

#endif  // LOCKMESH_NET_TLS_KNOWN_PEERS_H_
