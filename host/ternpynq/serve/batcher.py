"""Dynamic batching: images from concurrent requests share one backend call.

Request threads put their images on a queue (one entry per request, split at the maximum
batch) and wait. A worker takes the first entry, gathers more until the batch is full or a
short window has passed, runs them as one batch and hands each request its rows. The backends
are exact integer networks, so a row of a batch is bit-identical to the same image run alone
(tests/serve/test_batcher.py).

Two workers take turns, so the next batch is gathered while one runs: the window's wait costs
the backend nothing. The batcher is still the backend's only caller, one batch at a time,
except that a backend in a child process (``start``, ``serve/worker.py``) is sent the next
batch while it computes one. It starts it as soon as it is done, without waiting for the
server's threads, whose GIL is busy with HTTP and decoding (docs/serving.md).

The window adapts to the load. While requests come one at a time it is the configured few
milliseconds. Once batches have held several requests, clients answered together come back
together but spread out in time, and a window that closes too early splits off the late ones
into an extra backend call. So the window stretches to what such a call recently cost: the
cheapest backend call among the recent ones (at most ``MAX_WINDOW_S``). Waiting that long
costs no more than the split it avoids. A backend whose small batches are cheap (time grows
with the images, with little fixed cost) keeps a short window; one with a large fixed cost
per call (the board's driver, an overhead-bound emulator) waits longer. Gathering stops early
once as many requests have arrived as were recently in play (in a batch or queued behind it).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent import futures as cf

import numpy as np

RESULT_TIMEOUT_S = 120.0  # a backend stuck this long is reported as unavailable (503)
MAX_WINDOW_S = 0.5


class Batcher:
    """Run ``run`` on batches of at most ``max_batch`` images from concurrent ``submit`` calls.

    ``start``, where given, replaces ``run``: it queues a batch on the backend and returns the
    function that waits for its output, so the next batch is queued while this one computes.
    """

    def __init__(
        self,
        run: Callable[[np.ndarray], np.ndarray],
        max_batch: int = 16,
        window_s: float = 0.002,
        adaptive: bool = True,
        start: Callable[[np.ndarray], Callable[[], np.ndarray]] | None = None,
    ) -> None:
        if max_batch < 1 or not 0 <= window_s <= 1:
            raise ValueError("need max_batch >= 1 and a window of 0 to 1 s")
        self.start = start or _at_once(run)
        self.max_batch = max_batch
        self.window_s = window_s
        self.adaptive = adaptive
        self.batch_sizes: deque[int] = deque(maxlen=1000)  # images per backend call, recent
        self._requests: deque[int] = deque(maxlen=4)  # requests in play per call, recent
        self._timings: deque[tuple[int, float]] = deque(maxlen=64)  # (images, seconds)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._held = None  # an entry that did not fit the previous batch
        self._closed = False
        self._gathering, self._sending, self._receiving = (threading.Lock() for _ in range(3))
        self._answered = 0.0  # perf_counter when the last batch was answered
        self._workers = [
            threading.Thread(target=self._loop, name=f"ternpynq-batcher-{i}", daemon=True)
            for i in range(2)
        ]
        for worker in self._workers:
            worker.start()

    def submit(self, codes: np.ndarray) -> np.ndarray:
        """(N, C, H, W) input codes -> (N, K) outputs, run within shared batches."""
        if self._closed:
            raise OSError("the batcher is closed")
        pending = []
        for start in range(0, len(codes), self.max_batch):
            future: cf.Future = cf.Future()
            self._queue.put((codes[start : start + self.max_batch], future))
            pending.append(future)
        try:
            parts = [f.result(timeout=RESULT_TIMEOUT_S) for f in pending]
        except cf.TimeoutError:  # not the built-in TimeoutError before Python 3.11
            raise TimeoutError(
                f"the backend did not answer within {RESULT_TIMEOUT_S:.0f} s"
            ) from None
        return np.concatenate(parts)

    def close(self) -> None:
        """Stop the worker after the images already queued have run."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            for worker in self._workers:
                worker.join(timeout=RESULT_TIMEOUT_S)

    def _window(self) -> tuple[float, int]:
        """How long to gather, and after how many requests to stop early."""
        expected = max(self._requests, default=1)
        if expected <= 1 or not self.adaptive:
            return self.window_s, expected
        return max(self.window_s, min(MAX_WINDOW_S, self.split_cost())), expected

    def split_cost(self) -> float:
        """Seconds of the cheapest recent backend call: what splitting off a straggler costs."""
        return min((seconds for _, seconds in self._timings), default=0.0)

    def _gather(self) -> list | None:
        """Block for one entry, then take more until the batch is full or the window closes."""
        first, self._held = (self._held, None) if self._held else (self._queue.get(), None)
        if first is None:
            return None
        batch, size = [first], len(first[0])
        window, expected = self._window()
        deadline = time.monotonic() + window
        while size < self.max_batch and not (expected > 1 and len(batch) >= expected):
            try:
                entry = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if entry is None:  # close() was called: finish this batch, then stop
                self._queue.put(None)
                break
            if size + len(entry[0]) > self.max_batch:
                self._held = entry  # starts the next batch
                break
            batch.append(entry)
            size += len(entry[0])
        return batch

    def _loop(self) -> None:
        while True:
            with self._gathering:  # one gatherer at a time
                batch = self._gather()
                if batch is None:
                    self._queue.put(None)  # the other worker stops too
                    return
                # how many requests are in play: this batch and those already queued behind it
                waiting = len(batch) + self._queue.qsize() + (self._held is not None)
                self._sending.acquire()  # before the next gatherer can: batches go in order
            sent = self._send(batch)
            if sent is not None:
                try:
                    self._receive(batch, waiting, *sent)
                finally:
                    self._receiving.release()

    def _send(self, batch: list) -> tuple[Callable[[], np.ndarray], float] | None:
        """Start ``batch`` (``_sending`` held, and released here); returns its wait function and
        start time with ``_receiving`` held, or None once the batch has the backend's error."""
        try:
            codes = np.concatenate([chunk for chunk, _ in batch])  # (B, C, H, W)
            started = time.perf_counter()
            try:
                wait = self.start(codes)
            except BaseException as exc:
                self._fail(batch, exc)
                return None
            self._receiving.acquire()  # answers are awaited in the order sent
            return wait, started
        finally:
            self._sending.release()

    def _receive(self, batch: list, waiting: int, wait: Callable, started: float) -> None:
        try:
            out = wait()
        except BaseException as exc:
            self._fail(batch, exc)
            return
        done = time.perf_counter()
        # the backend's own time: from when it could start (sent, or the batch before it
        # answered) to the answer
        self._timings.append((len(out), done - max(started, self._answered)))
        self._answered = done
        self._requests.append(waiting)
        self.batch_sizes.append(len(out))
        row = 0
        for chunk, future in batch:
            future.set_result(out[row : row + len(chunk)])
            row += len(chunk)

    @staticmethod
    def _fail(batch: list, exc: BaseException) -> None:
        for _, future in batch:  # every waiting request gets the backend's error
            future.set_exception(exc)


def _at_once(run: Callable[[np.ndarray], np.ndarray]) -> Callable:
    """``run`` as a ``start`` that has computed the batch when it returns."""

    def start(codes: np.ndarray) -> Callable[[], np.ndarray]:
        out = run(codes)
        return lambda: out

    return start
