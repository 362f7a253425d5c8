"""Time ``emu``, integer ``onnx``, float ``onnx`` and torch float32 on the same networks.

ResNet-18 at 224×224 (random ternary weights, ~24% of PE groups pruned) and ResNet-20 at
28×28, at each batch size; any ``--bundle`` file is added as a row. torch runs the same layer
graph (same shapes, float weights) in the same process. Every row first checks that ``emu``
and both onnx graphs return identical codes. The contenders are interleaved call by call and
each keeps its best of ``--repeats`` calls, so a burst of load from other jobs hits them all
alike; the ratios are what counts. ``--profile`` adds onnxruntime's per-op profile of both
onnx graphs on ResNet-18. Results go in docs/performance.md.

    .venv/bin/python benchmarks/emu_vs_torch.py [--batch 1 8] [--repeats 7] [--profile]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import re
import tempfile
import time

import numpy as np
import onnxruntime
import torch
import torch.nn.functional as F

from ternpynq.bundle.schema import Bundle, Op, pads
from ternpynq.runtime.network import Network
from ternpynq.runtime.onnx_backend import (
    DISABLED_OPTIMIZERS,
    OnnxBackend,
    export,
    session_options,
)
from ternpynq.runtime.onnx_integer import DW_FORMS, to_onnx_integer
from ternpynq.runtime.synthetic import random_bundle


def torch_forward(bundle: Bundle):
    """A float32 torch function running the bundle's graph with its (float) weights."""
    weights = {
        layer.name: torch.from_numpy(layer.weight.astype(np.float32))
        for layer in bundle.layers
        if layer.weight is not None
    }

    @torch.inference_mode()
    def forward(x: torch.Tensor) -> torch.Tensor:
        t = {"input": x}
        for layer in bundle.layers:
            h = t[layer.input]
            if layer.op in (Op.CONV, Op.DWCONV):
                top, left, bottom, right = pads(layer.padding)
                if any((top, left, bottom, right)):  # per side (TF SAME), as the bundle says
                    h = F.pad(h, (left, right, top, bottom))
                groups = h.shape[1] if layer.op is Op.DWCONV else 1
                h = F.conv2d(h, weights[layer.name], stride=layer.stride, groups=groups)
                if layer.residual:
                    h = h + t[layer.residual]
            elif layer.op is Op.LINEAR:
                h = F.linear(h, weights[layer.name])
            elif layer.op is Op.MAXPOOL:
                h = F.max_pool2d(h, layer.kernel, layer.stride, layer.padding)
            elif layer.op is Op.GAP:
                h = h.mean(dim=(2, 3))
            else:
                raise NotImplementedError(f"no torch twin for {layer.op.value}")
            if layer.requant is not None and layer.requant.lo == 0:
                h = F.relu(h)
            t[layer.name] = h
        return t[bundle.output]

    return forward


def interleaved_best(contenders: dict, repeats: int, clock=time.perf_counter) -> dict[str, float]:
    """Best time of each callable; one warm-up each, then one call of each per round.

    ``clock`` is wall time by default; ``time.process_time`` (CPU time of this process) is the
    fairer measure on a crowded machine when every contender runs one thread.
    """
    for fn in contenders.values():
        fn()
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(repeats):
        for name, fn in contenders.items():
            start = clock()
            fn()
            best[name] = min(best[name], clock() - start)
    return best


