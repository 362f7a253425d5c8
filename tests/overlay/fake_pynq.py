"""A recording stand-in for the ``pynq`` package (pynq is not installable off-board).

It covers only the documented calls PynqDevice makes: Overlay (ip_dict, attribute access,
download), DefaultIP with bindto, and ``allocate`` buffers with ``device_address``, ``flush``,
``invalidate`` and ``freebuffer``. Every call is appended to ``calls`` so a test can assert
what the device did. The IP behind the register block is a kernel with the csim ABI,
``on_start(regs u32, ddr, ddr_base) -> (status, cycles)``, so the real csim kernel can stand in
for the FPGA fabric and the whole pynq backend runs here.

Memory is modelled as a Zynq without coherent ports sees it, at its worst:
- ``ddr`` is what the kernel reads and writes; it starts as garbage, as CMA memory does.
- The CPU sees every buffer through a write-back cache (``cache``) that holds every line and
  never refetches on its own, so a read without ``invalidate`` returns stale data.
- A line the CPU wrote is dirty until ``flush`` cleans it, so a kernel start without a flush
  reads stale DDR. Dirty lines are evicted right after each kernel run, over what it wrote.
- ``invalidate`` discards dirty lines and reloads from DDR, as the ARM cache does.
"""

from __future__ import annotations

import importlib.machinery
import json
import types
from pathlib import Path

import numpy as np

from ternpynq.overlay.boards import load_board
from ternpynq.overlay.generate import manifest_expectation
from ternpynq.overlay.paths import bitstream_paths

LINE = 32  # the PL310 L2 cache line of the Zynq-7000 (PYNQ-Z2)
PAGE = 4096


