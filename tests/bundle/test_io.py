"""Bundles round-trip exactly, and every kind of bad file raises BundleError naming the field."""

import contextlib
import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ternpynq.bundle import (
    AccumulatorBoundError,
    BundleError,
    from_bytes,
    load,
    safetensors_io,
    save,
    to_bytes,
)
from ternpynq.bundle.errors import BundleWarning
from ternpynq.bundle.io import MAX_BUNDLE_BYTES, checksum
from ternpynq.runtime.synthetic import random_bundle


def _split(blob: bytes) -> tuple[dict, bytes, dict]:
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    return header, blob[8 + n :], json.loads(header["__metadata__"]["ternpynq"])


def _join(header: dict, data: bytes, meta: dict | str, seal: bool = True) -> bytes:
    """Rebuild a bundle from its parts; ``seal`` stores a valid checksum for the new metadata."""
    text = meta if isinstance(meta, str) else json.dumps(meta)
    metadata = {"ternpynq": text}
    if seal:
        tensor_header = {k: v for k, v in header.items() if k != "__metadata__"}
        head = json.dumps(tensor_header).encode()
        tensors, _ = safetensors_io.loads(struct.pack("<Q", len(head)) + head + data)
        metadata["sha256"] = checksum(text, tensors)
    header = dict(header, __metadata__=metadata)
    head = json.dumps(header).encode()
    return struct.pack("<Q", len(head)) + head + data


def test_round_trip_is_exact(tmp_path, resnet20_bundle):
    path = save(resnet20_bundle, tmp_path / "m.tpq")
    back = load(path)
    assert back.labels == resnet20_bundle.labels and back.input == resnet20_bundle.input
    for a, b in zip(resnet20_bundle.layers, back.layers, strict=True):
        assert (a.name, a.op, a.input, a.residual, a.trits) == (
            b.name,
            b.op,
            b.input,
            b.residual,
            b.trits,
        )
        if a.weight is not None:
            assert np.array_equal(a.weight, b.weight) and np.array_equal(a.mask, b.mask)
        if a.requant is not None:
            assert np.array_equal(a.requant.mult, b.requant.mult)
            assert (a.requant.shift, a.requant.res_mult) == (b.requant.shift, b.requant.res_mult)
    assert to_bytes(back) == path.read_bytes()


def _mutated(bundle, edit) -> bytes:
    header, data, meta = _split(to_bytes(bundle))
    edit(meta)
    return _join(header, data, meta)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda m: m.update(version=3), "version"),
        (lambda m: m.update(format="onnx"), "format"),
        (lambda m: m.pop("labels"), "labels"),
        (lambda m: m.update(labels=["a"]), "labels"),
        (lambda m: m["input"].update(channels=2), "input.channels"),
        (lambda m: m["input"].update(std=[0.0]), "input.std[0]"),
        (lambda m: m["input"].update(scale=float("nan")), "input.scale"),
        (lambda m: m["layers"][1].update(input="nowhere"), "layers[1].input"),
        (lambda m: m["layers"][1].update(stride=3), "layers[1].out_shape"),
        (lambda m: m["layers"][2]["requant"].update(shift=60), "layers[2].requant.shift"),
        (lambda m: m["layers"][0].update(trits=1), "tensors.conv1.weight"),
        (lambda m: m["layers"][3].update(residual="conv1"), "layers[3].residual"),
        (lambda m: m.update(output="conv1"), "labels"),
        (lambda m: m["stats"].update(density=0.5), "stats.density"),
        (lambda m: m["layers"][0].update(op="deconv"), "layers[0].op"),
    ],
)
def test_bad_fields_are_named(tiny_bundle, edit, field):
    with pytest.raises(BundleError) as info:
        from_bytes(_mutated(tiny_bundle, edit))
    assert info.value.field == field


def test_nonzero_weights_in_a_pruned_group_are_refused(tiny_bundle):
    import copy

    bad = copy.deepcopy(tiny_bundle)
    layer = bad.layers[1]
    layer.mask[0, 0] = False
    layer.weight[0, 0, 0, 0] = 1
    with pytest.raises(BundleError, match="pruned group holds nonzero"):
        to_bytes(bad)


