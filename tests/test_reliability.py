"""Reliability: load on both production servers, overload answered with "busy", killed jobs that lose nothing.

The servers run as users run them (`python app_flask.py`, `python app_gradio.py`), each in its
own process on loopback; the load functions are benchmarks/load_test.py's, so CI measures what
docs/reliability.md reports.
"""

import json
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

from benchmarks.load_test import flask_load, gradio_load
from emotion_core.labels import KNOWN_LABELS
from tests.helpers import ROOT, flask_server, free_port, gradio_server, post_json, toy_rows

# ----------------------------------------------------------------------------- load

@pytest.mark.slow
def test_flask_2000_requests_at_concurrency_16_without_an_error():
    with flask_server() as url:
        result = flask_load(url, total=2000, concurrency=16)
    print(f"\nFlask: {result}")
    assert result["errors"] == 0, result["error_samples"]
    assert result["p99_ms"] < 5000


@pytest.mark.slow
def test_gradio_500_jobs_from_8_clients_without_an_error():
    with gradio_server() as url:
        result = gradio_load(url, total=500, clients=8)
    print(f"\nGradio: {result}")
    assert result["errors"] == 0, result["error_samples"]
    assert result["p99_ms"] < 10000


# ----------------------------------------------------------------------------- overload

def test_overloaded_flask_answers_503_and_keeps_serving(tiny_model_dir):
    from waitress.server import create_server

    from app_flask import create_app

    app = create_app({"MODEL": str(tiny_model_dir), "MAX_BUSY": 1, "BUSY_WAIT_S": 0.01})
    server = create_server(app, host="127.0.0.1", port=0, threads=8)
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{server.effective_port}/api/predict"
    slow = {"texts": [" ".join(["i feel happy today"] * 10)] * 64, "explain": True}  # long enough to hold the slot
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(post_json(url, slow))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    busy = [a for a in answers if a[0] == 503]
    assert busy and any(a[0] == 200 for a in answers)
    status, body, headers = busy[0]
    assert body == {"error": "The server is busy; try again in a moment."} and headers["Retry-After"] == "1"
    assert post_json(url, {"text": "still serving"})[0] == 200
    server.close()


def test_full_gradio_queue_answers_busy_and_keeps_serving():
    import importlib

    from gradio_client import Client

    sys.modules.pop("app_gradio", None)
    app = importlib.import_module("app_gradio")
    app.demo.queue(default_concurrency_limit=1, max_size=2)  # tiny, so a burst overflows it
    port = free_port()
    app.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        long_text = " ".join(["i feel happy and relaxed today"] * 60)
        jobs = [client.submit(long_text, api_name="/explain") for _ in range(24)]
        outcomes = []
        for job in jobs:
            try:
                job.result(timeout=120)
                outcomes.append("ok")
            except Exception as exc:  # the client raises QueueError for a full queue
                outcomes.append(str(exc))
        assert "ok" in outcomes and "Queue is full! Please try again." in outcomes
        assert len(client.predict("still serving", api_name="/classify")["probabilities"]) == len(KNOWN_LABELS)
    finally:
        app.demo.close()
        sys.modules.pop("app_gradio", None)


# ----------------------------------------------------------------------------- faults

