"""Semantic checks of a bundle's layer graph, shared by ``save`` and ``load``.

Each failure raises ``BundleError`` naming the layer field at fault.
"""

from __future__ import annotations

import numpy as np

from ternpynq.bundle.errors import AccumulatorBoundError, BundleError
from ternpynq.bundle.numerics import ACC_LIMIT, BIAS_LIMIT, EXACT_LIMIT, INT32_LIMIT, MULT_LIMIT
from ternpynq.bundle.packing import trit_limit
from ternpynq.bundle.schema import WEIGHTED_OPS, WINDOW_OPS, Bundle, Layer, Op, group_count, pads
from ternpynq.bundle.stats import group_mask

INPUT_RANGE = (-128, 127)  # the network input is int8


def output_shape(layer: Layer) -> tuple[int, ...]:
    """The per-image output shape a layer's parameters imply."""
    if layer.op is Op.GAP:
        return (layer.in_shape[0],)
    if layer.op is Op.LINEAR:
        return (layer.weight.shape[0],)
    _, h, w = layer.in_shape
    k, s = layer.kernel, layer.stride
    top, left, bottom, right = pads(layer.padding)
    channels = layer.weight.shape[0] if layer.op is Op.CONV else layer.in_shape[0]
    return (channels, (h + top + bottom - k) // s + 1, (w + left + right - k) // s + 1)


def weight_shape(layer: Layer) -> tuple[int, ...]:
    """The weight shape a weighted layer's in/out shapes and kernel imply."""
    cout, cin, k = layer.out_shape[0], layer.in_shape[0], layer.kernel
    if layer.op is Op.CONV:
        return (cout, cin, k, k)
    if layer.op is Op.DWCONV:
        return (cin, 1, k, k)
    return (cout, cin)


def accumulator_peak(weight: np.ndarray, code_range: tuple[int, int]) -> int:
    """Largest |partial sum| any input can produce: max over channels of Σ|w| · max|code|."""
    per_channel = np.abs(weight.reshape(weight.shape[0], -1).astype(np.int64)).sum(axis=1)
    return int(per_channel.max(initial=0)) * max(abs(code_range[0]), abs(code_range[1]))


def code_ranges(bundle: Bundle) -> dict[str, tuple[int, int]]:
    """The code range [lo, hi] of every tensor: its clamp, or its input's for max pooling."""
    ranges = {"input": INPUT_RANGE}
    for layer in bundle.layers:
        rq = layer.requant
        ranges[layer.name] = (rq.lo, rq.hi) if rq is not None else ranges[layer.input]
    return ranges


def check_graph(bundle: Bundle) -> None:
    """Check names, wiring, shapes, weights, masks and requant bounds of every layer."""
    if not bundle.layers:
        raise BundleError("layers", "a bundle needs at least one layer")
    c, (h, w) = bundle.input.channels, bundle.input.size
    shapes: dict[str, tuple[int, ...]] = {"input": (c, h, w)}
    ranges: dict[str, tuple[int, int]] = {"input": INPUT_RANGE}
    for i, layer in enumerate(bundle.layers):
        where = f"layers[{i}]"
        if layer.name in shapes:
            raise BundleError(f"{where}.name", f"{layer.name!r} is used twice (or is 'input')")
        if layer.input not in shapes:
            raise BundleError(f"{where}.input", f"{layer.input!r} is not an earlier tensor")
        if tuple(layer.in_shape) != shapes[layer.input]:
            raise BundleError(
                f"{where}.in_shape",
                f"{list(layer.in_shape)} does not match "
                f"{layer.input!r} of shape {list(shapes[layer.input])}",
            )
        _check_op(layer, where, bundle.g, ranges[layer.input])
        if tuple(layer.out_shape) != output_shape(layer) or min(output_shape(layer)) < 1:
            raise BundleError(
                f"{where}.out_shape",
                f"{list(layer.out_shape)} but the layer computes {list(output_shape(layer))}",
            )
        if layer.residual is not None:
            if layer.op not in (Op.CONV, Op.DWCONV):
                raise BundleError(f"{where}.residual", "only a conv can take a residual input")
            if shapes.get(layer.residual) != tuple(layer.out_shape):
                raise BundleError(
                    f"{where}.residual",
                    f"{layer.residual!r} is not an earlier tensor of shape {list(layer.out_shape)}",
                )
        elif layer.requant is not None and layer.requant.res_mult != 0:
            raise BundleError(f"{where}.requant.res_mult", "set on a layer without a residual")
        if layer.requant is not None:
            res_range = ranges[layer.residual] if layer.residual else (0, 0)
            _check_exact(layer, where, ranges[layer.input], res_range)
        shapes[layer.name] = tuple(layer.out_shape)
        rq = layer.requant
        ranges[layer.name] = (rq.lo, rq.hi) if rq is not None else ranges[layer.input]
    if bundle.output not in shapes or bundle.output == "input":
        raise BundleError("output", f"{bundle.output!r} is not a layer")
    if shapes[bundle.output] != (len(bundle.labels),):
        raise BundleError(
            "labels",
            f"{len(bundle.labels)} labels but output {bundle.output!r} "
            f"has shape {list(shapes[bundle.output])}",
        )


def _check_op(layer: Layer, where: str, g: int, in_range: tuple[int, int]) -> None:
    want_rank = 1 if layer.op is Op.LINEAR else 3
    if len(layer.in_shape) != want_rank:
        raise BundleError(f"{where}.in_shape", f"a {layer.op.value} layer takes rank {want_rank}")
    if layer.op in WINDOW_OPS and not all(0 <= p < layer.kernel for p in pads(layer.padding)):
        raise BundleError(f"{where}.padding", "each side must be smaller than the kernel")
    if layer.op in WEIGHTED_OPS:
        _check_weights(layer, where, g, in_range)
    rq = layer.requant
    if (rq is None) != (layer.op is Op.MAXPOOL):
        raise BundleError(f"{where}.requant", "required for conv, dwconv, linear and gap only")
    if rq is not None:
        _check_requant(rq, layer, where)
    if layer.op is Op.GAP:
        peak = layer.in_shape[1] * layer.in_shape[2] * max(abs(in_range[0]), abs(in_range[1]))
        if peak >= ACC_LIMIT:
            raise AccumulatorBoundError(
                f"{where}.in_shape", f"pooling sum can reach {peak}, beyond 2^24"
            )


def _check_weights(layer: Layer, where: str, g: int, in_range: tuple[int, int]) -> None:
    w = layer.weight
    if w is None or w.ndim not in (2, 4) or not np.issubdtype(w.dtype, np.integer):
        raise BundleError(f"{where}.weight", "expected an integer weight array")
    cin = 1 if layer.op is Op.DWCONV else layer.in_shape[0]
    want = weight_shape(layer)
    if layer.op is not Op.DWCONV:
        want = (w.shape[0], *want[1:])  # Cout comes from the weight; out_shape is checked later
    if tuple(w.shape) != want:
        raise BundleError(f"{where}.weight", f"expected shape {list(want)}")
    if np.abs(w).max(initial=0) > trit_limit(layer.trits):
        raise BundleError(
            f"{where}.weight", f"exceeds ±{trit_limit(layer.trits)} for {layer.trits} trit plane(s)"
        )
    mask = layer.mask
    if mask is None or mask.shape != (w.shape[0], group_count(cin, g)) or mask.dtype != bool:
        raise BundleError(
            f"{where}.mask", f"expected a bool mask of shape {[w.shape[0], group_count(cin, g)]}"
        )
    if np.any(group_mask(w, g) & ~mask):
        raise BundleError(f"{where}.mask", "a pruned group holds nonzero weights")
    peak = accumulator_peak(w, in_range)
    if peak >= INT32_LIMIT:
        raise AccumulatorBoundError(
            f"{where}.weight", f"worst-case accumulator {peak} reaches 2^31 and overflows int32"
        )


def _check_exact(
    layer: Layer, where: str, in_range: tuple[int, int], res_range: tuple[int, int]
) -> None:
    """Every requantization intermediate must stay below 2^53, exact in int64 and float64."""
    rq = layer.requant
    if layer.op is Op.GAP:
        peak = layer.in_shape[1] * layer.in_shape[2] * max(map(abs, in_range))
    else:
        peak = accumulator_peak(layer.weight, in_range)
    if peak < ACC_LIMIT:
        return  # the v1 bounds (|mult| < 2^23, |bias| < 2^24) already guarantee it
    bias = int(np.abs(np.asarray(rq.bias, np.int64)).max(initial=0))
    mult = int(np.abs(np.asarray(rq.mult, np.int64)).max(initial=0))
    top = (peak + bias) * mult + max(map(abs, res_range)) * abs(rq.res_mult) + (1 << rq.shift)
    if top >= EXACT_LIMIT:
        raise AccumulatorBoundError(
            f"{where}.requant.mult", f"requantization can reach {top}, beyond 2^53"
        )


def _check_requant(rq, layer: Layer, where: str) -> None:
    cout = layer.out_shape[0]
    for key, limit in (("mult", MULT_LIMIT), ("bias", BIAS_LIMIT)):
        arr = np.asarray(getattr(rq, key))
        if arr.shape != (cout,) or not np.issubdtype(arr.dtype, np.integer):
            raise BundleError(f"{where}.requant.{key}", f"expected {cout} integers")
        if np.abs(arr.astype(np.int64)).max(initial=0) >= limit:
            raise BundleError(f"{where}.requant.{key}", f"magnitude must stay below {limit}")
    if layer.op is Op.GAP and np.any(np.asarray(rq.bias) != 0):
        raise BundleError(f"{where}.requant.bias", "global average pooling has no bias")
    if not 0 <= rq.shift <= 48:
        raise BundleError(f"{where}.requant.shift", "expected 0..48")
    if abs(rq.res_mult) >= MULT_LIMIT:
        raise BundleError(f"{where}.requant.res_mult", f"magnitude must stay below {MULT_LIMIT}")
    if not -(1 << 15) <= rq.lo <= rq.hi <= (1 << 15) - 1:
        raise BundleError(f"{where}.requant.lo", "need -32768 <= lo <= hi <= 32767")
