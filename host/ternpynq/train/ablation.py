"""The Fashion-MNIST ablation: fp, tern, naive and wpc from one shared float pre-training.

Pre-training runs once; every method then runs its compress and finetune stages in its own
process (all at once: one small ResNet-20 leaves a GPU mostly idle). Each run is a plain
``ternpynq compress ... --from PRETRAIN`` command, so any row of the table is reproduced by
``ternpynq compress`` with the same flags and ``--epochs P,C,F``.

    python -m ternpynq.train.ablation --out runs/ablation --epochs 15,15,10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

LAMBDAS = (5e-3, 1e-2, 2e-2, 4e-2)


def plan(lams: tuple[float, ...] = LAMBDAS) -> list[tuple[str, list[str]]]:
    """(run name, compress flags): the baselines, naive and wpc at each lambda, and both at a
    fixed density 0.7 (pruning the weakest groups) for a comparison at exactly matched CR.

    WPC runs here use tau = 0.7 * mean (``--tau-mode mean``), the setting of the recorded table
    in docs/results/fashion-mnist.md; the accuracy-vs-CR grid is ``ternpynq.train.frontier``."""
    mean = ["--tau-mode", "mean", "--r", "0.7"]
    return [
        ("fp", ["--method", "fp"]),
        ("tern", ["--method", "tern"]),
        *[(f"naive-{lam:g}", ["--method", "naive", "--lam", f"{lam:g}"]) for lam in lams],
        *[(f"wpc-{lam:g}", ["--method", "wpc", *mean, "--lam", f"{lam:g}"]) for lam in lams],
        ("naive-d0.7", ["--method", "naive", "--lam", "0.01", "--target-density", "0.7"]),
        ("wpc-d0.7", ["--method", "wpc", *mean, "--lam", "0.01", "--target-density", "0.7"]),
    ]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ternpynq.cli", "compress", *args]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--data")
    p.add_argument("--epochs", default="15,15,10", help="pretrain,compress,finetune")
    p.add_argument("--subset", type=int)
    p.add_argument("--pretrained", help="skip pre-training and start from this checkpoint")
    p.add_argument("--lams", default=",".join(f"{x:g}" for x in LAMBDAS), help="naive/wpc lambdas")
    p.add_argument("--only", help="comma-separated run names (default: all)")
    p.add_argument("--time-limit", type=float, default=None, help="minutes for the whole ablation")
    args = p.parse_args(argv)
    start = time.time()
    out = Path(args.out)
    common = ["--epochs", args.epochs, "--g", "16"]
    if args.data:
        common += ["--data", args.data]
    if args.subset:
        common += ["--subset", str(args.subset)]
    out.mkdir(parents=True, exist_ok=True)
    pretrained = args.pretrained
    if not pretrained:
        pre = out / "pretrain"
        with open(out / "pretrain.log", "w") as log:
            cmd = cli(*common, "--method", "fp", "--stage", "pretrain", "--out", str(pre))
            subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
        pretrained = str(pre / "pretrain.pt")
        print(f"pretrain done in {time.time() - start:.0f} s", flush=True)
    lams = tuple(float(x) for x in args.lams.split(","))
    runs = [r for r in plan(lams) if not args.only or r[0] in args.only.split(",")]
    procs = []
    for name, flags in runs:
        extra = []
        if args.time_limit:
            left = args.time_limit - (time.time() - start) / 60
            extra = ["--time-limit", f"{max(left, 0.1):.2f}"]
        cmd = cli(*common, *flags, *extra, "--from", pretrained, "--out", str(out / name))
        env = dict(os.environ, OMP_NUM_THREADS="1")
        with open(out / f"{name}.log", "w") as run_log:  # the child keeps its own handle
            proc = subprocess.Popen(cmd, stdout=run_log, stderr=subprocess.STDOUT, env=env)
        procs.append((name, proc))
    failed = [name for name, proc in procs if proc.wait() != 0]
    summary = {}
    for name, _ in runs:
        path = out / name / "metrics.jsonl"
        if path.is_file():
            lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
            final = [x for x in lines if x.get("stage") == "final"]
            summary[name] = final[-1] if final else {"incomplete": True}
    summary["_wall_s"] = time.time() - start
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=1), flush=True)
    if failed:
        print(f"failed runs: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
