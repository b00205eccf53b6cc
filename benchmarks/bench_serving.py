"""The Flask JSON API and the Gradio /classify endpoint with single texts batched together, against each request
run alone.

    $ python -m benchmarks.bench_serving                  # Flask at concurrency 16, Gradio from 8 clients, 15 s, 3 rounds
    $ python -m benchmarks.bench_serving --seconds 5 --rounds 1 --apps gradio

Each configuration is `python app_flask.py` (waitress, 16 threads, bundled model) on a loopback
port: batched (the default) and unbatched (EMOTION_BATCHING=false, EMOTION_MAX_BUSY=2, the
server as it was). `wrk` (Debian's package) sends POST /api/predict with one short text; then
200 requests one at a time give a lone request's latency. Rounds alternate the two servers.

Gradio: `python app_gradio.py` batched (the default, Gradio's own batching of up to 16 requests)
and unbatched (EMOTION_MAX_BATCHED=1); 8 client threads call /classify through Gradio's HTTP API
(join, then read the event stream: a light client, so the server's cost is what is measured),
then 50 calls one at a time.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from urllib.parse import urlparse

from benchmarks.common import machine, test_split
from tests.helpers import flask_server, gradio_server

CONFIGS = {"batched": {}, "unbatched": {"EMOTION_BATCHING": "false", "EMOTION_MAX_BUSY": "2"}}
GRADIO_CONFIGS = {"batched": {}, "unbatched": {"EMOTION_MAX_BATCHED": "1"}}
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


def gradio_job(connection: http.client.HTTPConnection, body: str) -> None:
    """One /classify call through Gradio's HTTP API: join the queue, then read the answer's event stream."""
    connection.request("POST", "/gradio_api/call/classify", body, {"Content-Type": "application/json"})
    event = json.loads(connection.getresponse().read())["event_id"]
    connection.request("GET", f"/gradio_api/call/classify/{event}")
    answer = connection.getresponse().read().decode()
    if "event: complete" not in answer:
        raise RuntimeError(f"/classify failed: {answer[:500]}")


def gradio_load(url: str, seconds: int, clients: int, body: str) -> dict:
    """Jobs/s of `clients` threads calling /classify back to back, then a lone call's median milliseconds."""
    address = urlparse(url)
    done: list[int] = []

    def client() -> None:
        connection, jobs, end = http.client.HTTPConnection(address.hostname, address.port), 0, time.monotonic() + seconds
        while time.monotonic() < end:
            gradio_job(connection, body)
            jobs += 1
        connection.close()
        done.append(jobs)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(done) < clients:
        raise RuntimeError(f"{clients - len(done)} of the {clients} clients failed (their error is above)")
    connection, times = http.client.HTTPConnection(address.hostname, address.port), []
    for _ in range(50):
        start = time.perf_counter()
        gradio_job(connection, body)
        times.append((time.perf_counter() - start) * 1000)
    connection.close()
    return {"jobs": sum(done) / seconds, "lone_p50": statistics.median(times)}


def flask_table(args, text: str) -> None:
    """Print the Flask table: both servers under wrk, rounds alternating, medians."""
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
    print(f"Flask /api/predict under wrk: {args.connections} connections, {args.seconds} s, medians of {args.rounds} rounds\n")
    print("| server | requests/s | × unbatched | p50 ms | p99 ms | errors | lone request p50 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, m in median.items():
        print(f"| {name} | {m['rps']:.0f} | {m['rps'] / median['unbatched']['rps']:.2f} | {m['p50']:.1f} | {m['p99']:.1f} | "
              f"{m['errors']:.0f} | {m['lone_p50']:.2f} |")


def gradio_table(args, text: str) -> None:
    """Print the Gradio table: both servers under the client threads, rounds alternating, medians."""
    body = json.dumps({"data": [text]})
    runs: dict[str, list[dict]] = {name: [] for name in GRADIO_CONFIGS}
    for _ in range(args.rounds):
        for name, env in GRADIO_CONFIGS.items():
            with gradio_server(env={**os.environ, **env}) as url:
                gradio_load(url, 2, args.clients, body)  # warm-up
                runs[name].append(gradio_load(url, args.seconds, args.clients, body))
    median = {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for name, rs in runs.items()}
    print(f"\nGradio /classify from {args.clients} clients, {args.seconds} s, medians of {args.rounds} rounds\n")
    print("| server | jobs/s | × unbatched | lone call p50 ms |\n| --- | ---: | ---: | ---: |")
    for name, m in median.items():
        print(f"| {name} | {m['jobs']:.1f} | {m['jobs'] / median['unbatched']['jobs']:.2f} | {m['lone_p50']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15, help="seconds per load run (default 15)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per configuration (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections to Flask (default 16)")
    parser.add_argument("--clients", type=int, default=8, help="client threads calling Gradio (default 8)")
    parser.add_argument("--apps", nargs="+", choices=["flask", "gradio"], default=["flask", "gradio"], help="which apps (default both)")
    args = parser.parse_args()
    if "flask" in args.apps and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    text = test_split()[0][0]
    print(f"machine: {machine()}\none {len(text.split())}-word text per request\n")
    if "flask" in args.apps:
        flask_table(args, text)
    if "gradio" in args.apps:
        gradio_table(args, text)


if __name__ == "__main__":
    main()
