"""Helpers for tests that drive `ternpynq serve` as a real process on loopback, and a counter
of how many threads are inside a section at once."""

import contextlib
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str, data: bytes | None = None, timeout: float = 30) -> bytes:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "image/png"})
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        return reply.read()


def wait_until_listening(proc: subprocess.Popen, base: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while True:
        try:
            fetch(f"{base}/healthz", timeout=2)
            return
        except (urllib.error.URLError, ConnectionError):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, f"server did not start within {limit} s"
            time.sleep(0.2)


def blank_png(width: int, height: int, channels: int, depth: int = 8) -> bytes:
    """A valid all-zero PNG (grey or RGBA, 8 or 16 bits a sample), written row by row: the
    test never holds the decoded image in memory."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    colour = {1: 0, 4: 6}[channels]
    head = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    packer = zlib.compressobj(9)
    row = bytes(1 + width * channels * depth // 8)  # filter byte 0, then the pixels
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


@contextlib.contextmanager
def running_server(model, *options: str):
    """`ternpynq serve --model model *options` on a free loopback port: (process, base URL).
    Once the block ends the server is stopped and its stderr is in ``process.stderr_text``."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "ternpynq.cli", "serve", "--model", str(model)]
    cmd += ["--port", str(port), *options]
    with subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            wait_until_listening(proc, base)
            yield proc, base
        finally:
            proc.terminate()
            _, proc.stderr_text = proc.communicate(timeout=30)


class Peak:
    """``with peak:`` around a section; ``peak.most`` is the most threads inside it at once."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self._lock = threading.Lock()

    def __enter__(self) -> "Peak":
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self.now -= 1
