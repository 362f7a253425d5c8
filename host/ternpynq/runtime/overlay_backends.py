"""The ``csim`` and ``pynq`` backends: the overlay driver on a simulated or a real device.

Both are the same ``Driver``; only the device differs. ``csim`` runs the overlay's HLS C++
(compiled with g++ on first use) behind a ``SimulatedDevice``, anywhere. ``pynq`` loads
``bitstreams/<board>/ternpynq.bit`` on a PYNQ board, after checking its manifest against this
runtime. Registering them imports neither pynq nor the compiler.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ternpynq.bundle.schema import Bundle
from ternpynq.runtime import backends
from ternpynq.runtime.boards import BoardError, board_names, load_board
from ternpynq.runtime.device import Device
from ternpynq.runtime.driver import Driver
from ternpynq.runtime.regmap import load_regmap

DEFAULT_CSIM_BOARD = "pynq-z2"
CSIM_TIMEOUT_S = 600.0  # a software kernel on a large layer is slow, but never unbounded
BOARD_ENV = "TERNPYNQ_BOARD"  # overrides PYNQ's own BOARD variable
BITSTREAMS_ENV = "TERNPYNQ_BITSTREAMS"
BITSTREAM_NAME, MANIFEST_NAME = "ternpynq.bit", "manifest.json"


class OverlayBackend:
    """A backend that runs a bundle through the overlay driver."""

    def __init__(self, name: str, driver: Driver) -> None:
        self.name = name
        self.driver = driver

    @property
    def board(self) -> str:
        return self.driver.board.name

    def run(self, codes: np.ndarray) -> np.ndarray:
        return self.driver.run(codes)

    def close(self) -> None:
        self.driver.close()


# -- csim --------------------------------------------------------------------------------
def simulated_device(board: str = DEFAULT_CSIM_BOARD, ddr_bytes: int | None = None) -> Device:
    """A SimulatedDevice running the csim kernel built for ``board``."""
    from ternpynq.runtime.csim_build import load_kernel
    from ternpynq.runtime.simdevice import DEFAULT_DDR_BYTES, SimulatedDevice

    kernel = load_kernel(load_board(board).name)
    return SimulatedDevice(load_regmap(), kernel.start, ddr_bytes=ddr_bytes or DEFAULT_DDR_BYTES)


def create_csim(
    bundle: Bundle,
    board: str = DEFAULT_CSIM_BOARD,
    max_batch: int = 32,
    timeout_s: float = CSIM_TIMEOUT_S,
    ddr_bytes: int | None = None,
) -> OverlayBackend:
    """The ``csim`` backend: the overlay's C++ behind a simulated device."""
    device = simulated_device(board, ddr_bytes)
    try:
        driver = Driver(device, board, bundle, max_batch=max_batch, timeout_s=timeout_s)
    except BaseException:
        device.close()
        raise
    return OverlayBackend("csim", driver)


# -- pynq --------------------------------------------------------------------------------
def detect_board() -> str | None:
    """The board this runs on: $TERNPYNQ_BOARD, else PYNQ's $BOARD when we have a board file."""
    name = os.environ.get(BOARD_ENV) or os.environ.get("BOARD")
    if not name:
        return None
    try:
        known = board_names()
    except BoardError:
        return None
    return name.lower() if name.lower() in known else None


def bitstream_dir(board: str) -> Path:
    """Where ``board``'s bitstream, .hwh and manifest live ($TERNPYNQ_BITSTREAMS/<board>)."""
    root = os.environ.get(BITSTREAMS_ENV)
    base = Path(root) if root else Path(__file__).resolve().parents[3] / "bitstreams"
    return base / board


def expected_manifest(board: str) -> dict:
    """The manifest fields a bitstream must carry to work with this runtime."""
    b = load_board(board)
    return {
        "board": b.name,
        "geometry": {"P": b.P, "g": b.g},
        "regmap_sha256": load_regmap().sha256,
    }


def pynq_available() -> bool:
    """Cheap probe for ``auto``: pynq installed and a bitstream for the detected board; never
    imports pynq."""
    board = detect_board()
    return (
        board is not None
        and backends.module_available("pynq")
        and (bitstream_dir(board) / BITSTREAM_NAME).is_file()
    )


def create_pynq(
    bundle: Bundle,
    board: str | None = None,
    max_batch: int = 32,
    timeout_s: float = 10.0,
) -> OverlayBackend:
    """The ``pynq`` backend: the overlay on this board, after a manifest check."""
    from ternpynq.runtime.pynqdevice import (
        BitstreamError,
        PynqDevice,
        check_manifest,
        read_manifest,
    )

    board = board or detect_board()
    if board is None:
        raise BitstreamError(
            f"cannot tell which board this is: set {BOARD_ENV} to one of {', '.join(board_names())}"
        )
    folder = bitstream_dir(board)
    manifest_path = folder / MANIFEST_NAME
    check_manifest(read_manifest(manifest_path), expected_manifest(board), str(manifest_path))
    device = PynqDevice(folder / BITSTREAM_NAME, load_regmap())
    try:
        driver = Driver(device, board, bundle, max_batch=max_batch, timeout_s=timeout_s)
    except BaseException:
        device.close()
        raise
    return OverlayBackend("pynq", driver)


backends.register("csim", create_csim)
backends.register("pynq", create_pynq, pynq_available)
