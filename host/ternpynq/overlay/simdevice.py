"""SimulatedDevice: the overlay's register file and DDR, with the C-simulation kernel behind it.

Off-board, this stands where the FPGA would: the driver writes descriptor registers by name,
allocates buffers with device addresses in one DDR byte array, and writing ap_start runs the
kernel (the overlay's HLS sources compiled with g++, ``csim_build``) on a worker thread, which
the kernel's ctypes call leaves free to run while the host polls. When
it returns, its status goes to the ``status`` register and ap_done is raised, as the HLS
block does. The host's view of a buffer is a separate copy that only ``flush``/``invalidate``
synchronise, as on a Zynq without coherent ports, so a driver that forgets one fails here
rather than on the board.

Fault injection for tests: ``inject("hang")`` makes the next start never finish;
``inject("bad_address")`` points the next start's ``in_addr`` outside DDR.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import numpy as np

from ternpynq.overlay.device import Buffer, Device, DeviceError
from ternpynq.overlay.regmap import RegisterMap

DDR_BASE = 0x1000_0000  # where a PYNQ image's CMA region typically starts; any value works
DEFAULT_DDR_BYTES = 256 << 20
ALIGN = 64  # one 512-bit burst beat, so buffers never share a beat
FAULTS = ("hang", "bad_address")

# kernel(regs, ddr, ddr_base) -> (status, cycles), the csim ABI (CsimKernel.start): regs is the
# (words,) uint32 register file, ddr the whole DDR array, written in place.
Kernel = Callable[[np.ndarray, np.ndarray, int], tuple[int, int]]


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
            self._device._allocs.pop(self._start, None)
            self.freed = True


class SimulatedDevice(Device):
    """Register file + DDR model running ``kernel`` on each ap_start."""

    def __init__(
        self,
        regmap: RegisterMap,
        kernel: Kernel,
        ddr_bytes: int = DEFAULT_DDR_BYTES,
        ddr_base: int = DDR_BASE,
    ) -> None:
        super().__init__(regmap)
        self.kernel = kernel
        self.ddr_base = ddr_base
        self.ddr = np.zeros(ddr_bytes, np.uint8)  # the OS maps pages lazily
        self._words = np.zeros(regmap.words, np.uint32)
        self._ctrl_word = self.register(self.control).offset // 4
        self._allocs: dict[int, int] = {}  # DDR start -> size
        self._lock = threading.Lock()
        self._generation = 0  # a reset orphans a running start; its late finish is ignored
        self._busy = self._done = False
        self._error: BaseException | None = None
        self._faults: list[str] = []
        self._jobs: queue.SimpleQueue | None = None  # the worker thread's queue, started lazily
        self.starts = 0
        self.cycles: list[int] = []  # modelled cycles of every completed start, in order

    # -- register file --------------------------------------------------------------------
    def _read32(self, offset: int) -> int:
        word = offset // 4
        if word != self._ctrl_word:
            return int(self._words[word])
        with self._lock:
            error, self._error = self._error, None
            value = (self.ap_start if self._busy else self.ap_idle) | (
                self.ap_done if self._done else 0
            )
            self._done = False  # clear-on-read, as the HLS control register
        if error is not None:
            raise DeviceError(f"the simulated kernel failed: {error}") from error
        return value

    def _write32(self, offset: int, value: int) -> None:
        word = offset // 4
        if word != self._ctrl_word:
            self._words[word] = value & 0xFFFFFFFF
        elif value & self.ap_start:
            self._start_kernel()

    # -- kernel runs ----------------------------------------------------------------------
    def inject(self, fault: str) -> None:
        """Arm a fault for the next start: ``"hang"`` or ``"bad_address"``."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose one of {FAULTS}")
        self._faults.append(fault)

    def _start_kernel(self) -> None:
        with self._lock:
            if self._busy:
                raise DeviceError("ap_start written while the kernel is still running")
            self._busy, self._done, self._error = True, False, None
            generation = self._generation
        self.starts += 1
        regs = self._words.copy()  # the kernel latches its arguments at start
        fault = self._faults.pop(0) if self._faults else None
        if fault == "hang":
            return  # never raises ap_done; only reset() brings the device back
        if fault == "bad_address":
            reg = self.register("in_addr")
            beyond = self.ddr_base + self.ddr.size + 0x1000
            regs[reg.offset // 4], regs[reg.offset // 4 + 1] = beyond & 0xFFFFFFFF, beyond >> 32
        if self._jobs is None:
            self._jobs = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(self._jobs,), daemon=True).start()
        self._jobs.put((regs, generation))

    def _serve(self, jobs: queue.SimpleQueue) -> None:
        while (job := jobs.get()) is not None:
            self._run(*job)

    def _run(self, regs: np.ndarray, generation: int) -> None:
        status, cycles, error = 0, 0, None
        try:
            status, cycles = self.kernel(regs, self.ddr, self.ddr_base)
        except Exception as exc:  # reported to the host through the next control read
            error = exc
        with self._lock:
            if generation != self._generation:
                return
            self._write_status(int(status))
            self.cycles.append(int(cycles))
            self._busy, self._done, self._error = False, error is None, error

    def _write_status(self, status: int) -> None:
        self._words[self.register("status").offset // 4] = status & 0xFFFFFFFF
        if "status_ctrl" in self.registers:
            self._words[self.register("status_ctrl").offset // 4] = 1  # status_ap_vld

    def reset(self) -> None:
        """Abandon a running start and clear the registers, as reprogramming the PL does."""
        with self._lock:
            self._words[:] = 0
            self._generation += 1
            self._busy = self._done = False
            self._error = None
        if self._jobs is not None:
            # A stuck run keeps its thread; the next start gets a fresh worker.
            self._jobs.put(None)
            self._jobs = None

    def close(self) -> None:
        self.reset()
        self._allocs.clear()

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
                f"out of simulated DDR: {nbytes} bytes requested with "
                f"{self.allocated_bytes} of {self.ddr.size} in use"
            )
        self._allocs[cursor] = size
        self.ddr[cursor : cursor + size] = 0
        return SimBuffer(self, cursor, nbytes)

    @property
    def allocated_bytes(self) -> int:
        return sum(self._allocs.values())
