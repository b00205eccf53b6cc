"""The Flask JSON API with single texts batched together, against each request run alone, under `wrk`.

    $ python -m benchmarks.bench_serving                  # concurrency 16, 15 s, 3 rounds each
    $ python -m benchmarks.bench_serving --seconds 5 --rounds 1

Each configuration is `python app_flask.py` (waitress, 16 threads, bundled model) on a loopback
port: batched (the default) and unbatched (EMOTION_BATCHING=false, EMOTION_MAX_BUSY=2, the
server as it was). `wrk` (Debian's package) sends POST /api/predict with one short text; then
200 requests one at a time give a lone request's latency. Rounds alternate the two servers.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request

from benchmarks.common import machine, test_split
from tests.helpers import flask_server

CONFIGS = {"batched": {}, "unbatched": {"EMOTION_BATCHING": "false", "EMOTION_MAX_BUSY": "2"}}
SCRIPT = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = {body}\n'


def wrk(url: str, seconds: int, connections: int, body: str) -> dict:
    """Requests/s and latency percentiles of one wrk run."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(SCRIPT.format(body=json.dumps(body)))
    try:
        out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url],
                             capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    percentile = {p: to_ms(v, unit) for p, v, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|Socket errors: .*?timeout) (\d+)", out))
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": percentile["50"],
            "p99": percentile["99"], "errors": errors}


def to_ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def lone_p50(url: str, body: bytes, requests: int = 200) -> float:
    """Median milliseconds of one request at a time."""
    times = []
    for _ in range(requests):
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        start = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15, help="seconds per wrk run (default 15)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per configuration (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    text = test_split()[0][0]
    body = json.dumps({"text": text})
    runs: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    for _ in range(args.rounds):
        for name, env in CONFIGS.items():
            with flask_server(threads=16, env=env) as url:
                lone_p50(f"{url}/api/predict", body.encode(), requests=20)  # warm-up
                result = wrk(f"{url}/api/predict", args.seconds, args.connections, body)
                result["lone_p50"] = lone_p50(f"{url}/api/predict", body.encode())
                runs[name].append(result)
    median = {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for name, rs in runs.items()}
    print(f"machine: {machine()}\nwrk: {args.connections} connections, {args.seconds} s, medians of {args.rounds} rounds; "
          f"one {len(text.split())}-word text per request\n")
    print("| server | requests/s | × unbatched | p50 ms | p99 ms | errors | lone request p50 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, m in median.items():
        print(f"| {name} | {m['rps']:.0f} | {m['rps'] / median['unbatched']['rps']:.2f} | {m['p50']:.1f} | {m['p99']:.1f} | "
              f"{m['errors']:.0f} | {m['lone_p50']:.2f} |")


if __name__ == "__main__":
    main()
