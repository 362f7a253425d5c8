"""The cost of the exact wide path, side by side with the float32 path, in one run.

A 1×1 projection with 1,152 inputs and 5-trit weights (EfficientNet-Lite0's block 15:
1152 → 320 on a 7×7 map) can have an accumulator bound past 2^24, where float32 stops being
exact. ``emu`` then runs the GEMM in float64; the ONNX export splits the weight by trit
planes into float32 convs summed in int32. Both are timed here against the float32 GEMM the
layer would use below the bound (same shapes; the float32 result is only a timing baseline).
The whole ImageNet bundle on emu is timed too, for scale.

    .venv/bin/python benchmarks/wide_path.py [--batch 16] [--repeats 5]
"""

from __future__ import annotations

import argparse
import platform

import numpy as np

import ternpynq
from ternpynq.bundle.io import load
from ternpynq.runtime.network import Network
from timing import best_time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, cin, cout = args.batch * 49, 1152, 320  # rows: batch × 7 × 7 pixels
    x = rng.integers(0, 256, (n, cin))
    w = rng.integers(-121, 122, (cin, cout))
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    t32 = best_time(lambda: x32 @ w32, args.repeats)
    t64 = best_time(lambda: x64 @ w64, args.repeats)
    # the onnx split at T = 5: planes 0-3 (|w| <= 40) and plane 4 (× 81), two float32 GEMMs
    lo, hi = w32 % 81, w32 // 81  # same shapes and dtype as the two parts
    tsplit = best_time(lambda: (x32 @ lo).astype(np.int32) + (x32 @ hi).astype(np.int32) * 81,
                       args.repeats)  # fmt: skip
    assert np.array_equal((x64 @ w64).astype(np.int64), x @ w)
    print(f"{platform.processor() or platform.machine()}, numpy {np.__version__}")
    print(f"1x1 conv 1152->320 on {args.batch} x 7x7 (one layer, best of {args.repeats}):")
    print(f"  float32 GEMM        {t32 * 1e3:8.2f} ms   1.00x")
    print(f"  float64 GEMM (emu)  {t64 * 1e3:8.2f} ms   {t64 / t32:.2f}x")
    print(f"  2-part split (onnx) {tsplit * 1e3:8.2f} ms   {tsplit / t32:.2f}x")
    if ternpynq.IMAGENET_MODEL.exists():
        net = Network(load(ternpynq.IMAGENET_MODEL))
        codes = rng.integers(-128, 128, (args.batch, 3, 224, 224)).astype(np.int8)
        t = best_time(lambda: net.run(codes), max(1, args.repeats // 2)) / args.batch
        print(f"whole ImageNet bundle on emu: {t * 1e3:.0f} ms per image at batch {args.batch}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
