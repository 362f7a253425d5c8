"""Dynamic batching: images from concurrent requests share one backend call.

Request threads put single images on a queue and wait. One worker thread, the only caller of
the backend in the process, takes the first waiting image, gathers more until the batch is
full or a short window has passed since the first one arrived, runs them as one batch and
hands each row back to its request. The backends are exact integer networks, so a row of a
batch is bit-identical to the same image run alone (tests/serve/test_batcher.py asserts it).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent import futures as cf

import numpy as np

RESULT_TIMEOUT_S = 120.0  # a backend stuck this long is reported as unavailable (503)


class Batcher:
    """Run ``run`` on batches of at most ``max_batch`` images gathered within ``window_s``."""

    def __init__(
        self,
        run: Callable[[np.ndarray], np.ndarray],
        max_batch: int = 16,
        window_s: float = 0.002,
    ) -> None:
        if max_batch < 1 or not 0 <= window_s <= 1:
            raise ValueError("max_batch must be >= 1 and the window 0 to 1 s")
        self.run = run
        self.max_batch = max_batch
        self.window_s = window_s
        self.batches = 0  # how many backend calls were made (for tests and monitoring)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._worker = threading.Thread(target=self._loop, name="ternpynq-batcher", daemon=True)
        self._worker.start()

    def submit(self, codes: np.ndarray) -> np.ndarray:
        """(N, C, H, W) input codes -> (N, K) outputs, run within shared batches."""
        if self._closed:
            raise OSError("the batcher is closed")
        futures = []
        for image in codes:
            future: cf.Future = cf.Future()
            self._queue.put((image, future))
            futures.append(future)
        try:
            rows = [f.result(timeout=RESULT_TIMEOUT_S) for f in futures]
        except cf.TimeoutError:  # not the built-in TimeoutError before Python 3.11
            raise TimeoutError(
                f"the backend did not answer within {RESULT_TIMEOUT_S:.0f} s"
            ) from None
        return np.stack(rows)

    def close(self) -> None:
        """Stop the worker after the images already queued have run."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._worker.join(timeout=RESULT_TIMEOUT_S)

    def _gather(self) -> list | None:
        """Block for one image, then take more until the batch is full or the window closes."""
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.monotonic() + self.window_s
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is None:  # close() was called: finish this batch, then stop
                self._queue.put(None)
                break
            batch.append(item)
        return batch

    def _loop(self) -> None:
        while (batch := self._gather()) is not None:
            codes = np.stack([image for image, _ in batch])  # (B, C, H, W)
            try:
                out = self.run(codes)
            except BaseException as exc:  # every waiting request gets the backend's error
                for _, future in batch:
                    future.set_exception(exc)
                continue
            self.batches += 1
            for (_, future), row in zip(batch, out, strict=True):
                future.set_result(row)
