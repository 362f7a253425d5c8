"""``ternpynq inspect``: what a bundle holds and how well it is compressed."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import ternpynq
from ternpynq.bundle.io import load
from ternpynq.bundle.stats import model_stats


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="per-layer groups, density, s_min, PE-wise CR and bytes",
        description="Show a bundle's layers, PE-group statistics, the paper's "
        "PE-wise compression rate CR = 16/(D·(1−s_min)) and its real size.",
    )
    p.add_argument(
        "model", type=ternpynq.resolve_model, help="a .tpq bundle, or imagenet, fashion-mnist"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def report(path: Path) -> dict:
    """Everything ``inspect`` prints, as a dict."""
    bundle = load(path)
    stats = model_stats(bundle)
    file_bytes = path.stat().st_size
    return {
        "model": bundle.model,
        "file": str(path),
        "g": bundle.g,
        "classes": len(bundle.labels),
        "input": {"size": list(bundle.input.size), "channels": bundle.input.channels},
        "density": stats["density"],
        "density_weights": stats["density_weights"],
        "s_min": stats["s_min"],
        "cr": stats["cr"],
        "cr_by_weights": stats["cr_by_weights"],
        "float_bytes": stats["float_bytes"],
        "stream_bytes": stats["stream_bytes"],
        "file_bytes": file_bytes,
        "real_ratio": stats["float_bytes"] / file_bytes,
        "layers": [
            {"name": layer.name, "op": layer.op.value, "out_shape": list(layer.out_shape)}
            for layer in bundle.layers
        ],
        "weighted_layers": stats["layers"],
    }


def run(args: argparse.Namespace) -> int:
    info = report(args.model)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(
        f"{info['model']}  ({info['file']}, g = {info['g']}, {info['classes']} classes, "
        f"input {'x'.join(map(str, [info['input']['channels'], *info['input']['size']]))})"
    )
    head = (
        f"{'layer':<24}{'shape':<18}{'T':>2}{'groups':>8}{'D':>7}{'s_min':>7}"
        f"{'fp32 B':>10}{'stream B':>10}{'ratio':>7}"
    )
    print(head)
    print("-" * len(head))
    for s in info["weighted_layers"]:
        shape = "x".join(map(str, s["shape"]))
        print(
            f"{s['name']:<24}{shape:<18}{s['trits']:>2}{s['groups']:>8}{s['density']:>7.3f}"
            f"{s['s_min']:>7.3f}{s['float_bytes']:>10}{s['stream_bytes']:>10}"
            f"{s['float_bytes'] / max(s['stream_bytes'], 1):>6.1f}x"
        )
    print("-" * len(head))
    print(
        f"ternary layers: D by groups = {info['density']:.4f}, "
        f"D by weights = {info['density_weights']:.4f}, s_min = {info['s_min']:.4f}"
    )
    print(
        f"PE-wise CR = 16/(D·(1−s_min)) with D by groups (the paper's) = {info['cr']:.2f}; "
        f"with D by weights it would be {info['cr_by_weights']:.2f}"
    )
    print(
        f"bytes: float32 {info['float_bytes']:,} | overlay stream {info['stream_bytes']:,} | "
        f"bundle file {info['file_bytes']:,} (real ratio {info['real_ratio']:.1f}x, "
        f"indices and scales included)"
    )
    return 0
