"""``ternpynq estimate``: modelled cycles, FPS, ARM share and resources of a model on a board.

Model figures only (docs/overlay.md): cycles come from the kernel's loop trip counts
(``cycles.layer_cycles``, equal to what the csim build counts), the host's share from the board
file's stated per-launch and per-byte costs, resources from ``resources`` (the PE datapath as
measured by yosys, multiplied out, plus the sources' arrays; docs/overlay-resources.md). No
frame rate here is a measurement.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

import numpy as np

import ternpynq
from ternpynq.bundle.schema import Bundle
from ternpynq.overlay.boards import Board, load_board
from ternpynq.overlay.cycles import network_cycles
from ternpynq.overlay.driver import check_supported
from ternpynq.overlay.fmap import fmap_pixels
from ternpynq.overlay.hostpack import packed_layer
from ternpynq.overlay.resources import resources

ARCH_G = {"resnet18": 64, "resnet20": 16, "tiny": 16}  # the g the paper prunes each for


def synthetic_model(arch: str, cr: float, s_min: float = 0.0, seed: int = 0) -> Bundle:
    """A random bundle whose ternary layers keep D = 16 / (cr * (1 - s_min)) of their groups."""
    from ternpynq.runtime.synthetic import random_bundle

    density = 16.0 / (cr * (1.0 - s_min))
    if not 0.0 < density <= 1.0:
        raise ValueError(f"CR {cr:g} with s_min {s_min:g} means D = {density:.3f}, outside (0, 1]")
    classes = 1000 if arch == "resnet18" else 10
    return random_bundle(arch, g=ARCH_G[arch], prune=1.0 - density, seed=seed, num_classes=classes)


def estimate(bundle: Bundle, board: Board, batch: int = 8) -> dict:
    """Per-layer cycles and the frame-rate model for ``batch`` images per layer start."""
    for layer in bundle.layers:  # a layer the kernel cannot run has no cycle count either
        check_supported(layer, board)
    layers = network_cycles(bundle, board, batch)
    hz = board.clock_mhz * 1e6
    pl_s = sum(layer.total for layer in layers) / hz
    # int8 input in (the input conv's windows when the host packs them), int16 logits out
    first = packed_layer(bundle, board.g)
    pixels = first.out_shape[1] * first.out_shape[2] if first else int(np.prod(bundle.input.size))
    io_bytes = pixels * fmap_pixels(bundle, board.g)["input"] + 2 * bundle.num_classes
    launch_s = len(layers) * board.arm.get("layer_launch_us", 0.0) * 1e-6
    copy_s = batch * io_bytes * board.arm.get("byte_ns", 0.0) * 1e-9
    arm_s = launch_s + copy_s
    compute = sum(layer.compute for layer in layers)
    dense = sum(layer.dense_compute for layer in layers)
    return {
        "model": bundle.model,
        "board": board.name,
        "clock_mhz": board.clock_mhz,
        "P": board.P,
        "g": board.g,
        "batch": batch,
        "layers": [dict(asdict(layer), total=layer.total) for layer in layers],
        "pl_ms_per_image": 1e3 * pl_s / batch,
        "arm_ms_per_image": 1e3 * arm_s / batch,
        "arm_share": arm_s / (pl_s + arm_s),
        "fps_pl": batch / pl_s,
        "fps_serial": batch / (pl_s + arm_s),  # one thread: ARM work, then the PL
        "fps_overlapped": batch / max(pl_s, arm_s),  # ARM prepares the next batch meanwhile
        "skip_saving": 1.0 - compute / dense if dense else 0.0,
        "resources": resources(board),
    }


def _bound(layer: dict) -> str:
    streams = {"compute": layer["compute"], "in": layer["in_beats"], "out": layer["out_beats"]}
    streams["res"] = layer["res_beats"]
    return max(streams, key=streams.get)


def format_report(est: dict) -> str:
    n = est["batch"]
    lines = [
        f"{est['model']} on {est['board']}: P={est['P']} x g={est['g']} lanes at "
        f"{est['clock_mhz']:g} MHz, batch {n} (model figures, not measurements)",
        f"{'layer':<22}{'mode':<8}{'cycles/img':>12}{'compute':>10}{'dense':>10}"
        f"{'weights':>9}  bound",
    ]
    for layer in est["layers"]:
        lines.append(
            f"{layer['name']:<22}{layer['mode']:<8}{layer['total'] / n:>12.0f}"
            f"{layer['compute'] / n:>10.0f}{layer['dense_compute'] / n:>10.0f}"
            f"{layer['wgt_beats'] / n:>9.0f}  {_bound(layer)}"
        )
    total = sum(layer["total"] for layer in est["layers"]) / n
    lines += [
        f"{'total':<30}{total:>12.0f}",
        f"PL {est['pl_ms_per_image']:.3f} ms/img ({est['fps_pl']:.1f} FPS); ARM "
        f"{est['arm_ms_per_image']:.3f} ms/img, {est['arm_share']:.1%} of the time",
        f"FPS: {est['fps_serial']:.1f} serial, {est['fps_overlapped']:.1f} with the ARM "
        f"overlapping the PL; group skipping saved {est['skip_saving']:.1%} of compute cycles",
        "resources: "
        + ", ".join(
            f"{k.upper()} {v['used']:g}/{v['capacity']}"
            + (f" ({v['used'] / v['capacity']:.0%})" if v["capacity"] else "")
            for k, v in est["resources"].items()
        ),
    ]
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "estimate",
        help="model cycles, FPS and resources of a model on an overlay",
        description="Modelled per-layer cycles, FPS, ARM share and resource use of a bundle "
        "(or a synthetic --arch at a given --cr) on a board's overlay. Model figures only.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "model", nargs="?", type=ternpynq.resolve_model, help="a .tpq bundle, or imagenet"
    )
    src.add_argument("--arch", choices=sorted(ARCH_G), help="a synthetic network instead")
    p.add_argument("--cr", type=float, default=21.0, help="PE-wise CR of the synthetic network")
    p.add_argument("--s-min", type=float, default=0.0, help="s_min assumed when reading --cr")
    # Checked in run(), not as argparse choices: listing the boards needs overlay/, and a wheel
    # install without it must still build the parser for every other command.
    p.add_argument("--board", required=True, help="board file name (pynq-z2, zcu104) or path")
    p.add_argument("--batch", type=int, default=8, help="images per layer start (default 8)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.batch < 1:
        raise ValueError("--batch must be at least 1")
    if args.model is not None:
        from ternpynq.bundle.io import load

        bundle = load(args.model)
    else:
        bundle = synthetic_model(args.arch, args.cr, args.s_min)
    est = estimate(bundle, load_board(args.board), args.batch)
    print(json.dumps(est, indent=2) if args.json else format_report(est))
    return 0
