"""Dynamic batching: shared batches, answers bit-identical to running each image alone."""

import io
import queue
import threading
import time
from concurrent import futures as cf

import numpy as np
import pytest
from PIL import Image
from serve_harness import Peak

from ternpynq.runtime.classifier import Classifier
from ternpynq.runtime.network import Network
from ternpynq.runtime.preprocess import preprocess
from ternpynq.serve import create_app
from ternpynq.serve.batcher import Batcher


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def run_clients(client, count: int) -> None:
    """Run client(0) .. client(count - 1) in threads at once and wait for all of them."""
    threads = [threading.Thread(target=client, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)


def codes_for(bundle, seeds) -> np.ndarray:
    return np.stack([preprocess(png(s), bundle.input) for s in seeds])  # (N, C, H, W)


def test_concurrent_submissions_share_batches_and_match_single_runs(resnet20_bundle):
    net = Network(resnet20_bundle)
    codes = codes_for(resnet20_bundle, range(24))
    alone = np.concatenate([net.run(codes[i : i + 1]) for i in range(len(codes))])
    started = threading.Barrier(12)
    batcher = Batcher(net.run, max_batch=8, window_s=0.05)
    got: dict[int, np.ndarray] = {}

    def client(i: int) -> None:
        started.wait()
        got[i] = batcher.submit(codes[2 * i : 2 * i + 2])

    run_clients(client, 12)
    batcher.close()
    assert np.array_equal(np.concatenate([got[i] for i in range(12)]), alone)
    assert len(batcher.batch_sizes) < 12  # requests really were gathered together


def test_images_of_one_request_form_one_batch(resnet20_bundle):
    net = Network(resnet20_bundle)
    codes = codes_for(resnet20_bundle, range(16))
    batcher = Batcher(net.run, max_batch=16, window_s=0.01)
    out = batcher.submit(codes)
    batcher.close()
    assert list(batcher.batch_sizes) == [16]
    assert np.array_equal(out, np.concatenate([net.run(c[None]) for c in codes]))


def test_backend_errors_reach_every_waiting_request():
    def broken(codes):
        raise OSError("device lost")

    batcher = Batcher(broken, max_batch=4, window_s=0.0)
    with pytest.raises(OSError, match="device lost"):
        batcher.submit(np.zeros((3, 1, 2, 2), np.int8))
    batcher.close()
    with pytest.raises(OSError, match="closed"):
        batcher.submit(np.zeros((1, 1, 2, 2), np.int8))


def test_http_answers_equal_classifying_alone(resnet20_path, resnet20_bundle):
    app = create_app({"MODEL": str(resnet20_path), "MAX_BATCH": 8, "BATCH_WINDOW_MS": 20})
    reference = Classifier(resnet20_bundle, backend="emu")
    expect = {s: reference.classify([png(s)], top=10)[0] for s in range(8)}
    started = threading.Barrier(8)
    replies: dict[int, list] = {}

    def client(seed: int) -> None:
        started.wait()
        reply = app.test_client().post(
            "/v1/classify?top=10", data=png(seed), content_type="image/png"
        )
        replies[seed] = reply.get_json()["results"][0]["top"]

    run_clients(client, 8)
    for seed, preds in expect.items():
        assert replies[seed] == [vars(p) for p in preds]  # labels and probabilities, exactly
    many = app.test_client().post(
        "/v1/classify?top=10", data={"image": [(io.BytesIO(png(s)), f"{s}.png") for s in range(8)]}
    )
    assert [r["top"] for r in many.get_json()["results"]] == [
        [vars(p) for p in expect[s]] for s in range(8)
    ]


def test_large_requests_are_split_and_reassembled_in_order():
    def run(codes):  # row i of the output identifies input image i
        return codes.reshape(len(codes), -1)[:, :1].astype(np.int64)

    batcher = Batcher(run, max_batch=4, window_s=0.0)
    codes = np.arange(10, dtype=np.int8).reshape(10, 1, 1, 1)
    out = batcher.submit(codes)
    batcher.close()
    assert np.array_equal(out[:, 0], np.arange(10))
    assert list(batcher.batch_sizes) == [4, 4, 2]


def test_window_stretches_for_clients_that_return_spread_out():
    def slow(codes):  # a backend whose cost does not depend on the batch size
        time.sleep(0.4)
        return codes.reshape(len(codes), -1)[:, :1]

    batcher = Batcher(slow, max_batch=16, window_s=0.001)
    start = threading.Barrier(4)

    def client(k: int) -> None:
        start.wait()
        for _ in range(6):
            batcher.submit(np.full((1, 1, 1, 1), k, np.int8))
            time.sleep(0.015 * k)  # answered together, back 0-45 ms apart

    run_clients(client, 4)
    batcher.close()
    # a fixed 1 ms window would split every round into 1 + 3; the stretched one keeps 4
    assert list(batcher.batch_sizes)[-3:] == [4, 4, 4], list(batcher.batch_sizes)


@pytest.mark.parametrize(
    ("per_call", "per_image", "low", "high"), [(0.4, 0.0, 0.35, 1.0), (0.0, 0.02, 0.015, 0.2)]
)
def test_split_cost_is_the_cheapest_recent_call(per_call, per_image, low, high):
    def run(codes):
        time.sleep(per_call + per_image * len(codes))
        return codes.reshape(len(codes), -1)[:, :1]

    batcher = Batcher(run, max_batch=16, window_s=0.0)
    assert batcher.split_cost() == 0.0  # no evidence yet: the window stays short
    for n in (8, 4, 1):
        batcher.submit(np.zeros((n, 1, 1, 1), np.int8))
    batcher.close()
    assert low <= batcher.split_cost() <= high


def test_a_plain_backend_never_runs_two_batches_at_once():
    # the board's driver and the in-process backends are called one batch at a time, though
    # the next batch is gathered while one runs
    running = Peak()

    def run(codes):
        with running:
            time.sleep(0.02)
        return codes.reshape(len(codes), -1)[:, :1]

    batcher = Batcher(run, max_batch=4, window_s=0.001)
    each_gets_its_own_row(batcher)
    assert running.most == 1 and len(batcher.batch_sizes) > 1


def test_a_pipelined_backend_gets_the_next_batch_while_it_computes_one():
    # a device that runs what it is sent in order, like the server's child process
    sent: queue.SimpleQueue = queue.SimpleQueue()
    in_flight = Peak()

    def device() -> None:
        while (job := sent.get()) is not None:
            codes, answer = job
            time.sleep(0.02)
            answer.set_result(codes.reshape(len(codes), -1)[:, :1])

    def start(codes):
        in_flight.__enter__()  # left when its answer is collected
        answer = cf.Future()
        sent.put((codes, answer))

        def wait():
            out = answer.result(timeout=10)
            in_flight.__exit__()
            return out

        return wait

    threading.Thread(target=device, daemon=True).start()
    batcher = Batcher(None, max_batch=4, window_s=0.001, start=start)
    each_gets_its_own_row(batcher)
    sent.put(None)
    assert in_flight.most == 2  # the next batch was queued while one computed, and no more


def each_gets_its_own_row(batcher: Batcher) -> None:
    """8 clients submit 5 images each, one at a time; each answer is that image's row (the
    test backends answer with an image's first code). Closes ``batcher``."""
    got: dict[tuple[int, int], np.ndarray] = {}

    def client(k: int) -> None:
        for i in range(5):
            got[k, i] = batcher.submit(np.full((1, 1, 1, 1), 10 * k + i, np.int8))

    run_clients(client, 8)
    batcher.close()
    assert all(out[0, 0] == 10 * k + i for (k, i), out in got.items()) and len(got) == 40
