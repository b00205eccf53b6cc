"""Dynamic batching: texts in flight together share one model call; a lone text never waits."""

import threading
import time

from emotion_core.batching import Batcher


class SlowModel:
    """A stand-in for the model that takes a while per call and records every batch it is given."""

    def __init__(self, seconds: float = 0.05):
        self.seconds, self.calls = seconds, []

    def __call__(self, texts: list[str]) -> list[str]:
        self.calls.append(list(texts))
        time.sleep(self.seconds)
        if "boom" in texts:
            raise ValueError("the model failed")
        return [text.upper() for text in texts]


def submit_all(batcher: Batcher, texts: list[str]) -> list:
    answers = [None] * len(texts)

    def one(i: int) -> None:
        try:
            answers[i] = batcher.submit(texts[i])
        except ValueError as exc:
            answers[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_concurrent_texts_share_batches_and_each_gets_its_own_answer():
    model = SlowModel()
    batcher = Batcher(model, max_batch=8, max_wait_s=0.01)
    texts = [f"text {i}" for i in range(32)]
    assert submit_all(batcher, texts) == [t.upper() for t in texts]
    assert sorted(t for call in model.calls for t in call) == sorted(texts)  # each text once
    assert max(len(call) for call in model.calls) == 8 and len(model.calls) <= 8  # 32 texts in a few calls, none over 8


def test_a_lone_text_does_not_wait_for_company():
    model = SlowModel(seconds=0)
    batcher = Batcher(model, max_batch=16, max_wait_s=0.5)
    start = time.perf_counter()
    assert batcher.submit("alone") == "ALONE"
    assert time.perf_counter() - start < 0.1  # far under max_wait_s
    assert model.calls == [["alone"]]


def test_an_error_reaches_every_request_of_its_batch_and_the_batcher_serves_on():
    model = SlowModel()
    batcher = Batcher(model, max_batch=4, max_wait_s=0.05)
    answers = submit_all(batcher, ["a", "boom", "c"])
    failed = [a for a in answers if isinstance(a, ValueError)]
    assert failed and all(str(a) == "the model failed" for a in failed)
    assert batcher.submit("still serving") == "STILL SERVING"


def test_the_flask_api_batches_concurrent_single_texts(tiny_neutral_model):
    from app_flask import create_app

    app = create_app({"TESTING": True, "MODEL": str(tiny_neutral_model), "BATCH_WAIT_MS": 5})
    client_texts = ["i feel so furious today", "i feel so happy today", "i feel so lonely"] * 8
    answers = [None] * len(client_texts)

    def one(i: int) -> None:
        answers[i] = app.test_client().post("/api/predict", json={"text": client_texts[i]}).get_json()["emotion"]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(client_texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == ["anger", "joy", "sadness"] * 8
    sizes = app.extensions["batcher"].sizes
    assert sum(size * n for size, n in sizes.items()) == len(client_texts)
    assert max(sizes) > 1  # requests in flight together shared a call
