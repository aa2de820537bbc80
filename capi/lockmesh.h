/* lockmesh.h — the C ABI of libmesh: take and release lockmesh locks from C (and from any
 * language with a C foreign-function interface; python/lockmesh uses it through ctypes).
 *
 * Plain C99; also compiles as C++. Every function is declared here and nowhere else, with the
 * prefix lockmesh_. Two opaque handles:
 *   lockmesh_client  one connection and one session on one node (mesh::Client). Every lock it
 *                    takes belongs to that session; lockmesh_close (or the process dying)
 *                    releases them all.
 *   lockmesh_lock    one granted lock. Owned by the caller until lockmesh_lock_release or
 *                    lockmesh_lock_free frees it.
 *
 * Return values: functions returning int return LOCKMESH_OK (0) on success or one of the
 * lockmesh_error codes (always positive); the node's reason is then kept as the client's last
 * error text (lockmesh_last_error). lockmesh_strerror names a code.
 *
 * Threading: a client and its locks are used from one thread at a time (the client is not
 * locked internally; calls from two threads at once must be serialised by the caller).
 * Different clients are independent and may be used from different threads. lockmesh_strerror
 * and lockmesh_default_socket are thread-safe.
 *
 * Blocking: lockmesh_connect, lockmesh_lock_acquire*, lockmesh_lock_release*, lockmesh_status_json,
 * lockmesh_locks_json and lockmesh_poll (with a timeout > 0) block the calling thread until
 * the node answers (or the deadline passes); every other function returns at once.
 *
 * Lost locks: a lock is lost when the session ends (the node went away, the connection broke
 * or, with a mesh node, this client's lease was not renewed in time). The client reports it
 * through a callback set with lockmesh_set_lost_callback, which runs on the thread that calls
 * lockmesh_poll (or any other blocking call on the client), never on another thread. For an
 * event loop (poll/select/epoll, libuv, asyncio): watch lockmesh_fd for readability and call
 * lockmesh_poll(client, 0) when it is readable. With a mesh node the client's lease is renewed
 * only while a call or lockmesh_poll runs: while holding a lock, call lockmesh_poll at least
 * every session ttl / 10.
 */
#ifndef LOCKMESH_H_
#define LOCKMESH_H_

#include <stddef.h>
#include <stdint.h>

#if defined(LOCKMESH_BUILDING_LIBRARY)
#define LOCKMESH_API __attribute__((visibility("default")))
#else
#define LOCKMESH_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this ABI; rises when functions are added (the soname changes only when one is
 * removed or changed). */
#define LOCKMESH_ABI_VERSION 1

/* Error codes. The values are part of the ABI and never change. */
typedef enum lockmesh_error {
  LOCKMESH_OK = 0,                /* success */
  LOCKMESH_NOT_FOUND = 1,         /* no such lock, resource or file */
  LOCKMESH_CORRUPTION = 2,        /* the node found damaged data */
  LOCKMESH_INVALID_ARGUMENT = 3,  /* a bad name, mode, quantity, NULL pointer or option */
  LOCKMESH_IO_ERROR = 4,          /* a socket or file operation failed */
  LOCKMESH_BUSY = 5,              /* try-lock (timeout 0): the resource is held */
  LOCKMESH_TIMED_OUT = 6,         /* the timeout passed before the lock was granted */
  LOCKMESH_IMPOSSIBLE = 7,        /* the request can never be granted (e.g. quantity too big) */
  LOCKMESH_CANT_WAIT = 8,         /* the resource type does not queue (FLoM's "cannot wait") */
  LOCKMESH_LOST = 9,              /* the lock or session was lost */
  LOCKMESH_UNAVAILABLE = 10,      /* no node answers, the connection ended, or no leader/quorum */
  LOCKMESH_PERMISSION_DENIED = 11,/* the node runs as an untrusted user, or access refused */
  LOCKMESH_ALREADY_EXISTS = 12,   /* already exists */
  LOCKMESH_INTERNAL = 13          /* a bug in lockmesh */
} lockmesh_error;

/* The six VMS/DLM lock modes (FLoM's), the values of mesh::LockMode. */
typedef enum lockmesh_mode {
  LOCKMESH_MODE_NL = 0, /* null */
  LOCKMESH_MODE_CR = 1, /* concurrent read */
  LOCKMESH_MODE_CW = 2, /* concurrent write */
  LOCKMESH_MODE_PR = 3, /* protected read (shared) */
  LOCKMESH_MODE_PW = 4, /* protected write */
  LOCKMESH_MODE_EX = 5  /* exclusive */
} lockmesh_mode;

typedef struct lockmesh_client lockmesh_client;
typedef struct lockmesh_lock lockmesh_lock;

