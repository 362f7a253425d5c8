"""The emulator in a child process: the same answers as in-process, and failures as 503s."""

from __future__ import annotations

import io
import os
import signal
import threading

import numpy as np
import pytest

import ternpynq
from ternpynq.runtime import backends
from ternpynq.runtime.preprocess import preprocess
from ternpynq.serve import create_app, worker
from ternpynq.serve.worker import ProcessBackend


@pytest.fixture
def child():
    backend = ProcessBackend(ternpynq.load(ternpynq.DEFAULT_MODEL), "emu")
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def samples():
    bundle = ternpynq.load(ternpynq.DEFAULT_MODEL)
    paths = sorted(ternpynq.SAMPLES_DIR.glob("*.png"))
    codes = np.stack([preprocess(p.read_bytes(), bundle.input) for p in paths])
    emu = backends.create("emu", bundle)
    try:
        return codes, emu.run(codes)
    finally:
        emu.close()


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_answers_are_bit_identical_to_the_emulator_in_process(child, samples):
    codes, expect = samples
    out = child.run(codes)
    assert out.dtype == expect.dtype and np.array_equal(out, expect)
    assert np.array_equal(child.run(codes[3:4]), expect[3:4])  # batch of one, same row


def test_a_wrong_shape_is_a_value_error_and_the_child_lives_on(child, samples):
    codes, expect = samples
    with pytest.raises(ValueError, match="shape"):
        child.run(np.zeros((2, 3, 5, 5), np.int8))
    assert np.array_equal(child.run(codes), expect)


def test_a_child_that_dies_mid_batch_is_an_os_error_then_restarted(child, samples, monkeypatch):
    codes, expect = samples
    first = child._child
    first.kill()  # not collected: to the server it looks alive until the batch fails
    monkeypatch.setattr(first, "poll", lambda: None)  # as if it died after the liveness check
    with pytest.raises(OSError, match="exited"):
        child.run(codes)
    assert np.array_equal(child.run(codes), expect)
    assert child._child is not first


def test_a_child_that_stops_answering_is_a_timeout_and_is_killed(child, samples, monkeypatch):
    codes, expect = samples
    monkeypatch.setattr(worker, "ANSWER_TIMEOUT_S", 0.5)
    pid = child._child.pid
    os.kill(pid, signal.SIGSTOP)
    with pytest.raises(TimeoutError, match="did not answer"):
        child.run(codes)
    assert pid_gone(pid)
    assert np.array_equal(child.run(codes), expect)


def test_a_backend_the_child_cannot_open_fails_at_start(tiny_bundle):
    with pytest.raises(OSError, match="emu backend: TypeError"):
        ProcessBackend(tiny_bundle, "emu", no_such_option=1)


def test_the_child_runs_the_servers_bundle_not_a_file(resnet20_bundle):
    # a bundle that was never saved: the child gets its bytes, so a restart after the file
    # on disk changed still runs the model the server labels with
    codes = np.random.default_rng(0).integers(-128, 128, (3, 1, 28, 28), dtype=np.int8)
    emu = backends.create("emu", resnet20_bundle)
    backend = ProcessBackend(resnet20_bundle, "emu")
    try:
        assert np.array_equal(backend.run(codes), emu.run(codes))
    finally:
        backend.close()
        emu.close()


def test_close_ends_the_child(samples):
    backend = ProcessBackend(ternpynq.load(ternpynq.DEFAULT_MODEL), "emu")
    child = backend._child
    backend.close()
    assert child.returncode == 0 and pid_gone(child.pid)


def test_the_service_runs_emu_in_a_child_and_says_503_when_it_dies(samples, monkeypatch):
    app = create_app({"TESTING": True, "MODEL": str(ternpynq.DEFAULT_MODEL)})
    client = app.test_client()
    png = sorted(ternpynq.SAMPLES_DIR.glob("*.png"))[0].read_bytes()

    def classify():
        return client.post("/v1/classify?top=1", data={"image": (io.BytesIO(png), "a.png")})

    assert classify().status_code == 200
    backend = app.extensions["ternpynq"]().backend
    assert isinstance(backend, ProcessBackend)
    first = backend._child
    first.kill()
    monkeypatch.setattr(first, "poll", lambda: None)
    reply = classify()
    assert reply.status_code == 503 and "exited" not in reply.get_data(as_text=True)
    assert classify().get_json()["results"][0]["top"][0]["index"] == int(samples[1][0].argmax())


def test_backend_process_off_keeps_emu_in_the_server(samples):
    app = create_app(
        {"TESTING": True, "MODEL": str(ternpynq.DEFAULT_MODEL), "BACKEND_PROCESS": False}
    )
    clf = app.extensions["ternpynq"]()
    assert not isinstance(clf.backend, ProcessBackend) and clf.backend_name == "emu"
    assert np.array_equal(clf.backend.run(samples[0]), samples[1])


def test_a_batch_sent_while_one_computes_is_answered_in_order(child, samples):
    codes, expect = samples
    first, second = child.send(codes[:6]), child.send(codes[6:])
    assert np.array_equal(first(), expect[:6]) and np.array_equal(second(), expect[6:])


def test_a_child_that_dies_with_two_batches_queued_fails_both_then_restarts(child, samples):
    codes, expect = samples
    os.kill(child._child.pid, signal.SIGSTOP)  # both batches are still queued when it dies
    first, second = child.send(codes), child.send(codes)
    child._child.kill()
    for wait in (first, second):
        with pytest.raises(OSError, match="exited"):
            wait()
    assert np.array_equal(child.run(codes), expect)


def test_a_batch_sent_after_a_death_waits_for_the_old_batches_then_restarts(child, samples):
    codes, expect = samples
    os.kill(child._child.pid, signal.SIGSTOP)
    first = child.send(codes)
    child._child.kill()
    child._child.wait()  # dead before the next send looks
    failed = []
    waiter = threading.Timer(0.3, lambda: failed.append(pytest.raises(OSError, first)))
    waiter.start()  # the old batch's waiter comes late, as a batcher's can
    assert np.array_equal(child.run(codes), expect)  # not a 503: it waited, then restarted
    waiter.join()
    assert failed and "exited" in str(failed[0].value)
