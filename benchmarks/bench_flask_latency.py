"""Single-request latency of the Flask JSON API behind waitress, measured over loopback.

    $ python -m benchmarks.bench_flask_latency [--requests 200]

Starts the production server (`python app_flask.py`) on a free 127.0.0.1 port with the bundled
model, sends one short text per request, one request at a time, and prints p50/p90/p99.
"""

import argparse
import json
import statistics
import time
import urllib.request

from benchmarks.common import machine
from tests.helpers import flask_server

TEXT = "i feel like a new person after a good night of sleep"


def call(url: str, body: bytes) -> float:
    """One POST, timed in milliseconds."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests (default 200)")
    args = parser.parse_args()
    body = json.dumps({"text": TEXT}).encode()
    with flask_server() as base:
        for _ in range(10):  # warm-up
            call(f"{base}/api/predict", body)
        times = sorted(call(f"{base}/api/predict", body) for _ in range(args.requests))
    q = statistics.quantiles(times, n=100)
    print(f"machine: {machine()}")
    print("| endpoint | requests | p50 ms | p90 ms | p99 ms | max ms |\n| --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| POST /api/predict (one {len(TEXT.split())}-word text) | {len(times)} | {statistics.median(times):.1f} | "
          f"{q[89]:.1f} | {q[98]:.1f} | {times[-1]:.1f} |")


if __name__ == "__main__":
    main()
