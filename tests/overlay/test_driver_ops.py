"""The driver refuses at load a bundle whose op the loaded overlay cannot run (per-side
padding runs)."""

from __future__ import annotations

import pytest

import ternpynq
from ternpynq.bundle import load
from ternpynq.overlay.backends import simulated_device
from ternpynq.overlay.driver import Driver, OverlayLimitError
from ternpynq.runtime.synthetic import random_bundle


def test_depthwise_is_refused_naming_layer_and_op_after_asymmetric_padding_passes():
    bundle = random_bundle("mbconv", seed=0)
    assert bundle.layer("stem").padding == (0, 0, 1, 1)  # accepted: the refusal is further on
    with pytest.raises(OverlayLimitError, match=r"layer 'block1.dw' .*op 'dwconv' is not one"):
        Driver(simulated_device(), "zcu104", bundle)


def test_the_imagenet_bundle_is_refused_by_the_csim_backend():
    from ternpynq.runtime import backends

    bundle = load(ternpynq.IMAGENET_MODEL)
    with pytest.raises(OverlayLimitError, match="cannot run on the pynq-z2 overlay"):
        backends.create("csim", bundle)


def test_estimate_refuses_the_same_layers_in_one_line(capsys):
    from ternpynq.cli import main

    assert main(["estimate", "imagenet", "--board", "zcu104"]) == 1
    err = capsys.readouterr().err
    assert "layer 'block0.dw' cannot run on the zcu104 overlay" in err and "Traceback" not in err
