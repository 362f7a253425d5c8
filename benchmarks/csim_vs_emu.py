"""Time the ``csim`` backend beside ``emu`` on the same inputs, in one run.

``csim`` is the full host driver (repacked weights, descriptor writes, polling, NHWC packing)
over the overlay's HLS C++ compiled with g++; ``emu`` is the numpy golden model. A third column
runs the same driver with a kernel that returns at once, which isolates the host driver's own
cost per image (the part a board's ARM pays on top of the fabric). Both backends' outputs are
checked equal before any time is reported. Results go in docs/performance.md.

    .venv/bin/python benchmarks/csim_vs_emu.py [--batch 1 16] [--repeats 3] [--resnet18]
"""

from __future__ import annotations

import argparse
import os
import platform

import numpy as np

import ternpynq
from ternpynq.bundle.io import load
from ternpynq.bundle.schema import Bundle
from ternpynq.overlay.driver import Driver
from ternpynq.overlay.regmap import load_regmap
from ternpynq.overlay.simdevice import SimulatedDevice
from ternpynq.runtime import backends
from ternpynq.runtime.synthetic import random_bundle
from timing import best_time

BOARD = "pynq-z2"


def models(with_resnet18: bool) -> list[Bundle]:
    out = []
    if ternpynq.DEFAULT_MODEL.exists():
        out.append(load(ternpynq.DEFAULT_MODEL))
    else:
        out.append(random_bundle("resnet20", prune=0.4, seed=0))
    if with_resnet18:
        out.append(random_bundle("resnet18", prune=0.24, seed=0))
    return out


def row(bundle: Bundle, batch: int, repeats: int) -> dict:
    c, (h, w) = bundle.input.channels, bundle.input.size
    x = np.random.default_rng(0).integers(-128, 128, (batch, c, h, w)).astype(np.int8)
    csim = backends.create("csim", bundle, board=BOARD, max_batch=batch)
    emu = backends.create("emu", bundle)
    try:
        if not np.array_equal(csim.run(x), emu.run(x)):
            raise SystemExit(f"{bundle.model}: csim and emu disagree; not timing a wrong backend")
        t_csim = best_time(lambda: csim.run(x), repeats)
        t_emu = best_time(lambda: emu.run(x), repeats)
        model_cycles = csim.driver.model_cycles
        clock_mhz = csim.driver.board.clock_mhz
    finally:
        csim.close()
        emu.close()
    idle = SimulatedDevice(load_regmap(), lambda regs, ddr, base: (0, 0))
    with Driver(idle, BOARD, bundle, max_batch=batch) as driver:
        t_host = best_time(lambda: driver.run(x), repeats)
    return {
        "model": bundle.model,
        "batch": batch,
        "csim": batch / t_csim,
        "emu": batch / t_emu,
        "host_ms": 1e3 * t_host / batch,
        "layers": len(bundle.layers),
        "model_fps": clock_mhz * 1e6 / model_cycles,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--resnet18", action="store_true", help="also ResNet-18 at 224x224")
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}, board {BOARD}")
    print("| model | batch | csim images/s | emu images/s | emu / csim | host driver ms/img "
          f"(no-op kernel) | modelled {BOARD} images/s |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for bundle in models(args.resnet18):
        batches = [1] if bundle.input.size[0] > 64 else args.batch  # ResNet-18 csim is slow
        for batch in batches:
            r = row(bundle, batch, args.repeats)
            print(f"| {r['model']} | {r['batch']} | {r['csim']:.1f} | {r['emu']:.1f} | "
                  f"{r['emu'] / r['csim']:.1f}x | {r['host_ms']:.2f} ({r['layers']} layers) | "
                  f"{r['model_fps']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
