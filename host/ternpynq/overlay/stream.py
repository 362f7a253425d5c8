"""The overlay's DDR formats: compacted weight stream and requant params (feature maps: fmap).

Paired pack/unpack functions (docs/overlay.md "DDR layouts"); the HLS side reads the same
bytes through one accessor each (``trit_code``/``le16`` and ``fm_load`` in tpq_layer.hpp).

Weight stream of one conv/linear layer for an overlay with ``g`` lanes and ``T`` trit planes.
Filters are split into consecutive output-channel tiles that each fit the weight buffer. A tile
is a header ``u16 n_filters, u16 n_groups, u32 tile_bytes`` (the whole tile, header included, so
the kernel can burst-load it before parsing it), then for each input-channel group ``q`` that at
least one of its filters keeps (ascending): ``u16 q, u16 n_keep`` and the ``n_keep`` filters
that keep it (u16, tile-local, ascending), then for each tap ``v = i*k + j < k*k``, for each of
those filters, ``T`` lane words, plane ``T-1`` first (Horner order). Lane ``l`` of word ``v``
holds the weight of channel ``q*g + l`` at tap ``(i, j)``, zero for ``l >= gc`` (``gc`` =
channels in the group), as the bundle's 2-bit code (0 -> 00, +1 -> 01, -1 -> 11) at bits
``2(l%4)`` of byte ``l//4``. Headers are zero-padded to whole lane words of ``g/4``
bytes (at least 2). Pruned groups have no bytes at all. The stream is zero-padded to a
multiple of ``STREAM_ALIGN``; ``Cout`` x (int32 mult, int32 bias) little-endian follow it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ternpynq.bundle.packing import pack_codes, to_trit_planes, unpack_codes
from ternpynq.bundle.schema import Layer, Op, pads
from ternpynq.bundle.stats import group_mask
from ternpynq.overlay.boards import Board
from ternpynq.overlay.fmap import ELEM_U8, StreamError, elem_type

STREAM_ALIGN = 64  # params start on a burst boundary of the widest (512-bit) port
MODE = {"conv": 0, "maxpool": 1, "gap": 2, "dwconv": 3}
# the descriptor's zero padding, one register per side, in the order of schema.pads
PAD_REGS = ("pad_top", "pad_left", "pad_bottom", "pad_right")
NO_PAD = dict.fromkeys(PAD_REGS, 0)


# ---------------------------------------------------------------- weight stream


def group_words(cin: int, k: int, g: int) -> np.ndarray:
    """Lane words per plane of each group along Cin: one per tap, k*k, whatever its channels
    (a narrow group leaves lanes gc..g-1 zero, so lane l always reads line-buffer bank l)."""
    return np.full(-(-cin // g), k * k, np.int64)


def _as_conv(weight: np.ndarray) -> np.ndarray:
    w = np.asarray(weight)
    return w.reshape(*w.shape, 1, 1) if w.ndim == 2 else w  # linear = 1x1 conv


def _pad(n, g: int):
    """Round header bytes up to whole lane words (at least 2 bytes) so lane words stay aligned."""
    unit = max(2, g // 4)
    return -(-n // unit) * unit


def tile_size(n_keep: np.ndarray, words: np.ndarray, trits: int, g: int) -> int:
    """Bytes of one output-channel tile whose groups have ``n_keep`` (nq,) keeping filters."""
    used = n_keep > 0
    body = words[used] * n_keep[used] * trits * (g // 4)
    return int(_pad(8, g) + (_pad(4 + 2 * n_keep[used], g) + body).sum())


def plan_tiles(
    kept: np.ndarray,
    words: np.ndarray,
    trits: int,
    g: int,
    tile_bytes: int | None,
    max_filters: int | None = None,
):
    """Split filters into consecutive tiles [o0, o1) whose stream fits ``tile_bytes`` and that
    hold at most ``max_filters`` filters (the accumulator depth, ``board.max_channels``); greedy."""
    cout = kept.shape[0]
    tiles, o0, n_keep = [], 0, np.zeros(kept.shape[1], np.int64)
    for o in range(cout):
        trial = n_keep + kept[o]
        full = max_filters is not None and o - o0 == max_filters
        too_big = tile_bytes is not None and tile_size(trial, words, trits, g) > tile_bytes
        if o > o0 and (full or too_big):
            tiles.append((o0, o))
            o0, trial = o, kept[o].astype(np.int64)
        n_keep = trial
        if tile_bytes is not None and tile_size(n_keep, words, trits, g) > tile_bytes:
            raise StreamError(
                f"filter {o} alone needs more than the {tile_bytes}-byte weight buffer"
            )
    tiles.append((o0, cout))
    return tiles


def _u16(*values: int) -> np.ndarray:
    return np.asarray(values, "<u2").view(np.uint8)


def _header(values: list[int], g: int) -> np.ndarray:
    head = np.zeros(_pad(2 * len(values), g), np.uint8)
    head[: 2 * len(values)] = _u16(*values)
    return head


def pack_weights(
    weight: np.ndarray,
    trits: int,
    g: int,
    tile_bytes: int | None = None,
    max_filters: int | None = None,
) -> np.ndarray:
    """Integer weights (Cout, Cin, k, k) or (Cout, Cin) -> the compacted stream (uint8).

    Group-major within each output-channel tile (module docstring); ``tile_bytes`` is the
    overlay's weight buffer (``board.weight_bytes``) and ``max_filters`` its filters per tile
    (``board.max_channels``), None for no limit.
    """
    w = _as_conv(weight)
    cout, cin, k, _ = w.shape
    planes = to_trit_planes(w, trits)  # (T, Cout, Cin, k, k)
    kept = group_mask(w, g)
    words = group_words(cin, k, g)
    lane = g // 4
    out: list[np.ndarray] = []
    for o0, o1 in plan_tiles(kept, words, trits, g, tile_bytes, max_filters):
        listed = np.flatnonzero(kept[o0:o1].any(axis=0))
        nbytes = tile_size(kept[o0:o1].sum(axis=0), words, trits, g)
        out.append(_header([o1 - o0, listed.size, nbytes & 0xFFFF, nbytes >> 16], g))
        for q in listed:
            keepers = np.flatnonzero(kept[o0:o1, q])
            out.append(_header([int(q), keepers.size, *map(int, keepers)], g))
            c0, c1 = q * g, min(cin, q * g + g)
            packed = {}  # (o, t) -> the group's lane words: word v = tap v, lane l = channel l
            for o in keepers:
                for t in range(trits):
                    lanes = np.zeros((words[q], g), np.int8)
                    lanes[:, : c1 - c0] = planes[t, o0 + o, c0:c1].reshape(c1 - c0, -1).T
                    packed[o, t] = pack_codes(lanes.ravel())
            for v in range(words[q]):
                for o in keepers:
                    for t in range(trits - 1, -1, -1):  # MSB plane first: Horner
                        out.append(packed[o, t][v * lane : (v + 1) * lane])
    stream = np.concatenate(out)
    return np.concatenate([stream, np.zeros((-stream.size) % STREAM_ALIGN, np.uint8)])


def unpack_weights(stream: np.ndarray, shape: tuple[int, ...], trits: int, g: int) -> np.ndarray:
    """The compacted stream -> integer weights of ``shape`` (int16); inverse of pack_weights."""
    w_shape = (*shape, 1, 1) if len(shape) == 2 else tuple(shape)
    cout, cin, k, _ = w_shape
    words = group_words(cin, k, g)
    nq, lane = words.size, g // 4
    data = np.asarray(stream, np.uint8)
    weight = np.zeros(w_shape, np.int16)
    pos = 0

    def take(n: int) -> np.ndarray:
        nonlocal pos
        if pos + n > data.size:
            raise StreamError(f"stream ends at byte {data.size}, record needs {pos + n}")
        pos += n
        return data[pos - n : pos]

    def header(count: int) -> np.ndarray:  # count u16 values, then padding
        values = take(2 * count).view("<u2").astype(np.int64)
        take(_pad(2 * count, g) - 2 * count)
        return values

    o0 = 0
    while o0 < cout:
        start = pos
        n_filters, n_groups, lo, hi = header(4)
        if n_filters < 1 or o0 + n_filters > cout or n_groups > nq:
            raise StreamError(
                f"tile at filter {o0}: bad header ({n_filters} filters, {n_groups} groups)"
            )
        prev = -1
        for _ in range(n_groups):
            if pos + 4 > data.size:
                raise StreamError(f"stream ends at byte {data.size} inside a group header")
            q, n_keep = (int(v) for v in data[pos : pos + 4].view("<u2"))
            if q >= nq or q <= prev or not 1 <= n_keep <= n_filters:
                raise StreamError(
                    f"tile at filter {o0}: bad group index {q} or keeper count {n_keep}"
                )
            keepers = header(2 + n_keep)[2:]
            if np.any(keepers >= n_filters) or np.any(np.diff(keepers) <= 0):
                raise StreamError(f"tile at filter {o0}, group {q}: bad filter list")
            prev = q
            c0, c1 = q * g, min(cin, q * g + g)
            for v in range(words[q]):
                i, j = divmod(v, k)
                for o in keepers:
                    for t in range(trits - 1, -1, -1):
                        lanes = unpack_codes(take(lane), g, "stream")
                        if np.any(lanes[c1 - c0 :]):
                            raise StreamError(f"filter {o0 + o} group {q}: non-zero padding lanes")
                        weight[o0 + o, c0:c1, i, j] += lanes[: c1 - c0] * np.int16(3**t)
        if pos - start != lo | hi << 16:
            said = lo | hi << 16
            raise StreamError(f"tile at filter {o0}: header says {said} bytes, has {pos - start}")
        o0 += n_filters
    return weight.reshape(shape)


def pack_params(mult: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Per-channel (int32 mult, int32 bias) pairs, little-endian."""
    pairs = np.stack([np.asarray(mult, np.int64), np.asarray(bias, np.int64)], axis=1)
    return pairs.astype("<i4").view(np.uint8).ravel()


