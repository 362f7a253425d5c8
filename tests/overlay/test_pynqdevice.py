"""PynqDevice against a recording stand-in for the ``pynq`` package (pynq is not installable
off-board). The stand-in covers only the documented calls PynqDevice makes: Overlay (ip_dict,
attribute access, download), DefaultIP with bindto, allocate buffers.

Every call is appended to ``calls`` so a test can assert what the device did. Buffers are carved
from one DDR array; the IP behind the register block is a kernel with the csim ABI,
``on_start(regs u32, ddr, ddr_base) -> (status, cycles)``, so the real csim kernel can stand in
for the FPGA fabric and the whole pynq backend runs here.
"""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types

import numpy as np
import pytest

from ternpynq.overlay.backends import BOARD_ENV, detect_board, pynq_available
from ternpynq.overlay.boards import load_board
from ternpynq.overlay.csim_build import load_kernel
from ternpynq.overlay.device import DeviceTimeout
from ternpynq.overlay.generate import manifest_expectation
from ternpynq.overlay.paths import BITSTREAM_ENV, bitstream_paths
from ternpynq.overlay.pynqdevice import BitstreamError, PynqDevice, check_manifest, read_manifest
from ternpynq.overlay.regmap import load_regmap
from ternpynq.runtime import backends
from ternpynq.runtime.network import Network
from ternpynq.runtime.synthetic import random_bundle

RM = load_regmap()
VLNV = RM.vlnv
IN, COUNT, CTRL = RM["in_addr"].offset, RM["in_c"].offset, RM["CTRL"].offset
STATUS = RM["status"].offset
DDR_BASE = 0x1800_0000
START, DONE, IDLE = (1 << RM.ctrl_bits[k] for k in ("ap_start", "ap_done", "ap_idle"))


