"""The csim kernel equals the golden model bit for bit, and its cycle count equals the model's."""

from __future__ import annotations

import numpy as np
import pytest
from harness import DDR_BASE, assert_loops, place, run_csim

from ternpynq.overlay.boards import load_board
from ternpynq.overlay.csim_vectors import network_cases
from ternpynq.runtime.network import Network
from ternpynq.runtime.synthetic import random_bundle


def _network_cases(arch: str, board, seed: int, batch: int = 2, g: int = 16, prune: float = 0.25):
    bundle = random_bundle(arch, g=g, prune=prune, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (batch, bundle.input.channels, *bundle.input.size)).astype(np.int8)
    golden = Network(bundle).run_all(x)
    for case in network_cases(bundle, x, board):
        assert np.array_equal(case.expected, golden[case.name])  # vectors come from Network
        yield case


@pytest.mark.parametrize("arch,seed", [("tiny", 0), ("tiny", 7), ("resnet20", 1)])
def test_every_layer_matches_golden_model(any_board, arch, seed):
    for case in _network_cases(arch, any_board, seed):
        status, cycles, out = run_csim(case, any_board)
        assert status == 0, case.name
        assert np.array_equal(case.decode(out), case.expected), case.name
        assert cycles == case.cycles, case.name  # the Python cycle model, exactly
        assert_loops(case, any_board)  # and loop by loop


def test_fully_pruned_and_dense_layers(small_board):
    for prune in (0.0, 1.0):
        for case in _network_cases("tiny", small_board, seed=3, prune=prune, g=8):
            status, cycles, out = run_csim(case, small_board)
            assert status == 0 and cycles == case.cycles, case.name
            assert np.array_equal(case.decode(out), case.expected), case.name
            assert_loops(case, small_board)


def _first_conv(board):
    return next(_network_cases("tiny", board, seed=0))


def test_bad_address_is_reported_not_crashed(small_board):
    from ternpynq.overlay.csim_build import load_kernel
    from ternpynq.overlay.regmap import load_regmap

    case = _first_conv(small_board)
    ddr, (w, i, o) = place([case.wgt, case.fin, np.zeros(case.expected_bytes.size, np.uint8)])
    good = dict(case.regs, wgt_addr=w, in_addr=i, out_addr=o, res_addr=0)
    kernel, rm = load_kernel(small_board), load_regmap()
    assert kernel.start(rm.pack(good), ddr, DDR_BASE)[0] == 0
    for reg, addr in [
        ("in_addr", DDR_BASE - 64),
        ("out_addr", DDR_BASE + ddr.size - 8),
        ("wgt_addr", 1 << 62),
    ]:
        status, cycles = kernel.start(rm.pack(dict(good, **{reg: addr})), ddr, DDR_BASE)
        assert status == rm.enums["status"]["bad_address"], reg
        assert cycles == 0
    assert kernel.start(rm.pack(good)[:8], ddr, DDR_BASE)[0] == 5  # register file too short


def test_bad_descriptor_and_stream(small_board):
    from ternpynq.overlay.regmap import load_regmap

    codes = load_regmap().enums["status"]
    case = _first_conv(small_board)
    for field, value in [
        ("mode", 7),
        ("out_h", case.regs["out_h"] + 1),
        ("trits", 0),
        ("pad_top", 9),
        ("pad_right", case.regs["kernel"]),
        ("lo", 300),
    ]:
        bad = dict(case.regs, **{field: value})
        status, _, _ = run_csim(case.with_(regs=bad), small_board)
        assert status == codes["bad_descriptor"], field
    wgt = case.wgt.copy()
    wgt[0] = 0xFF  # n_kept beyond the group count
    status, _, _ = run_csim(case.with_(wgt=wgt), small_board)
    assert status == codes["bad_stream"]
    big = dict(case.regs, in_c=10_000)
    status, _, _ = run_csim(case.with_(regs=big), small_board)
    assert status == codes["too_large"]


@pytest.mark.parametrize("name", ["pynq-z2", "zcu104"])
def test_resnet18_graph_at_32x32(name):
    """7x7/2 first conv with 3 channels, 3x3/2 max-pool, 512 channels, 1000-way FC, batch 2."""
    bundle = random_bundle("resnet18", g=64, seed=4, size=32, num_classes=1000)
    x = np.random.default_rng(4).integers(-128, 128, (2, 3, 32, 32)).astype(np.int8)
    _check_network(bundle, x, load_board(name))


def _check_network(bundle, x, board) -> None:
    """Every layer: status 0, golden output bytes, the model's cycles, loop by loop."""
    for case in network_cases(bundle, x, board):
        status, cycles, out = run_csim(case, board)
        assert status == 0, case.name
        assert np.array_equal(case.decode(out), case.expected), case.name
        assert cycles == case.cycles, case.name
        assert_loops(case, board)


