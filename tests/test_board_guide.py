"""docs/board.md only names commands that exist: every ternpynq line parses with the real CLI
parser, and every make line is a target the overlay Makefile has for a known board."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from ternpynq.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "board.md"


def shell_lines() -> list[str]:
    """Lines of the guide's ``sh`` blocks, and inline code spans of its prose."""
    lines, block = [], None
    for line in GUIDE.read_text().splitlines():
        if line.startswith("```"):
            block = None if block is not None else line[3:].strip()
        elif block == "sh":
            lines.append(line.strip())
        elif block is None:
            lines += re.findall(r"`([^`]+)`", line)
    return lines


def commands(program: str) -> list[str]:
    return [line for line in shell_lines() if line.startswith(program + " ")]


def test_the_guide_covers_the_board_commands():
    used = {shlex.split(c)[1] for c in commands("ternpynq")}
    assert {"doctor", "selftest", "classify", "serve"} <= used
    assert any("--backend pynq" in c for c in commands("ternpynq"))
    assert commands("make")


@pytest.mark.parametrize("command", commands("ternpynq"))
def test_every_ternpynq_command_parses(command):
    argv = shlex.split(command, comments=True)[1:]
    args = build_parser().parse_args(argv)  # an unknown command or option exits 2 here
    assert args.command == argv[0]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make (apt install make)")
@pytest.mark.parametrize("command", commands("make"))
def test_every_make_command_is_a_real_target(command):
    argv = shlex.split(command, comments=True)
    # -n prints the recipe without running it; an unknown board or target fails
    proc = subprocess.run([*argv[:1], "-n", *argv[1:]], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
