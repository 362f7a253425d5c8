"""Time ``emu`` and ``onnx`` against torch's float32 CPU forward of the same network.

ResNet-18 at 224×224 with random ternary weights and ~24% of PE groups pruned; torch runs the
same layer graph (same shapes, float weights) in one process, side by side, so the ratio is
what counts, not the absolute times. Results go in docs/performance.md.

    .venv/bin/python benchmarks/emu_vs_torch.py [--batch 1 4] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform

import numpy as np
import onnxruntime
import torch
import torch.nn.functional as F

from ternpynq.bundle.schema import Bundle, Op
from ternpynq.runtime import backends
from ternpynq.runtime.network import Network
from ternpynq.runtime.synthetic import random_bundle
from timing import best_time


def torch_forward(bundle: Bundle):
    """A float32 torch function running the bundle's graph with its (float) weights."""
    weights = {
        layer.name: torch.from_numpy(layer.weight.astype(np.float32))
        for layer in bundle.layers
        if layer.weight is not None
    }

    @torch.inference_mode()
    def forward(x: torch.Tensor) -> torch.Tensor:
        t = {"input": x}
        for layer in bundle.layers:
            h = t[layer.input]
            if layer.op is Op.CONV:
                h = F.conv2d(h, weights[layer.name], stride=layer.stride, padding=layer.padding)
                if layer.residual:
                    h = h + t[layer.residual]
            elif layer.op is Op.LINEAR:
                h = F.linear(h, weights[layer.name])
            elif layer.op is Op.MAXPOOL:
                h = F.max_pool2d(h, layer.kernel, layer.stride, layer.padding)
            else:
                h = h.mean(dim=(2, 3))
            if layer.requant is not None and layer.requant.lo == 0:
                h = F.relu(h)
            t[layer.name] = h
        return t[bundle.output]

    return forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--prune", type=float, default=0.24)
    args = parser.parse_args()
    bundle = random_bundle("resnet18", prune=args.prune, seed=0)
    net, forward = Network(bundle), torch_forward(bundle)
    onnx = backends.create("onnx", bundle)
    host = platform.processor() or platform.machine()
    print(
        f"ResNet-18 224x224, {args.prune:.0%} of groups pruned; {host}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}, "
        f"onnxruntime {onnxruntime.__version__}"
    )
    print(
        f"{'batch':>5} {'emu ms':>8} {'onnx ms':>8} {'torch ms':>9} {'emu/torch':>10} "
        f"{'onnx/torch':>11} {'emu/onnx':>9}   (per image)"
    )
    rng = np.random.default_rng(0)
    for n in args.batch:
        codes = rng.integers(-128, 128, (n, 3, 224, 224)).astype(np.int8)
        x = torch.from_numpy(codes.astype(np.float32))
        same = np.array_equal(net.run(codes), onnx.run(codes))
        t_emu = best_time(lambda codes=codes: net.run(codes), args.repeats) / n
        t_onnx = best_time(lambda codes=codes: onnx.run(codes), args.repeats) / n
        t_torch = best_time(lambda x=x: forward(x), args.repeats) / n
        print(
            f"{n:>5} {t_emu * 1e3:>8.1f} {t_onnx * 1e3:>8.1f} {t_torch * 1e3:>9.1f} "
            f"{t_emu / t_torch:>9.2f}x {t_onnx / t_torch:>10.2f}x {t_emu / t_onnx:>8.2f}x"
            f"   emu == onnx: {same}"
        )


if __name__ == "__main__":
    main()
