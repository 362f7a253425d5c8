"""The ``csim`` backend equals ``emu`` bit for bit on random networks (hypothesis)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ternpynq.overlay.boards import load_board
from ternpynq.overlay.driver import OverlayLimitError
from ternpynq.runtime import backends
from ternpynq.runtime.network import Network
from ternpynq.runtime.synthetic import INT8, RELU, GraphBuilder, random_bundle


@st.composite
def networks(draw):
    """A random layer graph: convs of any kernel/stride/width/trits, pools, residual blocks,
    then global pooling and a classifier; groups pruned at a random rate for a random g."""
    size = draw(st.integers(4, 12))
    builder = GraphBuilder(
        channels=draw(st.sampled_from([1, 3])),
        size=size,
        g=draw(st.sampled_from([4, 8, 16, 64])),
        prune=draw(st.floats(0.0, 0.9)),
        seed=draw(st.integers(0, 2**16)),
    )
    x = builder.conv("stem", "input", draw(st.integers(1, 24)), k=draw(st.sampled_from([1, 3, 5])),
                     trits=draw(st.sampled_from([1, 2, 5])))  # fmt: skip
    for i in range(draw(st.integers(0, 3))):
        h = builder.shapes[x][1]
        kind = draw(st.sampled_from(["conv", "pool", "block"]))
        stride = draw(st.sampled_from([1, 2])) if h > 2 else 1
        if kind == "conv":
            k = draw(st.sampled_from([1, 3, 5, 7]))
            clamp = draw(st.sampled_from([RELU, INT8]))
            x = builder.conv(f"conv{i}", x, draw(st.integers(1, 70)), k=k, stride=stride,
                             trits=draw(st.sampled_from([1, 1, 3])), clamp=clamp)  # fmt: skip
        elif kind == "pool":
            x = builder.maxpool(f"pool{i}", x, k=draw(st.sampled_from([2, 3])), stride=stride)
        else:
            x = builder.basic_block(f"block{i}", x, draw(st.integers(1, 40)), stride)
    classes = draw(st.integers(1, 12))
    builder.linear("fc", builder.gap("gap", x), classes)
    return builder.bundle("hypothesis", classes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bundle=networks(), n=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_csim_equals_emu_on_random_networks(bundle, n, seed):
    c, (h, w) = bundle.input.channels, bundle.input.size
    x = np.random.default_rng(seed).integers(-128, 128, (n, c, h, w)).astype(np.int8)
    backend = backends.create("csim", bundle, max_batch=2)
    try:
        assert np.array_equal(backend.run(x), Network(bundle).run(x))
    finally:
        backend.close()


# Overlay geometries beside the board files: other lane counts g and PE counts P, and a small
# weight buffer that splits layers into many output-channel tiles (each compiles once, cached).
GEOMETRIES = [(8, 3, 8192), (16, 20, None), (64, 5, 8192), (32, 1, None)]


@settings(max_examples=24, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bundle=networks(), geometry=st.sampled_from(GEOMETRIES), seed=st.integers(0, 2**16))
def test_csim_equals_emu_for_any_overlay_geometry(bundle, geometry, seed):
    """The bundle's g need not match the overlay's: the driver repacks for the loaded one."""
    g, p, weight_bytes = geometry
    base = load_board("pynq-z2")
    board = dataclasses.replace(
        base, name=f"test-g{g}-p{p}", g=g, P=p, weight_bytes=weight_bytes or base.weight_bytes
    )
    try:
        backend = backends.create("csim", bundle, board=board, max_batch=2)
    except OverlayLimitError:
        assume(False)  # one filter larger than the small weight buffer: refused, not a bug
    c, (h, w) = bundle.input.channels, bundle.input.size
    x = np.random.default_rng(seed).integers(-128, 128, (3, c, h, w)).astype(np.int8)
    try:
        assert np.array_equal(backend.run(x), Network(bundle).run(x))
    finally:
        backend.close()


def test_csim_is_registered_and_never_chosen_by_auto():
    assert "csim" in backends.names() and "pynq" in backends.names()
    assert backends.resolve("auto") != "csim"


def test_csim_backend_on_resnet20_with_extreme_inputs():
    bundle = random_bundle("resnet20", prune=0.6, seed=11)
    x = np.stack([np.full((1, 28, 28), v, np.int8) for v in (-128, 127, 0)])
    backend = backends.create("csim", bundle)
    try:
        assert backend.name == "csim"
        assert np.array_equal(backend.run(x), Network(bundle).run(x))
    finally:
        backend.close()


def test_classify_cli_runs_on_csim(tmp_path, capsys):
    from PIL import Image

    from ternpynq.bundle.io import save
    from ternpynq.cli import main

    path = save(random_bundle("resnet20", seed=6), tmp_path / "model.tpq")
    image = tmp_path / "shirt.png"
    Image.fromarray(np.arange(784, dtype=np.uint16).reshape(28, 28).astype(np.uint8)).save(image)
    outputs = {}
    for backend in ("csim", "emu"):
        assert (
            main(["classify", str(image), "--model", str(path), "--backend", backend, "--json"])
            == 0
        )
        outputs[backend] = capsys.readouterr().out.replace('"backend": "emu"', '"backend": "csim"')
    assert outputs["csim"] == outputs["emu"]  # same labels and probabilities, bit-exact logits


@pytest.mark.slow
@pytest.mark.parametrize("board", ["pynq-z2", "zcu104"])
def test_csim_equals_emu_on_resnet18_at_224(board):
    """The paper's ImageNet network (7x7 stride-2 stem, max pool, 4 stages): ~4 s per board."""
    bundle = random_bundle("resnet18", prune=0.24, seed=0)
    x = np.random.default_rng(1).integers(-128, 128, (1, 3, 224, 224)).astype(np.int8)
    backend = backends.create("csim", bundle, board=board)
    try:
        assert np.array_equal(backend.run(x), Network(bundle).run(x))
    finally:
        backend.close()
