"""Board files: the one place that fixes an overlay's geometry (docs/overlay.md "Board files").

``overlay/boards/<board>.json`` holds the part, PL clock, PE array (P PEs x g lanes), on-chip
buffer sizes and AXI port width. The HLS build reads them through the generated config header
(``config_header``), the runtime and the cycle model through ``load_board``; nothing restates
them by hand.

>>> load_board("pynq-z2").lanes == load_board("pynq-z2").P * load_board("pynq-z2").g
True
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Where overlay/ lives when the package is installed outside this checkout.
OVERLAY_ENV = "TERNPYNQ_OVERLAY"
BITSTREAM_ENV = "TERNPYNQ_BITSTREAMS"  # a bitstreams/ folder elsewhere (e.g. on a board)
# What the Vivado flow writes into bitstreams/<board>/ and the pynq backend looks for.
BITSTREAM_FILES = {"bit": "ternpynq.bit", "hwh": "ternpynq.hwh", "manifest": "ternpynq.json"}
PS_KINDS = ("zynq7", "zynq_ultra_ps_e")


class BoardError(ValueError):
    """A board file is missing or invalid; the message names the file and field."""


@dataclass(frozen=True)
class Board:
    """One board's overlay geometry and the assumptions the performance model uses."""

    name: str
    part: str
    ps: str
    clock_mhz: float
    P: int  # PEs: output pixels computed in parallel
    g: int  # lanes per PE: input channels (or packed patch elements) added in parallel
    weight_bytes: int  # on-chip compacted weight buffer (one output-channel tile)
    input_elems: int  # on-chip input row buffer, in feature-map elements
    input_read_elems: int  # elements the input buffer delivers per cycle (BRAM ports)
    max_kernel: int
    max_channels: int
    axi_bits: int  # width of each m_axi port
    ports: tuple[str, ...]
    capacity: dict = field(default_factory=dict)  # lut, ff, bram36, uram, dsp of the part
    arm: dict = field(default_factory=dict)  # host-side cost assumptions (cycles.py)
    description: str = ""
    board_part: str = ""  # Vivado board-file part (PS presets: DDR, MIO), if installed

    @property
    def lanes(self) -> int:
        return self.P * self.g

    @property
    def vector_read_cycles(self) -> int:
        """Cycles to read one P x g input vector from the input buffer."""
        return -(-self.lanes // self.input_read_elems)

    @property
    def port_bytes(self) -> int:
        return self.axi_bits // 8

    @property
    def lane_word_bytes(self) -> int:
        """Bytes of one lane word: g trits at 2 bits each."""
        return self.g // 4


def overlay_dir() -> Path:
    """The overlay/ source tree: $TERNPYNQ_OVERLAY, else beside the host/ tree of this checkout."""
    env = os.environ.get(OVERLAY_ENV)
    path = Path(env) if env else Path(__file__).resolve().parents[3] / "overlay"
    if not (path / "boards").is_dir():
        raise BoardError(
            f"overlay sources not found at {path}; set {OVERLAY_ENV} to an overlay/ checkout"
        )
    return path


def board_names() -> list[str]:
    return sorted(p.stem for p in (overlay_dir() / "boards").glob("*.json"))


def _need(data: dict, key: str, kind: type, where: str):
    if key not in data:
        raise BoardError(f"{where}: missing field {key!r}")
    value = data[key]
    if kind is int and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
        raise BoardError(f"{where}: {key} must be a positive integer, got {value!r}")
    if kind is float and (not isinstance(value, (int, float)) or value <= 0):
        raise BoardError(f"{where}: {key} must be a positive number, got {value!r}")
    if kind in (str, dict, list) and not isinstance(value, kind):
        raise BoardError(f"{where}: {key} must be a {kind.__name__}, got {value!r}")
    return value


def load_board(name_or_path: str | os.PathLike) -> Board:
    """Read and validate ``overlay/boards/<name>.json`` (or a path to a board file)."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = overlay_dir() / "boards" / f"{name_or_path}.json"
        if not path.is_file():
            raise BoardError(
                f"unknown board {name_or_path!r}; choose one of {', '.join(board_names())}"
            )
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BoardError(f"{path}: {exc}") from exc
    where = str(path)
    pe = _need(data, "pe", dict, where)
    buf = _need(data, "buffers", dict, where)
    axi = _need(data, "axi", dict, where)
    board = Board(
        name=_need(data, "name", str, where),
        part=_need(data, "part", str, where),
        ps=_need(data, "ps", str, where),
        clock_mhz=float(_need(data, "clock_mhz", float, where)),
        P=_need(pe, "P", int, where + ": pe"),
        g=_need(pe, "g", int, where + ": pe"),
        weight_bytes=_need(buf, "weight_bytes", int, where + ": buffers"),
        input_elems=_need(buf, "input_elems", int, where + ": buffers"),
        input_read_elems=_need(buf, "input_read_elems", int, where + ": buffers"),
        max_kernel=_need(buf, "max_kernel", int, where + ": buffers"),
        max_channels=_need(buf, "max_channels", int, where + ": buffers"),
        axi_bits=_need(axi, "data_bits", int, where + ": axi"),
        ports=tuple(_need(axi, "ports", list, where + ": axi")),
        capacity=dict(data.get("capacity", {})),
        arm=dict(data.get("arm", {})),
        description=str(data.get("description", "")),
        board_part=str(data.get("board_part", "")),
    )
    if board.ps not in PS_KINDS:
        raise BoardError(f"{where}: ps must be one of {PS_KINDS}, got {board.ps!r}")
    if board.g % 4 or board.g & (board.g - 1):
        raise BoardError(f"{where}: pe.g must be a power of two >= 4 (lane words are whole bytes)")
    if board.axi_bits not in (32, 64, 128, 256, 512):
        raise BoardError(f"{where}: axi.data_bits must be 32..512, got {board.axi_bits}")
    return board


def config_header(board: Board) -> str:
    """The HLS config header (tpq_config.h) generated from a board file."""
    defs = {
        "TPQ_P": board.P,
        "TPQ_G": board.g,
        "TPQ_WBUF_BYTES": board.weight_bytes,
        "TPQ_IBUF_ELEMS": board.input_elems,
        "TPQ_IBUF_READ": board.input_read_elems,
        "TPQ_MAX_K": board.max_kernel,
        "TPQ_MAX_C": board.max_channels,
        "TPQ_PORT_BYTES": board.port_bytes,
        "TPQ_WBUF_PORTS": board.lane_word_bytes,  # bytes of the weight buffer read per cycle
    }
    lines = [
        f"// Generated from overlay/boards/{board.name}.json by ternpynq.runtime.boards.",
        "#pragma once",
        f'#define TPQ_BOARD "{board.name}"',
        f"#define TPQ_CLOCK_MHZ {board.clock_mhz:g}",
    ]
    lines += [f"#define {key} {value}" for key, value in defs.items()]
    return "\n".join(lines) + "\n"


def bitstream_paths(board: str) -> dict[str, Path]:
    """Paths of the .bit, .hwh and manifest for ``board`` ($TERNPYNQ_BITSTREAMS or repo's)."""
    env = os.environ.get(BITSTREAM_ENV)
    root = Path(env) if env else Path(__file__).resolve().parents[3] / "bitstreams"
    return {kind: root / board / name for kind, name in BITSTREAM_FILES.items()}


def manifest_expectation(board: Board) -> dict:
    """Manifest fields a bitstream must carry to be driven by this runtime for ``board``."""
    from ternpynq.runtime.regmap import load_regmap  # regmap imports this module

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
    from ternpynq.runtime.regmap import load_regmap, regs_header

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
    """``python -m ternpynq.runtime.boards gen BOARD DIR`` writes the generated build inputs."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] != "gen":
        print("usage: python -m ternpynq.runtime.boards gen BOARD OUT_DIR", file=sys.stderr)
        return 2
    for path in generate(load_board(args[1]), Path(args[2])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
