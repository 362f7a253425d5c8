"""Shared fixtures: small random bundles built once per test session."""

from __future__ import annotations

import pytest

from ternpynq.runtime.synthetic import random_bundle


@pytest.fixture(scope="session")
def tiny_bundle():
    return random_bundle("tiny", seed=0)


@pytest.fixture(scope="session")
def resnet20_bundle():
    return random_bundle("resnet20", seed=1)


@pytest.fixture(scope="session")
def resnet20_path(tmp_path_factory, resnet20_bundle):
    from ternpynq.bundle import save

    return save(resnet20_bundle, tmp_path_factory.mktemp("bundles") / "resnet20.tpq")
