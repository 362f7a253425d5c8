"""``ternpynq selftest``: the first command a board user runs.

It puts the default model's sample images and a few random networks through the chosen backend
and through ``emu`` (the golden model), requires identical output codes, and reports images/s
of both. A mismatch names the first layer whose codes differ when the backend can show them.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import ternpynq
from ternpynq.bundle.io import load
from ternpynq.bundle.schema import Bundle
from ternpynq.runtime import backends
from ternpynq.runtime.network import Network
from ternpynq.runtime.preprocess import preprocess
from ternpynq.runtime.synthetic import random_bundle

# (arch, g, prune, seed): small random networks covering multi-trit, residual, pool, gap, fc
RANDOM_NETWORKS = [("tiny", 16, 0.25, 0), ("tiny", 8, 0.6, 1), ("resnet20", 16, 0.5, 2)]
RANDOM_INPUTS = 4


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


def random_codes(bundle: Bundle, n: int, seed: int) -> np.ndarray:
    c, (h, w) = bundle.input.channels, bundle.input.size
    return np.random.default_rng(seed).integers(-128, 128, (n, c, h, w)).astype(np.int8)


def first_difference(backend, bundle: Bundle, codes: np.ndarray) -> str:
    """Name the first layer whose codes differ, when the backend exposes every tensor."""
    driver = getattr(backend, "driver", None)
    if driver is None:
        return ""
    got, want = driver.run_all(codes), Network(bundle).run_all(codes)
    for layer in bundle.layers:
        if not np.array_equal(got[layer.name], want[layer.name]):
            return f"; first differing layer: {layer.name}"
    return ""


def compare(name: str, backend, bundle: Bundle, codes: np.ndarray) -> tuple[Check, float, float]:
    """Run ``codes`` on the backend and on emu; returns the check and both run times (s)."""
    start = time.perf_counter()
    got = backend.run(codes)
    backend_s = time.perf_counter() - start
    start = time.perf_counter()
    want = Network(bundle).run(codes)
    emu_s = time.perf_counter() - start
    if got.shape == want.shape and np.array_equal(got, want):
        return (
            Check(name, True, f"{len(codes)} inputs, output codes identical to emu"),
            backend_s,
            emu_s,
        )
    bad = int(np.any(got != want, axis=1).sum()) if got.shape == want.shape else len(codes)
    detail = f"{bad} of {len(codes)} outputs differ from emu" + first_difference(
        backend, bundle, codes
    )
    return Check(name, False, detail), backend_s, emu_s


def model_inputs(samples: Path, bundle: Bundle) -> tuple[np.ndarray, str]:
    """The sample images as codes, or random codes when there are none."""
    images = sorted(p for p in samples.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if images:
        return np.stack(
            [preprocess(p, bundle.input) for p in images]
        ), f"{len(images)} sample images"
    return random_codes(bundle, 8, 0), f"8 random inputs (no images in {samples})"


def selftest(
    backend_name: str, model: Path | None, samples: Path, options: dict, out=print
) -> bool:
    """Run every check, print one line each and the speed; True when all pass."""
    checks: list[Check] = []
    resolved = backends.resolve(backend_name)
    out(f"ternpynq selftest: backend {resolved}")
    if model is not None and model.exists():
        bundle = load(model)
        codes, what = model_inputs(samples, bundle)
        backend = backends.create(resolved, bundle, **options)
        try:
            backend.run(codes[:1])  # warm-up: builds, loads weights; not timed
            check, backend_s, emu_s = compare(
                f"model {bundle.model} ({what})", backend, bundle, codes
            )
        finally:
            backend.close()
        checks.append(check)
        out(f"  {'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
        n = len(codes)
        out(f"  speed {resolved} {n / backend_s:.1f} images/s, emu {n / emu_s:.1f} images/s "
            f"(batch of {n})")  # fmt: skip
    else:
        out(f"  SKIP  model: {model} is not installed; only random networks are checked")
    for arch, g, prune, seed in RANDOM_NETWORKS:
        bundle = random_bundle(arch, g=g, prune=prune, seed=seed)
        backend = backends.create(resolved, bundle, **options)
        try:
            name = f"random {arch} g={g} prune={prune:g} seed={seed}"
            check, _, _ = compare(name, backend, bundle, random_codes(bundle, RANDOM_INPUTS, seed))
        finally:
            backend.close()
        checks.append(check)
        out(f"  {'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
    failed = [c for c in checks if not c.passed]
    verdict = "FAILED" if failed else "passed"
    out(f"selftest {verdict}: {len(checks) - len(failed)} of {len(checks)} checks")
    return not failed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "selftest",
        help="check a backend against the golden model",
        description="Run the default model's sample images and random networks through a "
        "backend and emu; require identical codes and report images/s. Run this first on a board.",
    )
    p.add_argument("--backend", default="auto", choices=backends.names())
    p.add_argument(
        "--model",
        type=ternpynq.resolve_model,
        default=ternpynq.DEFAULT_MODEL,
        help="a .tpq bundle, or a shipped model: imagenet, fashion-mnist",
    )
    p.add_argument("--samples", type=Path, default=ternpynq.SAMPLES_DIR, help="folder of images")
    p.add_argument("--board", help="overlay board for csim/pynq (default: detected or pynq-z2)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.model != ternpynq.DEFAULT_MODEL and not args.model.exists():
        raise FileNotFoundError(f"model {args.model} not found")
    resolved = backends.resolve(args.backend)
    options = {"board": args.board} if args.board and resolved in ("csim", "pynq") else {}
    return 0 if selftest(args.backend, args.model, args.samples, options) else 1
