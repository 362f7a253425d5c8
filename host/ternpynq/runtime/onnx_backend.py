"""The ``onnx`` backend: onnxruntime running an exported graph of the bundle.

``graph`` chooses the export:
- ``"int"``: the integer graph (``onnx_integer``: ``MatMulInteger`` on uint8 × int8); a layer
  it cannot express raises ``UnsupportedLayer`` naming the layer.
- ``"float"``: the float graph (``onnx_export``: float32 ``Conv``/``Gemm`` on integer values),
  for runtimes without integer kernels.
- ``"auto"`` (default): the integer graph, or the float graph for the whole model when the
  integer exporter refuses a layer; ``self.graph`` says which runs and ``self.fallback`` why.

Both graphs are bit-exact with ``emu``. Session settings, on purpose (docs/performance.md):
- ``intra_op_num_threads`` = ``threads``, or every core this process may use when 0;
  ``inter_op_num_threads`` = 1 with sequential execution (the graph is a chain).
- ``spin``: idle intra-op threads spin for a while after each run (onnxruntime's default).
  That is faster alone, but a server turns it off: the spinning takes the cores its request
  threads need (docs/serving.md).
- ``ORT_ENABLE_ALL`` graph optimizations: they only fuse, reorder layouts and drop copies;
  the fusion that would turn ``MatMulInteger`` + ``Cast`` + ``Mul`` into float math
  (``MatMulIntegerToFloatFusion``) is disabled by name so the requantization stays in float64.
- No reduced-precision math: denormals are kept and the bfloat16 GEMM fast path is off.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from ternpynq.bundle.schema import Bundle
from ternpynq.runtime import backends
from ternpynq.runtime.network import check_input

GRAPHS = ("auto", "int", "float")
# fusions that would move integer or float64 arithmetic to float32
DISABLED_OPTIMIZERS = ["MatMulIntegerToFloatFusion", "DynamicQuantizeMatMulFusion"]
log = logging.getLogger(__name__)


def session_options(threads: int = 0, spin: bool = True):
    """onnxruntime settings used by the backend (see the module docstring)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.set_denormal_as_zero", "0")
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.add_session_config_entry("mlas.enable_gemm_fastmath_arm64_bfloat16", "0")
    options.log_severity_level = 3  # no warnings on stderr for a valid graph
    return options


def export(bundle: Bundle, graph: str = "auto"):
    """The ONNX model the backend runs, with the graph kind actually used and any fallback."""
    from ternpynq.runtime.onnx_export import to_onnx
    from ternpynq.runtime.onnx_integer import UnsupportedLayer, to_onnx_integer

    if graph not in GRAPHS:
        raise ValueError(f"unknown onnx graph {graph!r}; choose one of {', '.join(GRAPHS)}")
    if graph == "float":
        return to_onnx(bundle), "float", None
    try:
        return to_onnx_integer(bundle), "int", None
    except UnsupportedLayer as err:
        if graph == "int":
            raise
        log.info("onnx: float graph for %s: %s", bundle.model, err)
        return to_onnx(bundle), "float", str(err)


class OnnxBackend:
    name = "onnx"

    def __init__(
        self, bundle: Bundle, threads: int = 0, graph: str = "auto", spin: bool = True
    ) -> None:
        import onnxruntime as ort

        self.bundle = bundle
        model, self.graph, self.fallback = export(bundle, graph)
        self.session = ort.InferenceSession(
            model.SerializeToString(),
            session_options(threads, spin),
            providers=["CPUExecutionProvider"],
            disabled_optimizers=DISABLED_OPTIMIZERS,
        )

    def run(self, codes: np.ndarray) -> np.ndarray:
        codes = check_input(self.bundle, codes)
        return self.session.run(["output"], {"codes": codes})[0]

    def close(self) -> None:
        self.session = None


def _available() -> bool:
    return backends.module_available("onnxruntime") and backends.module_available("onnx")


backends.register("onnx", OnnxBackend, _available)
