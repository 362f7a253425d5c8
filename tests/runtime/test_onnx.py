"""The onnx backend (integer and float graphs) reproduces the golden model bit for bit."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ternpynq.bundle.schema import Op
from ternpynq.runtime import backends
from ternpynq.runtime.network import Network
from ternpynq.runtime.synthetic import INT8, INT16, RELU, GraphBuilder, _layer, random_bundle

ONNX_EXTRA = "needs the onnx extra: pip install 'ternpynq[onnx]'"
ort = pytest.importorskip("onnxruntime", reason=ONNX_EXTRA)
pytest.importorskip("onnx", reason=ONNX_EXTRA)
from ternpynq.runtime.onnx_backend import OnnxBackend  # noqa: E402
from ternpynq.runtime.onnx_integer import DW_FORMS, UnsupportedLayer, to_onnx_integer  # noqa: E402


def _codes(bundle, n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, (n, *bundle.layers[0].in_shape)).astype(np.int8)


@settings(max_examples=12, deadline=None)
@given(
    st.sampled_from(["tiny", "resnet20"]),
    st.integers(0, 10**6),
    st.sampled_from([0.0, 0.5, 0.9]),
    st.sampled_from([4, 16, 64]),
    st.sampled_from(["auto", "float"]),
)
def test_onnx_equals_emu_on_random_networks(arch, seed, prune, g, graph):
    bundle = random_bundle(arch, g=g, prune=prune, seed=seed)
    x = _codes(bundle, 3, seed)
    onnx = backends.create("onnx", bundle, graph=graph)
    assert onnx.graph == ("float" if graph == "float" else "int")
    assert np.array_equal(onnx.run(x), Network(bundle).run(x))


@st.composite
def random_graph(draw):
    """A chain of convs with every kernel/stride/range mix, pooling, GAP and a linear head.

    Signed (int8) tensors feed convs, residuals, max pools and GAP, so every path through the
    +128 offset of the integer graph is taken; multi-trit weights reach |w| = 121.
    """
    seed = draw(st.integers(0, 2**32 - 1))
    size = draw(st.integers(5, 12))
    b = GraphBuilder(draw(st.integers(1, 4)), size, draw(st.sampled_from([1, 4, 16])), 0.3, seed)
    x = "input"
    for i in range(draw(st.integers(1, 4))):
        k = draw(st.sampled_from([1, 3, 5]))
        stride = draw(st.sampled_from([1, 2])) if b.shapes[x][1] > k else 1
        clamp = draw(st.sampled_from([RELU, INT8]))
        cout = draw(st.integers(1, 12))
        trits = draw(st.sampled_from([1, 2, 5]))
        y = b.conv(f"conv{i}", x, cout, k=k, stride=stride, trits=trits, clamp=clamp)
        if draw(st.booleans()):  # a residual of either sign, fused into the next conv
            y = b.conv(
                f"res{i}", y, cout, k=3, clamp=draw(st.sampled_from([RELU, INT8])), residual=y
            )
        x = y
        if draw(st.booleans()) and b.shapes[x][1] >= 2:
            x = b.maxpool(f"pool{i}", x, k=draw(st.sampled_from([2, 3])), stride=2)
    x = b.gap("gap", x)
    x = b.linear("fc", x, draw(st.integers(1, 10)), trits=draw(st.sampled_from([1, 5])))
    return b.bundle("random-graph", b.shapes[x][0]), seed


@settings(max_examples=25, deadline=None)
@given(random_graph(), st.integers(1, 3))
def test_integer_graph_equals_emu_on_random_graphs(case, n):
    bundle, seed = case
    x = _codes(bundle, n, seed)
    x[0] = -128  # the extremes of the signed offset
    onnx = OnnxBackend(bundle, graph="int")
    assert np.array_equal(onnx.run(x), Network(bundle).run(x))


@pytest.mark.parametrize("graph", ["int", "float"])
def test_onnx_equals_emu_on_resnet18_layout(graph):
    bundle = random_bundle("resnet18", size=32, seed=4)  # maxpool, 7x7 stride-2 stem, 4 stages
    x = np.random.default_rng(1).integers(-128, 128, (2, 3, 32, 32)).astype(np.int8)
    assert np.array_equal(
        backends.create("onnx", bundle, graph=graph).run(x), Network(bundle).run(x)
    )


def test_integer_graph_runs_convs_as_matmul_integer(resnet20_bundle):
    ops = {node.op_type for node in to_onnx_integer(resnet20_bundle).graph.node}
    assert "MatMulInteger" in ops and not ops & {"Conv", "Gemm", "MatMul"}


def _wide_input_bundle():
    """fc2 reads fc1's 16-bit logits: no uint8 form exists for MatMulInteger."""
    b = GraphBuilder(1, 6, 4, 0.0, seed=3)
    x = b.linear("fc1", b.gap("gap", b.conv("conv", "input", 4)), 6, trits=1)
    assert b.layers[-1].requant.hi == INT16[1]
    x = b.linear("fc2", x, 3, trits=1)
    return b.bundle("wide", 3)


