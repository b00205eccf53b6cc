"""Load on both apps, as users run them: each server in its own process, bounded traffic on loopback.

    $ python benchmarks/load_test.py                     # 2,000 Flask requests at concurrency 16, 500 Gradio jobs from 8 clients
    $ python benchmarks/load_test.py --flask 200 --gradio 50

Flask: `python app_flask.py` (waitress) answers POST /api/predict with one text each. Gradio:
`python app_gradio.py` answers `gradio_client` jobs on /classify, each client in its own thread.
Texts cycle through the emotion test split. Prints requests, errors, p50/p99 latency and
throughput; tests/test_reliability.py runs the same functions in CI.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, test_split  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(command: list[str], ready_url: str, env: dict | None = None, timeout_s: float = 120):
    """Start a server process, wait until `ready_url` answers, stop it afterwards.

    Its output goes to a file, not a pipe: a pipe nobody reads fills up and blocks the server's logging.
    """
    log = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
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
def flask_server(threads: int = 8):
    """`python app_flask.py` on a free loopback port; yields its base URL."""
    port = free_port()
    with server([sys.executable, "app_flask.py", "--port", str(port), "--threads", str(threads)],
                f"http://127.0.0.1:{port}/healthz"):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def gradio_server():
    """`python app_gradio.py` on a free loopback port; yields its URL."""
    port = free_port()
    env = {"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    with server([sys.executable, "app_gradio.py"], f"http://127.0.0.1:{port}/", env=env):
        yield f"http://127.0.0.1:{port}/"


def hammer(send: Callable[[int], None], total: int, concurrency: int) -> dict:
    """Call `send(i)` for i < total from `concurrency` threads; count errors, time every call."""
    latencies, errors, lock = [], [], threading.Lock()

    def one(i: int) -> None:
        start = time.perf_counter()
        try:
            send(i)
        except Exception as exc:  # every failure counts, whatever its kind
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
        with lock:
            latencies.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(total)))
    seconds = time.perf_counter() - start
    return {"requests": total, "concurrency": concurrency, "errors": len(errors), "error_samples": errors[:3],
            "p50_ms": statistics.median(latencies), "p99_ms": float(np.percentile(latencies, 99)),
            "seconds": seconds, "per_s": total / seconds}


def flask_load(url: str, total: int = 2000, concurrency: int = 16) -> dict:
    """POST one text per request to /api/predict; any status but 200 is an error."""
    texts = test_split()[0]

    def send(i: int) -> None:
        body = json.dumps({"text": texts[i % len(texts)]}).encode()
        request = urllib.request.Request(f"{url}/api/predict", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            if response.status != 200 or "emotion" not in json.load(response):
                raise RuntimeError(f"status {response.status}")

    return hammer(send, total, concurrency)


def gradio_load(url: str, total: int = 500, clients: int = 8) -> dict:
    """`total` /classify jobs from `clients` gradio_client clients, one per thread."""
    from gradio_client import Client

    texts, local = test_split()[0], threading.local()

    def send(i: int) -> None:
        if not hasattr(local, "client"):
            local.client = Client(url, verbose=False)
        probs = local.client.predict(texts[i % len(texts)], api_name="/classify")
        if len(probs) < 2 or abs(sum(probs.values()) - 1) > 1e-3:
            raise RuntimeError(f"unexpected answer {probs!r}")

    return hammer(send, total, clients)


def row(name: str, r: dict) -> str:
    """One markdown table row."""
    return (f"| {name} | {r['requests']:,} | {r['concurrency']} | {r['errors']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['per_s']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flask", type=int, default=2000, help="Flask requests (at concurrency 16)")
    parser.add_argument("--gradio", type=int, default=500, help="Gradio jobs (from 8 clients)")
    args = parser.parse_args()
    print(f"machine: {machine()}\n")
    print("| server | requests | concurrency | errors | p50 ms | p99 ms | requests/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    with flask_server() as url:
        print(row("Flask (waitress, 8 threads), POST /api/predict", flask_load(url, args.flask, 16)), flush=True)
    with gradio_server() as url:
        print(row("Gradio (queue: 2 at once, 64 waiting), /classify", gradio_load(url, args.gradio, 8)), flush=True)


if __name__ == "__main__":
    main()
