"""Measure the choices behind the integer ONNX graph on one ResNet-18 layer shape.

For a 3×3 stride-1 conv on a padded NHWC uint8 map (and the 7×7 stride-2 stem's im2col), in
onnxruntime, interleaved, best of ``--repeats``:
- im2col as one ``Gather`` of C-channel pixels, against strided ``Slice`` + ``Concat``;
- one ``MatMulInteger`` on the im2col rows, against one ``MatMulInteger`` per tap summed in
  int32, against float32 ``Conv`` of the same values;
- ``MatMulInteger`` with uint8 against int8 activations (why signed codes get a +128 offset).
Every variant's result is checked equal to the first before timing.

    .venv/bin/python benchmarks/onnx_im2col.py [--batch 8] [--repeats 7] [--threads 0]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from emu_vs_torch import interleaved_best


def _session(nodes, inputs, inits, threads: int, out=TensorProto.INT32) -> ort.InferenceSession:
    graph = helper.make_graph(
        nodes,
        "probe",
        [helper.make_tensor_value_info(name, dtype, shape) for name, dtype, shape in inputs],
        [helper.make_tensor_value_info("y", out, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _taps(hp: int, k: int, s: int) -> tuple[int, list[tuple[int, int]]]:
    return (hp - k) // s + 1, [(i, j) for i in range(k) for j in range(k)]


def im2col_variants(n: int, hp: int, c: int, k: int, s: int, threads: int) -> dict:
    """Gather against Slice + Concat, each producing the (N·Ho·Wo, k·k·C) rows."""
    ho, taps = _taps(hp, k, s)
    shape = [("x", TensorProto.UINT8, [n, hp, hp, c])]
    flat = np.array([-1, k * k * c], np.int64)
    inits = {"axes": np.array([1, 2], np.int64), "steps": np.array([s, s], np.int64)}
    nodes = []
    for i, j in taps:
        inits[f"b{i}_{j}"] = np.array([i, j], np.int64)
        inits[f"e{i}_{j}"] = np.array([i + s * (ho - 1) + 1, j + s * (ho - 1) + 1], np.int64)
        args = ["x", f"b{i}_{j}", f"e{i}_{j}", "axes", "steps"]
        nodes.append(helper.make_node("Slice", args, [f"t{i}_{j}"]))
    nodes.append(helper.make_node("Concat", [f"t{i}_{j}" for i, j in taps], ["c"], axis=3))
    nodes.append(helper.make_node("Reshape", ["c", "flat"], ["y"]))
    sliced = _session(nodes, shape, {**inits, "flat": flat}, threads, TensorProto.UINT8)
    down = (np.arange(ho) * s)[:, None, None, None] + np.arange(k)[None, None, :, None]
    across = (np.arange(ho) * s)[None, :, None, None] + np.arange(k)[None, None, None, :]
    index = (down * hp + across).reshape(-1).astype(np.int32)
    nodes = [
        helper.make_node("Reshape", ["x", "pixels"], ["p"]),
        helper.make_node("Gather", ["p", "index"], ["g"], axis=1),
        helper.make_node("Reshape", ["g", "flat"], ["y"]),
    ]
    pixels = np.array([0, hp * hp, c], np.int64)
    inits = {"pixels": pixels, "index": index, "flat": flat}
    gathered = _session(nodes, shape, inits, threads, TensorProto.UINT8)
    return {"Slice + Concat": sliced, "Gather": gathered}


def gemm_variants(n: int, h: int, c: int, cout: int, threads: int, rng) -> tuple[dict, dict]:
    """One MatMulInteger on Gather rows, one per tap summed in int32, float32 Conv."""
    hp, k = h + 2, 3
    w = rng.integers(-1, 2, (k, k, c, cout)).astype(np.int8)
    x = rng.integers(0, 256, (n, hp, hp, c)).astype(np.uint8)
    _, taps = _taps(hp, k, 1)
    index = (
        (np.arange(h)[:, None, None, None] + np.arange(k)[None, None, :, None]) * hp
        + np.arange(h)[None, :, None, None]
        + np.arange(k)[None, None, None, :]
    )
    u8 = [("x", TensorProto.UINT8, [n, hp, hp, c])]
    one = _session(
        [
            helper.make_node("Reshape", ["x", "pixels"], ["p"]),
            helper.make_node("Gather", ["p", "index"], ["g"], axis=1),
            helper.make_node("Reshape", ["g", "flat"], ["rows"]),
            helper.make_node("MatMulInteger", ["rows", "w"], ["acc"]),
            helper.make_node("Reshape", ["acc", "nhwc"], ["y"]),
        ],
        u8,
        {
            "pixels": np.array([0, hp * hp, c], np.int64),
            "index": index.reshape(-1).astype(np.int32),
            "flat": np.array([-1, k * k * c], np.int64),
            "w": w.reshape(-1, cout),
            "nhwc": np.array([n, h, h, cout], np.int64),
        },
        threads,
    )
    inits = {"axes": np.array([1, 2], np.int64)}
    nodes, partial = [], []
    for i, j in taps:
        inits[f"b{i}_{j}"], inits[f"e{i}_{j}"] = np.array([i, j]), np.array([i + h, j + h])
        inits[f"w{i}_{j}"] = w[i, j]
        nodes.append(
            helper.make_node("Slice", ["x", f"b{i}_{j}", f"e{i}_{j}", "axes"], [f"t{i}_{j}"])
        )
        nodes.append(helper.make_node("MatMulInteger", [f"t{i}_{j}", f"w{i}_{j}"], [f"a{i}_{j}"]))
        partial.append(f"a{i}_{j}")
    total = partial[0]
    for m, name in enumerate(partial[1:]):
        out = "y" if m == len(partial) - 2 else f"s{m}"
        nodes.append(helper.make_node("Add", [total, name], [out]))
        total = out
    per_tap = _session(nodes, u8, inits, threads)
    conv = _session(
        [
            helper.make_node("Conv", ["xf", "wf"], ["o"]),
            helper.make_node("Transpose", ["o"], ["y"], perm=[0, 2, 3, 1]),
        ],
        [("xf", TensorProto.FLOAT, [n, c, hp, hp])],
        {"wf": w.transpose(3, 2, 0, 1).astype(np.float32)},
        threads,
        TensorProto.FLOAT,
    )
    sessions = {"one MatMulInteger": one, "MatMulInteger per tap": per_tap, "float32 Conv": conv}
    feeds = {"one MatMulInteger": {"x": x}, "MatMulInteger per tap": {"x": x}}
    feeds["float32 Conv"] = {"xf": np.ascontiguousarray(x.transpose(0, 3, 1, 2), np.float32)}
    return sessions, feeds


def signedness(m: int, k: int, cout: int, threads: int, rng) -> tuple[dict, dict]:
    w = rng.integers(-1, 2, (k, cout)).astype(np.int8)
    sessions, feeds = {}, {}
    for name, dtype, lo, hi in [
        ("uint8", TensorProto.UINT8, 0, 256),
        ("int8", TensorProto.INT8, -128, 128),
    ]:
        node = helper.make_node("MatMulInteger", ["a", "w"], ["y"])
        sessions[f"{name} x int8"] = _session([node], [("a", dtype, [m, k])], {"w": w}, threads)
        np_type = np.uint8 if lo == 0 else np.int8
        feeds[f"{name} x int8"] = {"a": rng.integers(lo, hi, (m, k)).astype(np_type)}
    return sessions, feeds


def report(
    title: str, sessions: dict, feeds: dict, repeats: int, clock, check: bool = True
) -> None:
    outputs = {k: s.run(None, feeds[k])[0] for k, s in sessions.items()}
    if check:
        first = next(iter(outputs.values()))
        for k, out in outputs.items():
            if not np.array_equal(np.asarray(out, np.int64), np.asarray(first, np.int64)):
                raise SystemExit(f"{title}: {k} differs from the first variant")
    calls = {k: (lambda s=s, f=feeds[k]: s.run(None, f)) for k, s in sessions.items()}
    best = interleaved_best(calls, repeats, clock)
    base = min(best.values())
    print(f"{title}:")
    for k, t in best.items():
        print(f"  {k:<24} {t * 1e3:8.2f} ms  {t / base:5.2f}x the fastest")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = parser.parse_args()
    threads = args.threads or len(os.sched_getaffinity(0))
    if args.clock == "cpu" and threads != 1:
        parser.error("--clock cpu adds up every thread's time: use it with --threads 1")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    rng = np.random.default_rng(0)
    n = args.batch
    load = os.getloadavg()[0]
    print(
        f"onnxruntime {ort.__version__}, {threads} threads, batch {n}, load {load:.1f}, "
        f"{args.clock} clock"
    )
    for hp, c, k, s, label in [
        (58, 64, 3, 1, "3x3 conv, 64 ch, 56x56"),
        (230, 3, 7, 2, "7x7/2 stem, 3 ch"),
    ]:
        sessions = im2col_variants(n, hp, c, k, s, threads)
        x = rng.integers(0, 256, (n, hp, hp, c)).astype(np.uint8)
        feeds = dict.fromkeys(sessions, {"x": x})
        report(f"im2col, {label}", sessions, feeds, args.repeats, clock)
    sessions, feeds = gemm_variants(n, 56, 64, 64, threads, rng)
    report("3x3 conv 64->64 on 56x56, im2col included", sessions, feeds, args.repeats, clock)
    sessions, feeds = signedness(n * 3136, 576, 64, threads, rng)
    title = "MatMulInteger (N*3136 x 576) by (576 x 64)"
    report(title, sessions, feeds, args.repeats, clock, check=False)


if __name__ == "__main__":
    main()
