"""Generated build inputs for the Vitis HLS and Vivado flow (docs/overlay.md "Build flow").

``python -m ternpynq.overlay.generate BOARD DIR`` writes tpq_config.h (the board file),
tpq_regs.h (the register map) and board.tcl (both, for the Tcl scripts) into DIR.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ternpynq.overlay.boards import Board, config_header, load_board
from ternpynq.overlay.regmap import load_regmap, regs_header


def manifest_expectation(board: Board) -> dict:
    """Manifest fields a bitstream must carry to be driven by this runtime for ``board``."""
    rm = load_regmap()
    return {
        "board": board.name,
        "P": board.P,
        "g": board.g,
        "regmap_sha256": rm.sha256,
        "vlnv": rm.vlnv,
    }


def tcl_vars(board: Board) -> str:
    """board.tcl: the board file and register-map facts the Vitis/Vivado scripts source."""
    facts = {
        "board": board.name, "part": board.part, "board_part": board.board_part, "ps": board.ps,
        "clock_mhz": f"{board.clock_mhz:g}", "P": board.P, "g": board.g, "axi_bits": board.axi_bits,
        "ports": " ".join(board.ports),
    }  # fmt: skip
    facts.update({k: v for k, v in manifest_expectation(board).items() if k not in facts})
    return "".join(f"set tpq_{key} {{{value}}}\n" for key, value in facts.items())


def generate(board: Board, out_dir: Path) -> list[Path]:
    """Write tpq_config.h, tpq_regs.h and board.tcl for the HLS/Vivado build into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "tpq_config.h": config_header(board),
        "tpq_regs.h": regs_header(load_regmap()),
        "board.tcl": tcl_vars(board),
    }
    for name, text in files.items():
        (out_dir / name).write_text(text)
    return [out_dir / name for name in files]


def main(argv: list[str] | None = None) -> int:
    """``python -m ternpynq.overlay.generate BOARD DIR`` writes the generated build inputs."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m ternpynq.overlay.generate BOARD OUT_DIR", file=sys.stderr)
        return 2
    for path in generate(load_board(args[0]), Path(args[1])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
