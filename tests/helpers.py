"""What the tests and the benchmarks share: paths, free ports, the apps launched as users run them, toy data.

Both import it as a package (`from tests.helpers import ...`): pytest puts the project root on the
path (pytest.ini), and the benchmarks run from it as modules (`python -m benchmarks.load_test`).
"""

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the tests that kill workers have psutil (requirements-dev); the benchmarks need not
    import psutil

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SHARED_EMOTION = SHARED_DATA / "emotion"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_json(url: str, body, timeout_s: float = 60) -> tuple[int, dict, dict]:
    """POST `body` as JSON; the status, the decoded answer and the headers, for errors too."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, json.load(response), dict(response.headers)
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.load(err), dict(err.headers)


@contextmanager
def server(command: list[str], ready_url: str, env: dict | None = None, cwd: Path = ROOT, timeout_s: float = 120):
    """Start a server process, wait until `ready_url` answers, stop it afterwards.

    Its output goes to a file, not a pipe: a pipe nobody reads fills up and blocks the server's logging.
    """
    log = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(command, cwd=cwd, env=env or dict(os.environ), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(ready_url, timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"server did not start: {log.read()[-2000:]}") from None
                time.sleep(0.3)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@contextmanager
def flask_server(threads: int = 8, model: str | Path | None = None, env: dict | None = None):
    """`python app_flask.py` (waitress) on a free loopback port, with `model` or else the bundled one, and `env`
    added to the environment; yields its URL."""
    port = free_port()
    command = [sys.executable, "app_flask.py", "--port", str(port), "--threads", str(threads)]
    with server(command + (["--model", str(model)] if model else []), f"http://127.0.0.1:{port}/healthz",
                env={**os.environ, **(env or {})}):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def gradio_server(cwd: Path = ROOT, env: dict | None = None):
    """`python app_gradio.py` in `cwd` on a free loopback port; yields its URL.

    `env` replaces the environment (to leave out PYTHONPATH or EMOTION_MODEL, say); the server settings are added.
    """
    port = free_port()
    env = {**(os.environ if env is None else env), "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False"}
    with server([sys.executable, "app_gradio.py"], f"http://127.0.0.1:{port}/", env=env, cwd=cwd):
        yield f"http://127.0.0.1:{port}/"


# A separable toy task: each label has its own cue words; filler words are shared.
CUES = {
    "sadness": ["sad", "lonely", "gloomy", "miserable", "heartbroken"],
    "joy": ["happy", "delighted", "cheerful", "glad", "thrilled"],
    "anger": ["furious", "angry", "annoyed", "irritated", "outraged"],
}
FILLER = ["i", "feel", "today", "really", "so", "at", "work", "the", "weather", "and", "my", "friends", "very", "now"]
NEUTRAL_CUES = ["quick", "brown", "fox", "jumps", "lazy", "dog"]  # words the tiny tokenizer knows, no label's own


def toy_rows(n: int, seed: int) -> list[tuple[str, str]]:
    """`n` (text, label) pairs where one cue word gives the label away."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = list(CUES)[i % len(CUES)]
        words = rng.sample(FILLER, 5) + [rng.choice(CUES[label])]
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


def neutral_toy_rows(n: int, seed: int) -> list[tuple[str, str]]:
    """The toy task with a fourth label, neutral: its rows have a NEUTRAL_CUES word and no emotion cue.

    Every row ends in a full stop, "!" or nothing, so punctuation tells no label.
    """
    rng = random.Random(seed)
    rows = toy_rows(n - n // 4, seed)
    for _ in range(n // 4):
        words = rng.sample(FILLER, 5) + [rng.choice(NEUTRAL_CUES)]
        rng.shuffle(words)
        rows.append((" ".join(words), "neutral"))
    rng.shuffle(rows)
    return [(text + rng.choice(["", ".", "!"]), label) for text, label in rows]


def write_txt(path: Path, rows: list[tuple[str, str]]) -> Path:
    """Write rows as `text;label` lines."""
    path.write_text("".join(f"{text};{label}\n" for text, label in rows))
    return path


def bundled_engine() -> str:
    """The engine `auto` picks for the bundled model: its int8 export if it has one, else its fp32 export."""
    from emotion_core.config import BUNDLED_MODEL
    from emotion_core.model_folder import INT8_ONNX

    return "onnx-int8" if (BUNDLED_MODEL / INT8_ONNX).is_file() else "onnx"


def screenshot_path(tmp_path: Path, name: str) -> Path:
    """Where a browser test saves its screenshot: docs/NAME with EMOTION_WRITE_SCREENSHOTS=1 (to redo the README's
    pictures), else a temporary folder, so that a test run never rewrites a tracked file."""
    if os.environ.get("EMOTION_WRITE_SCREENSHOTS") == "1":
        return ROOT / "docs" / name
    return tmp_path / name


def gradio_refusal(error: Exception) -> str:
    """What a Gradio endpoint said when it refused a call. /classify and /analyze check each text before it joins a
    batch and refuse a bad one with an HTTP 400 whose detail is the message; other endpoints raise gr.Error."""
    response = getattr(error, "response", None)
    return response.json()["detail"] if response is not None else str(error)


def kill_while_it_scores(job: subprocess.Popen, find: "Callable[[], psutil.Process | None]", timeout_s: float = 240) -> int | None:
    """Wait until `find` names the process a running `job` scores in, give it two seconds to score some batches,
    kill it, and return its pid (None if none was seen before the job ended or the time ran out)."""
    import psutil

    deadline = time.monotonic() + timeout_s
    while job.poll() is None and time.monotonic() < deadline:
        target = find()
        if target is not None:
            time.sleep(2)
            try:
                target.kill()
            except psutil.NoSuchProcess:  # that worker ended on its own (Ray replaces idle ones): find the next
                continue
            assert job.poll() is None, "the job ended before its worker could be killed"
            return target.pid
        time.sleep(0.2)
    return None
