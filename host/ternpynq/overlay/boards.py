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
from dataclasses import dataclass, field
from pathlib import Path

from ternpynq.overlay.paths import overlay_dir

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
        f"// Generated from overlay/boards/{board.name}.json by ternpynq.overlay.boards.",
        "#pragma once",
        f'#define TPQ_BOARD "{board.name}"',
        f"#define TPQ_CLOCK_MHZ {board.clock_mhz:g}",
    ]
    lines += [f"#define {key} {value}" for key, value in defs.items()]
    return "\n".join(lines) + "\n"