def unpack_params(data: np.ndarray, channels: int) -> tuple[np.ndarray, np.ndarray]:
    pairs = np.asarray(data, np.uint8)[: 8 * channels].view("<i4").reshape(channels, 2)
    return pairs[:, 0].astype(np.int32), pairs[:, 1].astype(np.int32)


# ---------------------------------------------------------------- one layer


@dataclass
class PackedLayer:
    """One layer ready for the overlay: bytes for gmem_w and the descriptor registers.

    ``regs`` maps register-map names to values (addresses excluded; the driver adds
    ``wgt_addr``/``in_addr``/``out_addr``/``res_addr``). ``data`` is the weight stream followed
    by the params, to be placed at ``wgt_addr``.
    """

    name: str
    regs: dict[str, int]
    data: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    kept: np.ndarray | None = None  # (Cout, ceil(Cin/g)) groups the stream holds
    tiles: list[tuple[int, int]] = field(default_factory=list)  # output-channel tiles [o0, o1)

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return (self.regs["in_c"], self.regs["in_h"], self.regs["in_w"])

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return (self.regs["out_c"], self.regs["out_h"], self.regs["out_w"])


def _chw(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return (shape[0], shape[1], shape[2]) if len(shape) == 3 else (shape[0], 1, 1)


def pack_layer(
    layer: Layer,
    g: int,
    in_type: int,
    res_type: int = ELEM_U8,
    tile_bytes: int | None = None,
    data: bool = True,
    max_filters: int | None = None,
    in_pitch: int | None = None,
    out_pitch: int | None = None,
) -> PackedLayer:
    """A bundle layer -> stream bytes and descriptor for an overlay with ``g`` lanes.

    ``tile_bytes`` is the overlay's weight buffer (``board.weight_bytes``) and ``max_filters``
    its accumulator depth (``board.max_channels``); a conv layer whose weights exceed either is
    split into output-channel tiles. ``data=False`` skips packing the bytes (the cycle model
    needs only the registers and the kept groups). ``in_pitch`` and ``out_pitch`` are the
    elements per pixel of the input and output (and residual) maps in DDR (default: their
    channels, unpadded).
    """
    cin, ih, iw = _chw(layer.in_shape)
    cout, oh, ow = _chw(layer.out_shape)
    regs = dict(
        batch=1, in_h=ih, in_w=iw, in_c=cin, out_h=oh, out_w=ow, out_c=cout,
        kernel=layer.kernel, stride=layer.stride, trits=layer.trits,
        **dict(zip(PAD_REGS, pads(layer.padding), strict=True)),
        in_type=in_type, out_type=in_type, res_type=res_type, has_res=0, res_mult=0,
        shift=0, lo=0, hi=0, wgt_bytes=0,
        in_pitch=in_pitch or cin, out_pitch=out_pitch or cout,
    )  # fmt: skip
    packed = PackedLayer(layer.name, regs)
    if layer.op == Op.MAXPOOL:
        regs["mode"] = MODE["maxpool"]
        return packed
    rq = layer.requant
    regs.update(shift=rq.shift, lo=rq.lo, hi=rq.hi, out_type=elem_type(rq.lo, rq.hi))
    params = pack_params(rq.mult, rq.bias)
    if layer.op == Op.GAP:
        regs.update(mode=MODE["gap"], kernel=1, stride=1, trits=1, **NO_PAD)
        packed.data = params
        return packed
    if layer.op == Op.DWCONV:
        from ternpynq.overlay.stream_dw import pack_dw_weights  # it imports this module

        regs["mode"] = MODE["dwconv"]
        if data:
            stream = pack_dw_weights(layer.weight, layer.trits, g)
            regs["wgt_bytes"] = int(stream.size)
            packed.data = np.concatenate([stream, params])
        return packed
    if layer.op == Op.LINEAR:
        regs.update(kernel=1, stride=1, **NO_PAD)
    regs["mode"] = MODE["conv"]
    if layer.residual is not None:
        regs.update(has_res=1, res_mult=int(rq.res_mult))
    packed.kept = group_mask(layer.weight, g)
    words = group_words(cin, layer.kernel if layer.op == Op.CONV else 1, g)
    packed.tiles = plan_tiles(packed.kept, words, layer.trits, g, tile_bytes, max_filters)
    if data:
        stream = pack_weights(layer.weight, layer.trits, g, tile_bytes, max_filters)
        regs["wgt_bytes"] = int(stream.size)
        packed.data = np.concatenate([stream, params])
    return packed


def pack_for_board(
    layer: Layer, board: Board, types: dict[str, int], pixels: dict[str, int], data: bool = True
) -> PackedLayer:
    """``pack_layer`` for ``board``'s g, weight buffer and accumulator depth; ``types`` and
    ``pixels`` are the element types and elements per pixel of the bundle's tensors
    (``fmap_types``, ``fmap_pixels``)."""
    res_type = types[layer.residual] if layer.residual else ELEM_U8
    return pack_layer(
        layer, board.g, types[layer.input], res_type, board.weight_bytes, data, board.max_channels,
        pixels[layer.input], pixels[layer.name],
    )  # fmt: skip


def set_batch(packed: PackedLayer, n: int) -> None:
    """Make one start run ``n`` images (stored back to back in every buffer).

    A layer on a 1x1 map (linear) instead takes the images as a 1 x n map of vectors: the
    bytes are the same, and its P PEs then work on P images at once instead of one.
    """
    r = packed.regs
    flat = r["in_h"] == r["in_w"] == r["kernel"] == 1 and not any(r[k] for k in PAD_REGS)
    if r["mode"] == MODE["conv"] and flat:
        r.update(in_w=n, out_w=n, stride=1, batch=1)
    else:
        r["batch"] = n
