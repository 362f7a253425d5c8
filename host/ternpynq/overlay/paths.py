"""Where the overlay's sources and bitstreams live, for a checkout or an installed package.

Kept apart from the board files and the register map so that both can find their data without
importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path

# Where overlay/ lives when the package is installed outside this checkout.
OVERLAY_ENV = "TERNPYNQ_OVERLAY"
BITSTREAM_ENV = "TERNPYNQ_BITSTREAMS"  # a bitstreams/ folder elsewhere (e.g. on a board)
# What the Vivado flow writes into bitstreams/<board>/ and the pynq backend looks for.
BITSTREAM_FILES = {"bit": "ternpynq.bit", "hwh": "ternpynq.hwh", "manifest": "ternpynq.json"}


class OverlayPathError(ValueError):
    """The overlay/ source tree was not found; the message says which variable to set."""


def overlay_dir() -> Path:
    """The overlay/ source tree: $TERNPYNQ_OVERLAY, else beside the host/ tree of this checkout."""
    env = os.environ.get(OVERLAY_ENV)
    path = Path(env) if env else Path(__file__).resolve().parents[3] / "overlay"
    if not (path / "boards").is_dir():
        raise OverlayPathError(
            f"overlay sources not found at {path}; set {OVERLAY_ENV} to an overlay/ checkout"
        )
    return path


def bitstream_paths(board: str) -> dict[str, Path]:
    """Paths of the .bit, .hwh and manifest for ``board`` ($TERNPYNQ_BITSTREAMS or repo's)."""
    env = os.environ.get(BITSTREAM_ENV)
    root = Path(env) if env else Path(__file__).resolve().parents[3] / "bitstreams"
    return {kind: root / board / name for kind, name in BITSTREAM_FILES.items()}
