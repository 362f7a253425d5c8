"""A strict, numpy-only reader and writer for the safetensors container.

The runtime depends on numpy and pillow only, so the container is handled here; tests check it
against the ``safetensors`` package both ways. Layout: an 8-byte little-endian header length,
a JSON header ``{name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}``, then the
raw little-endian tensor bytes. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import math
import re
import struct

import numpy as np

from ternpynq.bundle.errors import BundleError, show

DTYPES = {
    "U8": np.uint8,
    "I8": np.int8,
    "I16": np.int16,
    "I32": np.int32,
    "I64": np.int64,
    "F32": np.float32,
}
_NAMES = {np.dtype(v).newbyteorder("<"): k for k, v in DTYPES.items()}
MAX_HEADER = 16 << 20  # a header this large is corrupt, not a model
MAX_DEPTH = 32  # JSON nesting; ours is 4 deep, and deeper input would exhaust the parser's stack
MAX_DIM = 1 << 40  # one tensor dimension; larger is corrupt (and would overflow int64 products)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def parse_json(text: str | bytes, field: str) -> object:
    """``json.loads`` with a nesting limit, raising BundleError(field) on any fault."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        depth = peak = 0
        for bracket in _BRACKETS.findall(_STRING.sub("", text)):
            depth += 1 if bracket in "[{" else -1
            peak = max(peak, depth)
        if peak > MAX_DEPTH:
            raise BundleError(field, f"JSON nested deeper than {MAX_DEPTH} levels")
        return json.loads(text)
    except ValueError as exc:  # bad UTF-8, bad JSON, or an integer past Python's digit limit
        raise BundleError(field, f"not valid JSON ({exc})") from None


def dumps(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """Serialise tensors (in name order) and string metadata."""
    header: dict[str, object] = {"__metadata__": dict(metadata)}
    chunks, offset = [], 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        if arr.dtype not in _NAMES:
            raise TypeError(f"tensor {name!r}: dtype {arr.dtype} is not supported")
        data = arr.tobytes()
        header[name] = {
            "dtype": _NAMES[arr.dtype],
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((-len(head)) % 8)  # keep tensor data 8-byte aligned, as the spec advises
    return struct.pack("<Q", len(head)) + head + b"".join(chunks)


def loads(blob: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parse a safetensors blob; any structural fault raises BundleError("container", ...)."""
    if len(blob) < 8:
        raise BundleError("container", f"file is {len(blob)} bytes, too short for a header")
    (size,) = struct.unpack("<Q", blob[:8])
    if size > MAX_HEADER or 8 + size > len(blob):
        raise BundleError("container", f"header length {size} does not fit a {len(blob)}-byte file")
    header = parse_json(bytes(blob[8 : 8 + size]), "container")
    if not isinstance(header, dict):
        raise BundleError("container", "header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise BundleError("container.__metadata__", "must map strings to strings")
    data = memoryview(blob)[8 + size :]
    tensors, spans = {}, []
    for name, info in header.items():
        tensors[name] = _tensor(name, info, data)
        spans.append(tuple(info["data_offsets"]))
    _check_spans(sorted(spans), len(data))
    return tensors, metadata


def _tensor(name: str, info: object, data: memoryview) -> np.ndarray:
    field = f"tensors.{name}"
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise BundleError(field, "needs exactly dtype, shape and data_offsets")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if dtype not in DTYPES:
        raise BundleError(field, f"unsupported dtype {show(dtype)}")
    if not (
        isinstance(shape, list)
        and len(shape) <= 8
        and all(type(d) is int and 0 <= d <= MAX_DIM for d in shape)
    ):
        raise BundleError(field, f"bad shape {show(shape)}")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(type(o) is int for o in offsets)
        and 0 <= offsets[0] <= offsets[1] <= len(data)
    ):
        raise BundleError(field, f"bad data_offsets {show(offsets)}")
    item = np.dtype(DTYPES[dtype]).newbyteorder("<")
    count = math.prod(shape)  # exact Python integers: no overflow whatever the file says
    if offsets[1] - offsets[0] != count * item.itemsize:
        raise BundleError(field, f"{offsets[1] - offsets[0]} bytes do not hold shape {shape}")
    arr = np.frombuffer(data[offsets[0] : offsets[1]], dtype=item).reshape(shape)
    return arr.astype(arr.dtype.newbyteorder("="))  # a private, native-order copy


def _check_spans(spans: list[tuple[int, int]], size: int) -> None:
    """Tensors must tile the data area exactly: no overlap, no gap, no trailing bytes."""
    position = 0
    for begin, end in spans:
        if begin != position:
            raise BundleError("container", "tensor data overlaps or leaves a gap")
        position = end
    if position != size:
        raise BundleError("container", f"{size - position} unexplained bytes after the tensors")
