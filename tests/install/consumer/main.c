/* Takes a lock through the C ABI of the installed libmesh (<lockmesh.h>), from outside the
 * lockmesh source tree: proves the installed header, library and package files are enough
 * for a C99 program. Usage: consumer_c SOCKET */
#include <lockmesh.h>
#include <stdio.h>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  lockmesh_client* client;
  if (lockmesh_connect(argv[1], &client) != LOCKMESH_OK) {
    fprintf(stderr, "connect: %s\n", lockmesh_connect_error());
    return 1;
  }
  lockmesh_lock* lock;
  if (lockmesh_lock_acquire(client, "install_test_c", 5000, &lock) != LOCKMESH_OK) {
    fprintf(stderr, "lock: %s\n", lockmesh_last_error(client));
    return 1;
  }
  printf("C token %llu\n", (unsigned long long)lockmesh_lock_token(lock));
  int rc = lockmesh_lock_release(client, lock);
  lockmesh_close(client);
  return rc == LOCKMESH_OK ? 0 : 1;
}
