"""The Python package (python/lockmesh) against a real node, and the README's C and Python
examples. Run by CTest (label net) with /usr/bin/python3 -m pytest; the environment names the
lockmesh binary (LOCKMESH_BINARY), the library (LOCKMESH_LIBRARY), the C header's folder
(LOCKMESH_CAPI_INCLUDE) and the source tree (LOCKMESH_SOURCE_DIR)."""

import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import lockmesh

DEADLINE = 30.0  # generous: the box is loaded


class Node:
    def __init__(self, directory):
        self.socket = os.path.join(directory, "node.sock")
        self.proc = subprocess.Popen(
            [os.environ["LOCKMESH_BINARY"], "node", "--local", "--socket", self.socket,
             "--data-dir", os.path.join(directory, "data")],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(directory, "node.log"), "w"))
        try:
            self._wait_ready()
        except BaseException:
            self.stop()  # any failure here (even an unimportable package) must not leak the node
            raise

    def _wait_ready(self):
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                lockmesh.Client(self.socket).close()
                return
            except lockmesh.LockmeshError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the node did not start")
                time.sleep(0.02)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def node():
    with tempfile.TemporaryDirectory(prefix="cabi-pytest-") as directory:
        n = Node(directory)
        try:
            yield n
        finally:
            n.stop()


def test_lock_gives_token_and_element(node):
    with lockmesh.Client(node.socket) as c:
        with c.lock("R", timeout=2.0, mode="EX") as l:
            assert l.token > 0 and l.element == "" and l.mode == "EX" and l.resource == "R"
            assert [row["resource"] for row in c.locks()] == ["R"]
            assert c.status()["locks_held"] == 1
        assert c.locks() == []
        with c.lock("_s_seq[1]", timeout=2.0) as s1:
            first = int(s1.element)
        with c.lock("_s_seq[1]", timeout=2.0) as s2:
            assert int(s2.element) > first


def test_try_lock_timeout_and_modes(node):
    with lockmesh.Client(node.socket) as a, lockmesh.Client(node.socket) as b:
        held = a.lock("R", timeout=2.0)
        assert b.try_lock("R") is None
        with pytest.raises(lockmesh.Busy) as busy:
            b.lock("R", timeout=0)
        assert "busy" in str(busy.value).lower() and busy.value.code == lockmesh.BUSY
        start = time.monotonic()
        with pytest.raises(lockmesh.TimedOut) as timed_out:
            b.lock("R", timeout=0.3)
        assert time.monotonic() - start >= 0.25
        assert "timed out" in str(timed_out.value).lower()
        token = held.token
        held.release()
        with b.lock("R", timeout=2.0) as again:
            assert again.token > token
        # Two protected reads share; an exclusive request conflicts with them.
        with a.lock("S", mode="PR", timeout=2.0), b.lock("S", mode="ProtectedRead", timeout=2.0):
            assert a.try_lock("S", mode="EX") is None
        with pytest.raises(lockmesh.InvalidArgument):
            a.lock("S", mode="bogus")


def test_rollback_on_exception(node):
    with lockmesh.Client(node.socket) as c:
        with pytest.raises(RuntimeError):
            with c.lock("_S_tx[1]", timeout=2.0) as l:
                value = l.element
                raise RuntimeError("the transaction failed")
        with c.lock("_S_tx[1]", timeout=2.0) as l:
            assert l.element == value  # rolled back: the value came back


def test_connect_error_has_the_c_words():
    with tempfile.TemporaryDirectory(prefix="cabi-pytest-") as directory:
        with pytest.raises(lockmesh.LockmeshError) as error:
            lockmesh.Client(os.path.join(directory, "none.sock"))
        assert error.value.code in (lockmesh.UNAVAILABLE, lockmesh.IO_ERROR, lockmesh.NOT_FOUND)
        assert "none.sock" in str(error.value) or len(str(error.value)) > 10


