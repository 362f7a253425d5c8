"""PynqDevice against a recording stand-in for the ``pynq`` package (pynq is not installable
off-board). The stand-in covers only the documented calls PynqDevice makes: Overlay (ip_dict,
attribute access, download), DefaultIP with bindto, allocate buffers.

Every call is appended to ``calls`` so a test can assert what the device did. The IP behind the
register block is a Python callable ``on_start(regs, memory)``, where ``memory`` maps a device
address to the buffer that holds it.
"""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from ternpynq.runtime.device import DeviceTimeout
from ternpynq.runtime.pynqdevice import BitstreamError, PynqDevice, check_manifest, read_manifest
from ternpynq.runtime.regmap import load_regmap

RM = load_regmap()
VLNV = RM.vlnv
IN, COUNT, CTRL = RM["in_addr"].offset, RM["in_c"].offset, RM["CTRL"].offset
START, DONE, IDLE = (1 << RM.ctrl_bits[k] for k in ("ap_start", "ap_done", "ap_idle"))


def make_pynq(vlnv: str, on_start=None, ip_name: str = "ternpynq_0"):
    calls: list[tuple] = []
    drivers: list[type] = []
    buffers: list[np.ndarray] = []

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
                    on_start(self.words, {int(b.device_address): b for b in buffers})
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
        buf = np.zeros(shape, dtype).view(PynqBuffer)
        buf.device_address = 0x1800_0000 + 0x10_0000 * len(buffers)
        buffers.append(buf)
        return buf

    module = types.ModuleType("pynq")
    module.Overlay, module.DefaultIP, module.allocate = Overlay, DefaultIP, allocate
    module.calls, module.drivers, module.buffers = calls, drivers, buffers
    return module


@pytest.fixture
def bitstream(tmp_path):
    bit = tmp_path / "ternpynq.bit"
    bit.write_bytes(b"not a real bitstream; the stand-in never parses it")
    bit.with_suffix(".hwh").write_text("<hwh/>")
    return bit


def install(monkeypatch, module):
    monkeypatch.setitem(sys.modules, "pynq", module)
    import ternpynq.runtime.pynqdevice as pd

    monkeypatch.setattr(pd, "_DRIVERS", {})


def test_device_binds_by_vlnv_and_speaks_documented_calls(monkeypatch, bitstream):
    seen = []

    def on_start(words, memory):
        address = words[IN] | words[IN + 4] << 32
        seen.append(memory[address][: words[COUNT]].copy())

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
