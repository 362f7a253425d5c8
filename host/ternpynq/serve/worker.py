"""A CPU backend in its own process, so the server's request threads and the backend do not
share one GIL.

Measured on 2 cores (docs/serving.md): with ``emu`` in the server's process, 16 clients kept
the whole server on about one core, since the emulator's numpy calls and the HTTP and decode
work of the request threads take turns on the GIL. In a child process the backend runs on the
other core. The child is sent the server's bundle as bytes (``to_bytes``, checksum
included), so a restarted child runs the same model even if the file on disk has changed.
It answers batches over a socket pair; codes and outputs travel as numpy arrays, unchanged,
so the answers are bit-identical to the backend in-process (tests/serve/test_worker.py).

The child is a fresh ``python`` that calls ``main`` here, not a multiprocessing spawn: spawn
re-runs the parent's main script, which fails for stdin and notebooks and surprises scripts
without a ``__main__`` guard. A child that dies or stops answering is reported as ``OSError`` (the
service's 503) and is started again on the next batch.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection

import numpy as np

from ternpynq.bundle import Bundle, from_bytes, to_bytes

ANSWER_TIMEOUT_S = 110.0  # under the batcher's 120 s, so a request hears why it failed
START_TIMEOUT_S = 120.0


class ProcessBackend:
    """The backend ``name`` for ``bundle``, in a child process.

    ``options`` go to ``backends.create`` in the child, so they must be JSON values. ``send``
    queues a batch and returns the function that waits for its output, so the next batch can
    be queued while the child computes this one: the child then starts it without waiting for
    the server's GIL (docs/serving.md). The child answers in the order sent, so the caller
    must wait for the answers in that order, as the batcher does; ``run`` is send-and-wait.
    """

    def __init__(self, bundle: Bundle, name: str, **options) -> None:
        self.bundle, self.name, self.options = bundle, name, options
        self._conn: Connection | None = None
        self._child: subprocess.Popen | None = None
        self._in_flight = 0  # batches sent and not yet answered
        # the child, its socket and the count above; notified when a batch is answered
        self._lock = threading.Condition(threading.RLock())
        self._start()

    def _start(self) -> None:
        mine, theirs = socket.socketpair()
        fd = theirs.fileno()
        entry = f"from {__name__} import main; main()"
        cmd = [sys.executable, "-c", entry, str(fd), self.name, json.dumps(self.options)]
        try:
            self._child = subprocess.Popen(cmd, pass_fds=(fd,), stdin=subprocess.DEVNULL)
        except OSError:
            mine.close()
            raise
        finally:
            theirs.close()
        self._conn = Connection(mine.detach())
        try:
            self._conn.send_bytes(to_bytes(self.bundle))  # serialised again, not kept
            self._answer(self._conn, START_TIMEOUT_S, "start")
        except BaseException:
            self._stop()
            raise

    def run(self, codes: np.ndarray) -> np.ndarray:
        """(N, C, H, W) int8 codes -> (N, K) output codes, computed by the child."""
        return self.send(codes)()

    def send(self, codes: np.ndarray) -> Callable[[], np.ndarray]:
        """Queue ``codes`` for the child; returns the function that waits for its output."""
        with self._lock:
            if not self._alive():
                # batches sent to the dead child hear its end of file soon; restart after
                if not self._lock.wait_for(lambda: not self._in_flight, timeout=5):
                    raise self._exited()
                self._stop()
                self._start()
            conn = self._conn
            try:
                conn.send(codes)
            except OSError:  # the child is gone: its exit code says more than the socket
                raise self._exited() from None
            self._in_flight += 1

        def wait() -> np.ndarray:
            try:
                return self._answer(conn, ANSWER_TIMEOUT_S, "answer")
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self._lock.notify_all()

        return wait

    def _alive(self) -> bool:
        child = self._child  # one collected by _kill has its return code already
        return child is not None and child.returncode is None and child.poll() is None

    def _answer(self, conn: Connection, timeout: float, what: str):
        try:
            message = conn.recv() if conn.poll(timeout) else None
        except (EOFError, OSError):
            raise self._exited() from None
        if message is None:
            self._kill()  # it is not answering: do not wait for it to say goodbye
            raise TimeoutError(f"the {self.name} backend process did not {what} in time")
        status, value = message
        if status == "value":
            raise ValueError(value)
        if status == "error":
            raise OSError(f"{self.name} backend: {value}")
        return value

    def _exited(self) -> OSError:
        """The error for a child found gone, after collecting its exit code."""
        return OSError(f"the {self.name} backend process exited (code {self._kill()})")

    def _kill(self) -> int | None:
        """End the child now and collect its exit code. The socket stays open: another
        thread may be waiting on it, and hears the child's end as end of file."""
        with self._lock:
            if self._child is None:
                return None
            if self._child.poll() is None:
                self._child.kill()
            return self._child.wait(timeout=5)

    def _stop(self, wait: float = 5.0) -> int | None:
        """End the child, politely for up to ``wait`` s; returns its exit code."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(OSError):  # it may be gone already
                    self._conn.send(None)
                self._conn.close()
                self._conn = None
            code = None
            if self._child is not None:
                try:
                    code = self._child.wait(timeout=wait)
                except subprocess.TimeoutExpired:
                    code = self._kill()
                self._child = None
            return code

    def close(self) -> None:
        self._stop()


def serve(conn: Connection, name: str, options: dict) -> None:
    """The child: open the backend, then answer batches until told to stop or orphaned."""
    from ternpynq.runtime import backends

    try:
        blob = conn.recv_bytes()
    except EOFError:  # the server went before it sent the model
        return
    try:
        backend = backends.create(name, from_bytes(blob), **options)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ok", None))
    try:
        while True:
            try:
                codes = conn.recv()
            except EOFError:  # the server is gone
                return
            if codes is None:
                return
            try:
                conn.send(("ok", backend.run(codes)))
            except ValueError as exc:
                conn.send(("value", str(exc)))
            except Exception as exc:  # noqa: BLE001 - every failure goes back to the server
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        backend.close()


def main() -> None:
    """The child's entry point: ``fd name options-json``; the bundle comes over ``fd``."""
    # Ctrl-C reaches the whole process group; the server decides when its child ends
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd, name, options = sys.argv[1:4]
    serve(Connection(int(fd)), name, json.loads(options))
