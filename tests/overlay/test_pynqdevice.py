"""PynqDevice against a recording stand-in for the ``pynq`` package (``fake_pynq``) whose
memory is a write-back cache over DDR, so a missing flush or invalidate fails here."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from fake_pynq import make_pynq as fake_pynq
from fake_pynq import write_bitstream_folder

from ternpynq.overlay.backends import BOARD_ENV, detect_board, pynq_available
from ternpynq.overlay.csim_build import load_kernel
from ternpynq.overlay.device import DeviceError, DeviceTimeout
from ternpynq.overlay.paths import BITSTREAM_ENV
from ternpynq.overlay.pynqdevice import (
    BitstreamError,
    PynqBufferAdapter,
    PynqDevice,
    check_manifest,
    read_manifest,
)
from ternpynq.overlay.regmap import load_regmap
from ternpynq.runtime import backends
from ternpynq.runtime.network import Network
from ternpynq.runtime.synthetic import random_bundle

RM = load_regmap()
VLNV = RM.vlnv
IN, COUNT, CTRL = RM["in_addr"].offset, RM["in_c"].offset, RM["CTRL"].offset
STATUS = RM["status"].offset


def make_pynq(vlnv: str, on_start=None):
    return fake_pynq(vlnv, RM, on_start)


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
    return write_bitstream_folder("pynq-z2", source_revision="test")


def test_pynq_backend_is_bit_exact_and_chosen_by_auto(monkeypatch, board_folder):
    pynq = make_pynq(VLNV, on_start=load_kernel("pynq-z2").start)
    install(monkeypatch, pynq)
    assert pynq_available() and backends.resolve("auto") == "pynq"
    bundle = random_bundle("tiny", seed=4)
    x = np.random.default_rng(0).integers(-128, 128, (5, 1, 8, 8)).astype(np.int8)
    backend = backends.create("auto", bundle, max_batch=2)
    assert backend.name == "pynq" and backend.board == "pynq-z2"
    assert np.array_equal(backend.run(x), Network(bundle).run(x))
    # exact only because every buffer the kernel reads was flushed after the CPU wrote it and
    # every output was invalidated before the CPU read it (fake_pynq's write-back cache)
    allocated = sum(c[0] == "allocate" for c in pynq.calls)
    assert sum(c[0] == "invalidate" for c in pynq.calls) == 3  # the output of each batch
    backend.close()
    assert sum(c[0] == "freebuffer" for c in pynq.calls) == allocated


# -- cache discipline: the stand-in's cache behaves as a write-back cache, and the driver
# -- keeps to it; dropping any one flush or invalidate breaks the result
def test_the_stand_in_cache_is_write_back(monkeypatch, bitstream):
    pynq = make_pynq(VLNV)
    memory, base = pynq.memory, pynq.ddr_base
    buf = pynq.allocate(shape=(256,), dtype=np.uint8)
    ddr = memory.ddr[buf.device_address - base :][:256]
    buf[:] = 7
    assert not np.all(ddr == 7)  # the CPU's write sits in the cache
    buf.flush()
    assert np.all(ddr == 7)
    ddr[:] = 9  # the kernel writes DDR
    assert np.all(buf == 7)  # the CPU still reads its stale lines
    buf.invalidate()
    assert np.all(buf == 9)
    buf[100] = 1  # one dirty line, evicted over what the kernel writes next
    ddr[:] = 5
    memory.evict_all()
    line = 100 // 32 * 32
    assert np.all(ddr[line : line + 32] == np.where(np.arange(line, line + 32) == 100, 1, 9))
    assert np.all(ddr[:line] == 5) and np.all(ddr[line + 32 :] == 5)
    np.add(buf, 1, out=buf)  # an in-place ufunc bypasses __setitem__ but still dirties lines
    buf.flush()
    assert np.array_equal(ddr, np.asarray(buf))


def test_fresh_buffers_are_zero_and_clean(monkeypatch, bitstream):
    """allocate zeroes through the cache; without its flush the zeros would be evicted later,
    over what the kernel wrote (the review's finding)."""
    pynq = make_pynq(VLNV)
    install(monkeypatch, pynq)
    buf = PynqDevice(bitstream, RM).allocate(1000)
    ddr = pynq.memory.ddr[buf.device_address - pynq.ddr_base :][:1000]
    assert np.all(buf.array == 0) and np.all(ddr == 0)
    assert not pynq.memory._dirty_lines(0, pynq.memory.ddr.size).size


def _fake_board_run(monkeypatch) -> tuple[np.ndarray | None, np.ndarray]:
    """The pynq backend's output on a random network (None if the kernel refused the
    data it saw), and emu's."""
    install(monkeypatch, make_pynq(VLNV, on_start=load_kernel("pynq-z2").start))
    bundle = random_bundle("tiny", seed=4)
    x = np.random.default_rng(0).integers(-128, 128, (5, 1, 8, 8)).astype(np.int8)
    backend = backends.create("pynq", bundle, max_batch=2)
    try:
        got = backend.run(x)
    except DeviceError:
        got = None
    finally:
        backend.close()
    return got, Network(bundle).run(x)


def test_the_fake_board_run_is_exact(monkeypatch, board_folder):
    got, want = _fake_board_run(monkeypatch)
    assert got is not None and np.array_equal(got, want)


@pytest.mark.parametrize("dropped", ["flush", "invalidate"])
def test_a_missing_flush_or_invalidate_is_caught(monkeypatch, board_folder, dropped):
    monkeypatch.setattr(PynqBufferAdapter, dropped, lambda self: None)
    got, want = _fake_board_run(monkeypatch)
    assert got is None or not np.array_equal(got, want)


def test_zeroing_without_a_flush_is_caught(monkeypatch, board_folder):
    """The allocate the review found: zeroed through the cache and never flushed."""

    def allocate_unflushed(self, nbytes):
        buffer = PynqBufferAdapter(self._pynq.allocate(shape=(int(nbytes),), dtype=np.uint8))
        buffer.array[:] = 0
        self._buffers.append(buffer)
        return buffer

    monkeypatch.setattr(PynqDevice, "allocate", allocate_unflushed)
    got, want = _fake_board_run(monkeypatch)
    assert got is None or not np.array_equal(got, want)


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
