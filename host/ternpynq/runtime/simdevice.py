"""SimulatedDevice: the overlay's register file and DDR, with the C-simulation kernel behind it.

Off-board, this stands where the FPGA would: the driver writes descriptor registers by name,
allocates buffers with device addresses in one DDR byte array, and writing ap_start runs the
kernel (the overlay's HLS sources compiled with g++, see ``csim_build``) on a worker thread,
which raises ap_done when it returns. The host's view of a buffer is a separate copy that only
``flush``/``invalidate`` synchronise, as on a Zynq without coherent ports, so a driver that
forgets one fails here rather than on the board.

Fault injection for tests: ``inject("hang")`` makes the next start never finish;
``inject("bad_address")`` makes the next start's first address register point outside DDR,
which the device reports as a bus error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from ternpynq.runtime.device import (
    AP_DONE,
    AP_IDLE,
    AP_START,
    Buffer,
    Device,
    DeviceError,
    Register,
)

DDR_BASE = 0x1000_0000  # where a PYNQ image's CMA region typically starts; any value works
DEFAULT_DDR_BYTES = 256 << 20
ALIGN = 64  # one m_axi burst beat at 512 bits, so buffers never share a beat

# kernel(regs, ddr, ddr_base): regs maps register name -> value; ddr is the whole DDR array.
Kernel = Callable[[Mapping[str, int], np.ndarray, int], None]


class BusError(DeviceError):
    """The kernel was started with an address outside the simulated DDR."""


class SimBuffer(Buffer):
    """A host-side copy of one DDR range; flush/invalidate copy between the two."""

    def __init__(self, device: SimulatedDevice, start: int, nbytes: int) -> None:
        self._device = device
        self._start = start  # byte index into the DDR array
        self.device_address = device.ddr_base + start
        self.array = np.zeros(nbytes, np.uint8)
        self.freed = False

    def _ddr(self) -> np.ndarray:
        if self.freed:
            raise DeviceError("buffer used after free")
        return self._device.ddr[self._start : self._start + self.nbytes]

    def flush(self) -> None:
        self._ddr()[:] = self.array

    def invalidate(self) -> None:
        self.array[:] = self._ddr()

    def free(self) -> None:
        if not self.freed:
            self._device._release(self._start)
            self.freed = True


class SimulatedDevice(Device):
    """Register file + DDR model running ``kernel`` on each ap_start.

    ``address_registers`` names the registers that hold DDR addresses; each is checked against
    DDR before the kernel runs (a real AXI interconnect would answer DECERR).
    """

    def __init__(
        self,
        registers: Mapping[str, Register],
        kernel: Kernel,
        address_registers: Iterable[str] = (),
        control: str = "CTRL",
        ddr_bytes: int = DEFAULT_DDR_BYTES,
        ddr_base: int = DDR_BASE,
    ) -> None:
        super().__init__(registers, control)
        self.kernel = kernel
        self.address_registers = list(address_registers)
        self.ddr_base = ddr_base
        self.ddr = np.zeros(ddr_bytes, np.uint8)  # pages are touched lazily by the OS
        self._words: dict[int, int] = {}
        self._allocs: dict[int, int] = {}  # start -> size, kept sorted by insertion below
        self._lock = threading.Lock()
        self._generation = 0  # a reset orphans a running start; its late finish is ignored
        self._busy = False
        self._done = False
        self._error: BaseException | None = None
        self._faults: list[str] = []
        self.starts = 0

    # -- register file --------------------------------------------------------------------
    def _read32(self, offset: int) -> int:
        if offset == self.register(self.control).offset:
            with self._lock:
                error, self._error = self._error, None
                if isinstance(error, DeviceError):
                    raise error
                if error is not None:
                    raise DeviceError(f"the simulated kernel failed: {error}") from error
                value = (AP_START if self._busy else AP_IDLE) | (AP_DONE if self._done else 0)
                self._done = False  # clear-on-read, as the HLS control register
                return value
        return self._words.get(offset, 0)

    def _write32(self, offset: int, value: int) -> None:
        if offset == self.register(self.control).offset:
            if value & AP_START:
                self._start_kernel()
            return
        self._words[offset] = value & 0xFFFFFFFF

    def values(self) -> dict[str, int]:
        """Every register's current value by name (what the kernel sees)."""
        return {name: self.read(name) for name in self.registers if name != self.control}

    # -- kernel runs ----------------------------------------------------------------------
    def inject(self, fault: str) -> None:
        """Arm a fault for the next start: ``"hang"`` or ``"bad_address"``."""
        if fault not in ("hang", "bad_address"):
            raise ValueError(f"unknown fault {fault!r}")
        self._faults.append(fault)

    def _start_kernel(self) -> None:
        with self._lock:
            if self._busy:
                raise DeviceError("ap_start written while the kernel is still running")
            self._busy, self._done, self._error = True, False, None
            generation = self._generation
        self.starts += 1
        regs = self.values()
        fault = self._faults.pop(0) if self._faults else None
        if fault == "bad_address" and self.address_registers:
            regs[self.address_registers[0]] = self.ddr_base + self.ddr.size + 0x1000
        if fault == "hang":
            return  # never raises ap_done; only reset() brings the device back
        worker = threading.Thread(target=self._run, args=(regs, generation), daemon=True)
        worker.start()

    def _run(self, regs: dict[str, int], generation: int) -> None:
        error: BaseException | None = None
        try:
            self._check_addresses(regs)
            self.kernel(regs, self.ddr, self.ddr_base)
        except BaseException as exc:  # reported to the host through the control register
            error = exc
        with self._lock:
            if generation != self._generation:
                return
            self._busy, self._done, self._error = False, error is None, error

    def _check_addresses(self, regs: Mapping[str, int]) -> None:
        end = self.ddr_base + self.ddr.size
        for name in self.address_registers:
            address = regs[name]
            # address 0 means "not used by this layer" (e.g. no residual input)
            if address and not self.ddr_base <= address < end:
                raise BusError(
                    f"bus error: register {name} = {address:#x} is outside DDR "
                    f"[{self.ddr_base:#x}, {end:#x})"
                )

    def reset(self) -> None:
        with self._lock:
            self._generation += 1
            self._busy, self._done, self._error = False, False, None

    # -- DDR allocation -------------------------------------------------------------------
    def allocate(self, nbytes: int) -> SimBuffer:
        """First-fit allocation in DDR, aligned to ``ALIGN`` bytes."""
        nbytes = int(nbytes)
        if nbytes <= 0:
            raise ValueError(f"cannot allocate {nbytes} bytes")
        size = -(-nbytes // ALIGN) * ALIGN
        cursor = 0
        for start in sorted(self._allocs):
            if start - cursor >= size:
                break
            cursor = start + self._allocs[start]
        if cursor + size > self.ddr.size:
            raise DeviceError(
                f"out of simulated DDR: {nbytes} bytes requested, {self.ddr.size} bytes in all"
            )
        self._allocs[cursor] = size
        self.ddr[cursor : cursor + size] = 0
        return SimBuffer(self, cursor, nbytes)

    def close(self) -> None:
        self.reset()
        self._allocs.clear()

    def _release(self, start: int) -> None:
        self._allocs.pop(start, None)

    @property
    def allocated_bytes(self) -> int:
        return sum(self._allocs.values())