/* Where and how to connect; initialise with lockmesh_client_options_init. Strings are read
 * during lockmesh_connect_with only (not kept). */
typedef struct lockmesh_client_options {
  const char* socket_path;    /* NULL or "": the default (lockmesh_default_socket) */
  const char* client_name;    /* shown in `lockmesh locks`; NULL: none */
  int64_t connect_timeout_ms; /* how long connecting waits for the node; default 5000 */
} lockmesh_client_options;

/* How to ask for a lock; initialise with lockmesh_lock_options_init. */
typedef struct lockmesh_lock_options {
  int mode;                  /* a lockmesh_mode; default LOCKMESH_MODE_EX */
  int64_t timeout_ms;        /* <0: wait forever; 0: try once (LOCKMESH_BUSY if held); >0: wait
                                at most this long (LOCKMESH_TIMED_OUT). Default -1 */
  uint32_t quantity;         /* units of a numeric resource "name[N]"; default 1 */
  int no_create;             /* nonzero: only lock a resource someone holds or awaits */
  int64_t idle_lifespan_ms;  /* FLoM's --resource-idle-lifespan; default 0 */
} lockmesh_lock_options;

/* Called once for each lost lock: `lock` is the caller's handle (still owned by the caller, who
 * should free it with lockmesh_lock_free or lockmesh_lock_release, which then fails with
 * LOCKMESH_LOST or LOCKMESH_UNAVAILABLE and frees it), `code` and `reason` say why (`reason`
 * is valid during the call only); `user_data` is what lockmesh_set_lost_callback was given.
 * Runs on the thread inside lockmesh_poll or another blocking call of this client; it must
 * not close the client. */
typedef void (*lockmesh_lost_fn)(lockmesh_lock* lock, int code, const char* reason,
                                 void* user_data);

/* The message of an error code, e.g. "timed out" for LOCKMESH_TIMED_OUT; "unknown error" for
 * a value that is not a code. A static string: never free it. Thread-safe. */
LOCKMESH_API const char* lockmesh_strerror(int code);

/* The default socket path ($LOCKMESH_SOCKET, else $XDG_RUNTIME_DIR/lockmesh/node.sock, else
 * /tmp/lockmesh-<uid>/node.sock), as a string the caller frees with lockmesh_free. NULL if
 * out of memory. */
LOCKMESH_API char* lockmesh_default_socket(void);

/* Fills `options` with the defaults above. */
LOCKMESH_API void lockmesh_client_options_init(lockmesh_client_options* options);
/* Fills `options` with the defaults above (exclusive, wait forever, quantity 1). */
LOCKMESH_API void lockmesh_lock_options_init(lockmesh_lock_options* options);

/* Connects to the node at `socket_or_null` (NULL or "": the default socket) and opens a
 * session. On success stores a new client in *out (owned by the caller: lockmesh_close) and
 * returns 0; on failure stores NULL and returns the code (LOCKMESH_UNAVAILABLE: no node
 * there; LOCKMESH_PERMISSION_DENIED: the node runs as an untrusted user), with the reason in
 * lockmesh_connect_error(). Blocks up to 5 s. */
LOCKMESH_API int lockmesh_connect(const char* socket_or_null, lockmesh_client** out);

/* As lockmesh_connect with options (NULL: the defaults). */
LOCKMESH_API int lockmesh_connect_with(const lockmesh_client_options* options,
                                       lockmesh_client** out);

/* The reason the calling thread's last failed lockmesh_connect* gave ("" if none). Valid until
 * that thread's next lockmesh_connect*; never free it. Thread-local. */
LOCKMESH_API const char* lockmesh_connect_error(void);

/* Closes the connection; the node releases every lock of the session. Frees the client; the
 * lockmesh_lock handles it granted stay the caller's to free (lockmesh_lock_free). NULL is
 * ignored. Does not wait for the node's answer. */
LOCKMESH_API void lockmesh_close(lockmesh_client* client);

/* The text of the last error this client returned ("code: reason", e.g. "timed out: ..."), ""
 * if its last call succeeded. Valid until the client's next call; never free it. */
LOCKMESH_API const char* lockmesh_last_error(const lockmesh_client* client);

/* Takes `resource` exclusively, waiting at most `timeout_ms` (<0 forever, 0 try once).
 * On success stores a new lock in *out (owned by the caller) and returns 0; else stores NULL
 * and returns LOCKMESH_BUSY, LOCKMESH_TIMED_OUT, LOCKMESH_UNAVAILABLE, ... Blocks. */
LOCKMESH_API int lockmesh_lock_acquire(lockmesh_client* client, const char* resource,
                                       int64_t timeout_ms, lockmesh_lock** out);

