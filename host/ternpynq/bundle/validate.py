"""Semantic checks of a bundle's layer graph, shared by ``save`` and ``load``.

Each failure raises ``BundleError`` naming the layer field at fault.
"""

from __future__ import annotations

import numpy as np

from ternpynq.bundle.errors import AccumulatorBoundError, BundleError
from ternpynq.bundle.numerics import ACC_LIMIT, BIAS_LIMIT, MULT_LIMIT
from ternpynq.bundle.packing import trit_limit
from ternpynq.bundle.schema import WEIGHTED_OPS, Bundle, Layer, Op, group_count
from ternpynq.bundle.stats import group_mask

INPUT_RANGE = (-128, 127)  # the network input is int8


def output_shape(layer: Layer) -> tuple[int, ...]:
    """The per-image output shape a layer's parameters imply."""
    if layer.op is Op.GAP:
        return (layer.in_shape[0],)
    if layer.op is Op.LINEAR:
        return (layer.weight.shape[0],)
    _, h, w = layer.in_shape
    k, s, p = layer.kernel, layer.stride, layer.padding
    channels = layer.weight.shape[0] if layer.op is Op.CONV else layer.in_shape[0]
    return (channels, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)


def accumulator_peak(weight: np.ndarray, code_range: tuple[int, int]) -> int:
    """Largest |partial sum| any input can produce: max over channels of Σ|w| · max|code|."""
    per_channel = np.abs(weight.reshape(weight.shape[0], -1).astype(np.int64)).sum(axis=1)
    return int(per_channel.max(initial=0)) * max(abs(code_range[0]), abs(code_range[1]))


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
            if layer.op is not Op.CONV:
                raise BundleError(f"{where}.residual", "only a conv can take a residual input")
            if shapes.get(layer.residual) != tuple(layer.out_shape):
                raise BundleError(
                    f"{where}.residual",
                    f"{layer.residual!r} is not an earlier tensor of shape {list(layer.out_shape)}",
                )
        elif layer.requant is not None and layer.requant.res_mult != 0:
            raise BundleError(f"{where}.requant.res_mult", "set on a layer without a residual")
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
    if layer.op in (Op.CONV, Op.MAXPOOL) and layer.padding >= layer.kernel:
        raise BundleError(f"{where}.padding", "must be smaller than the kernel")
    if layer.op in WEIGHTED_OPS:
        _check_weights(layer, where, g, in_range)
    rq = layer.requant
    if (rq is None) != (layer.op is Op.MAXPOOL):
        raise BundleError(f"{where}.requant", "required for conv, linear and gap only")
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
    cin = layer.in_shape[0]
    want = (
        (w.shape[0], cin, layer.kernel, layer.kernel) if layer.op is Op.CONV else (w.shape[0], cin)
    )
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
    if peak >= ACC_LIMIT:
        raise AccumulatorBoundError(
            f"{where}.weight",
            f"worst-case accumulator {peak} reaches "
            f"2^24; float32 accumulation would no longer be exact",
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
