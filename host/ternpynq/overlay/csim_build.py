"""Build the overlay's HLS sources with g++ for C-simulation (docs/overlay.md "C-simulation").

The kernel in overlay/hls/tpq_layer/ compiles unchanged into a shared library (the ``csim``
backend's kernel, called through ``tpq_csim_start``) or into its testbench. Builds go to a cache
directory keyed by a hash of the sources, generated headers and flags
(``$TERNPYNQ_CACHE`` or ``~/.cache/ternpynq``/csim/<hash>/), so each is compiled once.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ternpynq.overlay.boards import Board, config_header, load_board
from ternpynq.overlay.paths import overlay_dir
from ternpynq.overlay.regmap import load_regmap, regs_header

KERNEL_SOURCES = ("tpq_layer_top.cpp", "tpq_conv.cpp", "tpq_pool.cpp", "tpq_dw.cpp")
KERNEL_HEADERS = ("tpq_layer.hpp", "tpq_walk.hpp")  # hashed with the sources
CXXFLAGS = ("-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas")
SANITIZE = (
    "-O1",
    "-g",
    "-fno-omit-frame-pointer",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
)


class CsimBuildError(RuntimeError):
    """g++ is missing or the overlay sources failed to compile; the message has its output."""


def kernel_dir() -> Path:
    return overlay_dir() / "hls" / "tpq_layer"


def cache_root() -> Path:
    root = os.environ.get("TERNPYNQ_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "ternpynq"


def _compile(board: Board, sources: tuple[str, ...], output: str, flags: tuple[str, ...]) -> Path:
    """Compile ``sources`` and the generated headers into cache/<hash>/<output>, once."""
    src = kernel_dir()
    headers = {"tpq_config.h": config_header(board), "tpq_regs.h": regs_header(load_regmap())}
    digest = hashlib.sha256()
    for name in sorted({*sources, *KERNEL_HEADERS}):
        digest.update(name.encode() + (src / name).read_bytes())
    for name, text in sorted(headers.items()):
        digest.update(name.encode() + text.encode())
    digest.update(" ".join(flags).encode() + output.encode())
    out_dir = cache_root() / "csim" / digest.hexdigest()[:16]
    target = out_dir / output
    if target.exists():
        return target
    cxx = shutil.which(os.environ.get("CXX", "g++"))
    if cxx is None:
        raise CsimBuildError(
            "g++ not found; the csim backend needs a C++17 compiler (apt install g++)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        for name, text in headers.items():
            Path(tmp, name).write_text(text)
        tmp_target = Path(tmp, output)
        cmd = [
            cxx,
            *flags,
            f"-I{tmp}",
            f"-I{src}",
            *(str(src / s) for s in sources),
            "-o",
            str(tmp_target),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CsimBuildError(f"g++ failed ({' '.join(cmd)}):\n{proc.stderr[-4000:]}")
        os.replace(tmp_target, target)  # atomic: a concurrent build never sees half a file
    return target


def build_library(board: str | Board) -> Path:
    """The csim shared library for ``board`` (built on first use)."""
    board = load_board(board) if isinstance(board, str) else board
    return _compile(
        board,
        (*KERNEL_SOURCES, "tpq_csim.cpp"),
        f"libtpq_{board.name}.so",
        (*CXXFLAGS, "-shared", "-fPIC"),
    )


def build_testbench(board: str | Board, sanitize: bool = False) -> Path:
    """The testbench executable; ``sanitize`` adds -fsanitize=address,undefined."""
    board = load_board(board) if isinstance(board, str) else board
    flags = (*CXXFLAGS, *SANITIZE) if sanitize else CXXFLAGS
    name = f"tpq_tb_{board.name}{'_asan' if sanitize else ''}"
    return _compile(board, (*KERNEL_SOURCES, "tpq_csim.cpp", "tpq_layer_tb.cpp"), name, flags)


@dataclass
class CsimKernel:
    """The loaded csim library: ``start`` runs one layer on a DDR byte array."""

    board: str
    lib: ctypes.CDLL

    def start(self, regs: np.ndarray, ddr: np.ndarray, ddr_base: int) -> tuple[int, int]:
        """regs: (words,) uint32 register file; ddr: uint8 array, written in place.

        Returns (status, cycles); status 0 is success (register map ``enums.status``).
        """
        regs = np.ascontiguousarray(regs, dtype=np.uint32)
        if ddr.dtype != np.uint8 or not ddr.flags.c_contiguous or not ddr.flags.writeable:
            raise ValueError("ddr must be a writeable, contiguous uint8 array")
        cycles = ctypes.c_uint64(0)
        status = self.lib.tpq_csim_start(
            regs.ctypes.data_as(ctypes.POINTER(ctypes.c_uint32)),
            ctypes.c_uint32(regs.size),
            ddr.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)),
            ctypes.c_uint64(ddr_base),
            ctypes.c_uint64(ddr.size),
            ctypes.byref(cycles),
        )
        return int(status), int(cycles.value)

    def loops(self) -> dict[str, tuple[int, int]]:
        """This thread's last ``start`` by loop label: (iterations, entries) of each loop."""
        n = self.lib.tpq_csim_loop_count()
        iters, entries = (ctypes.c_uint64 * n)(), (ctypes.c_uint64 * n)()
        self.lib.tpq_csim_loops(iters, entries)
        names = [self.lib.tpq_csim_loop_name(i).decode() for i in range(n)]
        return {name: (int(iters[i]), int(entries[i])) for i, name in enumerate(names)}

    def depths(self) -> dict[str, int]:
        """The pipeline depth the kernel states for each loop label."""
        n = self.lib.tpq_csim_loop_count()
        return {
            self.lib.tpq_csim_loop_name(i).decode(): int(self.lib.tpq_csim_loop_depth(i))
            for i in range(n)
        }


_LOADED: dict[Path, CsimKernel] = {}


def load_kernel(board: str | Board) -> CsimKernel:
    """Build (once) and load the csim kernel for ``board`` (a name or a loaded board file)."""
    board = load_board(board) if isinstance(board, str) else board
    path = build_library(board)
    if path in _LOADED:
        return _LOADED[path]
    lib = ctypes.CDLL(str(path))
    lib.tpq_csim_start.restype = ctypes.c_int
    lib.tpq_csim_start.argtypes = [
        ctypes.POINTER(ctypes.c_uint32), ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint8),
        ctypes.c_uint64, ctypes.c_uint64, ctypes.POINTER(ctypes.c_uint64),
    ]  # fmt: skip
    lib.tpq_csim_board.restype = ctypes.c_char_p
    lib.tpq_csim_loops.restype = None
    lib.tpq_csim_loop_count.restype = ctypes.c_uint32
    lib.tpq_csim_loop_name.restype = ctypes.c_char_p
    lib.tpq_csim_loop_name.argtypes = [ctypes.c_uint32]
    lib.tpq_csim_loop_depth.restype = ctypes.c_uint32
    lib.tpq_csim_loop_depth.argtypes = [ctypes.c_uint32]
    built_for = lib.tpq_csim_board().decode()
    if built_for != board.name:
        raise CsimBuildError(f"csim library {path} was built for {built_for}, not {board.name}")
    _LOADED[path] = CsimKernel(board.name, lib)
    return _LOADED[path]
