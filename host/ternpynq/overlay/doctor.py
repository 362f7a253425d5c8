"""``ternpynq doctor``: is this machine ready to run ternpynq, and on a board, the overlay?

It reports the Python stack, the board (as PYNQ names it), the board file, the bitstream and
whether its manifest matches this runtime, the backends and the one ``auto`` picks, and the
bundled models. Each problem a board user must fix is one ``FAIL`` line with its fix in one
line, and the command then exits 1. Off-board, what only a board needs is a ``note``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import ternpynq
from ternpynq.bundle.errors import BundleError
from ternpynq.bundle.io import load
from ternpynq.overlay.backends import BOARD_ENV, detect_board, pynq_available
from ternpynq.overlay.boards import BoardError, board_names, load_board
from ternpynq.overlay.generate import manifest_expectation
from ternpynq.overlay.paths import OVERLAY_ENV, OverlayPathError, bitstream_paths, overlay_dir
from ternpynq.overlay.pynqdevice import BitstreamError, check_manifest, read_manifest
from ternpynq.runtime import backends

IMAGENET_MODEL = ternpynq.IMAGENET_MODEL  # a module name, so tests can point it elsewhere
# Where a PYNQ image names its board; /etc/profile.d/boardname.sh exports it as $BOARD.
DEVICE_TREE_BOARD = Path("/proc/device-tree/chosen/pynq_board")
PYNQ_VENV_FIX = "use the PYNQ image's Python: source /etc/profile.d/pynq_venv.sh (as root)"


@dataclass
class Check:
    """One line of the report: ``status`` is ok, note (not needed here) or fail."""

    name: str
    status: str
    detail: str
    fix: str = ""


@dataclass
class Report:
    on_board: bool
    board: str | None
    auto: str | None
    backends: dict[str, bool] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    def add(self, name: str, ok: bool, detail: str, fix: str = "", needed: bool = True) -> None:
        """Record a check; a failed one is fatal only when ``needed``."""
        status = "ok" if ok else ("fail" if needed else "note")
        self.checks.append(Check(name, status, detail, "" if ok else fix))

    def to_json(self) -> dict:
        return {
            "ready": self.ready,
            "on_board": self.on_board,
            "board": self.board,
            "auto": self.auto,
            "backends": self.backends,
            "checks": [asdict(c) for c in self.checks],
        }


# -- the Python stack ----------------------------------------------------------------------
def dist_version(name: str) -> str | None:
    """The installed version of distribution ``name``, without importing it."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def declared_floor(name: str) -> str | None:
    """The ``>=`` floor ternpynq's installed metadata declares for ``name``, if any."""
    try:
        requires = metadata.requires("ternpynq") or []
    except metadata.PackageNotFoundError:  # run from a checkout without installing
        return None
    for req in requires:
        found = re.match(rf"{re.escape(name)}\s*>=\s*([0-9][0-9.]*)\s*(;|$)", req, re.I)
        if found:
            return found.group(1)
    return None


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version.split("+")[0])[:3])


def check_stack(report: Report) -> None:
    """Python, numpy, Pillow and pynq versions against ternpynq's declared floors."""
    py = platform.python_version()
    report.add("python", sys.version_info >= (3, 10), py, "ternpynq needs Python 3.10 or newer")
    for dist, label in (("numpy", "numpy"), ("pillow", "Pillow"), ("pynq", "pynq")):
        needed = dist != "pynq" or report.on_board
        have, floor = dist_version(dist), declared_floor(dist)
        if have is None:
            if dist == "pynq":
                fix = PYNQ_VENV_FIX if report.on_board else ""
                report.add(label, False, "not installed in this Python", fix, needed)
            else:
                report.add(label, False, "not installed", f"pip install '{dist}>={floor}'")
            continue
        ok = floor is None or _numbers(have) >= _numbers(floor)
        need = f" (ternpynq needs >= {floor})" if floor else ""
        report.add(label, ok, have + need, f"pip install -U '{dist}>={floor}'", needed)
    if report.on_board:  # pynq 3 finds the PL through XRT, set up by the image's profile script
        xrt = os.environ.get("XILINX_XRT")
        report.add(
            "XRT",
            bool(xrt),
            f"XILINX_XRT={xrt}" if xrt else "XILINX_XRT is not set",
            "source /etc/profile.d/xrt_setup.sh (a root login shell does it)",
        )


# -- the board -----------------------------------------------------------------------------
def board_claims() -> list[tuple[str, str]]:
    """(where, name) for every place that names a board: our variable, PYNQ's, the device tree."""
    claims = [(var, os.environ[var]) for var in (BOARD_ENV, "BOARD") if os.environ.get(var)]
    try:
        tree = DEVICE_TREE_BOARD.read_bytes().rstrip(b"\0").decode()
    except OSError:
        tree = ""
    if tree:
        claims.append(("device tree", tree))
    return claims


def check_board(report: Report, chosen: str | None) -> str | None:
    """The board to check (``--board``, else the detected one) with its board file."""
    claims = board_claims()
    said = ", ".join(f"{where} says {name!r}" for where, name in claims)
    try:
        known = board_names()
        overlay = overlay_dir()
    except OverlayPathError as exc:
        report.add(
            "board file",
            False,
            str(exc),
            f"copy overlay/ from the ternpynq source to the board and set {OVERLAY_ENV}",
            needed=report.on_board or chosen is not None,
        )
        return None
    board = chosen or detect_board()
    if board is None:
        if claims:
            report.add(
                "board",
                False,
                f"no board file matches ({said})",
                f"set {BOARD_ENV} to one of: {', '.join(known)}",
            )
        else:
            report.add(
                "board",
                False,
                "no PYNQ board detected: off-board, the csim, onnx and emu backends run",
                needed=False,
            )
        return None
    try:
        spec = load_board(board)
    except BoardError as exc:
        report.add("board", False, str(exc), f"choose one of: {', '.join(known)}")
        return None
    where = "--board" if chosen else said
    report.add("board", True, f"{board} ({where})")
    report.add(
        "board file",
        True,
        f"{overlay / 'boards' / (board + '.json')}: {spec.part}, "
        f"P={spec.P}, g={spec.g}, {spec.clock_mhz:g} MHz",
    )
    return board


