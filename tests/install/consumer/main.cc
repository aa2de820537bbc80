// Takes a lock through libmesh, from outside the lockmesh source tree: proves the installed
// headers, library and package files are enough. Usage: consumer SOCKET
#include <cstdio>

#include "mesh/client.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  mesh::ClientOptions options;
  options.socket_path = argv[1];
  options.client_name = "install-test consumer";
  std::unique_ptr<mesh::Client> client;
  mesh::Status st = mesh::Client::Connect(options, &client);
  if (!st.ok()) {
    fprintf(stderr, "connect: %s\n", st.ToString().c_str());
    return 1;
  }
  mesh::Lock lock;
  st = client->Lock("install_test", mesh::LockOptions{}, &lock);
  if (!st.ok()) {
    fprintf(stderr, "lock: %s\n", st.ToString().c_str());
    return 1;
  }
  printf("token %llu\n", static_cast<unsigned long long>(lock.token));
  return client->Unlock(lock).ok() ? 0 : 1;
}
