"""Accuracy against CR, per method: a grid of penalty strengths from one shared pre-training.

Every run is a plain ``ternpynq compress --from PRETRAIN`` with the pruning left to the
penalty alone (no ``--target-density``); it is then exported and evaluated through a backend
(``emu`` by default) on the full test set. Rows go to ``<out>/<run>/row.json`` as each run
finishes, so a killed grid resumes and a partial grid is still reported.

    python -m ternpynq.train.frontier --pretrained runs/grid/pretrain/pretrain.pt \\
        --out runs/grid --epochs 8,5 --seeds 0,1,2 --workers 12 --calibrate 0.2,0.32,0.45
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Each series: its compress flags, the flag its strength sets and the default strengths
# (lambda for naive group lasso, r for WPC with lambda fixed at WPC_LAM). The order is the
# order worth running in: the two methods the comparison is about, the references, the records.
WPC_LAM = 1.0
SERIES = {
    "naive": (["--method", "naive"], "--lam", (0.25, 0.4, 0.6)),
    "wpc-rank": (["--method", "wpc", "--tau-mode", "rank"], "--r", (0.2, 0.3, 0.4)),
    "fp": (["--method", "fp"], None, ()),
    "tern": (["--method", "tern"], None, ()),
    "wpc-mean": (["--method", "wpc", "--tau-mode", "mean"], "--r", (0.7, 0.85, 1.0)),
    "wpc-rank-sg": (
        ["--method", "wpc", "--tau-mode", "rank", "--solver", "subgradient"],
        "--r",
        (0.2, 0.3, 0.4),
    ),
}


def plan(
    strengths: dict[str, tuple[float, ...]] | None = None,
    wpc_lam: float = WPC_LAM,
    seeds: tuple[int, ...] = (0,),
) -> list[tuple[str, list[str]]]:
    """(run name, compress flags) for every series, strength and seed, in ``SERIES`` order.

    ``strengths`` overrides a series' default strengths; a series given ``()`` is left out.
    """
    runs: list[tuple[str, list[str]]] = []
    for seed in seeds:
        for name, (flags, knob, default) in SERIES.items():
            values = (strengths or {}).get(name, default)
            tail = ["--seed", str(seed)]
            if knob is None:  # a reference run, left out when given ()
                if name not in (strengths or {}) or values:
                    runs.append((f"{name}-s{seed}", [*flags, *tail]))
                continue
            lam = ["--lam", f"{wpc_lam:g}"] if knob == "--r" else []
            letter = knob[2]  # --lam -> l, --r -> r
            for x in values:
                runs.append(
                    (f"{name}-{letter}{x:g}-s{seed}", [*flags, *lam, knob, f"{x:g}", *tail])
                )
    return runs


def series(name: str) -> str:
    """The plot series of a run name: ``wpc-rank-r0.3-s0`` -> ``wpc-rank`` (the longest
    series name it starts with, so ``wpc-rank-sg-...`` and a strength like 1e-05 parse)."""
    known = [k for k in SERIES if name.startswith(k + "-")]
    if not known:
        raise ValueError(f"{name!r} is not a run name of the grid ({', '.join(SERIES)})")
    return max(known, key=len)


def measure(run_dir: Path, data: str | None, backend: str = "emu") -> dict:
    """Export ``run_dir/model.pt``, evaluate the bundle on the full test set, write row.json."""
    from ternpynq.train.report import measure_run

    measured = measure_run(run_dir / "model.pt", run_dir.name, data, backend)
    config = json.loads((run_dir / "config.json").read_text())
    row = {
        "series": series(run_dir.name),
        "pe": config["pe"],
        "seed": config["train"]["seed"],
        **measured,
        "float_images": config["train"]["test_subset"] or measured["images"],
    }
    (run_dir / "row.json").write_text(json.dumps(row, indent=2))
    return row


def run_one(name: str, flags: list[str], common: list[str], out: Path, data: str | None) -> str:
    """Train (resuming), then measure; returns a one-line status."""
    run_dir = out / name
    if (run_dir / "row.json").is_file():
        return f"{name}: already measured"
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    start = time.time()
    with open(out / f"{name}.log", "a") as log:
        cmd = [sys.executable, "-m", "ternpynq.cli", "compress", *common, *flags]
        code = subprocess.run([*cmd, "--out", str(run_dir)], stdout=log, stderr=log, env=env)
        if code.returncode != 0:
            return f"{name}: compress failed ({code.returncode}), see {log.name}"
        cmd = [sys.executable, "-m", "ternpynq.train.frontier", "--measure", str(run_dir)]
        if data:
            cmd += ["--data", data]
        code = subprocess.run(cmd, stdout=log, stderr=log, env=env)
        if code.returncode != 0:
            return f"{name}: measure failed ({code.returncode}), see {log.name}"
    return f"{name}: done in {time.time() - start:.0f} s"


def pretrain_stage(path: str) -> tuple[int, float]:
    """(epochs, lr) of the shared pre-training, so every run's config.json records them."""
    from ternpynq.train import checkpoint as ckpt

    stage = json.loads(ckpt.load(path)["train_config"])["pretrain"]
    return int(stage["epochs"]), float(stage["lr"])


