"""Fixtures for the overlay tests: the two real boards and a small board that forces every
corner of the kernel (several output-channel tiles, partial pixel tiles, partial groups)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # harness.py

from ternpynq.overlay.boards import Board, load_board  # noqa: E402

SMALL_BOARD = {
    "name": "small-test",
    "part": "xc7z020clg400-1",
    "ps": "zynq7",
    "clock_mhz": 100,
    "pe": {"P": 4, "g": 8},
    "buffers": {
        "weight_bytes": 512,
        "input_elems": 4096,
        "input_read_elems": 8,
        "max_kernel": 7,
        "max_channels": 256,
    },
    "axi": {"data_bits": 32, "ports": ["HP0"]},
    "capacity": {"lut": 53200, "ff": 106400, "bram36": 140, "uram": 0, "dsp": 220},
    "arm": {"layer_launch_us": 60.0, "byte_ns": 4.0},
}


@pytest.fixture(scope="session")
def small_board(tmp_path_factory) -> Board:
    path = tmp_path_factory.mktemp("boards") / "small-test.json"
    path.write_text(json.dumps(SMALL_BOARD))
    return load_board(path)


@pytest.fixture(scope="session", params=["pynq-z2", "zcu104", "small"])
def any_board(request, small_board) -> Board:
    return small_board if request.param == "small" else load_board(request.param)
