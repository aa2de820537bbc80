// mesh::Node — a full lockmesh node, embeddable in an application's own libuv loop.
//
// A Node owns its data dir (write-ahead log and snapshots), serves local clients on a UNIX
// socket, and applies lock commands through its log. It runs entirely on the loop given to
// Create, on that loop's thread; none of its methods may be called from another thread.
//
// Lifetime: Create, then Start. Stop (or a shutdown request from a client, or the idle
// lifespan running out) closes every handle; `stopped` callbacks run once all libuv handles
// are closed, after which the Node may be destroyed. Destroying a started Node that has not
// stopped is a bug (handles would outlive it).
//
// A node ignores SIGPIPE unless the application handles it (see mesh/client.h): a peer or
// client hanging up mid-write must not end the process.
#ifndef MESH_NODE_H_
#define MESH_NODE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mesh/client.h"
#include "mesh/status.h"

typedef struct uv_loop_s uv_loop_t;

namespace mesh {

/// How a node takes part in a mesh of nodes (docs/design.md §2, §4-§6; docs/cli.md names the
/// flags). Plain data; the defaults are the CLI's.
struct MeshOptions {
  /// false: a local node — UNIX socket only, the only member of its own log (what
  /// `lockmesh lock` auto-starts). true: discover peers, form or join a cluster.
  bool enabled = false;
  /// Nodes (this one included) a node with empty state must see before a cluster is made.
  int expect = 1;
  /// Voting members the leader aims for; every other member is a learner.
  int voters = 3;
  /// Peer TCP listener HOST:PORT; "" = [::]:28017 (0.0.0.0:28017 without IPv6).
  std::string listen;
  /// HOST:PORT written into the configuration for this node; "" = as peers see it.
  std::string advertise;
  /// Peers to dial without multicast (HOST:PORT).
  std::vector<std::string> join;
  /// "none", "encrypt", "mutual" or "tofu", and the PEM files (docs/design.md §6).
  std::string security = "none";
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
  /// tofu: a file of allowed fingerprints (a strict allow-list); "" = trust on first use.
  std::string trusted_fingerprints;
  /// Discovery: multicast on/off, UDP port, interface name ("" = by routes), TTL.
  bool multicast = true;
  uint16_t discovery_port = 28017;
  /// Multicast groups of the beacons (IPv4 and IPv6).
  std::string discovery_group4 = "239.255.28.17";
  std::string discovery_group6 = "ff12::2817";
  std::string discovery_interface;
  int discovery_ttl = 1;
  /// A node silent this long loses its sessions (and its clients their locks).
  int64_t session_ttl_ms = 10000;
  /// A member unreachable this long is replaced (voter) or removed (learner).
  int64_t dead_after_ms = 30000;
  /// Raft's election timeout (heartbeats every tenth of it). Same on every node.
  int64_t election_timeout_ms = 1000;
  /// Hostile load on the peer port (docs/mesh.md, "Hostile load"): an accepted connection
  /// whose link is not up (TLS handshake, Hello and Welcome) this long after the accept is
  /// closed; at most this many such pending connections from one source address (an IPv6
  /// /64) and in all; one over a limit is closed at once. Defaults: 10 s, 32, 512.
  int64_t handshake_timeout_ms = 10000;
  uint32_t max_pending_per_source = 32;
  uint32_t max_pending_connections = 512;
};

/// The highest NodeOptions::token_floor: the lock table's core::kMaxTokenFloor (checked by
/// tests/net/token_floor_node_test.cc), published for the CLI.
inline constexpr uint64_t kMaxTokenFloor = uint64_t{1} << 62;

struct NodeOptions {
  /// This node's unique id; "" = UniqueId(data_dir).
  std::string node_id;
  /// Cluster name (peers of other names are ignored).
  std::string cluster = "lockmesh";
  /// Where the log and snapshots live; created (0700) if missing. Required.
  std::string data_dir;
  /// UNIX socket for local clients; "" = DefaultSocketPath(). Its parent directory is
  /// created with mode 0700; the socket is chmod 0600 (0660 with socket_group).
  std::string socket_path;
  /// Group allowed to use the socket ("" = owner only).
  std::string socket_group;
  /// Stop after this long with no client connected and no lock held or awaited;
  /// 0 = never (explicit `lockmesh node`); auto-started nodes use 60 s.
  int64_t idle_exit_ms = 0;
  /// fsync the log before acknowledging (true everywhere but benchmarks that say so).
  bool fsync = true;
  /// Take a snapshot and compact the log after this many applied entries.
  uint64_t snapshot_every = 100000;
  /// Fencing tokens granted after this node's start are above this (carried by each of its
  /// client id claims; core/lock_table.h, "Token floor"); it never lowers them. 0 = none;
  /// at most core::kMaxTokenFloor.
  uint64_t token_floor = 0;
  /// Bytes of one preallocated WAL segment.
  uint64_t wal_segment_bytes = 64ull << 20;
  /// Under load, how long (microseconds) the node may keep polling for more commands
  /// before syncing a batch smaller than the previous one, so that clients answered
  /// together share the next fsync. It busy-polls meanwhile; 0 = never wait.
  uint64_t gather_us = 150;
  /// A local client that sends no hello within this long after connecting is
  /// disconnected (with a logged reason); 0 = never.
  int64_t hello_timeout_ms = 5000;
  /// How this node is started (argv), for people: a mesh node writes it into its claim,
  /// and a refused local start quotes it ("start it: ..."). Empty = not said.
  std::vector<std::string> start_command;
  /// Log destination: called with one line (no newline) per event; default stderr.
  std::function<void(const std::string& line)> log;
  /// Peers, discovery, security (off by default: a local node).
  MeshOptions mesh;
};

class Node {
 public:
  /// Creates a node on `loop` (not owned; must outlive the node).
  static Status Create(uv_loop_t* loop, NodeOptions options, std::unique_ptr<Node>* out);
  virtual ~Node() = default;

