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

from ternpynq.runtime.boards import Board
from ternpynq.runtime.stream import MODE, PackedLayer, elem_bytes, group_words

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


def _header_bytes(n_kept: np.ndarray, board: Board) -> np.ndarray:
    unit = max(2, board.lane_word_bytes)
    return -(-(2 + 2 * n_kept) // unit) * unit


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


def oc_tiles(record_bytes: np.ndarray, board: Board) -> list[tuple[int, int]]:
    """(bytes, filters) of each output-channel tile: whole filter records, greedily, as the
    kernel's load_tile fills its weight buffer."""
    tiles, used, count = [], 0, 0
    for size in map(int, record_bytes):
        if size > board.weight_bytes:
            raise ValueError(
                f"one filter needs {size} bytes, over the {board.weight_bytes}-byte weight buffer"
            )
        if used + size > board.weight_bytes:
            tiles.append((used, count))
            used, count = 0, 0
        used, count = used + size, count + 1
    tiles.append((used, count))
    return tiles


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
    # conv: per-filter lane words (T planes x kept groups), then greedy output-channel tiles
    k, t, cout = r["kernel"], r["trits"], r["out_c"]
    words = group_words(c, k, board.g)
    kept = packed.kept
    filt_words = (kept * words).sum(axis=1)  # (Cout,)
    rec = _header_bytes(kept.sum(axis=1), board) + filt_words * board.lane_word_bytes * t
    tiles = oc_tiles(rec, board)
    counts = [f for _, f in tiles]
    wgt = sum(int(_beats(b, board)) + int(_beats(8 * f, board)) for b, f in tiles)
    per_pass = int((t * filt_words + 1).sum())
    dense = int((t * int(words.sum()) + 1) * cout)
    compute, dense_compute = n * sizes.size * per_pass, n * sizes.size * dense
    if len(counts) == 1:
        out = n * int(_beats(sizes * cout * oeb, board).sum())
        res = n * int(_beats(sizes * cout * reb, board).sum())
    else:
        out = n * npix * sum(int(_beats(f * oeb, board)) for f in counts)
        res = n * npix * sum(int(_beats(f * reb, board)) for f in counts)
    res = res if r["has_res"] else 0
    lane = (
        n
        * npix
        * t
        * int((kept * (np.minimum(board.g, c - np.arange(0, c, board.g)) * k * k)).sum())
    )
    in_beats = n * len(counts) * rows * row_beats
    return LayerCycles(packed.name, mode, compute, wgt, in_beats, out, res, dense_compute, lane)