HOLDER = r"""
import sys, lockmesh
with lockmesh.Client(sys.argv[1]) as c:
    with c.lock("contended", timeout=10.0) as l:
        print(l.token, flush=True)
        sys.stdin.readline()
"""


def test_two_processes_contend(node):
    env = dict(os.environ)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, node.socket], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        token = int(holder.stdout.readline())
        with lockmesh.Client(node.socket) as c:
            assert c.try_lock("contended") is None
            rows = c.locks("contended")
            assert len(rows) == 1 and rows[0]["pid"] == holder.pid
            # A waiter in a third process is granted once the holder lets go.
            waiter = subprocess.Popen([sys.executable, "-c", HOLDER, node.socket],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                      env=env)
            try:
                deadline = time.monotonic() + DEADLINE
                while len(c.locks("contended")) < 2:
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
                holder.stdin.write("\n")
                holder.stdin.flush()
                assert holder.wait(DEADLINE) == 0
                assert int(waiter.stdout.readline()) > token
                waiter.stdin.write("\n")
                waiter.stdin.flush()
                assert waiter.wait(DEADLINE) == 0
            finally:
                waiter.kill()
                waiter.wait()
    finally:
        holder.kill()
        holder.wait()


def test_lost_lock_check_callback_and_asyncio(node):
    c = lockmesh.Client(node.socket)
    seen = []
    c.on_lost(lambda lock, reason: seen.append((lock.resource, reason)))
    l = c.lock("L", timeout=2.0)
    other = c.lock("M", timeout=2.0)
    l.check()  # still held
    assert not l.lost
    node.stop()

    async def wait():
        return await asyncio.wait_for(c.wait_lost(l), DEADLINE)

    assert asyncio.run(wait()) is l
    assert l.lost and other.lost
    with pytest.raises(lockmesh.LockLost) as lost:
        l.check()
    assert "lost" in str(lost.value)
    assert sorted(r for r, _ in seen) == ["L", "M"]
    assert not c.poll(0)  # the connection has ended
    with pytest.raises(lockmesh.LockLost):
        l.release()
    c.close()


def test_lost_lock_seen_by_poll_in_a_select_loop(node):
    import select
    with lockmesh.Client(node.socket) as c:
        seen = []
        c.on_lost(lambda lock, reason: seen.append(reason))
        l = c.lock("P", timeout=2.0)
        node.stop()
        deadline = time.monotonic() + DEADLINE
        while not seen and time.monotonic() < deadline:
            select.select([c.fileno()], [], [], 1.0)
            c.poll(0)
        assert len(seen) == 1 and "lost" in seen[0] and l.lost


def _readme_block(language):
    text = open(os.path.join(os.environ["LOCKMESH_SOURCE_DIR"], "README.md")).read()
    match = re.search(r"<!-- example: %s -->\s*```%s\n(.*?)```" % (language, language), text,
                      re.S)
    assert match, "README has no %s example" % language
    return match.group(1)


def test_readme_python_example(node):
    env = dict(os.environ, LOCKMESH_SOCKET=node.socket)
    out = subprocess.run([sys.executable, "-c", _readme_block("python")], env=env,
                         capture_output=True, text=True, timeout=DEADLINE)
    assert out.returncode == 0, out.stderr
    assert "token" in out.stdout


def test_readme_c_example(node, tmp_path):
    source = tmp_path / "example.c"
    source.write_text(_readme_block("c"))
    library = os.environ["LOCKMESH_LIBRARY"]
    subprocess.run(["cc", "-std=c99", "-Wall", "-Werror", "-I", os.environ["LOCKMESH_CAPI_INCLUDE"],
                    str(source), "-o", str(tmp_path / "example"), library], check=True)
    env = dict(os.environ, LOCKMESH_SOCKET=node.socket,
               LD_LIBRARY_PATH=os.path.dirname(library))
    out = subprocess.run([str(tmp_path / "example")], env=env, capture_output=True, text=True,
                         timeout=DEADLINE)
    assert out.returncode == 0, out.stderr
    assert "token" in out.stdout