  /// Checks the socket directory (ours, not writable by group or others, else
  /// PermissionDenied), locks the socket (a second node on the same socket gets
  /// Status::AlreadyExists), applies "one authority per host" (docs/mesh.md): a mesh node
  /// writes its claim on the socket and the data dir, any other node refuses a claimed
  /// socket or data dir with PermissionDenied; then recovers the data dir and starts
  /// serving. On error nothing keeps running.
  virtual Status Start() = 0;
  /// Stops serving: clients are disconnected (their locks released in the log first when
  /// `graceful`), handles are closed, then `done` runs.
  virtual void Stop(bool graceful, std::function<void()> done) = 0;
  /// Runs once when the node stops on its own (shutdown request, idle lifespan, fatal
  /// storage error), after its handles are closed; `why` is ok for a requested stop.
  virtual void SetStoppedCallback(std::function<void(const Status& why)> stopped) = 0;
  /// A snapshot of what `lockmesh status` shows.
  virtual NodeStatus GetStatus() const = 0;
  /// Re-reads the TLS certificate, key, CA and allow-list files (what SIGHUP does): new
  /// links use them, and peers whose certificate fails the new rules are cut off
  /// (`cut_off` receives how many, if non-null). On error the old files stay in force.
  /// Unavailable for a local node or with --security none.
  virtual Status ReloadCertificates(size_t* cut_off) = 0;
};

/// The node id to use when none is given: the systemd/D-Bus machine id
/// (/etc/machine-id, /var/lib/dbus/machine-id), else an id generated once and stored in
/// `data_dir`/node-id. Containers made from one image must not share /etc/machine-id; a
/// blank or "uninitialized" machine id is ignored.
Status UniqueId(const std::string& data_dir, std::string* id);

/// Default data dir for a node serving `socket_path`: $LOCKMESH_DATA_DIR, else
/// ${XDG_STATE_HOME:-$HOME/.local/state}/lockmesh/<name>, where <name> is "default" for the
/// default socket and derived from the socket path otherwise.
std::string DefaultDataDir(const std::string& socket_path);

}  // namespace mesh

#endif  // MESH_NODE_H_
