"""Test harness: run a csim_vectors.Case on the csim shared library with a DDR byte array."""

from __future__ import annotations

import numpy as np

from ternpynq.overlay.boards import Board
from ternpynq.overlay.csim_build import load_kernel
from ternpynq.overlay.csim_vectors import Case
from ternpynq.overlay.regmap import load_regmap

DDR_BASE = 0x4000_0000
ALIGN = 64


def place(parts: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """Lay ``parts`` out in one DDR array, 64-byte aligned; returns (ddr, device addresses)."""
    addrs, pos = [], 0
    for part in parts:
        addrs.append(DDR_BASE + pos)
        pos += -(-max(part.size, 1) // ALIGN) * ALIGN
    ddr = np.zeros(pos, np.uint8)
    for part, addr in zip(parts, addrs, strict=True):
        ddr[addr - DDR_BASE : addr - DDR_BASE + part.size] = part
    return ddr, addrs


def run_csim(case: Case, board: Board) -> tuple[int, int, np.ndarray]:
    """Run one case through the csim library: (status, cycles, output bytes)."""
    out = np.zeros(case.expected_bytes.size, np.uint8)
    ddr, (w, i, r, o) = place([case.wgt, case.fin, case.res, out])
    regs = dict(case.regs, wgt_addr=w, in_addr=i, res_addr=r, out_addr=o)
    status, cycles = load_kernel(board).start(load_regmap().pack(regs), ddr, DDR_BASE)
    return status, cycles, ddr[o - DDR_BASE : o - DDR_BASE + out.size].copy()


def assert_loops(case: Case, board: Board) -> None:
    """The last csim run on this thread counted, loop by loop, what the cycle model predicts."""
    counted = load_kernel(board).loops()
    assert counted.keys() == case.loops.keys(), case.name
    wrong = {k: (counted[k], case.loops[k]) for k in counted if counted[k] != case.loops[k]}
    assert not wrong, f"{case.name}: (csim, model) (iterations, entries) differ: {wrong}"