def op_profile(
    bundle: Bundle, graph: str, codes: np.ndarray, threads: int, runs: int = 3
) -> list[str]:
    """onnxruntime's profiler, summed per op type: lines of 'op  ms per run  share'."""
    model, _, _ = export(bundle, graph)
    options = session_options(threads)
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "ort")
    session = onnxruntime.InferenceSession(
        model.SerializeToString(),
        options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=DISABLED_OPTIMIZERS,
    )
    session.run(None, {"codes": codes})  # warm-up, profiled too: skipped below
    for _ in range(runs):
        session.run(None, {"codes": codes})
    path = session.end_profiling()
    with open(path) as f:
        events = json.load(f)
    os.remove(path)
    per_op, seen = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            node = re.sub(r"_kernel_time$", "", e["name"])
            seen[node] += 1
            if seen[node] == 1:  # the warm-up run
                continue
            per_op[e["args"]["op_name"]] += e["dur"]
    total = sum(per_op.values())
    lines = [
        f"{bundle.model}, {graph} graph, batch {len(codes)}, {threads} threads: "
        f"{total / runs / 1e3:.1f} ms per run in kernels"
    ]
    for op, us in per_op.most_common(10):
        lines.append(f"  {op:<16} {us / runs / 1e3:8.1f} ms  {100 * us / total:5.1f}%")
    return lines


def rows(name: str, bundle: Bundle, batches: list[int], repeats: int, threads: int, clock) -> None:
    net = Network(bundle)
    onnx_int = OnnxBackend(bundle, threads=threads, graph="int")
    onnx_float = OnnxBackend(bundle, threads=threads, graph="float")
    try:
        forward = torch_forward(bundle)
    except NotImplementedError:
        forward = None
    zoo = zoo_forward(bundle)
    rng = np.random.default_rng(0)
    for n in batches:
        codes = rng.integers(-128, 128, (n, *bundle.layers[0].in_shape)).astype(np.int8)
        expect = net.run(codes)
        same = np.array_equal(expect, onnx_int.run(codes)) and np.array_equal(
            expect, onnx_float.run(codes)
        )
        if not same:
            raise SystemExit(f"{name} batch {n}: emu and onnx codes differ; not timing")
        contenders = {
            "emu": lambda c=codes: net.run(c),
            "int": lambda c=codes: onnx_int.run(c),
            "float": lambda c=codes: onnx_float.run(c),
        }
        if forward is not None:
            x = torch.from_numpy(codes.astype(np.float32))
            contenders["torch"] = lambda x=x: forward(x)
        if zoo is not None:
            z = torch.from_numpy(codes.astype(np.float32) / 128)
            contenders["zoo"] = lambda z=z, m=zoo: m(z)
        best = interleaved_best(contenders, repeats, clock)
        ms = {k: v * 1e3 / n for k, v in best.items()}
        t = ms.get("torch", float("nan"))
        print(
            f"| {name} | {n} | {ms['emu']:.1f} | {ms['int']:.1f} | {ms['float']:.1f} | {t:.1f} "
            f"| {ms['emu'] / t:.2f}× | {ms['int'] / t:.2f}× | {ms['float'] / ms['int']:.2f}× "
            f"| {same} |",
            flush=True,
        )
        if "zoo" in ms:
            print(
                f"  (zoo EfficientNetLite0 float32, batch norms unfolded, same run: "
                f"{ms['zoo']:.1f} ms/img; int onnx / zoo {ms['int'] / ms['zoo']:.2f}×)",
                flush=True,
            )


def zoo_forward(bundle: Bundle):
    """The zoo's float EfficientNet-Lite0 (random weights: only its time counts), or None."""
    if not bundle.model.startswith("efficientnet-lite0"):
        return None
    try:
        from ternpynq.zoo.efficientnet import EfficientNetLite0, expected_shapes
    except ImportError:
        return None
    gen = torch.Generator().manual_seed(0)
    state = {k: torch.rand(shape, generator=gen) for k, shape in expected_shapes().items()}
    model = EfficientNetLite0(state).eval()
    return torch.inference_mode()(model)


