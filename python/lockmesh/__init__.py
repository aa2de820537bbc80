"""lockmesh: take lockmesh locks from Python, through libmesh's C ABI (<lockmesh.h>) with ctypes.

    import lockmesh
    with lockmesh.Client() as c:                      # the default socket, or Client(socket)
        with c.lock("R", timeout=2.0, mode="EX") as l:
            use(l.token, l.element)                   # fencing token; set/sequence element
            l.check()                                 # raises LockLost if it was lost

A Client is one connection and one session on a node; closing it releases its locks. Use a
Client from one thread at a time. Lost locks are noticed while the client runs a call or
poll(): poll(timeout) blocks up to `timeout` seconds and runs the callbacks set with
on_lost() on the calling thread; for asyncio, `await c.wait_lost()` (or
loop.add_reader(c.fileno(), c.poll)). Errors raise LockmeshError subclasses carrying the
C error code (`.code`) and the node's words (`str(e)`).

The library is found from $LOCKMESH_LIBRARY, else the build tree (the copy in
<build>/python), else the installation prefix this package lives in, else the loader's path.
"""

import ctypes
import glob
import json
import os

__all__ = ["Client", "Lock", "LockmeshError", "Busy", "TimedOut", "Unavailable", "LockLost",
           "InvalidArgument", "MODES", "default_socket"]

# lockmesh_error values (the ABI; capi/lockmesh.h).
OK, NOT_FOUND, CORRUPTION, INVALID_ARGUMENT, IO_ERROR, BUSY, TIMED_OUT, IMPOSSIBLE, \
    CANT_WAIT, LOST, UNAVAILABLE, PERMISSION_DENIED, ALREADY_EXISTS, INTERNAL = range(14)
# lockmesh_mode values, by the names ParseLockMode also accepts.
MODES = {"NL": 0, "CR": 1, "CW": 2, "PR": 3, "PW": 4, "EX": 5}


def _find_library():
    env = os.environ.get("LOCKMESH_LIBRARY")
    if env:
        return env
    try:
        from . import _library  # written into the build tree's copy only
        return _library.LIBRARY
    except ImportError:
        pass
    # Installed as <prefix>/lib/python3/dist-packages/lockmesh: the library is in
    # <prefix>/lib or <prefix>/lib/<multiarch>.
    prefix = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
    for pattern in ("lib/libmesh.so.1", "lib/*/libmesh.so.1", "lib64/libmesh.so.1"):
        found = sorted(glob.glob(os.path.join(prefix, pattern)))
        if found:
            return found[0]
    return "libmesh.so.1"


_lib = ctypes.CDLL(_find_library())
_c_client_p = ctypes.c_void_p
_c_lock_p = ctypes.c_void_p
_LOST_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


class _LockOptions(ctypes.Structure):
    _fields_ = [("mode", ctypes.c_int), ("timeout_ms", ctypes.c_int64),
                ("quantity", ctypes.c_uint32), ("no_create", ctypes.c_int),
                ("idle_lifespan_ms", ctypes.c_int64)]


class _ClientOptions(ctypes.Structure):
    _fields_ = [("socket_path", ctypes.c_char_p), ("client_name", ctypes.c_char_p),
                ("connect_timeout_ms", ctypes.c_int64)]