def test_accumulator_bound_is_enforced():
    import copy

    bundle = random_bundle("tiny", seed=3)
    bad = copy.deepcopy(bundle)
    fc = bad.layer("fc")
    # gap output is uint8, so 121 · 255 · Cin stays below 2^24: the float32 path
    assert fc.weight.shape[1] * 121 * 255 < 2**24
    fc.weight[:] = 121
    fc.trits = 5
    save_ok = to_bytes(bad)
    assert from_bytes(save_ok).layer("fc").weight.max() == 121
    # a wider input range passes 2^24: still exact (wider path) while the sum fits int32
    wide = random_bundle("tiny", seed=3)
    wide.layer("fc").requant.lo, wide.layer("fc").requant.hi = -32768, 32767
    wide.layer("gap").requant.hi = 32767
    wide.layer("fc").weight[:] = 121
    assert 2**24 < wide.layer("fc").weight.shape[1] * 121 * 32767 < 2**31
    assert from_bytes(to_bytes(wide)).layer("fc").weight.max() == 121
    # a sum that overflows int32 is refused, naming the layer's weight
    big = random_bundle("tiny", seed=3)
    big.layer("block1.conv1").requant.hi = 32767
    conv = big.layer("block1.conv2")
    conv.trits, conv.weight[:], conv.mask[:] = 8, 3280, True
    with pytest.raises(AccumulatorBoundError, match="2\\^31") as info:
        to_bytes(big)
    assert info.value.field == f"layers[{big.layers.index(conv)}].weight"


def test_requantization_beyond_2_53_is_refused():
    bad = random_bundle("tiny", seed=3)
    bad.layer("block1.conv1").requant.hi = 32767
    conv = bad.layer("block1.conv2")
    conv.trits, conv.weight[:], conv.mask[:] = 8, 400, True
    conv.requant.mult[:] = (1 << 23) - 1
    assert 144 * 400 * 32767 < 2**31 <= 144 * 400 * 32767 * ((1 << 23) - 1) // 2**22
    with pytest.raises(AccumulatorBoundError, match="2\\^53") as info:
        to_bytes(bad)
    assert info.value.field == f"layers[{bad.layers.index(conv)}].requant.mult"


def test_not_a_bundle(tmp_path):
    (tmp_path / "x.tpq").write_bytes(b"PK\x03\x04 not a bundle at all")
    with pytest.raises(BundleError):
        load(tmp_path / "x.tpq")
    with pytest.raises(BundleError, match="directory"):
        load(tmp_path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_bytes_raise_only_bundle_error(tiny_bundle, data):
    blob = bytearray(to_bytes(tiny_bundle))
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(0, len(blob)))]
    with contextlib.suppress(BundleError):
        from_bytes(bytes(blob))


JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.lists(st.integers(-5, 300), max_size=4),
    st.just({}),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_fields_raise_only_bundle_error(tiny_bundle, data):
    header, blob, meta = _split(to_bytes(tiny_bundle))
    for _ in range(data.draw(st.integers(1, 3))):
        target = meta
        path = []
        while isinstance(target, (dict, list)) and target and data.draw(st.booleans()):
            key = data.draw(
                st.sampled_from(
                    sorted(target) if isinstance(target, dict) else list(range(len(target)))
                )
            )
            path.append((target, key))
            target = target[key]
        if path:
            parent, key = path[-1]
            parent[key] = data.draw(JSON_VALUES)
    with contextlib.suppress(BundleError):
        from_bytes(_join(header, blob, meta))


def test_every_single_byte_change_to_the_tensor_data_is_refused(tiny_bundle):
    blob = to_bytes(tiny_bundle)
    (n,) = struct.unpack("<Q", blob[:8])
    rng = np.random.default_rng(0)
    for i in range(8 + n, len(blob)):
        bad = bytearray(blob)
        bad[i] ^= int(rng.integers(1, 256))
        with pytest.raises(BundleError, match="sha256|tensors|container"):
            from_bytes(bytes(bad))


def test_a_changed_metadata_value_fails_the_checksum(tiny_bundle):
    header, data, meta = _split(to_bytes(tiny_bundle))
    meta["input"]["scale"] *= 1.0000001  # a plausible value that no field check would catch
    with pytest.raises(BundleError) as info:
        from_bytes(_unsealed(header, data, meta))
    assert info.value.field == "container.__metadata__.sha256"


