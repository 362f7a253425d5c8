"""Serving throughput: `ternpynq serve` on loopback against the same backend in-process.

Starts the server as a subprocess, then for each (clients, images per request) pair keeps that
many keep-alive HTTP clients busy for a fixed time and records images/s and the p50/p99
request latency. The in-process reference classifies the same images with ``Classifier``
(decode, preprocess, backend, top-k) in batches of the size the server can gather: clients ×
images per request, capped at the server's maximum batch. The two alternate for a few rounds
in one invocation, so a change in the machine's load hits both alike; the absolute figures
depend on the machine and its load.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/serve_load.py --seconds 5 --rounds 2

On a shared or busy machine set OPENBLAS_NUM_THREADS=1 (inherited by the server): numpy's
threaded BLAS under oversubscription made ``emu`` 10-20x slower in our runs.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

import ternpynq
from ternpynq.bundle import load
from ternpynq.runtime.classifier import Classifier
from ternpynq.serve.app import PROCESS_BACKENDS

SAMPLES = Path(ternpynq.__file__).parent / "models" / "samples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def multipart(images: list[bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{i}.png"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + data
        + b"\r\n"
        for i, data in enumerate(images)
    ]
    return b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    if args.workers:  # the scale-out of docs/serving.md: gunicorn, one batcher per worker
        config = {
            "MODEL": str(args.model),
            "BACKEND": args.backend,
            "MAX_BATCH": args.max_batch,
            "BATCH_WINDOW_MS": args.window_ms,
            "BATCH_ADAPTIVE": not args.fixed_window,
            "BACKEND_PROCESS": not args.in_process_backend,
        }
        cmd = [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "-k", "gthread"]
        cmd += [
            "--threads",
            "16",
            "-b",
            f"127.0.0.1:{port}",
            f"ternpynq.serve:create_app({config!r})",
        ]
    else:
        cmd = [sys.executable, "-m", "ternpynq.cli", "serve", "--model", str(args.model)]
        cmd += ["--backend", args.backend, "--port", str(port)]
        cmd += ["--max-batch", str(args.max_batch), "--batch-window-ms", str(args.window_ms)]
        cmd += ["--threads", "32"] + (["--fixed-window"] if args.fixed_window else [])
        cmd += ["--no-backend-process"] if args.in_process_backend else []
        cmd += [] if args.request_nice is None else ["--request-nice", str(args.request_nice)]
    # a file, not a pipe: waitress warns on every queued request, and a full pipe that nobody
    # reads stops the server
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - open as long as the server runs
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            if proc.poll() is not None:
                log.seek(0)
                raise SystemExit(f"server failed: {log.read()}") from None
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start within 120 s")


def load_run(port: int, clients: int, per_request: int, seconds: float, images: list[bytes]):
    """Keep ``clients`` connections busy for ``seconds``; returns (img/s, latencies in s)."""
    latencies: list[float] = []
    errors: list[str] = []
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine = []
        i = k
        while time.monotonic() < stop:
            batch = [images[(i + j) % len(images)] for j in range(per_request)]
            i += per_request
            body, kind = multipart(batch)
            start = time.perf_counter()
            conn.request("POST", "/v1/classify?top=1", body, {"Content-Type": kind})
            reply = conn.getresponse()
            reply.read()
            mine.append(time.perf_counter() - start)
            if reply.status != 200:
                errors.append(str(reply.status))
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    begin = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - begin
    if errors:
        raise SystemExit(f"{len(errors)} requests failed: {sorted(set(errors))}")
    return len(latencies) * per_request / elapsed, np.asarray(latencies)


def in_process_rate(clf: Classifier, images: list[bytes], batch: int, seconds: float) -> float:
    """Images/s of Classifier.classify on batches of ``batch`` encoded images."""
    clf.classify(images[:batch], top=1)  # warm
    done, i = 0, 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        chunk = [images[(i + j) % len(images)] for j in range(batch)]
        clf.classify(chunk, top=1)
        done += batch
        i += batch
    return done / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ternpynq.DEFAULT_MODEL)
    parser.add_argument("--backend", default="emu")
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="alternations per case")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--window-ms", type=float, default=2.0)
    parser.add_argument("--fixed-window", action="store_true", help="no adaptive stretching")
    parser.add_argument(
        "--in-process-backend",
        action="store_true",
        help="run the backend in the server's process (serve --no-backend-process)",
    )
    parser.add_argument(
        "--request-nice", type=int, help="serve --request-nice (default: the server's)"
    )
    parser.add_argument(
        "--workers", type=int, default=0, help="serve with gunicorn and this many workers"
    )
    parser.add_argument(
        "--cases", default="1x1,4x1,16x1,1x16", help="clients x images per request, comma-separated"
    )
    args = parser.parse_args()
    images = [p.read_bytes() for p in sorted(SAMPLES.glob("*.png"))]
    cases = [tuple(int(v) for v in c.split("x")) for c in args.cases.split(",")]
    clf = Classifier(load(args.model), backend=args.backend)
    port = free_port()
    proc = start_server(args, port)
    rows = []
    try:
        load_run(port, 1, 1, 1.0, images)  # warm the server
        for clients, per_request in cases:
            batch = min(clients * per_request, args.max_batch)
            # alternate the two, so a change in the machine's load hits both alike
            refs, rates, lats = [], [], []
            for _ in range(args.rounds):
                refs.append(in_process_rate(clf, images, batch, args.seconds))
                rate, lat = load_run(port, clients, per_request, args.seconds, images)
                rates.append(rate)
                lats.append(lat)
            reference, rate, lat = float(np.mean(refs)), float(np.mean(rates)), np.concatenate(lats)
            p50, p99 = (float(np.percentile(lat, q)) * 1000 for q in (50, 99))
            rows.append((clients, per_request, batch, rate, reference, p50, p99))
            print(
                f"{clients:>2} clients x {per_request:>2} img: {rate:7.1f} img/s "
                f"(in-process batch {batch}: {reference:7.1f} img/s, "
                f"ratio {rate / reference:.2f}), "
                f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (p99/p50 {p99 / p50:.2f})",
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        clf.close()
    child = args.backend in PROCESS_BACKENDS and not args.in_process_backend
    print(
        f"\nbackend {args.backend}, window {args.window_ms} ms "
        f"({'fixed' if args.fixed_window else 'adaptive'}), max batch {args.max_batch}, "
        f"{args.rounds} x {args.seconds} s per side and case, {len(images)} sample PNGs, "
        f"{f'gunicorn -w {args.workers}' if args.workers else 'ternpynq serve'}, "
        f"backend in {'a child' if child else 'the server'} process, "
        f"request nice {'default' if args.request_nice is None else args.request_nice}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )
    print(
        "| clients × images | in-process batch | server img/s | in-process img/s | ratio | "
        "p50 ms | p99 ms | p99/p50 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for c, n, b, rate, ref, p50, p99 in rows:
        print(
            f"| {c} × {n} | {b} | {rate:.1f} | {ref:.1f} | {rate / ref:.2f} | {p50:.1f} | "
            f"{p99:.1f} | {p99 / p50:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
