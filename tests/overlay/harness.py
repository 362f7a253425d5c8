"""Test harness: one bundle layer as overlay bytes, run on the csim library or the testbench.

Expected outputs always come from the golden model (ternpynq.runtime.network / ops).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ternpynq.bundle.schema import Bundle, Layer
from ternpynq.runtime import ops
from ternpynq.runtime.boards import Board
from ternpynq.runtime.csim_build import load_kernel
from ternpynq.runtime.cycles import layer_cycles
from ternpynq.runtime.regmap import load_regmap
from ternpynq.runtime.stream import fmap_bytes, pack_fmap, pack_layer, unpack_fmap

DDR_BASE = 0x4000_0000
ALIGN = 64


@dataclass
class Case:
    """One layer start: register values, the bytes of each port, and the golden output."""

    name: str
    regs: dict[str, int]
    wgt: np.ndarray
    fin: np.ndarray
    res: np.ndarray
    expected: np.ndarray  # golden output codes (N, C, H, W) or (N, C)
    expected_bytes: np.ndarray
    cycles: int  # the Python cycle model's prediction
    status: int = 0


def make_case(
    bundle: Bundle, layer: Layer, x: np.ndarray, residual, types: dict, board: Board
) -> Case:
    """Pack ``layer`` for ``board`` with input codes ``x`` (N, ...) and its golden output."""
    res_type = types[layer.residual] if layer.residual else 0
    packed = pack_layer(layer, board.g, types[layer.input], res_type)
    n = x.shape[0]
    packed.regs["batch"] = n
    expected = ops.run_layer(layer, x, residual)
    out_type = packed.regs["out_type"]
    fin = pack_fmap(x.reshape(n, *packed.in_shape), types[layer.input])
    res = pack_fmap(residual, res_type) if layer.residual else np.zeros(0, np.uint8)
    cyc = layer_cycles(packed, board).total
    exp_bytes = pack_fmap(expected, out_type)
    return Case(layer.name, packed.regs, packed.data, fin, res, expected, exp_bytes, cyc)


def _place(parts: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
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
    ddr, (w, i, r, o) = _place([case.wgt, case.fin, case.res, out])
    regs = dict(case.regs, wgt_addr=w, in_addr=i, res_addr=r, out_addr=o)
    status, cycles = load_kernel(board).start(load_regmap().pack(regs), ddr, DDR_BASE)
    return status, cycles, ddr[o - DDR_BASE : o - DDR_BASE + out.size].copy()


def unpack_output(case: Case, data: np.ndarray) -> np.ndarray:
    return unpack_fmap(data, case.expected.shape, case.regs["out_type"])


def write_vectors(cases: list[Case], path: Path) -> None:
    """The testbench's input file (format in overlay/hls/tpq_layer/tpq_layer_tb.cpp)."""
    rm = load_regmap()
    with open(path, "wb") as f:
        f.write(struct.pack("<4sII", b"TPQV", 1, len(cases)))
        for case in cases:
            regs = rm.pack(case.regs)
            f.write(struct.pack("<I", regs.size) + regs.astype("<u4").tobytes())
            for part in (case.wgt, case.fin, case.res, case.expected_bytes):
                f.write(struct.pack("<Q", part.size) + part.tobytes())
            f.write(struct.pack("<QI", case.cycles, case.status))


def fmap_nbytes(shape: tuple[int, ...], kind: int) -> int:
    return fmap_bytes(shape, kind)
