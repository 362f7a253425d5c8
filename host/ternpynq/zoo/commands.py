"""``ternpynq convert``: a pretrained network into a bundle (needs the ``zoo`` extra)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ternpynq.bundle.packing import trit_limit


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a pretrained network into a bundle",
        description="Post-training-quantize a pretrained ImageNet network into a .tpq bundle: "
        "fold batch norms, quantize weights into T trit planes with per-output-channel scales, "
        "calibrate activation scales on real images.",
    )
    p.add_argument("network", choices=["efficientnet-lite0"])
    p.add_argument("--out", type=Path, required=True, help="the .tpq file to write")
    p.add_argument(
        "--trits",
        type=int,
        default=5,
        choices=range(1, 9),
        metavar="T",
        help="trit planes per weight, 1..8 (default 5: ±121)",
    )
    p.add_argument(
        "--calib",
        type=Path,
        help="a folder of calibration images "
        "(default: the offline photos of scikit-image, scikit-learn, matplotlib)",
    )
    p.add_argument("--count", type=int, default=64, help="calibration images (default 64)")
    p.add_argument("--g", type=int, default=16, help="PE width recorded in the bundle")
    p.add_argument("--weights", type=Path, help="a state_dict file instead of the package's")
    p.add_argument("--seed", type=int, default=0, help="augmentation seed")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from ternpynq.zoo.convert import convert
        from ternpynq.zoo.quantize import ConvertConfig
    except ImportError as exc:
        raise ValueError(
            f"convert needs the zoo extra ({exc.name} is missing): pip install 'ternpynq[zoo]'"
        ) from None
    from ternpynq.bundle.io import save

    if not 1 <= args.g <= 4096:
        raise ValueError("--g must be in 1..4096")
    config = ConvertConfig(trits=args.trits, g=args.g)
    bundle = convert(args.network, config, args.calib, args.count, args.weights, args.seed)
    path = save(bundle, args.out)
    size = path.stat().st_size
    print(
        f"wrote {path}: {args.network}, {len(bundle.layers)} layers, weights within "
        f"±{trit_limit(args.trits)} ({args.trits} trits), {size / 1e6:.1f} MB"
    )
    return 0
