"""`ternpynq serve` as a real process on loopback, with waitress."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from serve_harness import blank_png, fetch, running_server

from ternpynq.serve.commands import QUEUE_WARNING_S, OnePerInterval

BLANK_PNG = blank_png(28, 28, 1)


def test_server_answers_over_http(resnet20_path):
    with running_server(resnet20_path) as (_, base):
        body = json.loads(fetch(f"{base}/v1/classify?top=2", BLANK_PNG))
        assert len(body["results"][0]["top"]) == 2
        try:
            fetch(f"{base}/v1/classify", b"junk")
            raise AssertionError("a non-image was accepted")
        except urllib.error.HTTPError as err:
            with err:
                assert err.code == 400
                assert "not a readable image" in json.loads(err.read())["detail"]


def test_bad_model_fails_at_start_with_one_line(tmp_path):
    bad = tmp_path / "bad.tpq"
    bad.write_bytes(b"garbage")
    out = subprocess.run(
        [sys.executable, "-m", "ternpynq.cli", "serve", "--model", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def _nice_of(task: Path) -> int:
    fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19 of proc(5), counted after the command name


def _thread_nices(pid: int) -> list[int]:
    return sorted(_nice_of(task) for task in Path(f"/proc/{pid}/task").iterdir())


def _child(pid: int) -> int:
    (child,) = {
        int(c)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for c in (task / "children").read_text().split()
    }
    return child


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads Linux's /proc")
def test_request_threads_yield_to_the_backend(resnet20_path):
    """Request threads run at --request-nice; the batcher and the emu child, restarted or
    not, keep the server's priority, so under load the backend wins a contended core."""
    options = ("--request-nice", "7", "--threads", "3")
    with running_server(resnet20_path, *options) as (proc, base):
        first = fetch(f"{base}/v1/classify", BLANK_PNG)
        base_nice = os.getpriority(os.PRIO_PROCESS, 0)
        # Python 3.11 names no native threads: count them. The main thread and the 3 request
        # threads are lowered; the 2 batcher threads are not
        nices = _thread_nices(proc.pid)
        assert nices.count(base_nice + 7) == 4
        assert nices.count(base_nice) >= 2 and set(nices) == {base_nice, base_nice + 7}
        child = _child(proc.pid)
        assert _nice_of(Path(f"/proc/{child}")) == base_nice
        os.kill(child, signal.SIGKILL)  # the next batch restarts it, from a batcher thread
        assert fetch(f"{base}/v1/classify", BLANK_PNG) == first
        restarted = _child(proc.pid)
        assert restarted != child and _nice_of(Path(f"/proc/{restarted}")) == base_nice


def test_busy_thread_warnings_are_thinned(resnet20_path):
    """waitress warns on every request that finds all threads busy; the server passes one
    such line per 10 s, so a burst neither floods the log nor fills an unread pipe."""
    with running_server(resnet20_path, "--threads", "1") as (proc, base):
        start = time.monotonic()
        with ThreadPoolExecutor(12) as pool:
            answers = set(pool.map(lambda _: fetch(f"{base}/v1/classify", BLANK_PNG), range(96)))
        elapsed = time.monotonic() - start
        assert len(answers) == 1
    warnings = [line for line in proc.stderr_text.splitlines() if "Task queue depth" in line]
    # one line per started interval: a loaded machine can stretch the burst past 10 s
    assert 1 <= len(warnings) <= 1 + int(elapsed // QUEUE_WARNING_S), proc.stderr_text


def test_one_per_interval_counts_what_it_held_back():
    records = []
    logger = logging.getLogger("ternpynq.test.thinned")
    logger.propagate = False
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger.addHandler(handler)
    logger.addFilter(OnePerInterval(0.2))
    for depth in range(50):
        logger.warning("Task queue depth is %d", depth)
    time.sleep(0.25)
    logger.warning("Task queue depth is %d", 7)
    assert records[0] == "Task queue depth is 0"
    assert records[1].startswith("Task queue depth is 7 (and 49 more such warnings in the last")
    assert len(records) == 2
