"""The one error type a bad bundle raises."""

from __future__ import annotations

from typing import Any


class BundleError(ValueError):
    """A bundle file or bundle field is invalid.

    ``field`` names the part at fault (``"layers[3].requant.shift"``, ``"header"``, ...), so a
    user can tell what to fix; the message always starts with it.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class BundleWarning(UserWarning):
    """A bundle loads but should be re-saved (it predates the checksum)."""


class AccumulatorBoundError(BundleError):
    """A layer could overflow the exact float32 accumulator range (|acc| >= 2^24)."""


def show(value: Any, limit: int = 60) -> str:
    """A short repr for error messages (a corrupt file may hold huge values)."""
    try:
        text = repr(value)
    except ValueError:  # an integer past Python's digit limit for str()
        return "a huge integer"
    return text if len(text) <= limit else text[: limit - 3] + "..."
