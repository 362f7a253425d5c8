"""Our numpy container code must agree with the reference safetensors package both ways."""

import numpy as np
import pytest
import safetensors.numpy as st_np

from ternpynq.bundle import safetensors_io
from ternpynq.bundle.errors import BundleError

TENSORS = {
    "a.weight": np.arange(10, dtype=np.uint8).reshape(2, 5),
    "a.mult": np.array([1, -2, 3], np.int32),
    "b.bias": np.array([-(2**31), 2**31 - 1], np.int32),
    "c": np.zeros((0,), np.int8),
}


def test_reference_package_reads_ours():
    blob = safetensors_io.dumps(TENSORS, {"k": "v"})
    back = st_np.load(blob)
    assert set(back) == set(TENSORS)
    for name, arr in TENSORS.items():
        assert np.array_equal(back[name], arr) and back[name].dtype == arr.dtype


def test_we_read_the_reference_package():
    blob = st_np.save(TENSORS, metadata={"k": "v"})
    tensors, meta = safetensors_io.loads(blob)
    assert meta == {"k": "v"}
    for name, arr in TENSORS.items():
        assert np.array_equal(tensors[name], arr) and tensors[name].dtype == arr.dtype


@pytest.mark.parametrize(
    "blob", [b"", b"\x00" * 7, b"\xff" * 8 + b"{}", b"\x02" + b"\x00" * 7 + b"[]"]
)
def test_broken_containers(blob):
    with pytest.raises(BundleError):
        safetensors_io.loads(blob)


def test_trailing_bytes_are_refused():
    with pytest.raises(BundleError, match="unexplained bytes"):
        safetensors_io.loads(safetensors_io.dumps(TENSORS, {}) + b"x")
