"""Start-up: how long from starting each entry point to its first answer, and its peak memory.

    $ python -m benchmarks.bench_startup               # 5 fresh starts of each, the bundled model
    $ python -m benchmarks.bench_startup --rounds 3

Each is a fresh process, timed from `Popen` until it has answered one text:
- `python app_gradio.py`: until `/classify` answers through Gradio's HTTP API;
- `python app_flask.py`: until `POST /api/predict` answers;
- `python -m emotion_core predict TEXT`: until it exits.
Peak memory is the process's VmHWM once it has answered (the command: its rusage at exit).
Each runs with the default engine (ONNX int8, which needs neither torch nor transformers) and,
as the baseline in the same run, with `EMOTION_ENGINE=torch`, which loads what every start
loaded before: torch, transformers and the PyTorch model.
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine
from tests.helpers import ROOT, free_port

TEXT = "i feel great"
DEADLINE_S = 120


def peak_mb(pid: int) -> float:
    """A running process's peak resident memory (VmHWM)."""
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def answered(port: int, app: str) -> bool:
    """Whether the server on `port` answers one text now (False while it is not listening yet)."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        if app == "flask":
            connection.request("POST", "/api/predict", json.dumps({"text": TEXT}), {"Content-Type": "application/json"})
            return connection.getresponse().status == 200
        connection.request("POST", "/gradio_api/call/classify", json.dumps({"data": [TEXT]}),
                           {"Content-Type": "application/json"})
        response = connection.getresponse()
        if response.status != 200:
            return False
        connection.request("GET", f"/gradio_api/call/classify/{json.loads(response.read())['event_id']}")
        return "event: complete" in connection.getresponse().read().decode()
    except (ConnectionError, OSError):
        return False


def start_server(app: str, env: dict) -> tuple[float, float]:
    """Seconds from start to the first answer, and peak MB, of one fresh server."""
    port = free_port()
    if app == "flask":
        command = [sys.executable, "app_flask.py", "--port", str(port)]
    else:
        command = [sys.executable, "app_gradio.py"]
        env = {**env, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            while not answered(port, app):
                if process.poll() is not None or time.perf_counter() - start > DEADLINE_S:
                    log.seek(0)
                    raise RuntimeError(f"{app} did not answer: {log.read().decode()[-2000:]}")
                time.sleep(0.02)
            return time.perf_counter() - start, peak_mb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)


def run_command(env: dict) -> tuple[float, float]:
    """Seconds and peak MB of one `python -m emotion_core predict TEXT`."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "emotion_core", "predict", TEXT], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"emotion predict failed: {process.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def measure(what: str, engine: str | None, rounds: int) -> dict:
    """Median seconds and median peak MB of `rounds` fresh starts."""
    env = {key: value for key, value in os.environ.items() if key != "EMOTION_ENGINE"}
    env |= {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False",
            "EMOTION_FEEDBACK_DB": str(Path(tempfile.gettempdir()) / "bench-startup-feedback.db")}
    if engine:
        env["EMOTION_ENGINE"] = engine
    runs = [run_command(env) if what == "predict" else start_server(what, env) for _ in range(rounds)]
    return {"seconds": statistics.median(s for s, _ in runs), "mb": statistics.median(m for _, m in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{machine()}; medians of {args.rounds} fresh starts\n")
    names = {"gradio": "python app_gradio.py", "flask": "python app_flask.py", "predict": f"emotion predict {TEXT!r}"}
    print("| entry point | to first answer (s) | peak MB | with EMOTION_ENGINE=torch (s) | peak MB | × faster |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for what, name in names.items():
        default, torch = measure(what, None, args.rounds), measure(what, "torch", args.rounds)
        print(f"| {name} | {default['seconds']:.2f} | {default['mb']:,.0f} | {torch['seconds']:.2f} | {torch['mb']:,.0f} | "
              f"{torch['seconds'] / default['seconds']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