@pytest.mark.slow
def test_resnet18_at_224_counts_match_per_layer():
    """The full-size graph (7x7/2 stem on 224x224, 1000 classes) on the PYNQ-Z2, one image."""
    bundle = random_bundle("resnet18", g=64, prune=0.7, seed=5, num_classes=1000)
    x = np.random.default_rng(5).integers(-128, 128, (1, 3, 224, 224)).astype(np.int8)
    _check_network(bundle, x, load_board("pynq-z2"))


def test_loop_depths_agree(any_board):
    """The kernel's stated pipeline depths are the loop table's (cycles.loop_depths)."""
    from ternpynq.overlay.csim_build import load_kernel
    from ternpynq.overlay.cycles import loop_depths

    assert load_kernel(any_board).depths() == loop_depths(any_board)


def test_garbage_streams_and_registers_never_crash(small_board):
    """Random weight bytes and random descriptor fields give a status code, never a fault."""
    from ternpynq.overlay.csim_build import load_kernel
    from ternpynq.overlay.regmap import load_regmap

    kernel, rm = load_kernel(small_board), load_regmap()
    case = next(c for c in _network_cases("tiny", small_board, seed=5) if c.regs["has_res"])
    rng = np.random.default_rng(0)
    seen = set()
    for trial in range(300):
        wgt = case.wgt.copy()
        regs = dict(case.regs)
        if trial % 2:
            hit = rng.integers(0, case.regs["wgt_bytes"], rng.integers(1, 8))
            wgt[hit] = rng.integers(0, 256, hit.size)
        else:
            field = rng.choice([r.name for r in rm if r.port and r.access == "rw"][4:])
            regs[field] = int(rng.integers(0, 2**32))
        out = np.zeros(case.expected_bytes.size, np.uint8)
        ddr, (w, i, r, o) = place([wgt, case.fin, case.res, out])
        regs.update(wgt_addr=w, in_addr=i, res_addr=r, out_addr=o)
        status, _ = kernel.start(rm.pack(regs), ddr, DDR_BASE)
        seen.add(status)
        assert status in rm.enums["status"].values()
    assert {1, 3} <= seen  # both kinds of garbage were noticed


@pytest.mark.parametrize("name", ["pynq-z2", "zcu104"])
def test_imagenet_stem_with_tf_same_padding_on_a_photo(name):
    """The ImageNet bundle's first conv (3x3/2, padding (0, 0, 1, 1)) on chelsea.jpg."""
    import ternpynq
    from ternpynq.bundle import load
    from ternpynq.overlay.csim_vectors import make_case
    from ternpynq.overlay.fmap import fmap_types
    from ternpynq.runtime.preprocess import preprocess

    bundle, board = load(ternpynq.IMAGENET_MODEL), load_board(name)
    stem = bundle.layer("stem")
    assert stem.padding == (0, 0, 1, 1)
    x = preprocess(ternpynq.PHOTOS_DIR / "chelsea.jpg", bundle.input)[None]
    case = make_case(stem, x, None, fmap_types(bundle), board)
    status, cycles, out = run_csim(case, board)
    assert status == 0
    assert np.array_equal(case.decode(out), case.expected)
    assert cycles == case.cycles
    assert_loops(case, board)


@pytest.mark.parametrize("padding", [(0, 0, 1, 1), (2, 0, 1, 2), (0, 2, 2, 0)])
def test_per_side_padding_in_conv_and_maxpool(small_board, padding):
    """Each side's padding moves the window on its own: conv and max pool, stride 1 and 2."""
    from ternpynq.bundle.schema import Layer, Op, Requant
    from ternpynq.bundle.validate import output_shape
    from ternpynq.overlay.csim_vectors import make_case
    from ternpynq.overlay.fmap import ELEM_I8

    rng = np.random.default_rng(sum(padding))
    for op, stride in [(Op.CONV, 1), (Op.CONV, 2), (Op.MAXPOOL, 1), (Op.MAXPOOL, 2)]:
        layer = Layer("y", op, "x", (5, 7, 6), (), 1.0, kernel=3, stride=stride, padding=padding)
        if op is Op.CONV:
            layer.weight = rng.integers(-1, 2, (4, 5, 3, 3)).astype(np.int16)
            layer.requant = Requant(np.full(4, 3, np.int32), np.zeros(4, np.int32), 1, -128, 127)
        layer.out_shape = output_shape(layer)
        x = rng.integers(-128, 128, (2, 5, 7, 6))
        case = make_case(layer, x, None, {"x": ELEM_I8}, small_board)
        status, cycles, out = run_csim(case, small_board)
        assert status == 0 and cycles == case.cycles, (op, stride)
        assert np.array_equal(case.decode(out), case.expected), (op, stride)
        assert_loops(case, small_board)