def dw_form_rows(bundle: Bundle, batch: int, repeats: int, threads: int, clock) -> None:
    """The integer graph with each depthwise form, interleaved in one run, codes checked first."""
    codes = np.random.default_rng(0).integers(-128, 128, (batch, *bundle.layers[0].in_shape))
    codes = codes.astype(np.int8)
    expect = Network(bundle).run(codes)
    contenders = {}
    for form in DW_FORMS:
        session = onnxruntime.InferenceSession(
            to_onnx_integer(bundle, depthwise=form).SerializeToString(),
            session_options(threads),
            providers=["CPUExecutionProvider"],
            disabled_optimizers=DISABLED_OPTIMIZERS,
        )
        if not np.array_equal(expect, session.run(["output"], {"codes": codes})[0]):
            raise SystemExit(f"{bundle.model}: depthwise form {form} differs from emu; not timing")
        contenders[form] = lambda s=session: s.run(["output"], {"codes": codes})
    best = interleaved_best(contenders, repeats, clock)
    base = best[DW_FORMS[0]]
    for form, sec in best.items():
        print(
            f"| {bundle.model} | {batch} | {form} | {sec * 1e3 / batch:.1f} | {sec / base:.2f}× |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--prune", type=float, default=0.24)
    parser.add_argument("--bundle", nargs="*", default=[], help="bundle files to add as rows")
    parser.add_argument(
        "--profile", action="store_true", help="per-op onnxruntime profile of every model"
    )
    parser.add_argument("--no-resnet", action="store_true", help="only the --bundle rows")
    parser.add_argument(
        "--dw-forms", action="store_true", help="time each depthwise form on the --bundle files"
    )
    parser.add_argument("--threads", type=int, default=0, help="per contender; 0: every core")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: this process's CPU time, for a crowded machine with --threads 1",
    )
    args = parser.parse_args()
    threads = args.threads or len(os.sched_getaffinity(0))
    if args.clock == "cpu" and threads != 1:
        parser.error("--clock cpu adds up every thread's time: use it with --threads 1")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(threads)
    try:  # numpy's BLAS gets the same number of threads as the others
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:
        pass
    flags = sorted(set(re.findall(r"\b(avx512_vnni|amx_int8|avx_vnni)\b", _cpuinfo())))
    print(
        f"{platform.machine()}, {os.cpu_count()} cores ({', '.join(flags) or 'no VNNI/AMX'}), "
        f"load {os.getloadavg()[0]:.1f}, {args.clock} clock; "
        f"torch {torch.__version__} ({threads} threads), "
        f"numpy {np.__version__} (BLAS {_blas_threads()} threads), "
        f"onnxruntime {onnxruntime.__version__} ({threads} threads)"
    )
    print(
        "| model | batch | emu ms/img | int onnx ms/img | float onnx ms/img | torch ms/img "
        "| emu / torch | int onnx / torch | float / int onnx | emu == onnx |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    timing = (args.batch, args.repeats, threads, clock)
    models = []  # every model timed, for --profile
    if not args.no_resnet:
        models += [random_bundle("resnet18", prune=args.prune, seed=0)]
        rows(f"ResNet-18 224×224, {args.prune:.0%} pruned", models[-1], *timing)
        models += [random_bundle("resnet20", seed=1)]
        rows("ResNet-20 28×28", models[-1], *timing)
    from ternpynq.bundle.io import load

    bundles = [load(path) for path in args.bundle]
    models += bundles
    for bundle in bundles:
        rows(bundle.model, bundle, *timing)
    if args.dw_forms:
        print("| model | batch | depthwise form | int onnx ms/img | / first form |")
        print("|---|---:|---|---:|---:|")
        for bundle in bundles:
            for n in args.batch:
                dw_form_rows(bundle, n, args.repeats, threads, clock)
    print(f"load after: {os.getloadavg()[0]:.1f}")
    if args.profile:  # with the contenders' thread count, at batch 8
        for target in models:
            shape = (8, *target.layers[0].in_shape)
            codes = np.random.default_rng(0).integers(-128, 128, shape).astype(np.int8)
            for graph in ("int", "float"):
                print("\n".join(op_profile(target, graph, codes, threads)))


def _blas_threads() -> str:
    try:
        from threadpoolctl import threadpool_info

        return ",".join(str(info["num_threads"]) for info in threadpool_info()) or "?"
    except ImportError:
        return "?"


def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


if __name__ == "__main__":
    main()
