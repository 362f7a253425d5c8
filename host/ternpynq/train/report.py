"""Export every run of an ablation, evaluate the bundles through a backend, and write the
results table (JSON and Markdown) plus a Figure-1 style group-norm histogram.

    python -m ternpynq.train.report runs/ablation --data DIR --out docs/results
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ternpynq.bundle import save
from ternpynq.train import checkpoint as ckpt
from ternpynq.train.evaluate import evaluate_bundle, fashion_codes


def agreement(bundle_path: Path, data: str | None, limit: int | None = None) -> float:
    """% of test images whose output codes from the torch integer simulation equal emu's."""
    from ternpynq.bundle import load
    from ternpynq.runtime.network import Network
    from ternpynq.train import intsim

    bundle = load(bundle_path)
    codes, _ = fashion_codes(bundle, data, "test")
    codes = codes[:limit]
    net = Network(bundle)
    same = 0
    for i in range(0, len(codes), 500):
        emu = net.run(codes[i : i + 500]).astype(np.int64)
        sim = intsim.run(bundle, torch.from_numpy(codes[i : i + 500])).numpy()
        same += int(np.all(emu == sim, axis=1).sum())
    return 100.0 * same / len(codes)


def measure_run(model: Path, name: str, data: str | None, backend: str = "emu") -> dict:
    """Export a finished run's ``model.pt`` to ``<run>/<name>.tpq``, evaluate the bundle on
    the full test set through ``backend`` and return its row (with the run's float result)."""
    from ternpynq.bundle import load
    from ternpynq.train.export import export_checkpoint

    bundle_path = model.parent / f"{name}.tpq"
    save(export_checkpoint(str(model), data=data), bundle_path)
    res = evaluate_bundle(str(bundle_path), "fashion-mnist", data, backend)
    lines = [json.loads(x) for x in (model.parent / "metrics.jsonl").read_text().splitlines() if x]
    final = [x for x in lines if x.get("stage") == "final"][-1]
    stats = load(bundle_path).stats
    return {
        f"{backend}_top1": res["top1"],
        f"{backend}_top5": res["top5"],
        "images": res["images"],
        "float_top1": final["test_top1"],
        "cr": stats["cr"],
        "density": stats["density"],
        "s_min": stats["s_min"],
        "bundle_bytes": bundle_path.stat().st_size,
        "stream_bytes": stats["stream_bytes"],
        "train_wall_s": final["wall_s"],
        "device": final["device"],
    }


def group_norms(model_path: Path, layer: str, g: int = 16) -> list[float]:
    from ternpynq.train.compress import norm_histogram_data
    from ternpynq.train.pipeline import model_from_checkpoint

    model, _, pe = model_from_checkpoint(ckpt.load(model_path))
    return norm_histogram_data(model, pe, layer)


def plot(norms: dict[str, list[float]], layer: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(norms), figsize=(4.2 * len(norms), 3.2), sharey=True)
    for ax, (name, values) in zip(np.atleast_1d(axes), norms.items(), strict=True):
        ax.hist(values, bins=40, color="tab:blue" if "wpc" in name else "tab:orange")
        ax.set_title(f"{name}: {layer}")
        ax.set_xlabel("group L2 norm (latent weights)")
    np.atleast_1d(axes)[0].set_ylabel("groups")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_samples(bundle_path: Path, data: str | None, out: Path) -> list[Path]:
    """One PNG per class from the Fashion-MNIST test set, ``<k>-<label>.png``: the first test
    image of each class that the bundle classifies correctly (for the quick start)."""
    from PIL import Image

    from ternpynq.bundle import load
    from ternpynq.runtime.network import Network
    from ternpynq.train.data import load_fashion_mnist

    bundle = load(bundle_path)
    images, labels = load_fashion_mnist(data, "test")
    codes, _ = fashion_codes(bundle, data, "test")
    pred = Network(bundle).run(codes[:500]).argmax(1)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, label in enumerate(bundle.labels):
        hits = np.flatnonzero((labels[:500] == k) & (pred == k))
        i = int(hits[0]) if hits.size else int(np.flatnonzero(labels == k)[0])
        path = out / f"{k}-{label}.png"
        Image.fromarray(images[i]).save(path, optimize=True)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="ablation folders holding <run>/model.pt")
    p.add_argument("--data")
    p.add_argument("--out", required=True)
    p.add_argument("--backend", default="emu")
    p.add_argument("--only", default="", help="comma-separated run names (default: all)")
    p.add_argument("--agree", default="", help="runs whose intsim/emu agreement is measured")
    p.add_argument("--hist", default="naive-d0.7,wpc-d0.7", help="two runs for the histogram")
    p.add_argument("--hist-layer", default="layer2.1.conv1")
    args = p.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, models = {}, {}
    for folder in map(Path, args.runs):
        for model in sorted(folder.glob("*/model.pt")):
            keep = not args.only or model.parent.name in args.only.split(",")
            if model.parent.name != "pretrain" and keep:
                models[model.parent.name] = model
    if (out / "ablation.json").is_file():  # resume: keep rows already measured
        rows = json.loads((out / "ablation.json").read_text())
    for name, model in models.items():
        if name in rows:
            continue
        rows[name] = measure_run(model, name, args.data, args.backend)
        bundle_path = model.parent / f"{name}.tpq"
        if name in args.agree.split(","):
            rows[name]["intsim_emu_agreement"] = agreement(bundle_path, args.data)
        print(name, json.dumps(rows[name]), flush=True)
        (out / "ablation.json").write_text(json.dumps(rows, indent=2))
    hist = [h for h in args.hist.split(",") if h in models]
    if hist:
        norms = {h: group_norms(models[h], args.hist_layer) for h in hist}
        plot(norms, args.hist_layer, out / "group-norms.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
