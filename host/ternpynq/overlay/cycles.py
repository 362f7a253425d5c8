"""Cycle model of the overlay, written from the kernel's loop table (docs/overlay.md "Loop table").

The kernel's cycles are the iterations of its pipelined loops (II = 1) plus each loop's
pipeline depth once per entry; the loops run one after another. This module predicts, for one
start of a layer, the iterations and entries of every loop label from the descriptor, the
kept-group mask and the board file alone. It restates the loop table instead of sharing code
with the kernel or the stream packer, so the per-label comparison with the C-simulation's own
counts (``CsimKernel.loops``) is a test: a kernel loop that runs more often than the table says
makes it fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ternpynq.bundle.schema import Bundle
from ternpynq.overlay.boards import Board
from ternpynq.overlay.fmap import fmap_pixels, fmap_types
from ternpynq.overlay.hostpack import overlay_layers
from ternpynq.overlay.stream import MODE, PackedLayer, pack_for_board, set_batch

T_MAX = 5
READ_DEPTH = 64 + 2  # m_axi latency HLS schedules a read burst for, plus address and store stages
TILE_HEAD = 8  # bytes of a weight tile's header: u16 n_filters, u16 n_groups, u32 tile bytes
STREAM_ALIGN = 64  # the weight stream is zero-padded to this many bytes; params follow
WEIGHT_LOOPS = ("w_head", "w_load", "p_load")


def _clog2(v: int) -> int:
    return max(0, int(v - 1).bit_length())


def loop_depths(board: Board) -> dict[str, int]:
    """Pipeline depth of every loop label, in cycles, charged once per entry (the loop table)."""
    return {
        "setup": 80,  # descriptor checks and per-layer constants (two sequential divisions)
        "w_head": READ_DEPTH,
        "w_load": READ_DEPTH,
        "w_check": 3,
        "p_load": READ_DEPTH,
        "acc_clear": 1,
        "row_load": READ_DEPTH,
        "mac": 6 + _clog2(board.g),  # reads, select/negate, adder tree, Horner, accumulate
        "res_load": READ_DEPTH,
        "requant": 8,
        "store": 4,
        "pool": 4,
        "gap_sum": 4 + _clog2(board.P),
        "gap_requant": 8,
        "dw": 10,  # weight + line-buffer read, select/negate, accumulate; lane mux, requant
    }


@dataclass
class LayerCycles:
    """Cycles of one layer start, by loop label and grouped by what the loops move."""

    name: str
    mode: str
    compute: int  # cycles of the compute loops (iterations + depths)
    wgt_beats: int  # cycles of the weight-tile and params loads
    in_beats: int  # cycles of the input-row loads
    out_beats: int  # cycles of the output stores
    res_beats: int  # cycles of the residual loads
    dense_compute: int  # compute if no group were skipped
    lane_ops: int  # useful lane additions (kept weights x pixels), for utilisation
    loops: dict[str, tuple[int, int]] = field(default_factory=dict)  # label -> (iters, entries)
    total: int = 0  # every loop's iterations and depths, less what DATAFLOW overlap hides
    hidden: int = 0  # cycles of the faster stage of each overlapped MAC / drain step


class _Tally:
    """Iterations and entries per loop label; an entry is a loop reached with trips > 0."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.counts: dict[str, list[int]] = {name: [0, 0] for name in loop_depths(board)}

        self.hidden = 0  # cycles of the faster stage of each two-stage DATAFLOW step

    def add(self, label: str, trips, times: int = 1) -> None:
        trips = np.asarray(trips, np.int64)
        self.counts[label][0] += int(trips.sum()) * times
        self.counts[label][1] += int((trips > 0).sum()) * times

    def burst(self, label: str, start, length, times: int = 1) -> np.ndarray:
        """A burst loop over the AXI beats covering bytes [start, start + length); its beats."""
        start, length = np.asarray(start, np.int64), np.asarray(length, np.int64)
        shift = _clog2(self.board.port_bytes)
        last = (start + np.maximum(length, 1) - 1) >> shift
        beats = np.where(length > 0, last - (start >> shift) + 1, 0)
        self.add(label, beats, times)
        return beats

    def cycles(self, labels) -> int:
        depth = loop_depths(self.board)
        return sum(self.counts[k][0] + self.counts[k][1] * depth[k] for k in labels)


