"""Helpers for tests that drive `ternpynq serve` as a real process on loopback, and a counter
of how many threads are inside a section at once."""

import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request


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
