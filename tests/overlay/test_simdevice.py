"""SimulatedDevice with a small fake kernel: registers, DDR, coherence and injected faults."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ternpynq.overlay.device import DeviceError, DeviceTimeout
from ternpynq.overlay.regmap import load_regmap
from ternpynq.overlay.simdevice import SimulatedDevice

RM = load_regmap()
BAD_ADDRESS = RM.enums["status"]["bad_address"]


def field(regs, name):
    """A register's value from the (words,) uint32 file the kernel receives."""
    reg = RM[name]
    value = int(regs[reg.offset // 4])
    return value | int(regs[reg.offset // 4 + 1]) << 32 if reg.width == 64 else value


def add_bias(regs, ddr, base):
    """Fake kernel: out[i] = in[i] + res_mult (int8 wraparound) for in_c bytes; 7 cycles."""
    n, src, dst = field(regs, "in_c"), field(regs, "in_addr"), field(regs, "out_addr")
    if not (base <= src and src + n <= base + ddr.size):
        return BAD_ADDRESS, 0
    out = ddr[dst - base :][:n].view(np.int8)
    out[:] = ddr[src - base :][:n].view(np.int8) + np.int8(field(regs, "res_mult") & 0xFF)
    return 0, 7


def make(kernel=add_bias, **kwargs):
    return SimulatedDevice(RM, kernel, **kwargs)


def run_once(dev, data, bias=3, timeout_s=5.0):
    src, dst = dev.allocate(data.size), dev.allocate(data.size)
    src.write(data)
    src.flush()
    dev.write("in_addr", src.device_address)
    dev.write("out_addr", dst.device_address)
    dev.write("in_c", data.size)
    dev.write("res_mult", bias)
    dev.start()
    dev.wait_done(timeout_s)
    status = dev.read("status")
    if status:
        raise DeviceError(f"status {status}")
    dst.invalidate()
    return dst.read(np.int8, data.size)


def test_kernel_runs_on_start_and_sees_registers_by_name():
    dev = make()
    data = np.arange(-5, 60, dtype=np.int8)
    np.testing.assert_array_equal(run_once(dev, data, bias=3), data + 3)
    assert dev.starts == 1 and dev.cycles == [7]


def test_registers_round_trip_with_width_and_sign():
    dev = make()
    dev.write("wgt_addr", 0x1_2345_6789)
    assert dev.read("wgt_addr") == 0x1_2345_6789
    regs = dev._words
    assert regs[RM["wgt_addr"].offset // 4 + 1] == 1  # high word after the low word
    dev.write("lo", -2)
    assert dev.read("lo") == 0xFFFF_FFFE
    with pytest.raises(ValueError, match="32-bit register hi"):
        dev.write("hi", 1 << 32)
    with pytest.raises(DeviceError, match="no register named 'NOPE'"):
        dev.read("NOPE")


def test_host_view_is_not_coherent_without_flush():
    """A driver that forgets flush() reads stale data here, as it would on the board."""
    dev = make()
    src, dst = dev.allocate(8), dev.allocate(8)
    src.write(np.full(8, 7, np.int8))  # no flush
    for name, value in (("in_addr", src.device_address), ("out_addr", dst.device_address)):
        dev.write(name, value)
    dev.write("in_c", 8)
    dev.start()
    dev.wait_done(5.0)
    assert not dst.read(np.int8, 8).any()  # not invalidated: still the host's zeros
    dst.invalidate()
    assert not dst.read(np.int8, 8).any()  # the kernel copied DDR's zeros, not the 7s


def test_allocations_are_aligned_disjoint_and_reused_after_free():
    dev = make(ddr_bytes=1 << 12)
    a, b = dev.allocate(100), dev.allocate(1)
    assert a.device_address % 64 == 0 and b.device_address >= a.device_address + 100
    a.free()
    c = dev.allocate(64)
    assert c.device_address == a.device_address
    with pytest.raises(DeviceError, match="out of simulated DDR"):
        dev.allocate(1 << 12)
    with pytest.raises(DeviceError, match="after free"):
        a.flush()


def test_hung_kernel_times_out_and_device_works_next_call():
    dev = make()
    dev.inject("hang")
    data = np.arange(16, dtype=np.int8)
    with pytest.raises(DeviceTimeout, match="did not finish within 0.2 s"):
        run_once(dev, data, timeout_s=0.2)
    np.testing.assert_array_equal(run_once(dev, data, bias=1), data + 1)


def test_bad_address_reaches_the_kernel_and_device_works_next_call():
    dev = make()
    dev.inject("bad_address")
    data = np.arange(16, dtype=np.int8)
    with pytest.raises(DeviceError, match=f"status {BAD_ADDRESS}"):
        run_once(dev, data)
    np.testing.assert_array_equal(run_once(dev, data, bias=2), data + 2)


def test_kernel_exception_is_reported_not_swallowed():
    def broken(regs, ddr, base):
        raise RuntimeError("boom")

    dev = make(kernel=broken)
    with pytest.raises(DeviceError, match="simulated kernel failed: boom"):
        run_once(dev, np.zeros(4, np.int8))


def test_slow_kernel_finishing_after_reset_does_not_raise_done():
    """A start orphaned by reset() must not complete a later wait early."""
    release = threading.Event()

    def slow(regs, ddr, base):
        release.wait(5.0)
        return 0, 1

    dev = make(kernel=slow)
    dev.start()
    with pytest.raises(DeviceTimeout):
        dev.wait_done(0.05)
    release.set()  # the orphaned run now finishes; its ap_done is discarded
    dev.kernel = add_bias
    data = np.arange(8, dtype=np.int8)
    np.testing.assert_array_equal(run_once(dev, data, bias=4), data + 4)
