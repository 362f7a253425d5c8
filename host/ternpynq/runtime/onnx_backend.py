"""The ``onnx`` backend: onnxruntime running the graph from ``onnx_export``."""

from __future__ import annotations

import numpy as np

from ternpynq.bundle.schema import Bundle
from ternpynq.runtime import backends
from ternpynq.runtime.network import check_input


class OnnxBackend:
    name = "onnx"

    def __init__(self, bundle: Bundle, threads: int = 0) -> None:
        import onnxruntime as ort

        from ternpynq.runtime.onnx_export import to_onnx

        self.bundle = bundle
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # no warnings on stderr for a valid graph
        self.session = ort.InferenceSession(
            to_onnx(bundle).SerializeToString(), options, providers=["CPUExecutionProvider"]
        )

    def run(self, codes: np.ndarray) -> np.ndarray:
        codes = check_input(self.bundle, codes)
        return self.session.run(["output"], {"codes": codes})[0]

    def close(self) -> None:
        self.session = None


def _available() -> bool:
    return backends.module_available("onnxruntime") and backends.module_available("onnx")


backends.register("onnx", OnnxBackend, _available)
