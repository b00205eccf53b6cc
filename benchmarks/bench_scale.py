"""The same file through `score` on this machine, `score --on ray` and `score --on spark`: rows/s and peak memory.

    $ python -m benchmarks.bench_scale --rounds 3         # 100,000 rows of the emotion test texts, bundled model
    $ python -m benchmarks.bench_scale --rows 20000 --no-spark

Each run is the command a user types, in its own process; its wall time includes starting Ray or
Spark. Peak memory is the largest sum of resident memory over the command's whole process tree
(for Ray: the driver, the cluster it starts and its actors; for Spark: the driver, its JVM and
the Python workers), sampled every 0.2 s.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psutil

from benchmarks.common import machine, test_split
from tests.helpers import ROOT


def write_input(folder: Path, rows: int) -> None:
    """`rows` rows of the emotion test texts, repeated, with an id column: in.parquet for the clusters, in.csv for `score`."""
    texts, _ = test_split()
    frame = pd.DataFrame({"id": range(rows), "text": [texts[i % len(texts)] for i in range(rows)]})
    frame.to_parquet(folder / "in.parquet")
    frame.to_csv(folder / "in.csv", index=False)


def tree_rss_mb(process: psutil.Process) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:  # gone between listing and reading
            pass
    return total / 2**20


def run(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak tree memory of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watched, peak = psutil.Process(proc.pid), 0.0
    while proc.poll() is None:
        peak = max(peak, tree_rss_mb(watched))
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr.read()[-2000:]}")
    proc.stderr.close()
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the file (default 100,000)")
    parser.add_argument("--actors", type=int, nargs="+", default=[1], help="Ray actor counts to try (default: 1)")
    parser.add_argument("--no-spark", action="store_true", help="leave out the Spark run")
    parser.add_argument("--rounds", type=int, default=1, help="rounds, each running every command once (default 1)")
    args = parser.parse_args()
    runs: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        folder = Path(tmp)
        write_input(folder, args.rows)
        for _ in range(args.rounds):
            for name, command in commands(folder, args).items():
                runs.setdefault(name, []).append(run(command))
    median = {name: (statistics.median(s for s, _ in rs), max(p for _, p in rs)) for name, rs in runs.items()}
    local_rate = args.rows / median["score (local, streamed)"][0]
    print(f"machine: {machine()}\nrows: {args.rows:,}, bundled model, default engine; median seconds of {args.rounds} round(s), "
          "largest peak memory\n")
    print("| run | seconds | rows/s | × local | peak memory MB |\n| --- | ---: | ---: | ---: | ---: |")
    for name, (seconds, peak) in median.items():
        rate = args.rows / seconds
        print(f"| {name} | {seconds:.1f} | {rate:,.0f} | {rate / local_rate:.2f} | {peak:,.0f} |")


def commands(folder: Path, args) -> dict[str, list[str]]:
    """The commands of one round, as a user types them: `score` on the CSV, the clusters on the Parquet file."""
    base, source = [sys.executable, "-m", "emotion_core", "score"], str(folder / "in.parquet")
    runs = {"score (local, streamed)": [*base, str(folder / "in.csv"), "-o", str(folder / "local.csv"), "--quiet"]}
    for actors in args.actors:
        runs[f"score --on ray, {actors} actor(s)"] = [*base, source, "-o", str(folder / f"ray-{actors}.parquet"), "--on", "ray",
                                                      "--id-column", "id", "--actors", str(actors)]
    if not args.no_spark:
        runs["score --on spark, local[*]"] = [*base, source, "-o", str(folder / "spark.parquet"), "--on", "spark", "--id-column", "id"]
    return runs


if __name__ == "__main__":
    main()
