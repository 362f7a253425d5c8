"""The ``emu`` backend: the numpy golden model, which defines correct behaviour."""

from __future__ import annotations

import numpy as np

from ternpynq.bundle.schema import Bundle
from ternpynq.runtime import backends
from ternpynq.runtime.network import Network


class EmuBackend:
    name = "emu"

    def __init__(self, bundle: Bundle) -> None:
        self.network = Network(bundle)

    def run(self, codes: np.ndarray) -> np.ndarray:
        return self.network.run(codes)

    def close(self) -> None:
        pass


backends.register("emu", EmuBackend)
