"""The C++ testbench, plain and under -fsanitize=address,undefined, on golden-model vectors."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from ternpynq.overlay.csim_build import build_testbench
from ternpynq.overlay.csim_vectors import network_cases, write_vectors
from ternpynq.runtime.synthetic import random_bundle


@pytest.fixture(scope="module")
def cases(small_board):
    """Every layer of two small networks, including multi-tile conv, residual, pools, linear."""
    out = []
    for arch, seed in (("tiny", 0), ("resnet20", 2)):
        bundle = random_bundle(arch, g=16, seed=seed, size=12 if arch == "resnet20" else None)
        x = np.random.default_rng(seed).integers(-128, 128, (2, 1, *bundle.input.size))
        out += network_cases(bundle, x.astype(np.int8), small_board)
    return out


def _run(exe, path):
    return subprocess.run([str(exe), str(path)], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("sanitize", [False, True], ids=["plain", "asan-ubsan"])
def test_testbench_passes_golden_vectors(small_board, cases, tmp_path, sanitize):
    exe = build_testbench(small_board, sanitize=sanitize)
    path = tmp_path / "vectors.bin"
    write_vectors(cases, path)
    proc = _run(exe, path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"PASS: {len(cases)} cases, 0 failed" in proc.stdout
    assert "runtime error" not in proc.stderr  # UBSan reports, if any, land here


def test_testbench_fails_on_a_wrong_byte_or_cycle_count(small_board, cases, tmp_path):
    exe = build_testbench(small_board)
    wrong = cases[0]
    wrong_bytes = wrong.with_(expected_bytes=wrong.expected_bytes ^ np.uint8(1))
    wrong_cycles = wrong.with_(cycles=wrong.cycles + 1)
    for case in (wrong_bytes, wrong_cycles):
        write_vectors([cases[1], case], tmp_path / "bad.bin")
        proc = _run(exe, tmp_path / "bad.bin")
        assert proc.returncode == 1 and "FAIL case 1" in proc.stdout


def test_sanitizer_build_catches_an_overrun(small_board, cases, tmp_path):
    """Proves the ASan build is live: an input one byte short must be reported, not read."""
    exe = build_testbench(small_board, sanitize=True)
    short = cases[0].with_(fin=cases[0].fin[:-1])
    write_vectors([short], tmp_path / "short.bin")
    proc = _run(exe, tmp_path / "short.bin")
    assert proc.returncode != 0
    assert "heap-buffer-overflow" in proc.stderr


def test_garbage_streams_are_clean_under_sanitizers(small_board, cases, tmp_path):
    """Corrupted weight streams, exact-size buffers, ASan/UBSan: only status codes come out."""
    from harness import run_csim

    rng = np.random.default_rng(1)
    conv = [c for c in cases if c.regs["wgt_bytes"]]
    garbage = []
    for trial in range(120):
        case = conv[trial % len(conv)]
        wgt = case.wgt.copy()
        hit = rng.integers(0, case.regs["wgt_bytes"], rng.integers(1, 6))
        wgt[hit] = rng.integers(0, 256, hit.size)
        bad = case.with_(wgt=wgt)
        status, cycles, out = run_csim(bad, small_board)  # the library says what to expect
        garbage.append(bad.with_(status=status, cycles=cycles, expected_bytes=out))
    assert any(c.status == 3 for c in garbage)
    write_vectors(garbage, tmp_path / "garbage.bin")
    proc = _run(build_testbench(small_board, sanitize=True), tmp_path / "garbage.bin")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "runtime error" not in proc.stderr
