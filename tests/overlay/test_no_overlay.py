"""A wheel installed on a board without overlay/ next to it: every command still parses, and
the commands that need the overlay sources say so in one line."""

import os
import subprocess
import sys

import ternpynq


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TERNPYNQ_OVERLAY="/nonexistent/overlay")
    return subprocess.run(
        [sys.executable, "-m", "ternpynq.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_help_and_runtime_commands_work_without_overlay_sources():
    assert run("--help").returncode == 0
    out = run("inspect", str(ternpynq.DEFAULT_MODEL))
    assert out.returncode == 0, out.stderr


def test_estimate_without_overlay_sources_is_one_line():
    out = run("estimate", "--arch", "resnet18", "--board", "pynq-z2")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0
    assert "TERNPYNQ_OVERLAY" in out.stderr