class Memory:
    """DDR plus the CPU's write-back cache of it, with per-line dirty bits."""

    def __init__(self, nbytes: int, seed: int = 0) -> None:
        self.ddr = np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8)
        self.cache = self.ddr.copy()  # every line present and clean
        self.clean = self.ddr.copy()  # each line's value when it was last clean
        self.dirty = np.zeros(nbytes // LINE, bool)

    def _lines(self, start: int, stop: int) -> slice:
        return slice(start // LINE, -(-stop // LINE))

    def _dirty_lines(self, start: int, stop: int) -> np.ndarray:
        """Indices of dirty lines in [start, stop): marked by a write, or changed behind
        ``__setitem__``'s back (an in-place ufunc)."""
        lines = self._lines(start, stop)
        a, b = lines.start * LINE, lines.stop * LINE
        changed = (self.cache[a:b] != self.clean[a:b]).reshape(-1, LINE).any(axis=1)
        return lines.start + np.flatnonzero(self.dirty[lines] | changed)

    def write_back(self, start: int, stop: int) -> None:
        """Write the dirty lines of [start, stop) to DDR; they become clean."""
        for line in self._dirty_lines(start, stop):
            span = slice(line * LINE, (line + 1) * LINE)
            self.ddr[span] = self.cache[span]
            self.clean[span] = self.cache[span]
            self.dirty[line] = False

    def discard(self, start: int, stop: int) -> None:
        """Drop the cached lines of [start, stop), dirty or not; the next read sees DDR."""
        lines = self._lines(start, stop)
        span = slice(lines.start * LINE, lines.stop * LINE)
        self.cache[span] = self.ddr[span]
        self.clean[span] = self.ddr[span]
        self.dirty[lines] = False

    def evict_all(self) -> None:
        self.write_back(0, self.ddr.size)


def make_pynq(vlnv: str, regmap, on_start=None, ip_name="ternpynq_0", ddr_bytes=16 << 20):
    """A ``pynq`` module whose IP of type ``vlnv`` runs ``on_start`` when ap_start is written."""
    calls: list[tuple] = []
    drivers: list[type] = []
    memory = Memory(ddr_bytes)
    base = 0x1800_0000
    top = [0]  # bump allocator over DDR
    ctrl, status = regmap["CTRL"].offset, regmap["status"].offset
    start_bit, done_bit, idle_bit = (
        1 << regmap.ctrl_bits[k] for k in ("ap_start", "ap_done", "ap_idle")
    )

    class DefaultIP:
        bindto: list[str] = []

        def __init_subclass__(cls, **kwargs):
            super().__init_subclass__(**kwargs)
            drivers.append(cls)  # pynq registers DefaultIP subclasses by their bindto

        def __init__(self, description):
            self.description = description
            self.words: dict[int, int] = {}
            self.done = False

        def read(self, offset):
            calls.append(("read", offset))
            if offset == ctrl:
                value = idle_bit | (done_bit if self.done else 0)
                self.done = False
                return value
            return self.words.get(offset, 0)

        def write(self, offset, value):
            calls.append(("write", offset, value))
            if offset == ctrl and value & start_bit:
                if on_start is not None:
                    regs = np.zeros(regmap.words, np.uint32)
                    for word_offset, word in self.words.items():
                        regs[word_offset // 4] = word
                    result, _ = on_start(regs, memory.ddr, base)
                    memory.evict_all()  # the worst moment for a dirty line to leave the cache
                    self.words[status] = result
                    self.done = True
                return
            self.words[offset] = value

    class Overlay:
        def __init__(self, path):
            calls.append(("Overlay", path))
            self.ip_dict = {ip_name: {"type": vlnv, "phys_addr": 0x4000_0000}}
            self._ips = {}

        def __getattr__(self, name):
            if name not in self.ip_dict:
                raise AttributeError(name)
            if name not in self._ips:
                bound = [d for d in drivers if self.ip_dict[name]["type"] in d.bindto]
                self._ips[name] = (bound[-1] if bound else DefaultIP)(self.ip_dict[name])
            return self._ips[name]

        def download(self):
            calls.append(("download",))
            self._ips.clear()

    class PynqBuffer(np.ndarray):
        """The CPU's view of a buffer: an array over ``memory.cache``."""

        def _span(self) -> tuple[int, int]:
            start = self.device_address - base
            return start, start + self.nbytes

        def __setitem__(self, key, value):
            super().__setitem__(key, value)
            touched = np.zeros(self.shape, bool)
            touched[key] = True
            offsets = np.flatnonzero(touched.reshape(-1)) * self.itemsize
            # a slice of a buffer has no address; Memory's value check still sees its writes
            if offsets.size and hasattr(self, "device_address"):
                first, last = self._span()[0] + offsets[[0, -1]]
                memory.dirty[first // LINE : last // LINE + 1] = True

        def flush(self):
            calls.append(("flush", self.device_address))
            memory.write_back(*self._span())

        def invalidate(self):
            calls.append(("invalidate", self.device_address))
            memory.discard(*self._span())

        def freebuffer(self):
            calls.append(("freebuffer", self.device_address))

    def allocate(shape, dtype):
        calls.append(("allocate", shape, np.dtype(dtype).str))
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        start, top[0] = top[0], top[0] + -(-nbytes // PAGE) * PAGE
        view = memory.cache[start : start + nbytes].view(dtype).reshape(shape)
        buf = view.view(PynqBuffer)
        buf.device_address = base + start
        return buf

    module = types.ModuleType("pynq")
    module.__spec__ = importlib.machinery.ModuleSpec("pynq", None)  # for find_spec probes
    module.Overlay, module.DefaultIP, module.allocate = Overlay, DefaultIP, allocate
    module.calls, module.drivers, module.memory, module.ddr_base = calls, drivers, memory, base
    return module


def write_bitstream_folder(board: str, **manifest_extra) -> dict[str, Path]:
    """A stand-in bitstreams/<board>/ (under $TERNPYNQ_BITSTREAMS) whose manifest this runtime
    accepts, plus ``manifest_extra``; returns bitstream_paths(board)."""
    paths = bitstream_paths(board)
    paths["bit"].parent.mkdir(parents=True)
    paths["bit"].write_bytes(b"stand-in; never parsed")
    paths["hwh"].write_text("<hwh/>")
    manifest = dict(manifest_expectation(load_board(board)), **manifest_extra)
    paths["manifest"].write_text(json.dumps(manifest))
    return paths
