"""Format-2 bundles on the overlay: the ImageNet bundle (depthwise convs, TF "SAME" padding,
1152- and 1280-channel layers) through the csim kernel, and what the driver still refuses."""

from __future__ import annotations

import numpy as np
import pytest

import ternpynq
from ternpynq.bundle import load
from ternpynq.bundle.schema import Op
from ternpynq.overlay.backends import simulated_device
from ternpynq.overlay.driver import Driver, OverlayLimitError
from ternpynq.runtime.network import Network
from ternpynq.runtime.preprocess import preprocess
from ternpynq.runtime.synthetic import random_bundle


@pytest.mark.parametrize("board", ["pynq-z2", "zcu104"])
def test_the_imagenet_bundle_on_csim_equals_emu_on_a_photo(board):
    bundle = load(ternpynq.IMAGENET_MODEL)
    x = preprocess(ternpynq.PHOTOS_DIR / "chelsea.jpg", bundle.input)[None]
    with Driver(simulated_device(board), board, bundle) as driver:
        got = driver.run(x)
    want = Network(bundle).run(x)
    assert np.array_equal(got, want)
    assert bundle.labels[int(want.argmax())] in ("Egyptian cat", "tiger cat", "tabby")


def test_a_depthwise_layer_with_a_residual_is_refused_at_load():
    bundle = random_bundle("mbconv", seed=4)
    dw = next(layer for layer in bundle.layers if layer.op is Op.DWCONV)
    dw.residual = bundle.layers[0].name
    with pytest.raises(OverlayLimitError, match=f"{dw.name}.*dwconv mode has no fused residual"):
        Driver(simulated_device(), "pynq-z2", bundle)


def test_estimate_models_the_imagenet_bundle_with_its_depthwise_share(capsys):
    import json

    from ternpynq.cli import main

    assert main(["estimate", "imagenet", "--board", "zcu104", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fps_serial"] > 0
    modes = {layer["mode"] for layer in report["layers"]}
    assert "dwconv" in modes