def make_pynq(vlnv: str, on_start=None, ip_name: str = "ternpynq_0", ddr_bytes: int = 16 << 20):
    calls: list[tuple] = []
    drivers: list[type] = []
    ddr = np.zeros(ddr_bytes, np.uint8)
    top = [0]  # bump allocator over ddr

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
            if offset == CTRL:
                value = IDLE | (DONE if self.done else 0)
                self.done = False
                return value
            return self.words.get(offset, 0)

        def write(self, offset, value):
            calls.append(("write", offset, value))
            if offset == CTRL and value & START:
                if on_start is not None:
                    regs = np.zeros(RM.words, np.uint32)
                    for word_offset, word in self.words.items():
                        regs[word_offset // 4] = word
                    status, _ = on_start(regs, ddr, DDR_BASE)
                    self.words[STATUS] = status
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
        def flush(self):
            calls.append(("flush", self.device_address))

        def invalidate(self):
            calls.append(("invalidate", self.device_address))

        def freebuffer(self):
            calls.append(("freebuffer", self.device_address))

    def allocate(shape, dtype):
        calls.append(("allocate", shape, np.dtype(dtype).str))
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        start, top[0] = top[0], top[0] + -(-nbytes // 4096) * 4096
        buf = ddr[start : start + nbytes].view(dtype).reshape(shape).view(PynqBuffer)
        buf.device_address = DDR_BASE + start
        return buf

    module = types.ModuleType("pynq")
    module.__spec__ = importlib.machinery.ModuleSpec("pynq", None)  # for find_spec probes
    module.Overlay, module.DefaultIP, module.allocate = Overlay, DefaultIP, allocate
    module.calls, module.drivers, module.ddr = calls, drivers, ddr
    return module


@pytest.fixture
def bitstream(tmp_path):
    bit = tmp_path / "ternpynq.bit"
    bit.write_bytes(b"not a real bitstream; the stand-in never parses it")
    bit.with_suffix(".hwh").write_text("<hwh/>")
    return bit


def install(monkeypatch, module):
    monkeypatch.setitem(sys.modules, "pynq", module)
    import ternpynq.overlay.pynqdevice as pd

    monkeypatch.setattr(pd, "_DRIVERS", {})


def test_device_binds_by_vlnv_and_speaks_documented_calls(monkeypatch, bitstream):
    seen = []

    def on_start(regs, ddr, base):
        address = int(regs[IN // 4]) | int(regs[IN // 4 + 1]) << 32
        seen.append(ddr[address - base :][: regs[COUNT // 4]].copy())
        return 0, 1

    pynq = make_pynq(VLNV, on_start)
    install(monkeypatch, pynq)
    dev = PynqDevice(bitstream, RM)
    assert pynq.calls[0] == ("Overlay", str(bitstream))
    assert type(dev._ip).bindto == [VLNV]  # our DefaultIP subclass, picked by pynq
    buf = dev.allocate(16)
    buf.write(np.arange(16, dtype=np.uint8))
    buf.flush()
    dev.write("in_addr", buf.device_address)
    dev.write("in_c", 16)
    dev.start()
    dev.wait_done(1.0)
    np.testing.assert_array_equal(seen[0], np.arange(16, dtype=np.uint8))
    assert ("allocate", (16,), "|u1") in pynq.calls
    assert ("flush", buf.device_address) in pynq.calls
    assert ("write", IN + 4, buf.device_address >> 32) in pynq.calls
    dev.close()
    assert ("freebuffer", buf.device_address) in pynq.calls
    dev.close()  # idempotent: nothing freed twice
    assert pynq.calls.count(("freebuffer", buf.device_address)) == 1


def test_timeout_reprograms_the_overlay(monkeypatch, bitstream):
    pynq = make_pynq(VLNV, on_start=None)  # the IP never raises ap_done
    install(monkeypatch, pynq)
    dev = PynqDevice(bitstream, RM)
    dev.start()
    with pytest.raises(DeviceTimeout, match="did not finish"):
        dev.wait_done(0.05)
    assert ("download",) in pynq.calls
    assert type(dev._ip).bindto == [VLNV]  # a fresh driver after reprogramming


def test_missing_bitstream_is_a_clear_error_without_importing_pynq(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynq", None)  # importing pynq would raise
    with pytest.raises(BitstreamError, match="no ternpynq.bit at .*bitstreams/README.md"):
        PynqDevice(tmp_path / "ternpynq.bit", RM)


def test_overlay_without_our_ip_is_refused(monkeypatch, bitstream):
    install(monkeypatch, make_pynq("someone:else:ip:1.0"))
    with pytest.raises(BitstreamError, match="holds 0 IP of type"):
        PynqDevice(bitstream, RM)


def test_manifest_mismatch_names_every_field(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"board": "pynq-z2", "regmap_hash": "abc"}))
    manifest = read_manifest(path)
    check_manifest(manifest, {"board": "pynq-z2", "regmap_hash": "abc"}, str(path))
    with pytest.raises(
        BitstreamError,
        match="board is 'pynq-z2', the runtime expects 'zcu104'.*"
        "regmap_hash is 'abc', the runtime expects 'def'",
    ):
        check_manifest(manifest, {"board": "zcu104", "regmap_hash": "def"}, str(path))
    with pytest.raises(BitstreamError, match="no bitstream manifest"):
        read_manifest(tmp_path / "missing.json")


# -- the pynq backend end to end: driver + PynqDevice + stand-in pynq + csim as the fabric ---
@pytest.fixture
def board_folder(tmp_path, monkeypatch):
    """A bitstreams/ tree for pynq-z2 with a manifest this runtime accepts."""
    monkeypatch.setenv(BITSTREAM_ENV, str(tmp_path))
    monkeypatch.setenv(BOARD_ENV, "pynq-z2")
    paths = bitstream_paths("pynq-z2")
    paths["bit"].parent.mkdir(parents=True)
    paths["bit"].write_bytes(b"stand-in")
    paths["hwh"].write_text("<hwh/>")
    manifest = dict(manifest_expectation(load_board("pynq-z2")), source_revision="test")
    paths["manifest"].write_text(json.dumps(manifest))
    return paths


def test_pynq_backend_is_bit_exact_and_chosen_by_auto(monkeypatch, board_folder):
    pynq = make_pynq(VLNV, on_start=load_kernel("pynq-z2").start)
    install(monkeypatch, pynq)
    assert pynq_available() and backends.resolve("auto") == "pynq"
    bundle = random_bundle("tiny", seed=4)
    x = np.random.default_rng(0).integers(-128, 128, (5, 1, 8, 8)).astype(np.int8)
    backend = backends.create("auto", bundle, max_batch=2)
    assert backend.name == "pynq" and backend.board == "pynq-z2"
    assert np.array_equal(backend.run(x), Network(bundle).run(x))
    flushed = [c for c in pynq.calls if c[0] == "flush"]
    assert len(flushed) == 1 + 3  # the weights once, then the input of each batch (2, 2, 1)
    assert sum(c[0] == "invalidate" for c in pynq.calls) == 3  # the output of each batch
    backend.close()
    assert sum(c[0] == "freebuffer" for c in pynq.calls) == 1 + len(backend.driver.slot_bytes)


def test_pynq_backend_refuses_a_mismatched_manifest(monkeypatch, board_folder):
    install(monkeypatch, make_pynq(VLNV))
    manifest = json.loads(board_folder["manifest"].read_text())
    board_folder["manifest"].write_text(json.dumps(dict(manifest, g=16, regmap_sha256="0" * 64)))
    with pytest.raises(BitstreamError, match="g is 16, the runtime expects 64; regmap_sha256"):
        backends.create("pynq", random_bundle("tiny"))


def test_pynq_backend_without_a_bitstream_or_board(monkeypatch, board_folder):
    install(monkeypatch, make_pynq(VLNV))
    board_folder["manifest"].unlink()
    assert not pynq_available() and backends.resolve("auto") != "pynq"
    with pytest.raises(BitstreamError, match="no bitstream manifest at .*ternpynq.json"):
        backends.create("pynq", random_bundle("tiny"))
    monkeypatch.setenv(BOARD_ENV, "not-a-board")
    monkeypatch.delenv("BOARD", raising=False)
    with pytest.raises(BitstreamError, match="cannot tell which board this is"):
        backends.create("pynq", random_bundle("tiny"))


def test_board_detection_and_the_auto_probe_never_import_pynq(monkeypatch, board_folder):
    monkeypatch.delitem(sys.modules, "pynq", raising=False)
    monkeypatch.delenv(BOARD_ENV)
    monkeypatch.setenv("BOARD", "Pynq-Z2")  # what a PYNQ image exports
    assert detect_board() == "pynq-z2"
    monkeypatch.setenv("BOARD", "Unknown")
    assert detect_board() is None
    monkeypatch.setenv("BOARD", "Pynq-Z2")
    assert pynq_available() is backends.module_available("pynq")  # False here: not installed
    assert "pynq" not in sys.modules


@pytest.mark.board
def test_selftest_on_the_board():
    """On a PYNQ board with the bitstream built: ``pytest -m board`` (same as ``ternpynq
    selftest --backend pynq``); never run here, where there is no board."""
    import ternpynq
    from ternpynq.runtime.selftest import selftest

    assert selftest("pynq", ternpynq.DEFAULT_MODEL, ternpynq.SAMPLES_DIR, {})
