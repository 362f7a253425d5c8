"""Accuracy-vs-CR frontiers from a measured grid: points per strength (mean and seed spread),
accuracy read off at a given CR by linear interpolation, and the plot.

    python -m ternpynq.train.frontier_report runs/grid --out docs/results --name frontier
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ternpynq.train.frontier import collect

READ_AT = (21.0, 25.0)  # the CRs the issue asks about (the paper's ResNet-18 reaches about 21)
COLORS = {"naive": "tab:orange", "wpc-rank": "tab:blue", "wpc-mean": "tab:green",
          "wpc-rank-sg": "tab:purple"}  # fmt: skip


def strength(row: dict) -> float:
    """The knob a series sweeps: lambda for naive, r for WPC."""
    return row["pe"]["lam"] if row["pe"]["method"] == "naive" else row["pe"]["r"]


def points(rows: dict[str, dict], series: str, metric: str = "emu_top1") -> list[dict]:
    """One point per strength of ``series``: mean CR and accuracy over its seeds, with the
    accuracy's min and max (the seed spread), sorted by CR."""
    by_strength: dict[float, list[dict]] = {}
    for row in rows.values():
        if row["series"] == series:
            by_strength.setdefault(strength(row), []).append(row)
    out = []
    for x, group in by_strength.items():
        acc = [r[metric] for r in group]
        out.append(
            {
                "strength": x,
                "seeds": len(group),
                "cr": float(np.mean([r["cr"] for r in group])),
                "density": float(np.mean([r["density"] for r in group])),
                "top1": float(np.mean(acc)),
                "top1_min": float(min(acc)),
                "top1_max": float(max(acc)),
            }
        )
    return sorted(out, key=lambda p: p["cr"])


def interpolate(frontier: list[dict], cr: float) -> float | None:
    """Accuracy at ``cr`` along the frontier (linear between neighbouring points); None when
    the frontier does not reach that CR on both sides (no extrapolation)."""
    if not frontier or not frontier[0]["cr"] <= cr <= frontier[-1]["cr"]:
        return None
    crs = [p["cr"] for p in frontier]
    return float(np.interp(cr, crs, [p["top1"] for p in frontier]))


def seed_reads(rows: dict[str, dict], series: str, metric: str = "emu_top1") -> dict:
    """Per CR of ``READ_AT``, each seed's accuracy read off its own frontier (the runs of that
    seed alone), by seed; None where that seed's runs do not reach the CR on both sides.

    The spread of these is the seed spread of the read-off itself, which the mean frontier's
    error bars (per strength) do not give.
    """
    seeds = sorted({r["seed"] for r in rows.values() if r["series"] == series})
    fronts = {
        s: points({k: r for k, r in rows.items() if r["seed"] == s}, series, metric) for s in seeds
    }
    return {f"{cr:g}": {str(s): interpolate(f, cr) for s, f in fronts.items()} for cr in READ_AT}


def summarize(rows: dict[str, dict], metric: str = "emu_top1") -> dict:
    """Per series: its points, its accuracy read off the seed-mean frontier at each CR of
    ``READ_AT``, and the same read off each seed's own frontier."""
    out = {}
    for series in sorted({r["series"] for r in rows.values()}):
        front = points(rows, series, metric)
        out[series] = {
            "points": front,
            "at_cr": {f"{cr:g}": interpolate(front, cr) for cr in READ_AT},
            "at_cr_by_seed": seed_reads(rows, series, metric),
        }
    return out


def describe(data: dict) -> str:
    """One series' report line: its seed-mean read-off at each CR, and the per-seed
    read-offs' range over the seeds whose own frontier reaches it."""
    parts = []
    for cr, mean in data["at_cr"].items():
        if mean is None:
            parts.append(f"CR {cr}: -")
            continue
        own = [v for v in data["at_cr_by_seed"][cr].values() if v is not None]
        spread = f" (per seed {min(own):.2f}-{max(own):.2f}, {len(own)} seeds)" if own else ""
        parts.append(f"CR {cr}: {mean:.2f}{spread}")
    return "; ".join(parts)


def plot(summary: dict, path: Path, title: str = "") -> None:
    """Top-1 against CR per pruning series (error bars: seed min-max); fp and tern as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for series, data in summary.items():
        front = data["points"]
        if series in ("fp", "tern"):
            style = "--" if series == "fp" else ":"
            ax.axhline(front[0]["top1"], color="grey", ls=style, label=f"{series} (no pruning)")
            continue
        cr = [p["cr"] for p in front]
        top1 = np.array([p["top1"] for p in front])
        spread = np.array([[p["top1"] - p["top1_min"], p["top1_max"] - p["top1"]] for p in front])
        ax.errorbar(cr, top1, yerr=spread.T, marker="o", capsize=3, label=series,
                    color=COLORS.get(series))  # fmt: skip
    for cr in READ_AT:
        ax.axvline(cr, color="lightgrey", lw=0.8)
    ax.set_xlabel("PE-wise CR = 16 / (D (1 - s_min))")
    ax.set_ylabel("top-1 through emu (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("grid", help="a grid folder written by ternpynq.train.frontier")
    p.add_argument("--out", required=True)
    p.add_argument("--name", default="frontier")
    p.add_argument("--title", default="")
    args = p.parse_args(argv)
    rows = collect(Path(args.grid))
    if not rows:
        print(f"no measured runs (row.json) under {args.grid}", file=sys.stderr)
        return 1
    summary = summarize(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(
        json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n"
    )
    plot(summary, out / f"{args.name}.png", args.title)
    for series, data in summary.items():
        print(f"{series}: {len(data['points'])} points; {describe(data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
