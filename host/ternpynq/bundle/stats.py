"""PE-wise group statistics and the paper's compression rate.

A group is one output filter × g consecutive input channels × the whole kernel
(docs/numerics.md). CR = 16 / (D · (1 − s_min)): D is the fraction of non-empty groups and
s_min the smallest zero fraction inside any non-empty group; 16 is 32-bit float over 2-bit codes.
"""

from __future__ import annotations

import numpy as np

from ternpynq.bundle.errors import BundleError
from ternpynq.bundle.schema import WEIGHTED_OPS, Bundle, Layer, group_count


def group_view(weight: np.ndarray, g: int) -> np.ndarray:
    """(Cout, Cin, k, k) or (Cout, Cin) -> (Cout, ceil(Cin/g), g·k·k), zero-padding the last group.

    >>> group_view(np.ones((2, 5, 3, 3)), 4).shape
    (2, 2, 36)
    """
    w = np.asarray(weight)
    w = w.reshape(w.shape[0], w.shape[1], -1)  # (Cout, Cin, k·k)
    cout, cin, kk = w.shape
    groups = group_count(cin, g)
    padded = np.zeros((cout, groups * g, kk), dtype=w.dtype)
    padded[:, :cin] = w
    return padded.reshape(cout, groups, g * kk)


def group_mask(weight: np.ndarray, g: int) -> np.ndarray:
    """(Cout, ceil(Cin/g)) bool: True where a group holds any nonzero weight."""
    return np.any(group_view(weight, g) != 0, axis=2)


def group_sizes(cin: int, kk: int, g: int) -> np.ndarray:
    """Number of real (non-padding) weights in each group along Cin."""
    full = np.full(group_count(cin, g), g)
    if cin % g:
        full[-1] = cin % g
    return full * kk


def layer_stats(layer: Layer, g: int, where: str | None = None) -> dict:
    """Group count, density D, s_min and byte counts of one conv/linear layer.

    D is recomputed from the weights (a group is kept when it holds a nonzero), never read from
    the stored mask: a mask that marks an all-zero group of a ternary layer as kept would make
    the overlay stream a group the statistics do not count, so it is refused. ``where`` names
    the layer in that error (default ``layers.<name>``).
    """
    w = layer.weight
    kk = int(np.prod(w.shape[2:], dtype=np.int64)) if w.ndim > 2 else 1
    nonzero = np.count_nonzero(group_view(w, g), axis=2)  # (Cout, G)
    sizes = group_sizes(w.shape[1], kk, g)[None, :]
    kept = nonzero > 0
    if layer.trits == 1 and layer.mask is not None and np.any(layer.mask & ~kept):
        out, grp = (int(i[0]) for i in np.nonzero(layer.mask & ~kept))
        raise BundleError(
            f"{where or 'layers.' + layer.name}.mask",
            f"marks group ({out}, {grp}) as kept but all its weights are zero",
        )
    zero_fraction = 1.0 - nonzero / sizes
    s_min = float(zero_fraction[kept].min()) if kept.any() else 1.0
    return {
        "name": layer.name,
        "shape": list(w.shape),
        "trits": layer.trits,
        "groups": int(kept.size),
        "kept_groups": int(kept.sum()),
        "density": float(kept.mean()),
        "weights_in_groups": int(np.broadcast_to(sizes, kept.shape).sum()),
        "weights_in_kept_groups": int((kept * sizes).sum()),
        "s_min": s_min,
        "weights": int(w.size),
        "nonzero": int(np.count_nonzero(w)),
        "float_bytes": int(w.size) * 4,
        # what the overlay streams: 2 bits per weight per trit plane, kept groups only
        "stream_bytes": int(-(-int((kept * sizes).sum()) * 2 * layer.trits // 8)),
    }


def compression_rate(density: float, s_min: float) -> float:
    """The paper's PE-wise CR = 16 / (D · (1 − s_min)); infinite for an all-pruned model."""
    denominator = density * (1.0 - s_min)
    return float("inf") if denominator == 0 else 16.0 / denominator


def model_stats(bundle: Bundle) -> dict:
    """Per-layer stats and the PE-wise CR over the ternary (trits == 1) layers.

    The multi-trit first conv and FC are full-precision layers in the paper's accounting and
    are excluded from D and s_min, as the paper excludes them from pruning. ``density`` is D by
    groups (kept groups / groups, pooled over layers), the D of the CR; ``density_weights`` is
    D by weights (weights in kept groups / weights), which weighs a 3x3 group 9 times a 1x1 one.
    """
    layers = [
        layer_stats(layer, bundle.g, f"layers[{i}]")
        for i, layer in enumerate(bundle.layers)
        if layer.op in WEIGHTED_OPS
    ]
    ternary = [s for s in layers if s["trits"] == 1]
    total = sum(s["groups"] for s in ternary)
    kept = sum(s["kept_groups"] for s in ternary)
    weights = sum(s["weights_in_groups"] for s in ternary)
    kept_weights = sum(s["weights_in_kept_groups"] for s in ternary)
    density = kept / total if total else 1.0
    density_weights = kept_weights / weights if weights else 1.0
    s_min = min((s["s_min"] for s in ternary if s["kept_groups"]), default=0.0)
    return {
        "g": bundle.g,
        "density": density,
        "density_weights": density_weights,
        "s_min": s_min,
        "cr": compression_rate(density, s_min),
        "cr_by_weights": compression_rate(density_weights, s_min),
        "float_bytes": sum(s["float_bytes"] for s in layers),
        "stream_bytes": sum(s["stream_bytes"] for s in layers),
        "layers": layers,
    }
