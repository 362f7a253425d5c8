"""The service under hostile load, as a real waitress process on loopback.

Hostile images (thin PNGs, a 64-megapixel RGBA PNG, four of each at once) must each get a 4xx
and must not grow the server's peak memory (VmHWM) by 300 MB; 110 idle, half-sent
connections must not starve /healthz; a non-loopback address needs a token.
"""

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from serve_harness import blank_png, fetch, running_server

MEMORY_BUDGET = 300 << 20


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) << 10
    raise AssertionError("no VmHWM in /proc")


@pytest.fixture(scope="module")
def server(resnet20_path):
    with running_server(resnet20_path, "--channel-timeout", "5") as running:
        yield running


def status_of(base: str, body: bytes) -> int:
    try:
        fetch(f"{base}/v1/classify", body, timeout=60)
        return 200
    except urllib.error.HTTPError as err:
        with err:
            return err.code


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_hostile_images_get_4xx_and_bounded_memory(server):
    proc, base = server
    fetch(f"{base}/v1/classify", blank_png(28, 28, 1))  # warm: model loaded, backend run
    before = peak_rss(proc.pid)
    hostile = [
        blank_png(1_000_000, 1, 1),
        blank_png(64_000_000, 1, 1),
        blank_png(1, 1_000_000, 1),
        blank_png(8000, 8000, 4),
    ]
    codes: list[int] = []
    threads = [
        threading.Thread(target=lambda b=body: codes.append(status_of(base, b)))
        for body in hostile
        for _ in range(4)  # four of each at once
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(codes) == 16 and all(400 <= c < 500 for c in codes), codes
    growth = peak_rss(proc.pid) - before
    assert growth < MEMORY_BUDGET, f"peak RSS grew by {growth >> 20} MB"
    assert fetch(f"{base}/healthz", timeout=5)  # and the server still answers


LARGE_IMAGE_BUDGET = 150 << 20


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize(("channels", "depth"), [(4, 8), (1, 16)], ids=["rgba", "grey16"])
def test_the_largest_accepted_images_cost_bounded_memory(resnet20_path, channels, depth):
    # 16 megapixels, the most accepted, in the modes whose conversion once held full-size
    # float64 or RGBA copies (about 250 MB for a 70 KB RGBA PNG, 280 MB for a 31 KB 16-bit one)
    # a fresh server: a peak to measure against
    with running_server(resnet20_path, "--channel-timeout", "5") as (proc, base):
        fetch(f"{base}/v1/classify", blank_png(28, 28, 1))
        before = peak_rss(proc.pid)
        assert fetch(f"{base}/v1/classify", blank_png(4000, 4000, channels, depth), timeout=60)
        growth = peak_rss(proc.pid) - before
    assert growth < LARGE_IMAGE_BUDGET, f"peak RSS grew by {growth >> 20} MB"


def test_half_open_connections_do_not_starve_health(server):
    _, base = server
    port = int(base.rsplit(":", 1)[1])
    idle = []
    try:
        for _ in range(110):  # each sends half a request, then goes quiet
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab")
            idle.append(s)
        start = time.monotonic()
        assert b"ok" in fetch(f"{base}/healthz", timeout=5)
        assert time.monotonic() - start < 5
    finally:
        for s in idle:
            s.close()


def test_idle_connections_are_closed_after_the_channel_timeout(server):
    _, base = server
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
        start = time.monotonic()
        assert s.recv(1) == b""  # the server hangs up
        assert time.monotonic() - start < 5 + 5 + 3  # timeout + cleanup interval + slack


def serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ternpynq.cli", "serve", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "TERNPYNQ_TOKEN"},
    )


def test_other_addresses_need_a_token():
    out = serve("--host", "0.0.0.0", "--port", "0")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "token" in out.stderr
    assert out.stdout == ""


def test_bad_port_and_port_in_use_are_one_line(resnet20_path):
    out = serve("--port", "99999")
    assert out.returncode == 2 and "not a port number" in out.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = serve("--model", str(resnet20_path), "--port", str(port))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "serving" not in out.stdout
