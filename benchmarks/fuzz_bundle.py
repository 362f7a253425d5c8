"""Long fuzz run of the bundle loader: only BundleError may ever escape.

Mutates a valid bundle COUNT times — random byte flips, truncations, and JSON metadata fields
replaced by random values — and counts the outcomes. Any other exception is printed with its
input saved under /tmp and makes the run exit 1. The count is recorded in docs/bundle.md.

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

from ternpynq.bundle import BundleError, from_bytes, to_bytes
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
    header["__metadata__"]["ternpynq"] = json.dumps(meta)
    head = json.dumps(header).encode()
    return struct.pack("<Q", len(head)) + head + blob[8 + n :]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    blob = to_bytes(random_bundle("tiny", seed=0))
    outcomes = {"BundleError": 0, "loaded": 0}
    start = time.perf_counter()
    for i in range(args.count):
        case = mutate_bytes(blob, rng) if i % 2 else mutate_json(blob, rng)
        try:
            from_bytes(case)
            outcomes["loaded"] += 1
        except BundleError:
            outcomes["BundleError"] += 1
        except Exception:
            path = f"/tmp/fuzz-crash-{i}.tpq"
            with open(path, "wb") as f:
                f.write(case)
            traceback.print_exc()
            print(f"case {i}: unexpected exception; input saved to {path}", file=sys.stderr)
            return 1
    elapsed = time.perf_counter() - start
    print(
        f"{args.count} mutated bundles in {elapsed:.1f} s (seed {args.seed}): {outcomes}; "
        f"no other exception escaped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
