"""Single-request latency of the Flask JSON API behind waitress, measured over loopback.

    $ python benchmarks/bench_flask_latency.py [--requests 200]

Starts the production server (`python app_flask.py`) on a free 127.0.0.1 port with the bundled
model, sends one short text per request, one request at a time, and prints p50/p90/p99.
"""

import argparse
import json
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT = "i feel like a new person after a good night of sleep"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, body: bytes) -> float:
    """One POST, timed in milliseconds."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    return (time.perf_counter() - start) * 1000


def wait_until_up(base: str, proc: subprocess.Popen) -> None:
    while True:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=2).read()
            return
        except OSError:
            if proc.poll() is not None:
                sys.exit("the server exited before answering")
            time.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests (default 200)")
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "app_flask.py", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(base, proc)
        body = json.dumps({"text": TEXT}).encode()
        for _ in range(10):  # warm-up
            call(f"{base}/api/predict", body)
        times = sorted(call(f"{base}/api/predict", body) for _ in range(args.requests))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    q = statistics.quantiles(times, n=100)
    print(f"machine: {platform.processor() or platform.machine()}, {__import__('os').cpu_count()} CPUs, Python {platform.python_version()}")
    print("| endpoint | requests | p50 ms | p90 ms | p99 ms | max ms |\n| --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| POST /api/predict (one {len(TEXT.split())}-word text) | {len(times)} | {statistics.median(times):.1f} | "
          f"{q[89]:.1f} | {q[98]:.1f} | {times[-1]:.1f} |")


if __name__ == "__main__":
    main()
