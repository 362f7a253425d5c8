"""Image classification on any backend: preprocess, run, softmax, top-k labels."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ternpynq.bundle.schema import Bundle
from ternpynq.runtime import backends
from ternpynq.runtime.preprocess import preprocess


@dataclass
class Prediction:
    label: str
    index: int
    probability: float


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable for int16-range logits)."""
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


class Classifier:
    """Classify images with a bundle on one backend.

    The backend is shared state (one overlay per board), so calls are serialised by a lock.

    >>> from ternpynq.runtime.synthetic import random_bundle
    >>> from PIL import Image
    >>> clf = Classifier(random_bundle("tiny"), backend="emu")
    >>> [p.label for p in clf.classify([Image.new("L", (8, 8))], top=2)[0]]  # doctest: +ELLIPSIS
    ['class ...', 'class ...']
    """

    def __init__(self, bundle: Bundle, backend: str | backends.Backend = "emu", **options) -> None:
        """``backend``: a name (built from ``bundle`` with ``options``) or an open backend."""
        self.bundle = bundle
        if isinstance(backend, str):
            backend = backends.create(backend, bundle, **options)
        self.backend = backend
        self._lock = threading.Lock()

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def logits(self, codes: np.ndarray) -> np.ndarray:
        """(N, C, H, W) int8 codes -> (N, K) float logits (output codes × output scale)."""
        with self._lock:
            out = self.backend.run(codes)
        return self._scaled(out)

    def start(self, codes: np.ndarray) -> Callable[[], np.ndarray]:
        """``logits`` in two steps, on a backend with ``send`` (``serve.worker.ProcessBackend``):
        queue ``codes``, and return the function that waits for their logits. The backend
        takes the next batch while it computes this one; the caller waits for the answers in
        the order it sent them (``serve.batcher`` does), so this lock is not taken."""
        wait = self.backend.send(codes)
        return lambda: self._scaled(wait())

    def _scaled(self, out: np.ndarray) -> np.ndarray:
        return out.astype(np.float64) * self.bundle.output_scale

    def classify(self, images: list, top: int = 5) -> list[list[Prediction]]:
        """Paths, bytes or PIL images -> the ``top`` most probable labels of each."""
        if top < 1:
            raise ValueError("top must be at least 1")
        codes = np.stack([preprocess(image, self.bundle.input) for image in images])
        return self.rank(self.logits(codes), top)

    def rank(self, logits: np.ndarray, top: int) -> list[list[Prediction]]:
        """(N, K) logits -> the ``top`` most probable labels of each row."""
        probs = softmax(logits)
        order = np.argsort(-probs, axis=1, kind="stable")[:, :top]
        return [
            [Prediction(self.bundle.labels[i], int(i), float(p[i])) for i in row]
            for row, p in zip(order, probs, strict=True)
        ]

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Classifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
