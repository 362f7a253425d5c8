"""Typed field access for parsing JSON metadata: every failure names the field at fault."""

from __future__ import annotations

import math
from typing import Any

from ternpynq.bundle.errors import BundleError, show


class Fields:
    """A JSON object being parsed, with its path (``layers[2].requant``) for error messages."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise BundleError(path, f"expected an object, got {type(data).__name__}")
        self.data = data
        self.path = path

    def _get(self, key: str, default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise BundleError(self._name(key), "missing")
            return default
        return self.data[key]

    def _name(self, key: str) -> str:
        if key.startswith("["):
            return f"{self.path}{key}"
        return f"{self.path}.{key}" if self.path else key

    def int(self, key: str, lo: int, hi: int, default: Any = ...) -> int:
        value = self._get(key, default)
        if type(value) is not int or not lo <= value <= hi:
            raise BundleError(
                self._name(key), f"expected an integer in [{lo}, {hi}], got {show(value)}"
            )
        return value

    def float(self, key: str, positive: bool = False, default: Any = ...) -> float:
        value = self._get(key, default)
        # an integer beyond 2^53 is refused before math.isfinite, whose float() would overflow
        finite = (type(value) is int and abs(value) <= 2**53) or (
            type(value) is float and math.isfinite(value)
        )
        if not finite or (positive and value <= 0):
            kind = "a positive finite number" if positive else "a finite number"
            raise BundleError(self._name(key), f"expected {kind}, got {show(value)}")
        return float(value)

    def str(self, key: str, default: Any = ..., choices: tuple[str, ...] | None = None) -> str:
        value = self._get(key, default)
        if not isinstance(value, str) or not value or (choices and value not in choices):
            expected = f"one of {', '.join(choices)}" if choices else "a non-empty string"
            raise BundleError(self._name(key), f"expected {expected}, got {show(value)}")
        return value

    def optional_str(self, key: str) -> str | None:
        return None if self._get(key, None) is None else self.str(key)

    def list(self, key: str, length: int | None = None, default: Any = ...) -> list:
        value = self._get(key, default)
        if not isinstance(value, list) or (length is not None and len(value) != length):
            expected = f"a list of {length}" if length is not None else "a list"
            raise BundleError(self._name(key), f"expected {expected}, got {show(value)}")
        return value

    def ints(self, key: str, lo: int, hi: int, length: int | None = None) -> tuple[int, ...]:
        items = self.list(key, length)
        if not items or not all(type(v) is int and lo <= v <= hi for v in items):
            raise BundleError(
                self._name(key), f"expected integers in [{lo}, {hi}], got {show(items)}"
            )
        return tuple(items)

    def floats(self, key: str, length: int, positive: bool = False) -> tuple[float, ...]:
        items = self.list(key, length)
        box = Fields({f"[{i}]": v for i, v in enumerate(items)}, self._name(key))
        return tuple(box.float(f"[{i}]", positive) for i in range(len(items)))

    def object(self, key: str, default: Any = ...) -> Fields:
        return Fields(self._get(key, default), self._name(key))
