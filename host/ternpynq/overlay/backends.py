"""The ``csim`` and ``pynq`` backends: the overlay driver on a simulated or a real device.

Both are the same ``Driver``; only the device differs. ``csim`` runs the overlay's HLS C++
(compiled with g++ on first use) behind a ``SimulatedDevice``, anywhere. ``pynq`` loads the
board's bitstream (``paths.bitstream_paths``) on a PYNQ board, after checking its manifest
against this runtime (``generate.manifest_expectation``). Registering them imports neither
pynq nor the compiler.
"""

from __future__ import annotations

import os

import numpy as np

from ternpynq.bundle.schema import Bundle
from ternpynq.overlay.boards import Board, BoardError, board_names, load_board
from ternpynq.overlay.device import Device
from ternpynq.overlay.driver import Driver
from ternpynq.overlay.generate import manifest_expectation
from ternpynq.overlay.paths import bitstream_paths
from ternpynq.overlay.regmap import load_regmap
from ternpynq.runtime import backends

DEFAULT_CSIM_BOARD = "pynq-z2"
CSIM_TIMEOUT_S = 600.0  # a software kernel on a large layer is slow, but never unbounded
BOARD_ENV = "TERNPYNQ_BOARD"  # overrides PYNQ's own BOARD variable


class OverlayBackend:
    """A backend that runs a bundle through the overlay driver."""

    def __init__(self, name: str, driver: Driver) -> None:
        self.name = name
        self.driver = driver

    @classmethod
    def open(
        cls,
        name: str,
        device: Device,
        board: str | Board,
        bundle: Bundle,
        max_batch: int,
        timeout_s: float,
    ) -> OverlayBackend:
        """Load ``bundle`` onto ``device``; the device is closed if the bundle is refused."""
        try:
            driver = Driver(device, board, bundle, max_batch=max_batch, timeout_s=timeout_s)
        except BaseException:
            device.close()
            raise
        return cls(name, driver)

    @property
    def board(self) -> str:
        return self.driver.board.name

    def run(self, codes: np.ndarray) -> np.ndarray:
        return self.driver.run(codes)

    def close(self) -> None:
        self.driver.close()


# -- csim --------------------------------------------------------------------------------
def simulated_device(
    board: str | Board = DEFAULT_CSIM_BOARD, ddr_bytes: int | None = None
) -> Device:
    """A SimulatedDevice running the csim kernel built for ``board`` (a name or a Board)."""
    from ternpynq.overlay.csim_build import load_kernel
    from ternpynq.overlay.simdevice import DEFAULT_DDR_BYTES, SimulatedDevice

    kernel = load_kernel(load_board(board) if isinstance(board, str) else board)
    return SimulatedDevice(load_regmap(), kernel.start, ddr_bytes=ddr_bytes or DEFAULT_DDR_BYTES)


def create_csim(
    bundle: Bundle,
    board: str | Board = DEFAULT_CSIM_BOARD,
    max_batch: int = 32,
    timeout_s: float = CSIM_TIMEOUT_S,
    ddr_bytes: int | None = None,
) -> OverlayBackend:
    """The ``csim`` backend: the overlay's C++ behind a simulated device."""
    device = simulated_device(board, ddr_bytes)
    return OverlayBackend.open("csim", device, board, bundle, max_batch, timeout_s)


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


def pynq_available() -> bool:
    """Cheap probe for ``auto``: pynq installed and a bitstream with its manifest for the
    detected board; never imports pynq."""
    board = detect_board()
    if board is None or not backends.module_available("pynq"):
        return False
    paths = bitstream_paths(board)
    return paths["bit"].is_file() and paths["manifest"].is_file()


def create_pynq(
    bundle: Bundle,
    board: str | None = None,
    max_batch: int = 32,
    timeout_s: float = 10.0,
) -> OverlayBackend:
    """The ``pynq`` backend: the overlay on this board, after a manifest check."""
    from ternpynq.overlay.pynqdevice import (
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
    paths = bitstream_paths(board)
    manifest = read_manifest(paths["manifest"])
    check_manifest(manifest, manifest_expectation(load_board(board)), str(paths["manifest"]))
    device = PynqDevice(paths["bit"], load_regmap())
    return OverlayBackend.open("pynq", device, board, bundle, max_batch, timeout_s)


backends.register("csim", create_csim)
backends.register("pynq", create_pynq, pynq_available)
