"""PynqDevice: the device interface on a PYNQ board, a thin adapter over pynq.

pynq is imported only here, and only when a PynqDevice is built, so the package works
off-board. Every pynq call below is one the PYNQ documentation describes: ``pynq.Overlay``
(load a .bit with its .hwh; ``ip_dict``, attribute access to an IP, ``download()``), a
``pynq.DefaultIP`` subclass bound by ``bindto = [VLNV]`` with ``read``/``write`` MMIO, and
``pynq.allocate`` buffers with ``device_address``, ``flush``, ``invalidate`` and
``freebuffer``.

Cache discipline: the PS caches a buffer and the kernel's m_axi ports do not see that cache,
so every CPU write to a buffer the kernel reads is followed by ``flush`` (allocate's zeroing
included) and every CPU read of what the kernel wrote is preceded by ``invalidate`` (the
driver's ``_from_device``). tests/overlay/fake_pynq.py models a write-back cache to hold us
to it.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ternpynq.overlay.device import Buffer, Device, DeviceError
from ternpynq.overlay.regmap import RegisterMap

_DRIVERS: dict[str, type] = {}  # one DefaultIP subclass per VLNV per process


class BitstreamError(DeviceError):
    """The bitstream is missing or was built for another board, geometry or register map."""


def read_manifest(path: Path) -> dict[str, Any]:
    """The bitstream's manifest JSON, or a BitstreamError saying what is missing."""
    if not path.is_file():
        raise BitstreamError(
            f"no bitstream manifest at {path}; see bitstreams/README.md to build one"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BitstreamError(f"bitstream manifest {path} is unreadable: {exc}") from exc
    if not isinstance(manifest, dict):
        raise BitstreamError(f"bitstream manifest {path} is not a JSON object")
    return manifest


def check_manifest(manifest: Mapping[str, Any], expected: Mapping[str, Any], source: str) -> None:
    """Refuse a bitstream whose manifest disagrees with what this runtime expects.

    ``expected`` maps manifest keys (board, geometry, register-map hash, ...) to the values the
    runtime was built against; every one must be present and equal.
    """
    problems = []
    for key, want in expected.items():
        have = manifest.get(key)
        if have != want:
            problems.append(f"{key} is {have!r}, the runtime expects {want!r}")
    if problems:
        raise BitstreamError(
            f"bitstream {source} does not match this runtime: "
            + "; ".join(problems)
            + ". Rebuild it (bitstreams/README.md) or install the matching ternpynq."
        )


class PynqBufferAdapter(Buffer):
    """A ``pynq.allocate`` uint8 buffer seen through the Buffer interface."""

    def __init__(self, pynq_buffer: Any) -> None:
        self._buffer = pynq_buffer
        self.array = pynq_buffer  # PynqBuffer is a numpy.ndarray subclass
        self.device_address = int(pynq_buffer.device_address)
        self.freed = False

    def flush(self) -> None:
        self._buffer.flush()

    def invalidate(self) -> None:
        self._buffer.invalidate()

    def free(self) -> None:
        if not self.freed:
            self._buffer.freebuffer()
            self.freed = True


def _driver_class(pynq: Any, vlnv: str) -> type:
    """A DefaultIP subclass bound to ``vlnv``; pynq picks it when the overlay is parsed."""
    if vlnv not in _DRIVERS:

        class TernpynqKernel(pynq.DefaultIP):
            bindto = [vlnv]

            def __init__(self, description: dict) -> None:
                super().__init__(description=description)

        _DRIVERS[vlnv] = TernpynqKernel
    return _DRIVERS[vlnv]


class PynqDevice(Device):
    """The overlay on the board: ``bitstream`` (.bit beside its .hwh) holding the kernel whose
    VLNV and registers ``regmap`` gives."""

    def __init__(self, bitstream: Path, regmap: RegisterMap) -> None:
        super().__init__(regmap)
        vlnv = regmap.vlnv
        bitstream = Path(bitstream)
        for path in (bitstream, bitstream.with_suffix(".hwh")):
            if not path.is_file():
                raise BitstreamError(f"no {path.name} at {path}; see bitstreams/README.md")
        pynq = importlib.import_module("pynq")
        self._pynq = pynq
        _driver_class(pynq, vlnv)
        self._overlay = pynq.Overlay(str(bitstream))
        names = [n for n, d in self._overlay.ip_dict.items() if d.get("type") == vlnv]
        if len(names) != 1:
            raise BitstreamError(
                f"{bitstream.name} holds {len(names)} IP of type {vlnv}; expected exactly one"
            )
        self.ip_name = names[0]
        self._ip = getattr(self._overlay, self.ip_name)
        self._buffers: list[PynqBufferAdapter] = []

    def _read32(self, offset: int) -> int:
        return int(self._ip.read(offset))

    def _write32(self, offset: int, value: int) -> None:
        self._ip.write(offset, int(value))

    def allocate(self, nbytes: int) -> PynqBufferAdapter:
        buffer = PynqBufferAdapter(self._pynq.allocate(shape=(int(nbytes),), dtype=np.uint8))
        buffer.array[:] = 0
        # The zeros sit in dirty cache lines; unflushed, they could be evicted later over what
        # the kernel wrote to this buffer.
        buffer.flush()
        self._buffers.append(buffer)
        return buffer

    def reset(self) -> None:
        # An ap_ctrl_hs kernel has no soft reset; reprogramming the PL returns it to idle.
        # The DDR buffers are untouched, so the driver's loaded weights stay valid.
        self._overlay.download()
        self._ip = getattr(self._overlay, self.ip_name)

    def close(self) -> None:
        for buffer in self._buffers:
            buffer.free()
        self._buffers.clear()