def ring_rows(r: dict, board: Board, mode: str) -> int:
    """Line-buffer rows: what two consecutive P-pixel tiles' windows touch (one pixel's for
    dwconv), at most the whole map, at least the kernel."""
    if mode == "gap":
        return 1
    # dwconv computes one pixel at a time and fetches no rows ahead: its window's rows only
    span = 1
    if mode != "dwconv":
        span = min((r["out_w"] - 1 + 2 * board.P - 1) // r["out_w"] + 1, r["out_h"])
    rows = (span - 1) * r["stride"] + r["kernel"]
    return rows if rows <= r["in_h"] else max(r["in_h"], r["kernel"])


def _pixel_tiles(npix: int, board: Board) -> tuple[np.ndarray, np.ndarray]:
    """First pixel and pixel count of every P-pixel tile."""
    pix0 = np.arange(0, npix, board.P, dtype=np.int64)
    return pix0, np.minimum(board.P, npix - pix0)


def _fetch_rows(tally: _Tally, r: dict, n: int, pix0=None, np_=None) -> np.ndarray | None:
    """Input rows of each image in order, each fetched once, as the pixel tiles reach them.

    With the tiles (``pix0``, ``np_``) given, returns the cycles of the rows each tile adds,
    (n, tiles): a tile needs every row up to its last pixel's last window row.
    """
    last = min(r["in_h"] - 1, (r["out_h"] - 1) * r["stride"] - r["pad_top"] + r["kernel"] - 1)
    row = r["in_w"] * r["in_pitch"]  # inputs are 8-bit
    img = r["in_h"] * row
    y = np.arange(last + 1, dtype=np.int64)
    cycles = []
    for i in range(n):
        beats = tally.burst("row_load", i * img + y * row, np.full(y.size, row))
        cycles.append(beats + loop_depths(tally.board)["row_load"] * (beats > 0))
    if pix0 is None:
        return None
    oy = (pix0 + np_ - 1) // r["out_w"]
    reach = np.minimum(oy * r["stride"] - r["pad_top"] + r["kernel"] - 1, r["in_h"] - 1)
    out = np.zeros((n, pix0.size), np.int64)
    for i in range(n):
        cum = np.concatenate([[0], np.cumsum(cycles[i])])  # cycles of rows [0, y)
        done = np.maximum.accumulate(np.minimum(reach + 1, last + 1))
        out[i] = np.diff(np.concatenate([[0], cum[done]]))
    return out


def _tile_rows(tally, label, n, npix, pix0, np_, pitch, o0, cols, eb) -> np.ndarray:
    """A pixel tile's rows of ``cols`` elements from column o0 of pixels ``pitch`` elements
    apart: one burst if they are contiguous, else one each.

    Returns the cycles of each (image, tile): its beats plus the loop depth per burst.
    """
    depth = loop_depths(tally.board)[label]
    images = np.arange(n, dtype=np.int64)[:, None]
    first = images * npix + pix0[None, :]  # (n, tiles) first pixel of each tile
    if cols == pitch:
        beats = tally.burst(
            label, first * pitch * eb, np.broadcast_to(np_ * cols * eb, first.shape)
        )
        return beats + depth * (beats > 0)
    cycles = np.zeros(first.shape, np.int64)
    for p in range(int(np_.max())):
        live = p < np_
        start = ((first[:, live] + p) * pitch + o0) * eb
        beats = tally.burst(label, start, np.full(start.shape, cols * eb))
        cycles[:, live] += beats + depth * (beats > 0)
    return cycles


def _gather_stalls(n_keep: np.ndarray, words_q: np.ndarray, t: int, lane: int, P: int) -> int:
    """MAC iterations a pixel tile waits for its inputs. The gather of the P PEs' words of
    position i + 1 (one a cycle) starts as position i's first lane word runs, and position i + 1
    starts once it is done: it waits P - m_i - h_(i+1) iterations when that is positive (m: the
    position's n_keep x T lane words; h: the group header's words before a group's first
    position). The first position's gather starts with the loop, beside its header words."""
    per_group, n_keep = np.asarray(words_q, np.int64), np.asarray(n_keep, np.int64)
    if per_group.size == 0:
        return 0
    m = np.repeat(n_keep * t, per_group)  # lane words of each position
    h = np.zeros(m.size, np.int64)
    first = np.concatenate([[0], np.cumsum(per_group)[:-1]])  # each group's first position
    h[first] = -(-(4 + 2 * n_keep) // lane)
    wait = np.maximum(0, P - h)
    wait[1:] = np.maximum(0, P - m[:-1] - h[1:])
    return int(wait.sum())


def _conv(tally: _Tally, packed: PackedLayer, board: Board) -> tuple[int, int]:
    """Conv loops; returns the MAC and W_CHECK iterations with and without group skipping."""
    r, g = packed.regs, board.g
    lane = g // 4
    cin, k, t, cout, n = r["in_c"], r["kernel"], r["trits"], r["out_c"], r["batch"]
    npix = r["out_h"] * r["out_w"]
    pix0, np_ = _pixel_tiles(npix, board)
    words_q = np.full(-(-cin // g), k * k, np.int64)  # lane words per plane: one per tap
    head_words = -(-TILE_HEAD // lane)
    tiles = []
    for o0, o1 in packed.tiles:
        n_keep = packed.kept[o0:o1].sum(axis=0)
        used = n_keep > 0
        group_words = -(-(4 + 2 * n_keep[used]) // lane) + words_q[used] * n_keep[used] * t
        dense_words = -(-(4 + 2 * (o1 - o0)) // lane) + words_q * (o1 - o0) * t
        gather = _gather_stalls(n_keep[used], words_q[used], t, lane, board.P)
        dense_gather = _gather_stalls(np.full(words_q.size, o1 - o0), words_q, t, lane, board.P)
        tiles.append(
            (o0, o1 - o0, head_words + int(group_words.sum()), int(dense_words.sum()), gather,
             dense_gather)
        )  # fmt: skip
    stream = sum(tile[2] for tile in tiles) * lane
    stream += -stream % STREAM_ALIGN
    wpos = mac = dense = 0
    depth = loop_depths(board)
    for o0, nf, words, dense_words, gather, dense_gather in tiles:
        tally.burst("w_head", wpos, TILE_HEAD)
        tally.burst("w_load", wpos, words * lane)
        tally.add("w_check", words - head_words)
        tally.burst("p_load", stream + 8 * o0, 8 * nf)
        tally.add("acc_clear", nf)
        wpos += words * lane
        mac += (n * pix0.size + 1) * (words - head_words) + n * pix0.size * gather  # + 1: W_CHECK
        dense += (n * pix0.size + 1) * dense_words + n * pix0.size * dense_gather
        mac_iters = words - head_words + gather
        tally.add("mac", np.full(pix0.size, mac_iters), times=n)
        # the last tile also writes the pixels' padding channels (cout .. out_pitch)
        cols = r["out_pitch"] - o0 if o0 + nf == cout else nf
        tally.add("requant", np.full(pix0.size, cols), times=n)
        # drain of each (image, tile): residual burst(s), requant sweep, output burst(s)
        drain = np.full((n, pix0.size), cols + depth["requant"], np.int64)
        rows = (n, npix, pix0, np_, r["out_pitch"], o0, cols)
        if r["has_res"]:
            drain += _tile_rows(tally, "res_load", *rows, _bytes(r["res_type"]))
        drain += _tile_rows(tally, "store", *rows, _bytes(r["out_type"]))
        fetch = _fetch_rows(tally, r, n, pix0, np_)
        # Step t runs tile t's MAC, tile t - 1's drain and tile t + 1's row fetch side by side
        # and costs the slowest; tile 0's rows come before the first step.
        steps = pix0.size + 1
        stage = np.zeros((3, n, steps), np.int64)
        stage[0, :, :-1] = mac_iters + (depth["mac"] if words > head_words else 0)
        stage[1, :, 1:] = drain
        stage[2, :, : steps - 2] = fetch[:, 1:]
        tally.hidden += int((stage.sum(axis=0) - stage.max(axis=0)).sum())
    return mac, dense


def _bytes(kind: int) -> int:
    return 2 if kind == 2 else 1  # ELEM_I16 is the only 2-byte element type


def _maxpool(tally: _Tally, r: dict, board: Board) -> None:
    n, c, pitch = r["batch"], r["in_c"], r["out_pitch"]
    npix = r["out_h"] * r["out_w"]
    pix0, np_ = _pixel_tiles(npix, board)
    _fetch_rows(tally, r, n)
    tally.add("pool", np.full(pix0.size, -(-c // board.g) * r["kernel"] ** 2), times=n)
    _tile_rows(tally, "store", n, npix, pix0, np_, pitch, 0, pitch, 1)


def _gap(tally: _Tally, r: dict, board: Board) -> None:
    n, c, h, w = r["batch"], r["in_c"], r["in_h"], r["in_w"]
    oeb, ip, op = _bytes(r["out_type"]), r["in_pitch"], r["out_pitch"]
    cvecs = -(-c // board.g)
    tally.burst("p_load", 0, 8 * c)
    tally.add("acc_clear", cvecs)
    y = np.arange(h, dtype=np.int64)
    for i in range(n):
        tally.burst("row_load", (i * h + y) * w * ip, np.full(h, w * ip))
    tally.add("gap_sum", np.full(h, -(-w // board.P) * cvecs), times=n)
    tally.add("gap_requant", op, times=n)  # the padding channels too, as zeros
    tally.burst("store", np.arange(n, dtype=np.int64) * op * oeb, np.full(n, op * oeb))


def _dwconv(tally: _Tally, r: dict, board: Board) -> None:
    """Depthwise: the whole stream loaded and checked once; then per image and output pixel,
    one loop in which block b's T*k*k (plane, tap) words run beside block b-1's requant (one
    channel per iteration), a block waiting for the requant of the one before it; then the
    last block's requant and one store burst of the pixel's channels."""
    n, c, k, t = r["batch"], r["in_c"], r["kernel"], r["trits"]
    npix, oeb = r["out_h"] * r["out_w"], _bytes(r["out_type"])
    mac = t * k * k  # one block's words: planes x taps
    op = r["out_pitch"]  # the last block's requant also writes the padding channels
    chans = np.minimum(board.g, op - np.arange(0, c, board.g))  # channels requantized per block
    trips = mac + int(np.maximum(mac, chans[:-1]).sum()) + int(chans[-1])
    words = chans.size * mac
    stream = words * (board.g // 4)
    tally.burst("w_load", 0, stream)
    tally.add("w_check", words)
    tally.burst("p_load", stream + -stream % STREAM_ALIGN, 8 * c)
    _fetch_rows(tally, r, n)
    tally.add("dw", np.full(npix, trips), times=n)
    pixels = np.arange(n * npix, dtype=np.int64)
    tally.burst("store", pixels * op * oeb, np.full(pixels.size, op * oeb))


COMPUTE_LOOPS = ("setup", "w_check", "acc_clear", "mac", "requant", "pool")
COMPUTE_LOOPS += ("gap_sum", "gap_requant", "dw")


def layer_cycles(packed: PackedLayer, board: Board) -> LayerCycles:
    """Cycles of one start of ``packed`` (its ``batch`` register included) on ``board``."""
    r = packed.regs
    mode = {v: k for k, v in MODE.items()}[r["mode"]]
    tally = _Tally(board)
    tally.add("setup", 1)
    mac = dense = 0
    if mode == "conv":
        mac, dense = _conv(tally, packed, board)
    elif mode == "dwconv":
        _dwconv(tally, r, board)
    elif mode == "maxpool":
        _maxpool(tally, r, board)
    else:
        _gap(tally, r, board)
    compute = tally.cycles(COMPUTE_LOOPS)
    npix, k, c = r["out_h"] * r["out_w"], r["kernel"], r["in_c"]
    if mode == "conv":
        gc = np.minimum(board.g, c - np.arange(0, c, board.g))
        lane = r["batch"] * npix * r["trits"] * int((packed.kept * (gc * k * k)).sum())
    elif mode == "dwconv":
        lane = r["batch"] * npix * r["trits"] * c * k * k
    else:
        lane = r["batch"] * npix * c * (k * k if mode == "maxpool" else 1)
    return LayerCycles(
        name=packed.name,
        mode=mode,
        compute=compute,
        wgt_beats=tally.cycles(WEIGHT_LOOPS),
        in_beats=tally.cycles(("row_load",)),
        out_beats=tally.cycles(("store",)),
        res_beats=tally.cycles(("res_load",)),
        dense_compute=compute + dense - mac,
        lane_ops=lane,
        loops={k: (v[0], v[1]) for k, v in tally.counts.items()},
        hidden=tally.hidden,
        total=tally.cycles(tally.counts) - tally.hidden,
    )


def network_cycles(bundle: Bundle, board: Board, batch: int = 1) -> list[LayerCycles]:
    """Cycles of every layer of ``bundle`` for one start of ``batch`` images each."""
    types, pixels = fmap_types(bundle), fmap_pixels(bundle, board.g)
    out = []
    for layer in overlay_layers(bundle, board.g):
        packed = pack_for_board(layer, board, types, pixels, data=False)
        set_batch(packed, batch)
        out.append(layer_cycles(packed, board))
    return out