def _unsealed(header: dict, data: bytes, meta: dict) -> bytes:
    """The metadata changed but the old checksum kept, as a bit flip or a hand edit leaves it."""
    old = header["__metadata__"]["sha256"]
    blob = _join(header, data, meta, seal=False)
    hdr, body, _ = _split(blob)
    hdr["__metadata__"]["sha256"] = old
    head = json.dumps(hdr).encode()
    return struct.pack("<Q", len(head)) + head + body


def test_version_1_without_checksum_loads_with_one_warning(tiny_bundle):
    header, data, meta = _split(to_bytes(tiny_bundle))
    meta["version"] = 1
    with pytest.warns(BundleWarning, match="no checksum") as record:
        back = from_bytes(_join(header, data, meta, seal=False))
    assert len(record) == 1 and "\n" not in str(record[0].message)
    assert np.array_equal(back.layers[0].weight, tiny_bundle.layers[0].weight)


def test_version_2_without_checksum_is_refused(tiny_bundle):
    header, data, meta = _split(to_bytes(tiny_bundle))
    with pytest.raises(BundleError, match="sha256: missing"):
        from_bytes(_join(header, data, meta, seal=False))


def test_deeply_nested_json_is_a_bundle_error(tiny_bundle):
    header, data, meta = _split(to_bytes(tiny_bundle))
    meta["extra"] = {"deep": "HERE"}
    text = json.dumps(meta).replace('"HERE"', "[" * 100_000 + "]" * 100_000)
    with pytest.raises(BundleError, match="metadata: JSON nested deeper"):
        from_bytes(_join(header, data, text))
    head = ("[" * 100_000 + "]" * 100_000).encode()
    with pytest.raises(BundleError, match="container: JSON nested deeper"):
        from_bytes(struct.pack("<Q", len(head)) + head)


@pytest.mark.parametrize("digits", [30, 5000])
def test_huge_integers_are_bundle_errors(tiny_bundle, digits):
    huge = "9" * digits
    header, data, meta = _split(to_bytes(tiny_bundle))
    name = next(k for k in header if k != "__metadata__")
    header[name]["shape"] = "HERE"
    blob = _join(header, data, meta, seal=False)  # the container fails before the checksum
    blob = blob.replace(b'"HERE"', f"[{huge}, 1]".encode())
    (n,) = struct.unpack("<Q", blob[:8])
    blob = struct.pack("<Q", n + len(huge) + 3) + blob[8:]  # the header grew
    with pytest.raises(BundleError, match="shape|container"):
        from_bytes(blob)
    meta["input"]["scale"] = "HERE"
    text = json.dumps(meta).replace('"HERE"', huge)
    with pytest.raises(BundleError, match="input.scale|metadata"):
        from_bytes(_join(*_split(to_bytes(tiny_bundle))[:2], text))


def test_only_regular_files_are_read(tmp_path):
    with pytest.raises(BundleError, match="not a regular file"):
        load("/dev/zero")


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    big = tmp_path / "big.tpq"
    with big.open("wb") as f:
        f.truncate(MAX_BUNDLE_BYTES + 1)  # sparse: no disk, and a read would cost 1 GiB

    def no_open(*args, **kwargs):
        raise AssertionError("the oversized file was opened")

    monkeypatch.setattr(type(big), "open", no_open)
    with pytest.raises(BundleError, match="larger than"):
        load(big)


def test_version_1_files_still_load_and_lack_format_2_ops(tiny_bundle):
    header, data, meta = _split(to_bytes(tiny_bundle))
    meta["version"] = 1
    with pytest.warns(BundleWarning, match="no checksum"):
        assert from_bytes(_join(header, data, meta, seal=False)).version == 1
    meta["layers"][0]["op"] = "dwconv"
    with pytest.raises(BundleError) as info, pytest.warns(BundleWarning, match="no checksum"):
        from_bytes(_join(header, data, meta, seal=False))
    assert info.value.field == "layers[0].op"


def test_asymmetric_padding_round_trips():
    bundle = random_bundle("mbconv", seed=2)
    back = from_bytes(to_bytes(bundle))
    assert back.layer("block2.dw").padding == (1, 1, 2, 2)
    assert back.layer("stem").padding == (0, 0, 1, 1) and back.layer("block1.dw").padding == 1
    header, data, meta = _split(to_bytes(bundle))
    meta["layers"][0]["padding"] = [0, 0, 3, 1]  # a side as large as the 3x3 kernel
    with pytest.raises(BundleError) as info:
        from_bytes(_join(header, data, meta))
    assert info.value.field == "layers[0].padding"
