"""Load on both apps, as users run them: each server in its own process, bounded traffic on loopback.

    $ python -m benchmarks.load_test                     # 2,000 Flask requests at concurrency 16, 500 Gradio jobs from 8 clients
    $ python -m benchmarks.load_test --flask 200 --gradio 50

Flask: `python app_flask.py` (waitress) answers POST /api/predict with one text each. Gradio:
`python app_gradio.py` answers `gradio_client` jobs on /classify, each client in its own thread.
Texts cycle through the emotion test split. Prints requests, errors, p50/p99 latency and
throughput; tests/test_reliability.py runs the same functions in CI.
"""

import argparse
import json
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from benchmarks.common import machine, test_split
from tests.helpers import flask_server, gradio_server


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
        answer = local.client.predict(texts[i % len(texts)], api_name="/classify")
        probs = answer["probabilities"]
        if answer.get("message") is None and (len(probs) < 2 or abs(sum(probs.values()) - 1) > 1e-3):  # a message: not English
            raise RuntimeError(f"unexpected answer {answer!r}")

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
