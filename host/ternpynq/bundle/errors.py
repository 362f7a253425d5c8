"""The one error type a bad bundle raises."""

from __future__ import annotations


class BundleError(ValueError):
    """A bundle file or bundle field is invalid.

    ``field`` names the part at fault (``"layers[3].requant.shift"``, ``"header"``, ...), so a
    user can tell what to fix; the message always starts with it.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class AccumulatorBoundError(BundleError):
    """A layer could overflow the exact float32 accumulator range (|acc| >= 2^24)."""