def test_auto_falls_back_to_the_float_graph_for_the_whole_model():
    bundle = _wide_input_bundle()
    onnx = OnnxBackend(bundle)
    assert onnx.graph == "float" and "'fc2'" in onnx.fallback
    x = _codes(bundle, 4, 0)
    assert np.array_equal(onnx.run(x), Network(bundle).run(x))


def test_int_graph_names_the_layer_it_cannot_run():
    with pytest.raises(UnsupportedLayer, match=r"layer 'fc2' \(linear\).*wider than 8 bits"):
        OnnxBackend(_wide_input_bundle(), graph="int")


def test_weights_beyond_int8_are_refused_by_name():
    b = GraphBuilder(1, 6, 4, 0.0, seed=0)
    b.conv("conv", "input", 2, trits=6)  # |w| up to 364
    with pytest.raises(UnsupportedLayer, match=r"layer 'conv': weights exceed int8"):
        to_onnx_integer(b.bundle("big", 2))


def test_unknown_graph_kind_is_a_clear_error(tiny_bundle):
    with pytest.raises(ValueError, match="unknown onnx graph 'fast'; choose one of auto, int"):
        OnnxBackend(tiny_bundle, graph="fast")


def test_session_settings_are_explicit(tiny_bundle):
    onnx = OnnxBackend(tiny_bundle, threads=1)
    options = onnx.session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.set_denormal_as_zero") == "0"
    assert options.get_session_config_entry("mlas.enable_gemm_fastmath_arm64_bfloat16") == "0"
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"


def test_the_server_runs_onnx_without_spinning(resnet20_path):
    # spinning idle threads would take the cores the request threads need
    from ternpynq.serve import create_app

    app = create_app({"TESTING": True, "MODEL": str(resnet20_path), "BACKEND": "onnx"})
    options = app.extensions["ternpynq"]().backend.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_auto_prefers_onnx_when_installed_off_board():
    assert backends.resolve("auto") in ("onnx", "pynq")


def test_wrong_shape_is_a_clear_error(tiny_bundle):
    with pytest.raises(ValueError, match="expected input codes of shape"):
        backends.create("onnx", tiny_bundle).run(np.zeros((1, 1, 9, 9), np.int8))


def test_int8_output_codes_come_back_signed():
    b = GraphBuilder(2, 6, 4, 0.0, seed=1)
    b.conv("conv", "input", 5, clamp=INT8)  # a feature-map output in [-128, 127], NCHW
    bundle = b.bundle("signed-out", 5)
    x = _codes(bundle, 3, 1)
    out = OnnxBackend(bundle, graph="int").run(x)
    assert out.shape == (3, 5, 6, 6) and out.min() < 0
    assert np.array_equal(out, Network(bundle).run(x))


@pytest.mark.parametrize("k, stride, size", [(2, 2, 5), (4, 3, 11), (3, 3, 10), (7, 2, 15)])
def test_strided_convs_on_few_channels_equal_emu(k, stride, size):
    # the space-to-depth path; padding 0 makes it crop rows and columns the conv never reads
    b = GraphBuilder(3, size, 4, 0.0, seed=k)
    w, mask = b._weights((4, 3, k, k), 1)
    layer = _layer("c", Op.CONV, "input", kernel=k, stride=stride, weight=w, mask=mask)
    b._add(layer, RELU)
    bundle = b.bundle("strided", 4)
    x = _codes(bundle, 2, k)
    assert np.array_equal(OnnxBackend(bundle, graph="int").run(x), Network(bundle).run(x))


@pytest.mark.parametrize("flip", [False, True])
def test_max_pool_before_requant_only_when_it_is_monotone(flip):
    b = GraphBuilder(3, 12, 4, 0.0, seed=2)
    x = b.maxpool("pool", b.conv("stem", "input", 6, k=5, stride=2, trits=5))
    b.linear("fc", b.gap("gap", x), 4)
    bundle = b.bundle("stem-pool", 4)
    if flip:  # a negative multiplier makes requantization decreasing in that channel
        bundle.layer("stem").requant.mult[::2] *= -1
    names = {node.name for node in to_onnx_integer(bundle).graph.node}
    assert ("stem/acc32" in names) is not flip
    x = _codes(bundle, 4, 2)
    assert np.array_equal(OnnxBackend(bundle, graph="int").run(x), Network(bundle).run(x))


def _run_model(model, x):
    """One fresh onnxruntime session on an exported model, with the backend's settings."""
    import onnxruntime as ort

    from ternpynq.runtime.onnx_backend import DISABLED_OPTIMIZERS, session_options

    session = ort.InferenceSession(
        model.SerializeToString(),
        session_options(1),
        providers=["CPUExecutionProvider"],
        disabled_optimizers=DISABLED_OPTIMIZERS,
    )
    return session.run(["output"], {"codes": x})[0]


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from([4, 16]), st.sampled_from(["auto", "float"]))
def test_onnx_equals_emu_on_format2_ops(seed, g, graph):
    # depthwise convs, TF "SAME" (asymmetric) padding, a residual int8 projection and a
    # 1152-input 1x1 projection whose accumulator bound passes 2^24 (split by trit planes in
    # the float graph; int32 in the integer graph)
    from ternpynq.bundle.validate import accumulator_peak, code_ranges
    from ternpynq.runtime.onnx_export import plane_parts

    bundle = random_bundle("mbconv", g=g, seed=seed)
    wide = bundle.layer("block3.project")
    in_range = code_ranges(bundle)[wide.input]
    assert accumulator_peak(wide.weight, in_range) >= 2**24
    parts = plane_parts(wide.weight, wide.trits, in_range)
    assert len(parts) > 1 and np.array_equal(sum(p * f for p, f in parts), wide.weight)
    x = np.random.default_rng(seed).integers(-128, 128, (3, 3, 12, 12)).astype(np.int8)
    onnx = backends.create("onnx", bundle, graph=graph)
    assert (onnx.graph, onnx.fallback) == ("float" if graph == "float" else "int", None)
    assert np.array_equal(onnx.run(x), Network(bundle).run(x))


