"""The overlay's register map, read from overlay/hls/tpq_layer/regmap.json.

The one list of AXI-Lite registers (name, byte offset, width, meaning) that the driver, the
simulated device, the csim ABI and a pragma test all use; code addresses registers by name.

>>> rm = load_regmap()
>>> rm["CTRL"].offset, rm["wgt_addr"].width
(0, 64)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ternpynq.overlay.paths import overlay_dir

KERNEL = "tpq_layer"


@dataclass(frozen=True)
class RegisterInfo:
    name: str
    offset: int  # bytes from the AXI-Lite base
    width: int  # 32 or 64 bits; a 64-bit register is two words, low word first
    access: str  # "rw" or "r"
    port: str | None  # the top function's argument it carries (None for ap_ctrl registers)
    meaning: str


@dataclass(frozen=True)
class RegisterMap:
    kernel: str
    vlnv: str
    size_bytes: int
    ctrl_bits: dict[str, int]
    enums: dict[str, dict[str, int]]
    registers: tuple[RegisterInfo, ...]
    sha256: str  # of the file's bytes; bitstream manifests record it

    def __getitem__(self, name: str) -> RegisterInfo:
        for reg in self.registers:
            if reg.name == name:
                return reg
        raise KeyError(f"register {name!r} is not in the {self.kernel} register map")

    def __iter__(self) -> Iterator[RegisterInfo]:
        return iter(self.registers)

    @property
    def words(self) -> int:
        """Number of 32-bit words the register block spans (the csim ABI's ``nregs``)."""
        return self.size_bytes // 4

    def pack(self, values: Mapping[str, int]) -> np.ndarray:
        """Register values by name -> the (words,) uint32 array the csim ABI takes.

        Signed values are stored two's complement; a 64-bit value fills two words, low first.
        """
        regs = np.zeros(self.words, np.uint32)
        for name, value in values.items():
            reg = self[name]
            value = int(value) & ((1 << reg.width) - 1)
            regs[reg.offset // 4] = value & 0xFFFFFFFF
            if reg.width == 64:
                regs[reg.offset // 4 + 1] = value >> 32
        return regs


def regs_header(rm: RegisterMap) -> str:
    """tpq_regs.h for the C-simulation ABI: one TPQ_REG_<name> byte offset per register."""
    lines = [
        "// Generated from overlay/hls/tpq_layer/regmap.json by ternpynq.overlay.regmap.",
        "#pragma once",
        f"#define TPQ_REGS_BYTES {rm.size_bytes}u",
    ]
    lines += [f"#define TPQ_REG_{reg.name} 0x{reg.offset:X}u" for reg in rm]
    return "\n".join(lines) + "\n"


def regmap_path() -> Path:
    return overlay_dir() / "hls" / KERNEL / "regmap.json"


def load_regmap(path: str | Path | None = None) -> RegisterMap:
    """Read and check the register-map file (offsets aligned, in range, non-overlapping)."""
    path = Path(path) if path else regmap_path()
    raw = path.read_bytes()
    data = json.loads(raw)
    regs = tuple(
        RegisterInfo(
            r["name"], int(r["offset"], 16), int(r["width"]), r["access"], r["port"], r["meaning"]
        )
        for r in data["registers"]
    )
    used: dict[int, str] = {}
    for reg in regs:
        if (
            reg.offset % 4
            or reg.width not in (32, 64)
            or reg.offset + reg.width // 8 > data["size_bytes"]
        ):
            raise ValueError(f"{path}: register {reg.name} has a bad offset or width")
        for word in range(reg.offset // 4, (reg.offset + reg.width // 8) // 4):
            if word in used:
                raise ValueError(f"{path}: registers {used[word]} and {reg.name} overlap")
            used[word] = reg.name
    return RegisterMap(
        kernel=data["kernel"],
        vlnv=data["vlnv"],
        size_bytes=int(data["size_bytes"]),
        ctrl_bits=dict(data["ctrl_bits"]),
        enums={k: dict(v) for k, v in data["enums"].items()},
        registers=regs,
        sha256=hashlib.sha256(raw).hexdigest(),
    )
