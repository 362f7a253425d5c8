"""Resource model of the overlay: yosys calibration x P, every on-chip array, stated fixed costs.

Three parts (docs/overlay-resources.md), each kept apart in ``breakdown``:

- **PE array (measured by yosys):** the committed ``overlay/calibration/<board>.json``
  (``calibrate``) gives one PE's datapath and input select, and the array-wide modules, as
  synthesized by ``synth_xilinx`` for the board's family; multiplied by P (the shared weight
  decode and the one depthwise unit, ``per_array``, by 1).
- **Memories (from the sources):** every array ``hls_arrays`` reads from the HLS sources, with
  its element width, depth and partitioning, mapped to registers, LUTRAM, BRAM or UltraRAM by
  the rules below.
- **Interfaces and control (stated assumptions):** the AXI-Lite register file sized from the
  register map, one m_axi adapter per bundle of the top function's INTERFACE pragmas with its
  burst buffer sized from those pragmas, and a fixed allowance for the control FSMs.

Yosys+abc usually maps looser than Vivado, while HLS adds control on top, so the PE figure is a
measured floor of the datapath as described, not a prediction of Vivado's report.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from ternpynq.overlay.boards import Board
from ternpynq.overlay.calibrate import calibration_path, module_geometry
from ternpynq.overlay.hls_arrays import Array, banks, read_arrays, synthesis_sources
from ternpynq.overlay.regmap import load_regmap

KINDS = ("lut", "ff", "dsp", "bram36", "uram")
LUTRAM_MAX_BITS = 1024  # a bank this small goes to LUTRAM (Vitis maps small arrays to LUTs)
# Simple-dual-port shapes (width, depth): one write and one read port, as HLS uses them.
RAMB18 = ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))
RAMB36 = ((72, 512), (36, 1024), (18, 2048), (9, 4096), (4, 8192), (2, 16384), (1, 32768))
URAM288 = (72, 4096)
LUTRAM = ((6, 32), (3, 64))  # RAM32M / RAM64M: 4 LUTs each, bits x depth simple dual port
# Stated assumptions (docs/overlay-resources.md "Fixed costs"): logic of one Vitis HLS m_axi
# adapter (address channel, burst splitting, response tracking) and of the kernel's FSMs.
MAXI_LUT, MAXI_FF = 1500, 2000
MAXI_OUTSTANDING = 16  # Vitis HLS default num_read_outstanding / num_write_outstanding
CONTROL_LUT, CONTROL_FF = 3000, 3000


class CalibrationError(ValueError):
    """The committed calibration is missing or was made for another geometry."""


def load_calibration(board: Board, path: Path | None = None) -> dict:
    """The board's committed yosys calibration, checked against the geometry its modules
    depend on (P only multiplies them, so a new P needs no new synthesis)."""
    path = path or calibration_path(board.name)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CalibrationError(
            f"{path}: {exc}; run make -C overlay BOARD={board.name} yosys"
        ) from exc
    want = module_geometry(board)
    got = {key: data.get("geometry", {}).get(key) for key in want}
    if got != want:
        raise CalibrationError(
            f"{path} was made for {got}, the board file gives {want}; "
            f"run make -C overlay BOARD={board.name} yosys"
        )
    return data


def _blocks(width: int, depth: int, shapes) -> int:
    return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in shapes)


def memory_cost(array: Array) -> dict:
    """Where one array goes and what it costs: registers, LUTRAM, BRAM36 (0.5 per RAMB18) or
    UltraRAM (only when BIND_STORAGE asks for it, as HLS never picks URAM itself)."""
    nbanks, depth, width = banks(array)
    impl = array.storage.get("impl", "").lower()
    cost = dict.fromkeys(KINDS, 0)
    if depth == 1 or impl in ("reg", "register"):
        kind = "registers"
        cost["ff"] = nbanks * depth * width
    elif impl == "uram":
        kind = "uram"
        cost["uram"] = nbanks * _blocks(width, depth, (URAM288,))
    elif impl in ("lutram", "srl") or (not impl and width * depth <= LUTRAM_MAX_BITS):
        kind = "lutram"
        cost["lut"] = nbanks * 4 * _blocks(width, depth, LUTRAM)
    else:
        kind = "bram"
        per_bank = min(_blocks(width, depth, RAMB18) / 2, _blocks(width, depth, RAMB36))
        cost["bram36"] = nbanks * per_bank
    return {"name": array.name, "where": array.where, "kind": kind, "banks": nbanks,
            "depth": depth, "width": width, **cost}  # fmt: skip


def interfaces(board: Board, root: Path | None = None) -> list[dict]:
    """AXI-Lite registers from the register map and one adapter per m_axi bundle."""
    text = "\n".join(p.read_text() for p in synthesis_sources(root))
    nregs = sum(r.width // 32 for r in load_regmap().registers)  # 32-bit words held
    lite = {"name": "s_axilite control", "kind": "interface", "lut": 32 * math.ceil(nregs / 4),
            "ff": 32 * nregs, "dsp": 0, "bram36": 0, "uram": 0}  # fmt: skip
    out = [lite]
    bundles: dict[str, dict[str, int]] = {}  # bundle -> burst buffer words per direction
    for line in text.splitlines():
        if re.search(r"#pragma\s+HLS\s+INTERFACE\b.*\bm_axi\b", line):
            opts = dict(re.findall(r"(\w+)=(\w+)", line))
            b = bundles.setdefault(opts.get("bundle", opts.get("port", "gmem")), {})
            for key in ("max_read_burst_length", "max_write_burst_length"):
                if key in opts:  # ports of one bundle share its adapter and buffers
                    b[key] = max(b.get(key, 0), MAXI_OUTSTANDING * int(opts[key]))
    for name, b in sorted(bundles.items()):
        words = sum(b.values()) or MAXI_OUTSTANDING * 16  # HLS default burst length 16
        fifo = min(
            _blocks(board.axi_bits, words, RAMB18) / 2, _blocks(board.axi_bits, words, RAMB36)
        )
        out.append({"name": f"m_axi {name}", "kind": "interface", "lut": MAXI_LUT,
                    "ff": MAXI_FF, "dsp": 0, "bram36": fifo, "uram": 0})  # fmt: skip
    out.append({"name": "control FSMs and address counters", "kind": "assumed", "lut": CONTROL_LUT,
                "ff": CONTROL_FF, "dsp": 0, "bram36": 0, "uram": 0})  # fmt: skip
    return out


def breakdown(
    board: Board, calibration: dict | None = None, root: Path | None = None
) -> list[dict]:
    """Every line of the resource model: PE modules (x P), memories, interfaces."""
    cal = calibration or load_calibration(board)
    rows = []
    for group, count in (("per_pe", board.P), ("per_array", 1)):
        for module, cells in cal[group].items():
            rows.append({"name": f"{module} x {count}", "kind": "yosys",
                         "lut": count * cells["lut"], "ff": count * cells["ff"],
                         "dsp": count * cells["dsp"], "bram36": 0, "uram": 0})  # fmt: skip
    rows += [memory_cost(a) for a in read_arrays(board, root)]
    return rows + interfaces(board, root)


def resources(board: Board, calibration: dict | None = None) -> dict[str, dict[str, float]]:
    """Modelled LUT/FF/DSP/BRAM36/URAM of the overlay on ``board`` beside the part's capacity."""
    rows = breakdown(board, calibration)
    return {
        kind: {"used": sum(r[kind] for r in rows), "capacity": int(board.capacity.get(kind, 0))}
        for kind in KINDS
    }