def _declare(name, restype, *argtypes):
    f = getattr(_lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_strerror = _declare("lockmesh_strerror", ctypes.c_char_p, ctypes.c_int)
_default_socket = _declare("lockmesh_default_socket", ctypes.c_void_p)
_client_options_init = _declare("lockmesh_client_options_init", None, ctypes.POINTER(_ClientOptions))
_lock_options_init = _declare("lockmesh_lock_options_init", None, ctypes.POINTER(_LockOptions))
_connect_with = _declare("lockmesh_connect_with", ctypes.c_int, ctypes.POINTER(_ClientOptions),
                         ctypes.POINTER(_c_client_p))
_connect_error = _declare("lockmesh_connect_error", ctypes.c_char_p)
_close = _declare("lockmesh_close", None, _c_client_p)
_last_error = _declare("lockmesh_last_error", ctypes.c_char_p, _c_client_p)
_acquire_with = _declare("lockmesh_lock_acquire_with", ctypes.c_int, _c_client_p, ctypes.c_char_p,
                         ctypes.POINTER(_LockOptions), ctypes.POINTER(_c_lock_p))
_release_ex = _declare("lockmesh_lock_release_ex", ctypes.c_int, _c_client_p, _c_lock_p, ctypes.c_int)
_lock_free = _declare("lockmesh_lock_free", None, _c_lock_p)
_lock_token = _declare("lockmesh_lock_token", ctypes.c_uint64, _c_lock_p)
_lock_id = _declare("lockmesh_lock_id", ctypes.c_uint64, _c_lock_p)
_lock_element = _declare("lockmesh_lock_element", ctypes.c_char_p, _c_lock_p)
_lock_resource = _declare("lockmesh_lock_resource", ctypes.c_char_p, _c_lock_p)
_lock_mode = _declare("lockmesh_lock_mode", ctypes.c_int, _c_lock_p)
_lock_is_lost = _declare("lockmesh_lock_is_lost", ctypes.c_int, _c_lock_p)
_set_lost_callback = _declare("lockmesh_set_lost_callback", None, _c_client_p, _LOST_FN, ctypes.c_void_p)
_fd = _declare("lockmesh_fd", ctypes.c_int, _c_client_p)
_poll = _declare("lockmesh_poll", ctypes.c_int, _c_client_p, ctypes.c_int64)
_status_json = _declare("lockmesh_status_json", ctypes.c_int, _c_client_p, ctypes.POINTER(ctypes.c_void_p))
_locks_json = _declare("lockmesh_locks_json", ctypes.c_int, _c_client_p, ctypes.c_char_p,
                       ctypes.POINTER(ctypes.c_void_p))
_free = _declare("lockmesh_free", None, ctypes.c_void_p)
_mode_parse = _declare("lockmesh_mode_parse", ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int))
_mode_name = _declare("lockmesh_mode_name", ctypes.c_char_p, ctypes.c_int)


