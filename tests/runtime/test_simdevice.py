"""SimulatedDevice with a small fake kernel: registers, DDR, coherence and injected faults."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from ternpynq.runtime.device import DeviceError, DeviceTimeout, Register
from ternpynq.runtime.simdevice import BusError, SimulatedDevice

REGISTERS = {
    "CTRL": Register("CTRL", 0x00),
    "SRC": Register("SRC", 0x10, 64),
    "DST": Register("DST", 0x1C, 64),
    "COUNT": Register("COUNT", 0x28),
    "BIAS": Register("BIAS", 0x30),
}


def add_bias(regs, ddr, base):
    """Fake kernel: DST[i] = SRC[i] + BIAS (int8 wraparound) for COUNT bytes."""
    n = regs["COUNT"]
    src = ddr[regs["SRC"] - base :][:n].view(np.int8)
    dst = ddr[regs["DST"] - base :][:n].view(np.int8)
    dst[:] = src + np.int8(regs["BIAS"] & 0xFF)


def make(kernel=add_bias, **kwargs):
    return SimulatedDevice(REGISTERS, kernel, address_registers=["SRC", "DST"], **kwargs)


def run_once(dev, data, bias=3, timeout_s=5.0):
    src, dst = dev.allocate(data.size), dev.allocate(data.size)
    src.write(data)
    src.flush()
    dev.write("SRC", src.device_address)
    dev.write("DST", dst.device_address)
    dev.write("COUNT", data.size)
    dev.write("BIAS", bias)
    dev.start()
    dev.wait_done(timeout_s)
    dst.invalidate()
    return dst.read(np.int8, data.size)


def test_kernel_runs_on_start_and_sees_registers_by_name():
    dev = make()
    data = np.arange(-5, 60, dtype=np.int8)
    np.testing.assert_array_equal(run_once(dev, data, bias=3), data + 3)
    assert dev.starts == 1


def test_registers_round_trip_with_width_and_sign():
    dev = make()
    dev.write("SRC", 0x1_2345_6789)
    assert dev.read("SRC") == 0x1_2345_6789
    dev.write("BIAS", -2)
    assert dev.read("BIAS") == 0xFFFF_FFFE
    with pytest.raises(ValueError, match="32-bit register BIAS"):
        dev.write("BIAS", 1 << 32)
    with pytest.raises(DeviceError, match="no register named 'NOPE'"):
        dev.read("NOPE")


def test_host_view_is_not_coherent_without_flush():
    """A driver that forgets flush() reads stale data here, as it would on the board."""
    dev = make()
    src, dst = dev.allocate(8), dev.allocate(8)
    src.write(np.full(8, 7, np.int8))  # no flush
    for name, value in (("SRC", src.device_address), ("DST", dst.device_address), ("COUNT", 8)):
        dev.write(name, value)
    dev.write("BIAS", 0)
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


def test_bad_address_is_a_bus_error_and_device_works_next_call():
    dev = make()
    dev.inject("bad_address")
    data = np.arange(16, dtype=np.int8)
    with pytest.raises(BusError, match="register SRC = 0x[0-9a-f]+ is outside DDR"):
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

    dev = make(kernel=slow)
    dev.start()
    with pytest.raises(DeviceTimeout):
        dev.wait_done(0.05)
    release.set()  # the orphaned run now finishes; its ap_done is discarded
    dev.kernel = add_bias
    data = np.arange(8, dtype=np.int8)
    np.testing.assert_array_equal(run_once(dev, data, bias=4), data + 4)
