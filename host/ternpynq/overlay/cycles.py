"""Cycle and resource model of the overlay (docs/overlay.md "Cycle model").

Cycles come from the kernel's loop trip counts at II = 1, with pruned groups skipped: each
counter here is the number of iterations (or AXI beats) the csim build counts in
``tpq::Counters``, and tests assert the two agree exactly. A layer costs
``wgt_beats + max(compute, in_beats, out_beats, res_beats)``: weight-tile loads stall the PE
array, while row loads and output stores overlap compute through ping-pong buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ternpynq.bundle.schema import Bundle
from ternpynq.overlay.boards import Board
from ternpynq.overlay.stream import (
    MODE,
    PackedLayer,
    elem_bytes,
    fmap_types,
    group_words,
    pack_layer,
    set_batch,
    tile_size,
)

T_MAX = 5


@dataclass
class LayerCycles:
    name: str
    mode: str
    compute: int  # pipelined-loop iterations
    wgt_beats: int  # weight stream + params (not overlapped)
    in_beats: int
    out_beats: int
    res_beats: int
    dense_compute: int  # compute if no group were skipped
    lane_ops: int  # useful lane additions (kept weights x pixels), for utilisation

    @property
    def total(self) -> int:
        return self.wgt_beats + max(self.compute, self.in_beats, self.out_beats, self.res_beats)


def _beats(nbytes, board: Board):
    return -(-nbytes // board.port_bytes)


def rows_needed(r: dict, board: Board, mode: str) -> int:
    """Input rows one P-pixel tile needs (as tpq::rows_needed)."""
    span = min((r["out_w"] - 1 + board.P - 1) // r["out_w"] + 1, r["out_h"])
    k, s = (1, 1) if mode == "gap" else (r["kernel"], r["stride"])
    return min((span - 1) * s + k, r["in_h"])


def _tile_sizes(npix: int, board: Board) -> np.ndarray:
    tiles = -(-npix // board.P)
    sizes = np.full(tiles, board.P, np.int64)
    sizes[-1] = npix - (tiles - 1) * board.P
    return sizes


def layer_cycles(packed: PackedLayer, board: Board) -> LayerCycles:
    """Cycles of one start of ``packed`` (its ``batch`` register included) on ``board``."""
    r = packed.regs
    mode = {v: k for k, v in MODE.items()}[r["mode"]]
    n = r["batch"]
    ieb, oeb, reb = elem_bytes(r["in_type"]), elem_bytes(r["out_type"]), elem_bytes(r["res_type"])
    npix = r["out_h"] * r["out_w"]
    sizes = _tile_sizes(npix, board)
    row_beats = _beats(r["in_w"] * r["in_c"] * ieb, board)
    c = r["in_c"]
    if mode == "gap":
        xtiles, cvecs = -(-r["in_w"] // board.P), -(-c // board.g)
        compute = n * (r["in_h"] * xtiles * cvecs + -(-c // board.P))
        return LayerCycles(
            packed.name, mode, compute, _beats(8 * c, board), n * r["in_h"] * row_beats,
            n * _beats(c * oeb, board), 0, compute, n * r["in_h"] * r["in_w"] * c,
        )  # fmt: skip
    last_row = (r["out_h"] - 1) * r["stride"] - r["pad"] + r["kernel"]
    rows = min(r["in_h"], last_row)  # every row up to the last tile's window, once per pass
    if mode == "maxpool":
        kk, cvecs = r["kernel"] ** 2, -(-c // board.g)
        compute = n * sizes.size * cvecs * kk
        out = n * int(_beats(sizes * r["out_c"] * oeb, board).sum())
        lane = n * npix * c * kk
        return LayerCycles(
            packed.name, mode, compute, 0, n * rows * row_beats, out, 0, compute, lane
        )
    # conv: per output-channel tile, each group some filter keeps costs max(R, n_keep*T) cycles
    # per lane word (the input vector is read once and reused by every keeping filter), then
    # one requant cycle per filter (overlapped with the next pixel tile's MACs).
    k, t, cout = r["kernel"], r["trits"], r["out_c"]
    words = group_words(c, k, board.g)
    read = board.vector_read_cycles
    wgt = per_pass = dense = 0
    for o0, o1 in packed.tiles:
        n_keep = packed.kept[o0:o1].sum(axis=0)
        nf = o1 - o0
        wgt += int(_beats(tile_size(n_keep, words, t, board.g), board)) + int(_beats(8 * nf, board))
        mac = int((words * np.maximum(read, n_keep * t))[n_keep > 0].sum())
        per_pass += sizes.size * max(mac, nf) + nf  # sweeps overlap the next tile but the last
        dense += sizes.size * max(int((words * max(read, nf * t)).sum()), nf) + nf
    compute, dense_compute = n * per_pass, n * dense
    counts = [o1 - o0 for o0, o1 in packed.tiles]
    if len(counts) == 1:
        out = n * int(_beats(sizes * cout * oeb, board).sum())
        res = n * int(_beats(sizes * cout * reb, board).sum())
    else:
        out = n * npix * sum(int(_beats(f * oeb, board)) for f in counts)
        res = n * npix * sum(int(_beats(f * reb, board)) for f in counts)
    res = res if r["has_res"] else 0
    gc = np.minimum(board.g, c - np.arange(0, c, board.g))
    lane = n * npix * t * int((packed.kept * (gc * k * k)).sum())
    in_beats = n * len(counts) * rows * row_beats
    return LayerCycles(packed.name, mode, compute, wgt, in_beats, out, res, dense_compute, lane)


def network_cycles(bundle: Bundle, board: Board, batch: int = 1) -> list[LayerCycles]:
    """Cycles of every layer of ``bundle`` for one start of ``batch`` images each."""
    types = fmap_types(bundle)
    out = []
    for layer in bundle.layers:
        res_type = types[layer.residual] if layer.residual else 0
        packed = pack_layer(
            layer, board.g, types[layer.input], res_type, board.weight_bytes, data=False
        )
        set_batch(packed, batch)
        out.append(layer_cycles(packed, board))
    return out


# Resource model assumptions (docs/overlay.md "Resource model"); figures per unit.
LUT_PER_LANE = 16  # 2-bit select/negate of a 9-bit input plus its share of the PE's adder tree
LUT_PER_LANE_GATHER = 3  # lane input mux for packed groups (gc < g: first conv, partial groups)
FF_PER_LANE = 10 + 2 * 9  # adder-tree pipeline registers; ping-pong 9-bit input vector
LUT_PER_PE = 250  # 32-bit accumulator, x3 Horner step, requant rounding/clamp, residual add
FF_PER_PE = 300
DSP_PER_PE = 3  # requant: (acc + bias) * mult (32 x 24 bits, 2 DSPs) and residual * res_mult
LUT_FIXED = 14_000  # AXI-Lite slave, four m_axi adapters, address generators, FSM, interconnect
FF_FIXED = 18_000
ELEM_BITS = 9  # an 8-bit code plus sign on chip
BRAM36 = (72, 512)  # widest port (bits) and its depth
URAM288 = (72, 4096)


def _blocks(width_bits: int, depth: int, shape: tuple[int, int]) -> int:
    """RAM blocks for a memory ``width_bits`` wide and ``depth`` deep, read whole each cycle."""
    return -(-width_bits // shape[0]) * -(-depth // shape[1])


def resources(board: Board) -> dict[str, dict[str, int]]:
    """Estimated LUT/FF/DSP/BRAM36/URAM of the overlay on ``board``, beside the part's capacity.

    Memories are sized by width (what is read every cycle) and depth: the input row buffer
    delivers ``input_read_elems`` 9-bit values a cycle, the weight buffer one 2g-bit lane word,
    and each of the two ping-pong accumulator banks P x 32 bits for up to ``max_channels``
    filters. The weight buffer goes to UltraRAM where the part has it.
    """
    lanes = board.lanes
    lut = lanes * (LUT_PER_LANE + LUT_PER_LANE_GATHER) + board.P * LUT_PER_PE + LUT_FIXED
    ff = lanes * FF_PER_LANE + board.P * FF_PER_PE + FF_FIXED
    read = board.input_read_elems
    ibuf = _blocks(read * ELEM_BITS, -(-board.input_elems // read), BRAM36)
    acc = 2 * _blocks(board.P * 32, board.max_channels, BRAM36)
    small = _blocks(64, board.max_channels, BRAM36) + _blocks(32, board.max_channels, BRAM36) + 4
    w_depth = board.weight_bytes * 8 // (2 * board.g)
    uram = _blocks(2 * board.g, w_depth, URAM288) if board.capacity.get("uram", 0) else 0
    wbuf = 0 if uram else _blocks(2 * board.g, w_depth, BRAM36)
    used = {
        "lut": lut,
        "ff": ff,
        "dsp": board.P * DSP_PER_PE,
        "bram36": ibuf + acc + small + wbuf,
        "uram": uram,
    }
    return {
        key: {"used": v, "capacity": int(board.capacity.get(key, 0))} for key, v in used.items()
    }