class LockmeshError(Exception):
    """A failed call: `code` is the lockmesh_error value, str() the C library's text."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class InvalidArgument(LockmeshError, ValueError):
    pass


class Busy(LockmeshError):
    """Try-lock: the resource is held in a conflicting mode."""


class TimedOut(LockmeshError, TimeoutError):
    pass


class Unavailable(LockmeshError, ConnectionError):
    """No node answers, the connection ended, or the mesh has no leader or quorum."""


class LockLost(LockmeshError):
    """The lock was lost: what it protects is no longer protected."""


_ERRORS = {INVALID_ARGUMENT: InvalidArgument, BUSY: Busy, TIMED_OUT: TimedOut,
           UNAVAILABLE: Unavailable, LOST: LockLost}


def _error(code, message):
    if not message:
        message = _strerror(code).decode()
    return _ERRORS.get(code, LockmeshError)(code, message)


def _take_string(ptr):
    try:
        return ctypes.string_at(ptr).decode()
    finally:
        _free(ptr)


def default_socket():
    """The socket a Client() connects to without arguments."""
    return _take_string(_default_socket())


def _mode_value(mode):
    if isinstance(mode, int):
        return mode
    value = ctypes.c_int()
    if _mode_parse(str(mode).encode(), ctypes.byref(value)) != OK:
        raise InvalidArgument(INVALID_ARGUMENT, "invalid argument: no such lock mode: %r" % (mode,))
    return value.value


class Lock:
    """A granted lock; a context manager that releases it on exit (rolling a transactional
    sequence value back if the block raised)."""

    def __init__(self, client, handle):
        self._client = client
        self._handle = handle
        self.token = _lock_token(handle)
        self.lock_id = _lock_id(handle)
        self.element = _lock_element(handle).decode()
        self.resource = _lock_resource(handle).decode()
        self.mode = _mode_name(_lock_mode(handle)).decode()
        self._lost_reason = None

    @property
    def lost(self):
        """True once the client has learnt that the lock was lost (runs no I/O: call
        Client.poll() or check() to learn of it)."""
        return self._handle is not None and bool(_lock_is_lost(self._handle)) or \
            self._lost_reason is not None

    def check(self):
        """Processes what the node sent, then raises LockLost if the lock was lost."""
        if self._handle is not None and not self.lost:
            self._client.poll(0)
        if self.lost:
            raise LockLost(LOST, self._lost_reason or "lost: the lock was lost")

    def release(self, rollback=False):
        """Releases the lock (rollback=True recycles a transactional sequence value).
        Raises LockLost if it had been lost. Releasing twice is a no-op."""
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        self._client._forget(handle)
        rc = _release_ex(self._client._handle, handle, 1 if rollback else 0)
        if rc != OK:
            raise _error(rc, _last_error(self._client._handle).decode())

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            self.release(rollback=exc_type is not None)
        except LockLost:
            if exc_type is None:
                raise
        return False

    def __repr__(self):
        return "<lockmesh.Lock %s %s token=%d>" % (self.resource, self.mode, self.token)


class Client:
    """One connection and session to a lockmesh node (socket=None: the default socket)."""

    def __init__(self, socket=None, name=None, connect_timeout=5.0):
        options = _ClientOptions()
        _client_options_init(ctypes.byref(options))
        options.socket_path = socket.encode() if socket else None
        options.client_name = name.encode() if name else None
        options.connect_timeout_ms = int(connect_timeout * 1000)
        handle = _c_client_p()
        rc = _connect_with(ctypes.byref(options), ctypes.byref(handle))
        if rc != OK:
            raise _error(rc, _connect_error().decode())
        self._handle = handle.value
        self._locks = {}       # C handle -> Lock, for the lost callback
        self._callbacks = []
        self._lost_fn = _LOST_FN(self._on_lost)  # kept alive as long as the client
        _set_lost_callback(self._handle, self._lost_fn, None)

    def _check(self, rc):
        if rc != OK:
            raise _error(rc, _last_error(self._handle).decode())

    def _forget(self, handle):
        self._locks.pop(handle, None)

    def _on_lost(self, handle, code, reason, user_data):
        lock = self._locks.get(handle)
        if lock is None:
            return
        lock._lost_reason = reason.decode() if reason else "lost"
        for callback in list(self._callbacks):
            try:
                callback(lock, lock._lost_reason)
            except Exception:  # a callback's error must not unwind through C
                pass

    def lock(self, resource, timeout=None, mode="EX", quantity=1, no_create=False,
             idle_lifespan=0.0):
        """Takes `resource`; timeout None waits forever, 0 tries once (raises Busy), >0
        waits at most that many seconds (raises TimedOut). Returns a Lock."""
        options = _LockOptions()
        _lock_options_init(ctypes.byref(options))
        options.mode = _mode_value(mode)
        options.timeout_ms = -1 if timeout is None else int(timeout * 1000)
        options.quantity = quantity
        options.no_create = 1 if no_create else 0
        options.idle_lifespan_ms = int(idle_lifespan * 1000)
        handle = _c_lock_p()
        self._check(_acquire_with(self._live(), resource.encode(), ctypes.byref(options),
                                  ctypes.byref(handle)))
        lock = Lock(self, handle.value)
        self._locks[handle.value] = lock
        return lock

    def try_lock(self, resource, mode="EX", quantity=1):
        """Tries once: a Lock, or None if the resource is held in a conflicting mode."""
        try:
            return self.lock(resource, timeout=0, mode=mode, quantity=quantity)
        except Busy:
            return None

    def on_lost(self, callback):
        """Adds callback(lock, reason), run on the thread inside poll() or any other call
        when one of this client's locks is lost. Returns the callback (usable as decorator)."""
        self._callbacks.append(callback)
        return callback

    def fileno(self):
        """A descriptor that becomes readable when poll() has work (select/asyncio)."""
        return _fd(self._live())

    def poll(self, timeout=0.0):
        """Processes notifications for up to `timeout` seconds, running lost callbacks.
        Returns False once the connection has ended, else True."""
        rc = _poll(self._live(), int(timeout * 1000))
        if rc == UNAVAILABLE:
            return False
        self._check(rc)
        return True

    async def wait_lost(self, lock=None):
        """Waits (asyncio) until `lock` (any lock of this client if None) is lost, and
        returns that Lock. Processes the client's notifications while it waits."""
        import asyncio
        loop = asyncio.get_running_loop()
        while True:
            lost = [l for l in ([lock] if lock else list(self._locks.values())) if l.lost]
            if lost:
                return lost[0]
            ready = loop.create_future()
            fd = self.fileno()
            loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
            try:
                await asyncio.wait_for(ready, timeout=1.0)
            except asyncio.TimeoutError:
                pass
            finally:
                loop.remove_reader(fd)
            self.poll(0)

    def status(self):
        """The node's status as a dict (the fields of `lockmesh status --json`)."""
        out = ctypes.c_void_p()
        self._check(_status_json(self._live(), ctypes.byref(out)))
        return json.loads(_take_string(out))

    def locks(self, prefix=None):
        """The node's lock listing (held and queued), as a list of dicts."""
        out = ctypes.c_void_p()
        self._check(_locks_json(self._live(), prefix.encode() if prefix else None,
                                ctypes.byref(out)))
        return json.loads(_take_string(out))

    def _live(self):
        if self._handle is None:
            raise Unavailable(UNAVAILABLE, "unavailable: the client is closed")
        return self._handle

    def close(self):
        """Closes the connection; the node releases this client's locks. Idempotent."""
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        for lock in self._locks.values():
            _lock_free(lock._handle)
            lock._handle = None
        self._locks.clear()
        _close(handle)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