def wait_for(predicate, timeout_s: float = 300, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_training_killed_mid_run_resumes_to_a_complete_model(tmp_path, tiny_base_dir, toy_dir):
    from emotion_core import Classifier, train

    out = tmp_path / "model"
    args = ["--base-model", str(tiny_base_dir), "--data", str(toy_dir), "--output-dir", str(out), "--batch-size", "16",
            "--learning-rate", "3e-3", "--warmup-ratio", "0", "--max-length", "32", "--epochs", "30"]
    checkpoints = tmp_path / "model.checkpoints"
    process = subprocess.Popen([sys.executable, "train.py", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:  # kill it once a second checkpoint is complete: mid-run, with something to resume from
        wait_for(lambda: (checkpoints / "checkpoint-38" / "trainer_state.json").is_file() or process.poll() is not None,
                 what="the second checkpoint")
        assert process.poll() is None, "training ended before it could be killed"
        time.sleep(0.5)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        process.kill()
    assert not out.exists(), "a killed run leaves no model folder"
    done = sorted(int(p.name.split("-")[1]) for p in checkpoints.glob("checkpoint-*"))
    assert done and max(done) < 570  # 19 steps an epoch, 30 epochs
    metrics = train.main([*args, "--resume"])
    state = json.loads((checkpoints / "checkpoint-570" / "trainer_state.json").read_text())
    assert state["global_step"] == 570 and min(h["step"] for h in state["log_history"] if "eval_accuracy" in h) == 19
    for name in ("model.safetensors", "model.onnx", "metrics.json", "calibration.json", "README.md", "config.json"):
        assert (out / name).is_file(), name
    assert metrics["test"]["accuracy"] > 0.8 and Classifier.from_pretrained(out).labels == ["sadness", "joy", "anger"]


def test_score_killed_mid_file_leaves_nothing_at_the_destination(tmp_path, tiny_model_dir):
    src, dst = tmp_path / "big.csv", tmp_path / "scored.csv"
    rows = [text for text, _ in toy_rows(1000, seed=5)]
    pd.DataFrame({"text": rows * 30}).to_csv(src, index=False)  # 30,000 rows, 6 chunks: long enough to kill mid-way
    command = [sys.executable, "-m", "emotion_core", "score", str(src), "-o", str(dst), "--model", str(tiny_model_dir),
               "--quiet"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = lambda: [p for p in tmp_path.glob(".scored.csv.tmp-*") if p.stat().st_size > 0]  # noqa: E731
    try:
        wait_for(lambda: partial() or process.poll() is not None, what="the first scored chunk")
        assert process.poll() is None, "scoring ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        process.kill()
    assert not dst.exists() and partial(), "the partial output stays under its temporary name"
    # the next run finishes the job and clears what the killed one left behind
    subprocess.run(command, cwd=ROOT, check=True, timeout=600)
    assert len(pd.read_csv(dst)) == 30_000 and not list(tmp_path.glob(".scored.csv.tmp-*"))


def test_refusing_hub_fails_fast_and_clearly_and_never_prints_the_token(monkeypatch, capsys, caplog):
    """A Hub that answers 401 to everything (a loopback server standing in for it); HF_TOKEN is set."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import huggingface_hub.constants

    from emotion_core import Classifier, EmotionCoreError
    from emotion_core.hub import push_model
    from emotion_core.space import deploy_space

    secret, sent = "hf_thisIsNotARealTokenButMustNeverBePrinted", []

    class Refuse(BaseHTTPRequestHandler):
        def refuse(self):
            sent.append(self.headers.get("Authorization", ""))
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": "Invalid credentials in Authorization header"}')

        do_GET = do_HEAD = do_POST = do_PUT = refuse

        def log_message(self, *args):
            pass

    hub = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{hub.server_port}"
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", endpoint)  # as HF_ENDPOINT would set them at import
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_TOKEN", secret)
    try:
        start = time.monotonic()
        with pytest.raises(EmotionCoreError) as err:
            push_model(ROOT / "models" / "emotion-minilm", "someone/emotion-model")
        assert time.monotonic() - start < 30
        assert str(err.value) == ("Could not push to someone/emotion-model: the Hub refused the request (HTTP 401): "
                                  "check HF_TOKEN or run `hf auth login`.")
        start = time.monotonic()
        with pytest.raises(EmotionCoreError, match=r"Could not load model 'someone/emotion-model': the Hub refused the "
                                                   r"request \(HTTP 401\)"):
            Classifier.from_pretrained("someone/emotion-model")
        assert time.monotonic() - start < 30
        with pytest.raises(EmotionCoreError, match="Could not deploy the Space someone/emotion: the Hub refused"):
            deploy_space("someone/emotion")
    finally:
        hub.shutdown()
    assert f"Bearer {secret}" in sent  # the token was used...
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err + caplog.text  # ...and never shown


def test_unreachable_hub_fails_fast_on_every_path(monkeypatch, tmp_path, toy_dir):
    """No HF_HUB_OFFLINE and a Hub whose name does not resolve: what an offline laptop sees."""
    import huggingface_hub.constants

    from emotion_core import Classifier, EmotionCoreError, train
    from emotion_core.hub import push_model
    from emotion_core.space import deploy_space

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "https://hub.invalid")
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        "https://hub.invalid/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    paths = {
        "model": (lambda: Classifier.from_pretrained("someone/emotion-model"), "Could not load model 'someone/emotion-model'"),
        "base model": (lambda: train.main(["--data", str(toy_dir), "--output-dir", str(tmp_path / "m")]),
                       "Could not load base model 'distilbert-base-uncased'"),
        "data set": (lambda: train.main(["--base-model", "minilm", "--output-dir", str(tmp_path / "m")]),
                     "Could not load data set 'dair-ai/emotion'"),
        "push": (lambda: push_model(toy_dir, "someone/emotion-model"), "Could not push to someone/emotion-model"),
        "deploy": (lambda: deploy_space("someone/emotion"), "Could not deploy the Space someone/emotion"),
    }
    for name, (call, message) in paths.items():
        start = time.monotonic()
        with pytest.raises(EmotionCoreError) as err:
            call()
        assert time.monotonic() - start < 10, name
        assert str(err.value).startswith(message) and "the Hub (hub.invalid) could not be reached" in str(err.value), name