@st.composite
def depthwise_graph(draw):
    """Depthwise convs of every kernel, stride and per-side padding, on either sign of input.

    The first reads the int8 network input (the +128 offset, padded with real 0); a later one
    may read an int8 conv output; weights reach |w| = 121.
    """
    seed = draw(st.integers(0, 2**32 - 1))
    b = GraphBuilder(draw(st.integers(1, 5)), draw(st.integers(5, 11)), 4, 0.3, seed)
    x = "input"
    for i in range(draw(st.integers(1, 3))):
        c, h, w = b.shapes[x]
        k = draw(st.sampled_from([1, 2, 3, 5]))
        side = st.integers(0, k - 1)
        padding = tuple(draw(side) for _ in range(4))
        stride = draw(st.sampled_from([1, 2]))
        if h + padding[0] + padding[2] < k or w + padding[1] + padding[3] < k:
            padding = (k - 1,) * 4
        weight, mask = b._weights((c, 1, k, k), 5)
        layer = _layer(f"dw{i}", Op.DWCONV, x, kernel=k, stride=stride, trits=5,
                       weight=weight, mask=mask, padding=padding, alpha=1.0)  # fmt: skip
        x = b._add(layer, draw(st.sampled_from([RELU, INT8])))
        if draw(st.booleans()):
            x = b.conv(f"pw{i}", x, draw(st.integers(1, 6)), k=1, clamp=INT8)
    x = b.linear("fc", b.gap("gap", x), 3)
    return b.bundle("random-depthwise", 3), seed


@settings(max_examples=20, deadline=None)
@given(depthwise_graph(), st.integers(1, 2), st.sampled_from(DW_FORMS))
def test_every_depthwise_form_equals_emu(case, n, form):
    bundle, seed = case
    x = _codes(bundle, n, seed)
    x[0] = -128  # the extremes of the signed offset
    assert np.array_equal(_run_model(to_onnx_integer(bundle, form), x), Network(bundle).run(x))


@pytest.fixture(scope="module")
def imagenet():
    import ternpynq
    from ternpynq.bundle.io import load
    from ternpynq.runtime.preprocess import preprocess

    bundle = load(ternpynq.IMAGENET_MODEL)
    photos = sorted(ternpynq.PHOTOS_DIR.glob("*.jpg"))
    return bundle, np.stack([preprocess(p, bundle.input) for p in photos])


def test_imagenet_bundle_runs_on_the_integer_graph(imagenet):
    # EfficientNet-Lite0: 16 depthwise convs, TF SAME padding, int8 projections with residuals
    bundle, x = imagenet
    assert any(layer.op is Op.DWCONV for layer in bundle.layers) and len(x) == 2
    onnx = OnnxBackend(bundle, threads=1)
    assert (onnx.graph, onnx.fallback) == ("int", None)
    assert np.array_equal(onnx.run(x), Network(bundle).run(x))


def test_depthwise_accumulator_past_2_24_is_refused_by_name():
    b = GraphBuilder(1, 24, 4, 0.0, seed=0)
    weight = np.full((1, 1, 24, 24), 121, np.int16)  # 255·121·576 ≥ 2^24
    layer = _layer("dw", Op.DWCONV, "input", kernel=24, trits=5, weight=weight,
                   mask=np.ones((1, 1), bool), alpha=1.0)  # fmt: skip
    b._add(layer, RELU)
    with pytest.raises(UnsupportedLayer, match=r"layer 'dw': depthwise accumulator.*2\^24"):
        to_onnx_integer(b.bundle("deep-dw", 1))


def test_int32_accumulator_overflow_is_refused_by_name():
    b = GraphBuilder(70_000, 1, 4, 0.0, seed=0)
    b.linear("fc", b.gap("gap", "input"), 1)
    bundle = b.bundle("wide-fc", 1)
    bundle.layer("fc").weight[:] = 121  # 255·121·70000 ≥ 2^31
    with pytest.raises(UnsupportedLayer, match=r"layer 'fc': the int32 accumulator.*2\^31"):
        to_onnx_integer(bundle)


def test_unknown_depthwise_form_is_a_clear_error(tiny_bundle):
    with pytest.raises(ValueError, match="unknown depthwise form 'fast'"):
        to_onnx_integer(tiny_bundle, "fast")
