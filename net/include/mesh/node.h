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
#ifndef MESH_NODE_H_
#define MESH_NODE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "mesh/client.h"
#include "mesh/status.h"

typedef struct uv_loop_s uv_loop_t;

namespace mesh {

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
  /// Bytes of one preallocated WAL segment.
  uint64_t wal_segment_bytes = 64ull << 20;
  /// Under load, how long (microseconds) the node may keep polling for more commands
  /// before syncing a batch smaller than the previous one, so that clients answered
  /// together share the next fsync. It busy-polls meanwhile; 0 = never wait.
  uint64_t gather_us = 150;
  /// Log destination: called with one line (no newline) per event; default stderr.
  std::function<void(const std::string& line)> log;
};

class Node {
 public:
  /// Creates a node on `loop` (not owned; must outlive the node).
  static Status Create(uv_loop_t* loop, NodeOptions options, std::unique_ptr<Node>* out);
  virtual ~Node() = default;

  /// Locks the socket (a second node on the same socket gets Status::AlreadyExists),
  /// recovers the data dir, and starts serving. On error nothing keeps running.
  virtual Status Start() = 0;
  /// Stops serving: clients are disconnected (their locks released in the log first when
  /// `graceful`), handles are closed, then `done` runs.
  virtual void Stop(bool graceful, std::function<void()> done) = 0;
  /// Runs once when the node stops on its own (shutdown request, idle lifespan, fatal
  /// storage error), after its handles are closed; `why` is ok for a requested stop.
  virtual void SetStoppedCallback(std::function<void(const Status& why)> stopped) = 0;
  /// A snapshot of what `lockmesh status` shows.
  virtual NodeStatus GetStatus() const = 0;
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
