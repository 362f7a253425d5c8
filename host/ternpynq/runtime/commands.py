"""``ternpynq classify``: label images with a bundle on any backend."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import ternpynq
from ternpynq.bundle.io import load
from ternpynq.runtime import backends
from ternpynq.runtime.classifier import Classifier


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classify",
        help="classify images",
        description="Classify images with a bundle (default: the bundled "
        "Fashion-MNIST ResNet-20) on a backend.",
    )
    p.add_argument("images", nargs="+", type=Path, help="image files (PNG, JPEG, ...)")
    p.add_argument(
        "--model",
        type=ternpynq.resolve_model,
        default=ternpynq.DEFAULT_MODEL,
        help="a .tpq bundle, or a shipped model: imagenet, fashion-mnist",
    )
    p.add_argument("--backend", default="emu", choices=backends.names())
    p.add_argument("--top", type=int, default=3, help="labels per image (default 3)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.model.exists():
        raise FileNotFoundError(f"model {args.model} not found")
    bundle = load(args.model)
    results = []
    with Classifier(bundle, backend=args.backend) as clf:
        for path in args.images:  # one by one, so one bad file names itself and others still run
            try:
                preds = clf.classify([path], top=min(args.top, bundle.num_classes))[0]
                results.append({"image": str(path), "top": [vars(p) for p in preds]})
            except (ValueError, OSError) as exc:
                results.append({"image": str(path), "error": str(exc)})
        backend = clf.backend_name
    if args.json:
        print(json.dumps({"model": bundle.model, "backend": backend, "results": results}, indent=2))
    else:
        for r in results:
            if "error" in r:
                print(f"{r['image']}: error: {r['error']}")
                continue
            best = ", ".join(f"{p['label']} {p['probability']:.1%}" for p in r["top"])
            print(f"{r['image']}: {best}")
    return 1 if any("error" in r for r in results) else 0
