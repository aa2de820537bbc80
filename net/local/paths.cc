// Default locations and the node's unique id (declared in mesh/client.h and mesh/node.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>

#include "core/hex.h"
#include "mesh/client.h"
#include "mesh/node.h"
#include "net/support/posix_file_system.h"

namespace mesh {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// Reads a machine-id file: 32 lowercase hex digits, not all zero, not "uninitialized".
bool ReadMachineId(const char* path, std::string* id) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  std::getline(in, line);
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  if (line.size() != 32) return false;
  bool nonzero = false;
  for (char c : line) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
    if (c != '0') nonzero = true;
  }
  if (!nonzero) return false;
  *id = line;
  return true;
}

bool ValidStoredId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string DefaultSocketPath() {
  std::string env = Env("LOCKMESH_SOCKET");
  if (!env.empty()) return env;
  std::string runtime = Env("XDG_RUNTIME_DIR");
  if (!runtime.empty()) return runtime + "/lockmesh/node.sock";
  return "/tmp/lockmesh-" + std::to_string(getuid()) + "/node.sock";
}

std::string DefaultDataDir(const std::string& socket_path) {
  std::string env = Env("LOCKMESH_DATA_DIR");
  if (!env.empty()) return env;
  std::string base = Env("XDG_STATE_HOME");
  if (base.empty()) {
    std::string home = Env("HOME");
    if (home.empty()) home = "/tmp/lockmesh-" + std::to_string(getuid());
    base = home + "/.local/state";
  }
  std::string name = "default";
  if (!socket_path.empty() && socket_path != DefaultSocketPath()) {
    // A readable, collision-resistant name: the socket's file name plus a hash of its path.
    std::string file = socket_path.substr(socket_path.find_last_of('/') + 1);
    std::string clean;
    for (char c : file) clean += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    std::ostringstream hex;
    hex << std::hex << (std::hash<std::string>{}(socket_path) & 0xffffffffu);
    name = clean + "-" + hex.str();
  }
  return base + "/lockmesh/" + name;
}

Status UniqueId(const std::string& data_dir, std::string* id) {
  if (ReadMachineId("/etc/machine-id", id)) return Status::OK();
  if (ReadMachineId("/var/lib/dbus/machine-id", id)) return Status::OK();
  if (data_dir.empty()) {
    return Status::NotFound("no machine id (/etc/machine-id) and no data dir to keep a generated id");
  }
  std::string path = data_dir + "/node-id";
  {
    std::ifstream in(path);
    std::string stored;
    if (in && std::getline(in, stored) && ValidStoredId(stored)) {
      *id = stored;
      return Status::OK();
    }
  }
  // Generate 128 random bits, written once (create-only: linked into place, never replacing)
  // so two racing starts agree.
  std::random_device rd;
  std::string generated;
  for (int i = 0; i < 2; ++i) {
    generated += core::HexUint64((static_cast<uint64_t>(rd()) << 32) | rd());
  }
  MESH_RETURN_IF_ERROR(net::MakeDirs(data_dir, 0700));
  core::AtomicWriteOptions create_only;
  create_only.overwrite = false;
  create_only.unique_temp = true;
  Status written = net::PosixFileSystem()->WriteFileAtomic(path, generated + "\n", create_only);
  if (written.code() == Status::Code::kAlreadyExists) {
    std::ifstream in(path);
    std::string stored;
    if (in && std::getline(in, stored) && ValidStoredId(stored)) {
      *id = stored;
      return Status::OK();
    }
    return Status::Corruption(path + " holds no node id (remove it to generate a new one)");
  }
  MESH_RETURN_IF_ERROR(written);
  *id = generated;
  return Status::OK();
}

}  // namespace mesh
