/* The C ABI against a real node: a plain C99 program linking libmesh.so through <lockmesh.h>
 * only. Starts `lockmesh node --local` itself, then checks acquire, release (with rollback),
 * try, timeout, modes, JSON listings, error codes and text, and a lost lock (the node killed
 * while a lock is held, noticed through lockmesh_fd + lockmesh_poll).
 * Usage: capi_test LOCKMESH_BINARY SCRATCH_DIR */
#define _POSIX_C_SOURCE 200809L
#include <lockmesh.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t node_pid = -1;
static int failures = 0;

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                     \
    }                                                                 \
  } while (0)
#define REQUIRE(cond)                                                 \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
      stop_node();                                                    \
      return 1;                                                       \
    }                                                                 \
  } while (0)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void stop_node(void) {
  if (node_pid > 0) {
    kill(node_pid, SIGKILL);
    waitpid(node_pid, NULL, 0);
    node_pid = -1;
  }
}

static int start_node(const char* binary, const char* socket, const char* data_dir) {
  node_pid = fork();
  if (node_pid == 0) {
    execl(binary, binary, "node", "--local", "--socket", socket, "--data-dir", data_dir,
          (char*)NULL);
    _exit(127);
  }
  /* The node is ready when a client can connect (generous deadline: the box is loaded). */
  for (double deadline = now_s() + 30; now_s() < deadline;) {
    lockmesh_client* c = NULL;
    if (lockmesh_connect(socket, &c) == LOCKMESH_OK) {
      lockmesh_close(c);
      return 0;
    }
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  return -1;
}

struct lost_seen {
  int calls;
  int code;
  lockmesh_lock* lock;
  char reason[256];
};

static void on_lost(lockmesh_lock* lock, int code, const char* reason, void* user_data) {
  struct lost_seen* seen = (struct lost_seen*)user_data;
  seen->calls++;
  seen->code = code;
  seen->lock = lock;
  snprintf(seen->reason, sizeof seen->reason, "%s", reason);
}

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  char socket[512], data_dir[512];
  snprintf(socket, sizeof socket, "%s/node.sock", argv[2]);
  snprintf(data_dir, sizeof data_dir, "%s/data", argv[2]);
  mkdir(argv[2], 0700);

  /* Errors: codes, messages, connect errors. */
  CHECK(strcmp(lockmesh_strerror(LOCKMESH_TIMED_OUT), "timed out") == 0);
  CHECK(strcmp(lockmesh_strerror(LOCKMESH_BUSY), "busy") == 0);
  CHECK(strcmp(lockmesh_strerror(12345), "unknown error") == 0);
  int mode = -1;
  CHECK(lockmesh_mode_parse("ProtectedRead", &mode) == LOCKMESH_OK && mode == LOCKMESH_MODE_PR);
  CHECK(lockmesh_mode_parse("bogus", &mode) == LOCKMESH_INVALID_ARGUMENT);
  CHECK(strcmp(lockmesh_mode_name(LOCKMESH_MODE_CW), "CW") == 0);
  lockmesh_client* none = (lockmesh_client*)1;
  int rc = lockmesh_connect(socket, &none);
  CHECK(rc != LOCKMESH_OK && none == NULL);
  CHECK(strlen(lockmesh_connect_error()) > 0);
  fprintf(stderr, "connect without a node: %s (%s)\n", lockmesh_strerror(rc), lockmesh_connect_error());

  REQUIRE(start_node(argv[1], socket, data_dir) == 0);
  lockmesh_client *a = NULL, *b = NULL;
  REQUIRE(lockmesh_connect(socket, &a) == LOCKMESH_OK && a != NULL);
  lockmesh_client_options copts;
  lockmesh_client_options_init(&copts);
  copts.socket_path = socket;
  copts.client_name = "capi_test b";
  REQUIRE(lockmesh_connect_with(&copts, &b) == LOCKMESH_OK && b != NULL);

  /* Exclusive: acquire, then another client's try and timeout fail with their codes. */
  lockmesh_lock* r1 = NULL;
  REQUIRE(lockmesh_lock_acquire(a, "R", 2000, &r1) == LOCKMESH_OK);
  CHECK(lockmesh_lock_token(r1) > 0);
  CHECK(lockmesh_lock_id(r1) > 0);
  CHECK(strcmp(lockmesh_lock_resource(r1), "R") == 0);
  CHECK(strcmp(lockmesh_lock_element(r1), "") == 0);
  CHECK(lockmesh_lock_mode(r1) == LOCKMESH_MODE_EX);
  lockmesh_lock* r2 = (lockmesh_lock*)1;
  CHECK(lockmesh_lock_try(b, "R", LOCKMESH_MODE_EX, &r2) == LOCKMESH_BUSY && r2 == NULL);
  CHECK(strstr(lockmesh_last_error(b), "usy") != NULL);
  double t0 = now_s();
  CHECK(lockmesh_lock_acquire(b, "R", 300, &r2) == LOCKMESH_TIMED_OUT && r2 == NULL);
  CHECK(now_s() - t0 >= 0.25);
  fprintf(stderr, "timed out: %s\n", lockmesh_last_error(b));
  CHECK(strlen(lockmesh_last_error(b)) > 0);

  /* Listings as JSON. */
  char* json = NULL;
  CHECK(lockmesh_locks_json(b, NULL, &json) == LOCKMESH_OK && json && strstr(json, "\"R\""));
  lockmesh_free(json);
  CHECK(lockmesh_locks_json(b, "nothing-here", &json) == LOCKMESH_OK && json && strcmp(json, "[]") == 0);
  lockmesh_free(json);
  CHECK(lockmesh_status_json(a, &json) == LOCKMESH_OK && json && strstr(json, "\"locks_held\":1"));
  lockmesh_free(json);

  /* Release: the other client gets it, with a higher token. */
  uint64_t token1 = lockmesh_lock_token(r1);
  CHECK(lockmesh_lock_release(a, r1) == LOCKMESH_OK);
  CHECK(strcmp(lockmesh_last_error(a), "") == 0);
  REQUIRE(lockmesh_lock_acquire(b, "R", 2000, &r2) == LOCKMESH_OK);
  CHECK(lockmesh_lock_token(r2) > token1);
  CHECK(lockmesh_lock_release(b, r2) == LOCKMESH_OK);

  /* Modes: two protected reads share, an exclusive try conflicts, CR is compatible with PR. */
  lockmesh_lock *s1 = NULL, *s2 = NULL, *s3 = NULL;
  CHECK(lockmesh_lock_acquire_mode(a, "S", LOCKMESH_MODE_PR, 2000, &s1) == LOCKMESH_OK);
  CHECK(lockmesh_lock_acquire_mode(b, "S", LOCKMESH_MODE_PR, 2000, &s2) == LOCKMESH_OK);
  CHECK(lockmesh_lock_try(b, "S", LOCKMESH_MODE_EX, &s3) == LOCKMESH_BUSY);
  CHECK(lockmesh_lock_try(b, "S", LOCKMESH_MODE_CR, &s3) == LOCKMESH_OK);
  CHECK(lockmesh_lock_mode(s3) == LOCKMESH_MODE_CR);
  lockmesh_lock* bad = (lockmesh_lock*)1;
  CHECK(lockmesh_lock_acquire_mode(a, "S", 99, 0, &bad) == LOCKMESH_INVALID_ARGUMENT && bad == NULL);
  CHECK(strstr(lockmesh_last_error(a), "mode") != NULL);
  CHECK(lockmesh_lock_release(a, s1) == LOCKMESH_OK);
  CHECK(lockmesh_lock_release(b, s2) == LOCKMESH_OK);
  CHECK(lockmesh_lock_release(b, s3) == LOCKMESH_OK);

  /* Quantity on a numeric resource: 2 + 2 of 3 units cannot both hold. */
  lockmesh_lock_options lopts;
  lockmesh_lock_options_init(&lopts);
  lopts.quantity = 2;
  lopts.timeout_ms = 0;
  lockmesh_lock *n1 = NULL, *n2 = NULL;
  CHECK(lockmesh_lock_acquire_with(a, "units[3]", &lopts, &n1) == LOCKMESH_OK);
  CHECK(lockmesh_lock_acquire_with(b, "units[3]", &lopts, &n2) == LOCKMESH_BUSY);
  lopts.quantity = 1;
  CHECK(lockmesh_lock_acquire_with(b, "units[3]", &lopts, &n2) == LOCKMESH_OK);
  CHECK(lockmesh_lock_release(a, n1) == LOCKMESH_OK);
  CHECK(lockmesh_lock_release(b, n2) == LOCKMESH_OK);

  /* Rollback: a transactional sequence value comes back after a rollback, not after a release. */
  lockmesh_lock* q = NULL;
  REQUIRE(lockmesh_lock_acquire(a, "_S_tx[1]", 2000, &q) == LOCKMESH_OK);
  char first[64];
  snprintf(first, sizeof first, "%s", lockmesh_lock_element(q));
  CHECK(strlen(first) > 0);
  CHECK(lockmesh_lock_release_ex(a, q, 1) == LOCKMESH_OK);
  REQUIRE(lockmesh_lock_acquire(a, "_S_tx[1]", 2000, &q) == LOCKMESH_OK);
  CHECK(strcmp(lockmesh_lock_element(q), first) == 0);
  CHECK(lockmesh_lock_release_ex(a, q, 0) == LOCKMESH_OK);
  REQUIRE(lockmesh_lock_acquire(a, "_S_tx[1]", 2000, &q) == LOCKMESH_OK);
  CHECK(strcmp(lockmesh_lock_element(q), first) != 0);
  fprintf(stderr, "sequence: %s, after rollback %s, after release %s\n", first, first,
          lockmesh_lock_element(q));
  lockmesh_lock_release(a, q);

  /* Lost lock: the node dies while b holds L; b learns it through its fd and poll. */
  struct lost_seen seen;
  memset(&seen, 0, sizeof seen);
  lockmesh_set_lost_callback(b, on_lost, &seen);
  lockmesh_lock* held = NULL;
  REQUIRE(lockmesh_lock_acquire(b, "L", 2000, &held) == LOCKMESH_OK);
  CHECK(lockmesh_fd(b) >= 0);
  CHECK(lockmesh_poll(b, 0) == LOCKMESH_OK && seen.calls == 0 && !lockmesh_lock_is_lost(held));
  stop_node();
  for (double deadline = now_s() + 30; seen.calls == 0 && now_s() < deadline;) {
    struct pollfd p = {lockmesh_fd(b), POLLIN, 0};
    poll(&p, 1, 1000);
    lockmesh_poll(b, 0);
  }
  CHECK(seen.calls == 1);
  CHECK(seen.lock == held);
  CHECK(seen.code == LOCKMESH_LOST);
  CHECK(lockmesh_lock_is_lost(held));
  fprintf(stderr, "lost (%d call(s)): %s\n", seen.calls, seen.reason);
  CHECK(lockmesh_poll(b, 0) == LOCKMESH_UNAVAILABLE);
  CHECK(lockmesh_lock_release(b, held) == LOCKMESH_LOST);
  CHECK(strstr(lockmesh_last_error(b), "lost") != NULL);

  lockmesh_close(a);
  lockmesh_close(b);
  lockmesh_close(NULL);
  stop_node();
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("capi_test passed\n");
  return 0;
}