def check_bitstream(report: Report, board: str | None, strict: bool) -> None:
    """The board's .bit, .hwh and manifest, and whether the manifest matches this runtime."""
    if board is None:
        report.add(
            "bitstream",
            False,
            "not checked: no board (ternpynq doctor --board B checks bitstreams/B)",
            needed=False,
        )
        return
    paths = bitstream_paths(board)
    folder = paths["bit"].parent
    build = (
        f"make -C overlay BOARD={board} on a PC with Vivado, then copy ternpynq.bit, "
        f".hwh and .json to {folder}"
    )
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        report.add(
            "bitstream",
            False,
            f"{', '.join(missing)} missing in {folder}",
            f"build it: {build}",
            strict,
        )
        return
    try:
        manifest = read_manifest(paths["manifest"])
        check_manifest(manifest, manifest_expectation(load_board(board)), str(paths["manifest"]))
    except BitstreamError as exc:
        report.add("bitstream", False, str(exc), f"rebuild it from these sources: {build}", strict)
        return
    built = manifest.get("built_utc") or manifest.get("source_revision") or "unknown build"
    report.add("bitstream", True, f"{paths['bit']} (manifest matches this runtime; {built})")


# -- backends and bundles ------------------------------------------------------------------
def usable_backends() -> dict[str, bool]:
    """Whether each backend can run here: auto's own probes, plus what csim builds with (a C++
    compiler and the overlay sources), which auto never picks and so has no probe."""
    try:
        sources = overlay_dir().is_dir()
    except OverlayPathError:
        sources = False
    found = {
        "emu": True,
        "csim": sources and shutil.which(os.environ.get("CXX", "g++")) is not None,
    }
    found["onnx"] = backends.module_available("onnxruntime")
    found["pynq"] = sources and pynq_available()  # the probe needs the board files
    return found


def check_backends(report: Report) -> None:
    report.backends = usable_backends()
    try:
        report.auto = backends.resolve("auto")
    except (OverlayPathError, BoardError) as exc:
        report.add("auto", False, f"cannot resolve: {exc}", f"set {OVERLAY_ENV}")
        return
    usable = ", ".join(name for name, ok in report.backends.items() if ok)
    if report.on_board:
        report.add(
            "auto",
            report.auto == "pynq",
            f"picks {report.auto} (usable: {usable})",
            "fix the FAIL lines above so auto picks pynq",
        )
    else:
        report.add("auto", True, f"picks {report.auto} (usable: {usable})")


def check_bundle(report: Report, label: str, path: Path, needed: bool) -> None:
    """A bundled model is present and loads (every field validated, hash checked)."""
    if not path.is_file():
        report.add(
            label,
            False,
            f"{path} is absent",
            "install a ternpynq wheel that ships it (models/ in the package)",
            needed=needed,
        )
        return
    try:
        bundle = load(path)
    except (BundleError, OSError) as exc:
        report.add(label, False, f"{path} does not load: {exc}", "reinstall ternpynq")
        return
    size = path.stat().st_size / 1e6
    report.add(
        label,
        True,
        f"{bundle.model}: {len(bundle.layers)} layers, "
        f"{bundle.num_classes} classes, g={bundle.g}, {size:.1f} MB, loads",
    )


def diagnose(board: str | None = None) -> Report:
    """Every check; ``board`` forces which board's files are checked (and makes them needed).

    On a board is where anything names one: $TERNPYNQ_BOARD, PYNQ's $BOARD or the device tree.
    """
    on_board = bool(board_claims())
    report = Report(on_board=on_board, board=None, auto=None)
    check_stack(report)
    report.board = check_board(report, board)
    check_bitstream(report, report.board, strict=on_board or board is not None)
    check_backends(report)
    check_bundle(report, "Fashion-MNIST model", ternpynq.DEFAULT_MODEL, needed=True)
    check_bundle(report, "ImageNet model", IMAGENET_MODEL, needed=on_board)
    return report


def render(report: Report) -> str:
    where = f"on a board: {report.board or 'unknown'}" if report.on_board else "off-board"
    lines = [f"ternpynq doctor ({where})"]
    width = max(len(c.name) for c in report.checks)
    for c in report.checks:
        lines.append(
            f"  {c.status.upper() if c.status == 'fail' else c.status:<4}  "
            f"{c.name:<{width}}  {c.detail}"
        )
        if c.fix:
            lines.append(f"  {'':<4}  {'':<{width}}  fix: {c.fix}")
    failed = sum(c.status == "fail" for c in report.checks)
    lines.append("doctor: ready" if not failed else f"doctor: {failed} problem(s) to fix")
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="check this machine or board is ready",
        description="Report the Python stack, the board and its board file, the bitstream and "
        "its manifest, the backends (and what auto picks) and the bundled models. Exits 1, with "
        "a one-line fix for each problem, when something a board user needs is missing.",
    )
    p.add_argument("--board", help="check this board's files even off-board (e.g. pynq-z2)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = diagnose(board=args.board)
    print(json.dumps(report.to_json(), indent=2) if args.json else render(report))
    return 0 if report.ready else 1
