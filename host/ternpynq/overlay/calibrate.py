"""Measure the generated PE with yosys and keep the counts as a board's calibration.

``python -m ternpynq.overlay.calibrate BOARD [--out FILE]`` (``make -C overlay BOARD=B yosys``)
writes each module of ``pe_verilog`` for the board, synthesizes it with ``synth_xilinx`` for
the board's family and writes the cell counts as JSON. The committed copies live in
``overlay/calibration/<board>.json``; ``resources`` multiplies them out.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ternpynq.overlay.boards import Board, load_board
from ternpynq.overlay.paths import overlay_dir
from ternpynq.overlay.pe_verilog import ENCODINGS, levels_per_stage, modules, select_ways

# yosys synth_xilinx family per board PS: Zynq-7000 is 7-series, the MPSoC UltraScale+.
FAMILY = {"zynq7": "xc7", "zynq_ultra_ps_e": "xcup"}
CELL_KINDS = {  # yosys cell name pattern -> resource kind (LUT6_2 and LUTRAM count as LUTs)
    "lut": r"LUT[1-6](_2)?|RAM\d+[XM].*|SRL.*",
    "ff": r"FD[A-Z]*",
    "carry": r"CARRY[48]",
    "muxf": r"MUXF[789]",
    "dsp": r"DSP48.*",
    "bram36": r"RAMB36.*",
    "bram18": r"RAMB18.*",
}


class YosysError(RuntimeError):
    """yosys is missing or failed; the message says which module and why."""


def calibration_path(board_name: str) -> Path:
    return overlay_dir() / "calibration" / f"{board_name}.json"


def yosys_version() -> str:
    exe = shutil.which("yosys")
    if exe is None:
        raise YosysError("yosys not found: apt-get install yosys (Debian package)")
    out = subprocess.run([exe, "-V"], check=True, capture_output=True, text=True).stdout
    return out.split("(")[0].strip()


def parse_stat(text: str) -> dict[str, int]:
    """Resource counts from the cell list of yosys ``stat`` output."""
    counts = dict.fromkeys(CELL_KINDS, 0)
    for cell, n in re.findall(r"^\s+([A-Z][A-Z0-9_]*)\s+(\d+)\s*$", text, re.M):
        for kind, pattern in CELL_KINDS.items():
            if re.fullmatch(pattern, cell):
                counts[kind] += int(n)
    return counts


def cells_sim() -> Path:
    """yosys's simulation models of the Xilinx cells, for simulating a synthesized netlist."""
    exe = shutil.which("yosys")
    if exe is None:
        raise YosysError("yosys not found: apt-get install yosys (Debian package)")
    return Path(exe).resolve().parents[1] / "share" / "yosys" / "xilinx" / "cells_sim.v"


def synthesize(
    verilog: str, top: str, family: str, netlist: Path | None = None, timeout_s: float = 900
) -> dict[str, int]:
    """Cell counts of ``top`` in ``verilog`` after ``synth_xilinx -family FAMILY`` (and the
    mapped netlist written to ``netlist`` when given, to simulate what was counted)."""
    yosys_version()
    with tempfile.TemporaryDirectory() as tmp:
        src, stat = Path(tmp) / f"{top}.v", Path(tmp) / "stat.txt"
        src.write_text(verilog)
        script = (
            f"read_verilog {src}; synth_xilinx -family {family} -top {top} -flatten -noiopad; "
            f"tee -q -o {stat} stat"
        )
        if netlist is not None:
            script += f"; write_verilog -noattr {netlist}"
        try:
            run = subprocess.run(
                ["yosys", "-q", "-p", script], capture_output=True, text=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired as exc:
            raise YosysError(f"yosys on {top} took over {timeout_s:g} s") from exc
        if run.returncode != 0:
            tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
            raise YosysError(f"yosys failed on {top}: {tail[0]}")
        return parse_stat(stat.read_text())


def module_geometry(board: Board) -> dict:
    """The board facts the generated modules depend on; a calibration is valid while they hold."""
    return {
        "family": FAMILY[board.ps],
        "g": board.g,
        "select_ways": select_ways(board),
        "levels_per_stage": levels_per_stage(board),
    }


def _fewest_luts(counts: dict[str, dict[str, int]]) -> str:
    return min(counts, key=lambda enc: (counts[enc]["lut"], counts[enc]["ff"]))


def calibrate(
    board: Board,
    encodings: tuple[str, ...] = ENCODINGS,
    dw_encodings: tuple[str, ...] = ENCODINGS,
) -> dict:
    """Synthesize every module for ``board``; the PE and the depthwise unit each use the lane
    encoding with fewer LUTs."""
    family = FAMILY[board.ps]
    pe = {enc: synthesize(modules(board, enc)["tpq_pe"], "tpq_pe", family) for enc in encodings}
    dw = {
        enc: synthesize(modules(board, dw_encoding=enc)["tpq_dw"], "tpq_dw", family)
        for enc in dw_encodings
    }
    best, dw_best = _fewest_luts(pe), _fewest_luts(dw)
    mods = modules(board, best, dw_best)
    return {
        "board": board.name,
        "yosys": yosys_version(),
        "geometry": module_geometry(board),
        "encoding": best,
        "dw_encoding": dw_best,
        "per_pe": {
            "tpq_pe": pe[best],
            "tpq_sel": synthesize(mods["tpq_sel"], "tpq_sel", family),
            "tpq_rq": synthesize(mods["tpq_rq"], "tpq_rq", family),
        },
        "per_array": {
            "tpq_wdec": synthesize(mods["tpq_wdec"], "tpq_wdec", family),
            "tpq_dw": dw[dw_best],
        },
        "encodings": pe,
        "dw_encodings": dw,
        "command": f"make -C overlay BOARD={board.name} yosys",
    }


def main(argv: list[str] | None = None) -> int:
    """Write a board's calibration JSON (default: overlay/calibration/<board>.json)."""
    p = argparse.ArgumentParser(prog="python -m ternpynq.overlay.calibrate", description=__doc__)
    p.add_argument("board")
    p.add_argument("--out", type=Path, help="where to write (default: the committed file)")
    args = p.parse_args(argv)
    try:
        board = load_board(args.board)
        data = calibrate(board)
    except (ValueError, YosysError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = args.out or calibration_path(board.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
