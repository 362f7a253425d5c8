"""Run a bundle's layer graph on integer codes with the golden model."""

from __future__ import annotations

import numpy as np

from ternpynq.bundle.schema import Bundle
from ternpynq.runtime import ops


def check_input(bundle: Bundle, codes: np.ndarray) -> np.ndarray:
    """Validate a batch of input codes against the bundle's input spec; returns int8 codes."""
    codes = np.asarray(codes)
    c, (h, w) = bundle.input.channels, bundle.input.size
    if codes.ndim != 4 or codes.shape[1:] != (c, h, w):
        raise ValueError(f"expected input codes of shape (N, {c}, {h}, {w}), got {codes.shape}")
    if not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"input codes must be integers, got {codes.dtype}")
    if codes.size and (codes.min() < -128 or codes.max() > 127):
        raise ValueError("input codes must lie in the int8 range [-128, 127]")
    return codes.astype(np.int8)


class Network:
    """The golden model of a bundle: ``run`` maps int8 input codes to output codes.

    >>> from ternpynq.runtime.synthetic import random_bundle
    >>> net = Network(random_bundle("tiny", seed=0))
    >>> net.run(np.zeros((2, 1, 8, 8), np.int8)).shape
    (2, 10)
    """

    def __init__(self, bundle: Bundle, run_layer=None) -> None:
        self.bundle = bundle
        self._run_layer = run_layer or ops.layer_runner(bundle)  # weights prepared once

    def run_all(self, codes: np.ndarray) -> dict[str, np.ndarray]:
        """Every tensor of the graph by name ("input" included), as int32 codes."""
        tensors = {"input": check_input(self.bundle, codes).astype(np.int32)}
        for layer in self.bundle.layers:
            x = tensors[layer.input]
            residual = tensors[layer.residual] if layer.residual else None
            tensors[layer.name] = self._run_layer(layer, x, residual)
        return tensors

    def run(self, codes: np.ndarray) -> np.ndarray:
        """(N, C, H, W) int8 codes -> (N, K) int32 output codes."""
        return self.run_all(codes)[self.bundle.output]