/* As lockmesh_lock_acquire with a mode (a lockmesh_mode) and a timeout. */
LOCKMESH_API int lockmesh_lock_acquire_mode(lockmesh_client* client, const char* resource,
                                            int mode, int64_t timeout_ms, lockmesh_lock** out);

/* As lockmesh_lock_acquire with every option (NULL: the defaults). */
LOCKMESH_API int lockmesh_lock_acquire_with(lockmesh_client* client, const char* resource,
                                            const lockmesh_lock_options* options,
                                            lockmesh_lock** out);

/* Try once: 0 and a lock, or LOCKMESH_BUSY if another holder's mode conflicts with `mode`.
 * Blocks until the node answers (about one round trip). */
LOCKMESH_API int lockmesh_lock_try(lockmesh_client* client, const char* resource, int mode,
                                   lockmesh_lock** out);

/* Releases `lock` and frees the handle, whatever the result (the handle must not be used
 * again). Returns 0, or the error (e.g. LOCKMESH_UNAVAILABLE if the connection ended: the
 * node has released it already). Blocks for the node's answer. */
LOCKMESH_API int lockmesh_lock_release(lockmesh_client* client, lockmesh_lock* lock);

/* As lockmesh_lock_release; `rollback` nonzero recycles a transactional sequence value. */
LOCKMESH_API int lockmesh_lock_release_ex(lockmesh_client* client, lockmesh_lock* lock,
                                          int rollback);

/* Frees a lock handle without telling the node (the lock stays held until released through a
 * copy of its id, or the session ends). NULL is ignored. */
LOCKMESH_API void lockmesh_lock_free(lockmesh_lock* lock);

/* The grant's fencing token: strictly increasing per resource. 0 for NULL. */
LOCKMESH_API uint64_t lockmesh_lock_token(const lockmesh_lock* lock);
/* The node's id of the lock. 0 for NULL. */
LOCKMESH_API uint64_t lockmesh_lock_id(const lockmesh_lock* lock);
/* The set element, sequence value or timestamp granted; "" for other resource types and NULL.
 * Owned by the lock. */
LOCKMESH_API const char* lockmesh_lock_element(const lockmesh_lock* lock);
/* The resource name. Owned by the lock. */
LOCKMESH_API const char* lockmesh_lock_resource(const lockmesh_lock* lock);
/* The mode the lock was granted in (a lockmesh_mode). */
LOCKMESH_API int lockmesh_lock_mode(const lockmesh_lock* lock);
/* Nonzero once the client has reported this lock lost. */
LOCKMESH_API int lockmesh_lock_is_lost(const lockmesh_lock* lock);

/* Sets (NULL: clears) the lost-lock callback; see lockmesh_lost_fn. */
LOCKMESH_API void lockmesh_set_lost_callback(lockmesh_client* client, lockmesh_lost_fn fn,
                                             void* user_data);

/* A descriptor that becomes readable when the client has notifications to process (then call
 * lockmesh_poll(client, 0)); for poll()/select()/epoll loops. Owned by the client: do not
 * close or read it. */
LOCKMESH_API int lockmesh_fd(const lockmesh_client* client);

/* Processes notifications (lost locks, lease renewals) for up to `timeout_ms` ms (0: only
 * what has arrived), running the lost callback on this thread. Returns 0, or
 * LOCKMESH_UNAVAILABLE once the connection has ended. */
LOCKMESH_API int lockmesh_poll(lockmesh_client* client, int64_t timeout_ms);

/* The node's status as a JSON object (the fields of `lockmesh status --json`), in *out_json,
 * a string the caller frees with lockmesh_free. Blocks. */
LOCKMESH_API int lockmesh_status_json(lockmesh_client* client, char** out_json);

/* The node's lock listing as a JSON array of objects (resource, held, mode, quantity,
 * lock_id, token, element, node_id, client_id, pid, uid, client_name), only resources whose
 * name starts with `prefix_or_null` (NULL or "": all), in *out_json, which the caller frees
 * with lockmesh_free. Blocks. */
LOCKMESH_API int lockmesh_locks_json(lockmesh_client* client, const char* prefix_or_null,
                                     char** out_json);

/* Frees a string this library returned. NULL is ignored. */
LOCKMESH_API void lockmesh_free(char* text);

/* Parses a mode name ("EX", "PR", "Exclusive", "shared", ... case-insensitively) into *mode.
 * Returns 0 or LOCKMESH_INVALID_ARGUMENT. */
LOCKMESH_API int lockmesh_mode_parse(const char* text, int* mode);
/* "NL".."EX"; "?" for a value that is not a mode. Static. */
LOCKMESH_API const char* lockmesh_mode_name(int mode);

#ifdef __cplusplus
}
#endif

#endif /* LOCKMESH_H_ */