def shrink_per_lambda(lr: float, steps: int) -> float:
    """Total soft-threshold lr_t * lambda of a compress stage, per unit lambda: the sum of the
    per-step cosine learning rates (loop.cosine_lr)."""
    from ternpynq.train.loop import cosine_lr

    return sum(cosine_lr(lr, t, steps) for t in range(steps))


def calibrate(pretrained: str, quantiles: tuple[float, ...], lr: float, steps: int) -> dict:
    """Strengths that fit a short compress stage, from the pre-trained group norms.

    A naive lambda is set so the stage's total soft-threshold equals the q-quantile of the
    group norms (ignoring the loss pushing back, so it prunes somewhat less than q); the WPC
    lambda so it equals twice the median norm, enough to zero every group below tau.
    """
    import torch

    from ternpynq.train import checkpoint as ckpt
    from ternpynq.train.compress import ternary_layers
    from ternpynq.train.groups import group_norms
    from ternpynq.train.pipeline import model_from_checkpoint

    model, _, pe = model_from_checkpoint(ckpt.load(pretrained))
    with torch.no_grad():
        norms = torch.cat([group_norms(m.weight, pe.g).flatten() for _, m in ternary_layers(model)])
    per = shrink_per_lambda(lr, steps)
    naive = tuple(round(float(norms.quantile(q)) / per, 3) for q in quantiles)
    wpc = round(2 * float(norms.median()) / per, 3)
    return {"quantiles": list(quantiles), "naive": list(naive), "wpc_lam": wpc, "steps": steps}


def collect(out: Path) -> dict[str, dict]:
    """Every measured row under ``out``, by run name."""
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob("*/row.json"))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--measure", help="only export and evaluate this finished run folder")
    p.add_argument("--pretrained", help="the shared float pre-training checkpoint")
    p.add_argument("--out", help="grid folder (one sub-folder per run)")
    p.add_argument("--data")
    p.add_argument("--subset", type=int, help="train on the first N images only")
    p.add_argument(
        "--float-test-subset",
        type=int,
        help="test the float checkpoint on the first N test images (emu always sees all)",
    )
    p.add_argument("--epochs", default="2,1", help="compress,finetune epochs")
    p.add_argument("--lr", default="0.02,0.01", help="compress,finetune base learning rates")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--workers", type=int, default=1, help="runs at once")
    p.add_argument("--seeds", default="0")
    p.add_argument(
        "--strengths",
        action="append",
        default=[],
        metavar="SERIES=X,Y",
        help=f"strengths of one series ({', '.join(SERIES)}); empty leaves it out",
    )
    p.add_argument("--wpc-lam", type=float, default=WPC_LAM)
    p.add_argument("--only", help="comma-separated run names (default: all)")
    p.add_argument(
        "--calibrate",
        metavar="Q1,Q2,...",
        help="set naive lambdas (and the WPC lambda) from these quantiles of the pre-trained "
        "group norms (see calibrate)",
    )
    args = p.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(Path(args.measure), args.data)))
        return 0
    if not args.pretrained or not args.out:
        p.error("--pretrained and --out are needed to run the grid")

    strengths = {}
    for item in args.strengths:
        name, _, values = item.partition("=")
        if name not in SERIES:
            p.error(f"--strengths: unknown series {name!r}; choose from {', '.join(SERIES)}")
        strengths[name] = tuple(float(x) for x in values.split(",") if x)
    compress, finetune = (int(x) for x in args.epochs.split(","))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.calibrate:
        images = args.subset or 60000  # Fashion-MNIST's training set when no subset is given
        steps = -(-images // args.batch_size) * compress
        lr = float(args.lr.split(",")[0])
        cal = calibrate(
            args.pretrained, tuple(float(q) for q in args.calibrate.split(",")), lr, steps
        )
        (out / "calibration.json").write_text(json.dumps(cal, indent=2))
        print(f"calibrated: {json.dumps(cal)}", flush=True)
        strengths.setdefault("naive", tuple(cal["naive"]))
        args.wpc_lam = cal["wpc_lam"]
    runs = plan(strengths, args.wpc_lam, tuple(int(x) for x in args.seeds.split(",")))
    if args.only:
        runs = [r for r in runs if r[0] in args.only.split(",")]
    pre_epochs, pre_lr = pretrain_stage(args.pretrained)
    common = ["--epochs", f"{pre_epochs},{compress},{finetune}", "--from", args.pretrained]
    common += ["--lr", f"{pre_lr:g},{args.lr}", "--batch-size", str(args.batch_size)]
    common += ["--eval-once"]
    if args.subset:
        common += ["--subset", str(args.subset)]
    if args.float_test_subset:
        common += ["--test-subset", str(args.float_test_subset)]
    if args.data:
        common += ["--data", args.data]
    failed = 0
    with ThreadPoolExecutor(max(args.workers, 1)) as pool:
        jobs = [pool.submit(run_one, n, f, common, out, args.data) for n, f in runs]
        for job in jobs:
            status = job.result()
            failed += "failed" in status
            print(status, flush=True)
    (out / "rows.json").write_text(json.dumps(collect(out), indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
