"""The small interface the overlay driver speaks to (docs: DESIGN.md "Device interface").

A device is the overlay's AXI-Lite register block plus contiguous DDR buffers the kernel
reaches through its m_axi ports. ``PynqDevice`` implements it on a board, ``SimulatedDevice``
off-board; the driver code above it is the same on both. Registers are addressed by the names
of the overlay's register-map file, never by raw offsets.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

import numpy as np

from ternpynq.overlay.regmap import RegisterInfo, RegisterMap

DEFAULT_TIMEOUT_S = 10.0
SPIN_S = 2e-4  # poll without sleeping this long before backing off


class DeviceError(OSError):
    """The overlay or its simulated stand-in failed; the message says what to do.

    An OSError, as any failed I/O with a device, so the CLI reports it as one line.
    """


class DeviceTimeout(DeviceError, TimeoutError):
    """The kernel did not raise ap_done within the timeout."""


class Buffer(ABC):
    """A physically contiguous byte buffer the kernel reads or writes by ``device_address``.

    ``array`` is the host's view (uint8). Caches are not coherent with the kernel: call
    ``flush`` after the host writes and ``invalidate`` before the host reads what the kernel
    wrote.
    """

    array: np.ndarray
    device_address: int

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    def write(self, data: np.ndarray, offset: int = 0) -> None:
        """Copy ``data``'s bytes into the buffer at byte ``offset`` (host side, no flush)."""
        raw = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        if offset < 0 or offset + raw.size > self.nbytes:
            raise ValueError(
                f"{raw.size} bytes at offset {offset} overrun a {self.nbytes}-byte buffer"
            )
        self.array[offset : offset + raw.size] = raw

    def read(self, dtype: np.dtype | str, count: int, offset: int = 0) -> np.ndarray:
        """A copy of ``count`` items of ``dtype`` from byte ``offset`` (host side only)."""
        dtype = np.dtype(dtype)
        end = offset + count * dtype.itemsize
        if offset < 0 or end > self.nbytes:
            raise ValueError(
                f"reading {end - offset} bytes at {offset} overruns a {self.nbytes}-byte buffer"
            )
        return self.array[offset:end].view(dtype).copy()

    @abstractmethod
    def flush(self) -> None: ...

    @abstractmethod
    def invalidate(self) -> None: ...

    @abstractmethod
    def free(self) -> None: ...


class Device(ABC):
    """Register access by name, buffer allocation, start and wait-for-done with a timeout."""

    def __init__(self, regmap: RegisterMap, control: str = "CTRL") -> None:
        self.regmap = regmap
        self.registers = {reg.name: reg for reg in regmap}
        if control not in self.registers:
            raise DeviceError(f"register map has no control register {control!r}")
        self.control = control
        bits = regmap.ctrl_bits
        self.ap_start, self.ap_done, self.ap_idle = (
            1 << bits[k] for k in ("ap_start", "ap_done", "ap_idle")
        )

    # -- what each implementation provides ------------------------------------------------
    @abstractmethod
    def _read32(self, offset: int) -> int: ...

    @abstractmethod
    def _write32(self, offset: int, value: int) -> None: ...

    @abstractmethod
    def allocate(self, nbytes: int) -> Buffer:
        """A zeroed contiguous buffer of ``nbytes`` bytes."""

    @abstractmethod
    def reset(self) -> None:
        """Bring a kernel that missed its deadline back to idle so the next start works."""

    @abstractmethod
    def close(self) -> None:
        """Free every buffer and release the device."""

    # -- shared by every implementation ---------------------------------------------------
    def register(self, name: str) -> RegisterInfo:
        try:
            return self.registers[name]
        except KeyError:
            raise DeviceError(f"no register named {name!r} in the overlay's register map") from None

    def read(self, name: str) -> int:
        """Read a register by name; 64-bit registers are two words, low word first."""
        reg = self.register(name)
        value = self._read32(reg.offset)
        if reg.width > 32:
            value |= self._read32(reg.offset + 4) << 32
        return value

    def write(self, name: str, value: int) -> None:
        """Write a register by name; negative values are stored as two's complement."""
        reg = self.register(name)
        value = int(value)
        if not -(1 << (reg.width - 1)) <= value < (1 << reg.width):
            raise ValueError(f"{value} does not fit the {reg.width}-bit register {name}")
        value &= (1 << reg.width) - 1
        self._write32(reg.offset, value & 0xFFFFFFFF)
        if reg.width > 32:
            self._write32(reg.offset + 4, value >> 32)

    def start(self) -> None:
        """Set ap_start: the kernel runs one layer from the descriptor registers."""
        self._write32(self.register(self.control).offset, self.ap_start)

    def wait_done(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Poll ap_done until it is set; on timeout reset the kernel and raise DeviceTimeout."""
        offset = self.register(self.control).offset
        now = time.monotonic()
        deadline, spin_until = now + timeout_s, now + SPIN_S
        pause = 1e-5
        while True:
            # ap_done is clear-on-read, so one read both observes and acknowledges it.
            if self._read32(offset) & self.ap_done:
                return
            now = time.monotonic()
            if now < spin_until:
                # Small layers finish within microseconds and a timed sleep costs ~60 us, so
                # only yield (sleep(0) releases the GIL for a simulated kernel's thread).
                time.sleep(0)
                continue
            if now >= deadline:
                self.reset()
                raise DeviceTimeout(
                    f"the overlay kernel did not finish within {timeout_s:g} s; it was reset "
                    "and the device is ready for the next call"
                )
            time.sleep(pause)
            pause = min(pause * 2, 1e-3)  # back off, but keep latency under a millisecond
