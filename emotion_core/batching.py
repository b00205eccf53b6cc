"""Dynamic batching for servers: texts that arrive together go through the model in one call.

A forward pass of sixteen short texts costs little more than one, so a server answering each
request alone makes requests queue for the model that could have shared it. `Batcher` keeps a
thread that takes the waiting texts, up to `max_batch`, and runs them as one batch, the way model
servers do (Triton's dynamic batching, Ray Serve's `@serve.batch`). A request that is alone in
flight runs at once; only when others are in flight does the thread wait, at most `max_wait_s`,
for them to arrive.
"""

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from queue import Empty, SimpleQueue


class Batcher:
    """Answer `submit(text)` from batched calls of `predict_batch(texts) -> answers`, one answer per text."""

    def __init__(self, predict_batch: Callable[[list[str]], list], max_batch: int = 16, max_wait_s: float = 0.002):
        self.predict_batch, self.max_batch, self.max_wait_s = predict_batch, max_batch, max_wait_s
        self.waiting: SimpleQueue[tuple[str, Future]] = SimpleQueue()
        self.in_flight = 0  # submitted and not yet answered
        self.lock = threading.Lock()
        self.sizes: Counter[int] = Counter()  # how many batches of each size ran, for tests and the benchmark
        threading.Thread(target=self.run, name="batcher", daemon=True).start()

    def submit(self, text: str):
        """The answer for one text; raises what `predict_batch` raised for its batch."""
        future: Future = Future()
        with self.lock:
            self.in_flight += 1
        self.waiting.put((text, future))
        try:
            return future.result()
        finally:
            with self.lock:
                self.in_flight -= 1

    def run(self) -> None:
        """Forever: take the next text, gather those in flight with it, answer them all from one call."""
        while True:
            batch = self.gather(self.waiting.get())
            try:
                answers = self.predict_batch([text for text, _ in batch])
                if len(answers) != len(batch):
                    raise RuntimeError(f"the model gave {len(answers)} answers for {len(batch)} texts")
            except Exception as exc:  # every request of the batch gets the error, and the thread serves on
                for _, future in batch:
                    future.set_exception(exc)
                continue
            self.sizes[len(batch)] += 1
            for (_, future), answer in zip(batch, answers):
                future.set_result(answer)

    def gather(self, first: tuple[str, Future]) -> list[tuple[str, Future]]:
        """`first` and the texts of the other requests in flight, as many as arrive within max_wait_s."""
        batch = [first]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            with self.lock:
                others = self.in_flight - len(batch)
            try:
                batch.append(self.waiting.get_nowait() if others <= 0 else
                             self.waiting.get(timeout=max(0.0, deadline - time.monotonic())))
            except Empty:
                break
        return batch
