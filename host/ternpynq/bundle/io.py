"""Save and load ``.tpq`` bundles: safetensors tensors plus one JSON metadata document.

``load`` validates every field and the consistency between them (shapes along the graph,
packed sizes, mask against weights, requant bounds, the accumulator bound, stored statistics)
and raises ``BundleError`` naming the field at fault. Nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ternpynq.bundle import safetensors_io
from ternpynq.bundle.errors import BundleError, BundleWarning
from ternpynq.bundle.fields import Fields
from ternpynq.bundle.packing import pack_mask, pack_trits, unpack_mask, unpack_trits
from ternpynq.bundle.schema import (
    FORMAT_NAME,
    FORMAT_VERSION,
    REQUANT_OPS,
    SUPPORTED_VERSIONS,
    WEIGHTED_OPS,
    WINDOW_OPS,
    Bundle,
    InputSpec,
    Layer,
    Op,
    Requant,
    group_count,
    pads,
)
from ternpynq.bundle.stats import model_stats
from ternpynq.bundle.validate import check_graph, weight_shape

META_KEY = "ternpynq"
CHECKSUM_KEY = "sha256"
MAX_BUNDLE_BYTES = 1 << 30
FIRST_CHECKSUMMED_VERSION = 2


def checksum(meta_json: str, tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 (hex) of the metadata text and every tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    text = meta_json.encode("utf-8")
    # every part is length-prefixed, so no two different bundles hash the same byte string
    digest.update(len(text).to_bytes(8, "little") + text)
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        head = json.dumps([name, arr.dtype.str, list(arr.shape)]).encode()
        data = arr.tobytes()
        digest.update(len(head).to_bytes(8, "little") + head)
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def to_bytes(bundle: Bundle) -> bytes:
    """Serialise a bundle after checking it exactly as ``load`` would."""
    check_graph(bundle)
    tensors: dict[str, np.ndarray] = {}
    layers = []
    for layer in bundle.layers:
        entry = {
            "name": layer.name,
            "op": layer.op.value,
            "input": layer.input,
            "in_shape": list(layer.in_shape),
            "out_shape": list(layer.out_shape),
            "out_scale": layer.out_scale,
        }
        if layer.residual is not None:
            entry["residual"] = layer.residual
        if layer.op in WINDOW_OPS:
            sides = pads(layer.padding)
            padding = sides[0] if len(set(sides)) == 1 else list(sides)
            entry.update(kernel=layer.kernel, stride=layer.stride, padding=padding)
        if layer.op in WEIGHTED_OPS:
            entry["trits"] = layer.trits
            if layer.alpha is not None:
                entry["alpha"] = layer.alpha
            tensors[f"{layer.name}.weight"] = pack_trits(layer.weight, layer.trits)
            tensors[f"{layer.name}.mask"] = pack_mask(layer.mask)
        if layer.requant is not None:
            rq = layer.requant
            entry["requant"] = {
                "shift": rq.shift,
                "lo": rq.lo,
                "hi": rq.hi,
                "res_mult": rq.res_mult,
            }
            tensors[f"{layer.name}.mult"] = np.asarray(rq.mult, np.int32)
            tensors[f"{layer.name}.bias"] = np.asarray(rq.bias, np.int32)
        layers.append(entry)
    spec = bundle.input
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "model": bundle.model,
        "labels": list(bundle.labels),
        "input": {
            "size": list(spec.size),
            "channels": spec.channels,
            "mean": list(spec.mean),
            "std": list(spec.std),
            "resize": spec.resize,
            "scale": spec.scale,
            "interpolation": spec.interpolation,
        },
        "g": bundle.g,
        "layers": layers,
        "output": bundle.output,
        "stats": _summary(model_stats(bundle)),
        "extra": bundle.extra,
    }
    text = json.dumps(meta)
    return safetensors_io.dumps(tensors, {META_KEY: text, CHECKSUM_KEY: checksum(text, tensors)})


def save(bundle: Bundle, path: str | os.PathLike) -> Path:
    """Write ``bundle`` to ``path`` atomically (a crash never leaves a half-written model)."""
    path = Path(path)
    blob = to_bytes(bundle)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike) -> Bundle:
    """Read and validate a bundle file; raises BundleError (or OSError if unreadable).

    Only regular files are read, and never more than ``MAX_BUNDLE_BYTES``: a device such as
    /dev/zero reports size 0 and would otherwise be read until memory runs out. A file that
    is already larger is refused before it is opened (a board has 512 MB).
    """
    path = Path(path)
    info = path.stat()  # before opening: opening a FIFO would block
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise BundleError("file", f"{path} is {kind}, not a bundle")
    if info.st_size > MAX_BUNDLE_BYTES:
        raise BundleError("file", f"{path} is larger than {MAX_BUNDLE_BYTES} bytes")
    with path.open("rb") as f:  # the cap again: the file may grow while it is read
        blob = f.read(MAX_BUNDLE_BYTES + 1)
    if len(blob) > MAX_BUNDLE_BYTES:
        raise BundleError("file", f"{path} is larger than {MAX_BUNDLE_BYTES} bytes")
    return from_bytes(blob)


def from_bytes(blob: bytes) -> Bundle:
    """Parse and validate a bundle held in memory."""
    tensors, metadata = safetensors_io.loads(blob)
    if META_KEY not in metadata:
        raise BundleError("metadata", f"no {META_KEY!r} entry: not a ternpynq bundle")
    meta = safetensors_io.parse_json(metadata[META_KEY], "metadata")
    root = Fields(meta, "")
    if root.str("format") != FORMAT_NAME:
        raise BundleError("format", f"expected {FORMAT_NAME!r}")
    version = root.int("version", 0, 1 << 30)
    if version not in SUPPORTED_VERSIONS:
        raise BundleError(
            "version",
            f"format version {version} is not supported "
            f"(this ternpynq reads versions {', '.join(map(str, SUPPORTED_VERSIONS))})",
        )
    _check_sum(metadata, tensors, version)
    labels = root.list("labels")
    if not labels or not all(isinstance(x, str) and x for x in labels):
        raise BundleError("labels", "expected a non-empty list of non-empty strings")
    g = root.int("g", 1, 4096)
    used: set[str] = set()
    layers = [
        _layer(Fields(item, f"layers[{i}]"), tensors, g, used, version)
        for i, item in enumerate(root.list("layers"))
    ]
    extra = meta.get("extra", {})
    if not isinstance(extra, dict):
        raise BundleError("extra", "expected an object")
    bundle = Bundle(
        model=root.str("model"),
        labels=labels,
        input=_input(root.object("input")),
        g=g,
        layers=layers,
        output=root.str("output"),
        extra=extra,
        version=version,
    )
    unused = sorted(set(tensors) - used)
    if unused:
        raise BundleError(f"tensors.{unused[0]}", "is not used by any layer")
    check_graph(bundle)
    bundle.stats = _summary(model_stats(bundle))
    stored = root.object("stats")
    for key in ("density", "s_min"):
        if abs(stored.float(key) - bundle.stats[key]) > 1e-9:
            raise BundleError(
                f"stats.{key}",
                f"stored {stored.float(key)} but the weights give {bundle.stats[key]}",
            )
    return bundle


def _check_sum(metadata: dict[str, str], tensors: dict, version: int) -> None:
    """A changed bit anywhere in the metadata or the tensors is an error, never another model."""
    stored = metadata.get(CHECKSUM_KEY)
    if stored is None and version < FIRST_CHECKSUMMED_VERSION:
        warnings.warn(
            f"bundle format version {version} has no checksum, so corruption cannot be "
            f"detected; re-save it with this ternpynq (load + save) to add one",
            BundleWarning,
            stacklevel=3,
        )
        return
    if stored is None:
        raise BundleError(f"container.__metadata__.{CHECKSUM_KEY}", "missing")
    if stored != checksum(metadata[META_KEY], tensors):
        raise BundleError(
            f"container.__metadata__.{CHECKSUM_KEY}",
            "does not match the metadata and tensors: the file is corrupt or was altered",
        )


def _summary(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if k != "layers"}


def _input(f: Fields) -> InputSpec:
    channels = f.int("channels", 1, 3)
    if channels == 2:
        raise BundleError(f"{f.path}.channels", "expected 1 (grey) or 3 (RGB)")
    size = f.ints("size", 1, 4096, length=2)
    return InputSpec(
        size=(size[0], size[1]),
        channels=channels,
        mean=f.floats("mean", channels),
        std=f.floats("std", channels, positive=True),
        resize=f.int("resize", max(size), 8192),
        scale=f.float("scale", positive=True),
        interpolation=f.str(
            "interpolation", "bilinear", choices=("nearest", "bilinear", "bicubic")
        ),
    )


def _tensor(tensors: dict, name: str, dtype: type, used: set[str]) -> np.ndarray:
    if name not in tensors:
        raise BundleError(f"tensors.{name}", "missing")
    arr = tensors[name]
    if arr.dtype != np.dtype(dtype):
        raise BundleError(f"tensors.{name}", f"expected dtype {np.dtype(dtype)}, got {arr.dtype}")
    used.add(name)
    return arr


def _layer(f: Fields, tensors: dict, g: int, used: set[str], version: int) -> Layer:
    ops = tuple(o.value for o in Op if version > 1 or o is not Op.DWCONV)
    op = Op(f.str("op", choices=ops))
    layer = Layer(
        name=f.str("name"),
        op=op,
        input=f.str("input"),
        in_shape=f.ints("in_shape", 1, 1 << 16),
        out_shape=f.ints("out_shape", 1, 1 << 16),
        out_scale=f.float("out_scale", positive=True),
        residual=f.optional_str("residual"),
    )
    if op in WINDOW_OPS:
        layer.kernel = f.int("kernel", 1, 15)
        layer.stride = f.int("stride", 1, 8)
        if version > 1 and isinstance(f.data.get("padding"), list):
            sides = f.ints("padding", 0, layer.kernel - 1, length=4)
            layer.padding = sides[0] if len(set(sides)) == 1 else sides
        else:
            layer.padding = f.int("padding", 0, layer.kernel - 1)
    if op in WEIGHTED_OPS:
        layer.trits = f.int("trits", 1, 8)
        alpha = f.data.get("alpha")
        layer.alpha = None if alpha is None else f.float("alpha", positive=True)
        shape = weight_shape(layer)
        cout, cin = shape[0], shape[1]
        packed = _tensor(tensors, f"{layer.name}.weight", np.uint8, used)
        if packed.ndim != 2 or packed.shape[0] != layer.trits:
            raise BundleError(
                f"tensors.{layer.name}.weight",
                f"expected {layer.trits} packed planes, got shape {packed.shape}",
            )
        layer.weight = unpack_trits(packed, shape, f"tensors.{layer.name}.weight")
        bits = _tensor(tensors, f"{layer.name}.mask", np.uint8, used)
        layer.mask = unpack_mask(bits, (cout, group_count(cin, g)), f"tensors.{layer.name}.mask")
    if op in REQUANT_OPS:
        layer.requant = _requant(f.object("requant"), tensors, layer, used)
    elif "requant" in f.data:
        raise BundleError(f"{f.path}.requant", f"a {op.value} layer has no requantization")
    return layer


def _requant(f: Fields, tensors: dict, layer: Layer, used: set[str]) -> Requant:
    lo = f.int("lo", -(1 << 15), (1 << 15) - 1)
    hi = f.int("hi", lo, (1 << 15) - 1)
    cout = layer.out_shape[0]
    rq = Requant(
        mult=_tensor(tensors, f"{layer.name}.mult", np.int32, used),
        bias=_tensor(tensors, f"{layer.name}.bias", np.int32, used),
        shift=f.int("shift", 0, 48),
        lo=lo,
        hi=hi,
        res_mult=f.int("res_mult", -(1 << 23) + 1, (1 << 23) - 1, default=0),
    )
    for key in ("mult", "bias"):
        arr = getattr(rq, key)
        if arr.shape != (cout,):
            raise BundleError(
                f"tensors.{layer.name}.{key}", f"expected shape ({cout},), got {arr.shape}"
            )
    return rq
