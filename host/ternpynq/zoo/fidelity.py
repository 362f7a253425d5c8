"""How closely the integer model (``emu``) follows the float network, for several T.

Top-1 agreement (the same class first) and top-5 overlap (the share of the float model's five
best classes that the integer model also ranks in its top five), on the offline photos and
augmented crops, flips and rotations of each. No ImageNet labels are involved: this measures
quantization fidelity, not accuracy. The calibration images are other augmentations (another
seed) of the same photos.

    python -m ternpynq.zoo.fidelity --count 512 --trits 5 4 3 2 --out docs/results/imagenet.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ternpynq.runtime.network import Network
from ternpynq.zoo import graph
from ternpynq.zoo.convert import batches, calibration_images
from ternpynq.zoo.efficientnet import load_state_dict
from ternpynq.zoo.names import imagenet_labels
from ternpynq.zoo.photos import augmented, offline_photos
from ternpynq.zoo.quantize import ConvertConfig, calibrate, codes_to_float, to_bundle


def agreement(reference: np.ndarray, other: np.ndarray) -> dict:
    """Top-1 agreement and mean top-5 overlap of two (N, K) logit arrays, in percent."""
    top1 = float(np.mean(reference.argmax(1) == other.argmax(1))) * 100
    ref5 = np.argsort(-reference, axis=1, kind="stable")[:, :5]
    oth5 = np.argsort(-other, axis=1, kind="stable")[:, :5]
    overlap = [len(set(a) & set(b)) / 5 for a, b in zip(ref5, oth5, strict=True)]
    return {"top1_agreement": top1, "top5_overlap": float(np.mean(overlap)) * 100}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=512, help="evaluation images")
    parser.add_argument("--trits", type=int, nargs="+", default=[5, 4, 3, 2])
    parser.add_argument("--calib-count", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args(argv)

    layers = graph.fold(load_state_dict())
    calib = calibration_images(None, args.calib_count, seed=0)
    peaks = calibrate(layers, batches(calib, args.batch), ConvertConfig().percentile)
    images = augmented(list(offline_photos().values()), args.count, seed=1)
    codes = np.concatenate(list(batches(images, args.batch)))
    ref = np.concatenate(
        [
            graph.run(layers, codes_to_float(codes[i : i + args.batch]))["fc"].numpy()
            for i in range(0, len(codes), args.batch)
        ]
    )
    labels = imagenet_labels()
    results = {"images": len(codes), "calibration_images": len(calib), "trits": {}}
    for trits in args.trits:
        bundle = to_bundle(layers, peaks, labels, ConvertConfig(trits=trits))
        net = Network(bundle)
        start = time.perf_counter()
        out = np.concatenate(
            [net.run(codes[i : i + args.batch]) for i in range(0, len(codes), args.batch)]
        )
        seconds = time.perf_counter() - start
        row = agreement(ref, out.astype(np.float64))
        row["emu_seconds_per_image"] = seconds / len(codes)
        results["trits"][str(trits)] = row
        print(f"T={trits}: {row}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
