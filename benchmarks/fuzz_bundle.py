"""Long fuzz run of the bundle loader: only BundleError may ever escape.

Mutates a valid bundle COUNT times — random byte flips, truncations, and JSON metadata fields
replaced by random values (re-sealed with a fresh checksum, as a deliberate edit would be, so
the field checks behind the checksum are exercised too) — and counts the outcomes. A byte
mutant that loads as a different model, or any exception other than BundleError, is printed
with its input saved under /tmp and makes the run exit 1. The counts are in docs/bundle.md.

    .venv/bin/python benchmarks/fuzz_bundle.py --count 20000
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
import traceback

import numpy as np

from ternpynq.bundle import BundleError, from_bytes, safetensors_io, to_bytes
from ternpynq.bundle.io import CHECKSUM_KEY, META_KEY, checksum
from ternpynq.runtime.synthetic import random_bundle

VALUES = [
    None,
    True,
    0,
    -1,
    1,
    2**31,
    -(2**63),
    1e308,
    float("nan"),
    "",
    "x",
    [],
    [1, 2],
    {},
    {"a": 1},
    [[-1]],
    "conv",
    0.5,
]


def mutate_bytes(blob: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(blob)
    for _ in range(rng.integers(1, 9)):
        b[rng.integers(len(b))] = rng.integers(256)
    if rng.random() < 0.2:
        b = b[: rng.integers(len(b) + 1)]
    return bytes(b)


def mutate_json(blob: bytes, rng: np.random.Generator) -> bytes:
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    meta = json.loads(header["__metadata__"]["ternpynq"])
    node = meta
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = keys[rng.integers(len(keys))]
        child = node[key]
        if isinstance(child, (dict, list)) and child and rng.random() < 0.7:
            node = child
            continue
        node[key] = VALUES[rng.integers(len(VALUES))]
        break
    tensors, _ = safetensors_io.loads(blob)
    text = json.dumps(meta)
    header["__metadata__"] = {META_KEY: text, CHECKSUM_KEY: checksum(text, tensors)}
    head = json.dumps(header).encode()
    return struct.pack("<Q", len(head)) + head + blob[8 + n :]


def crash(i: int, case: bytes, why: str) -> int:
    path = f"/tmp/fuzz-crash-{i}.tpq"
    with open(path, "wb") as f:
        f.write(case)
    traceback.print_exc()
    print(f"case {i}: {why}; input saved to {path}", file=sys.stderr)
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    blob = to_bytes(random_bundle("tiny", seed=0))
    outcomes = {"BundleError": 0, "loaded, same model": 0, "loaded, resealed edit": 0}
    start = time.perf_counter()
    for i in range(args.count):
        by_bytes = bool(i % 2)
        case = mutate_bytes(blob, rng) if by_bytes else mutate_json(blob, rng)
        try:
            back = from_bytes(case)
        except BundleError:
            outcomes["BundleError"] += 1
            continue
        except Exception:
            return crash(i, case, "unexpected exception")
        if not by_bytes:
            outcomes["loaded, resealed edit"] += 1
        elif to_bytes(back) == blob:  # e.g. a header padding space changed to a tab
            outcomes["loaded, same model"] += 1
        else:
            return crash(i, case, "a corrupted file loaded as a different model")
    elapsed = time.perf_counter() - start
    print(
        f"{args.count} mutated bundles in {elapsed:.1f} s (seed {args.seed}): {outcomes}; "
        f"no other exception escaped and no corrupted file loaded as a different model"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
