"""Session fixtures of the zoo tests: the checked state_dict and the offline photos."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def state():
    from ternpynq.zoo.efficientnet import load_state_dict

    return load_state_dict()


@pytest.fixture(scope="session")
def photos():
    from ternpynq.zoo.photos import offline_photos

    return offline_photos()
