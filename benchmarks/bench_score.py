"""The `score` command on a big generated CSV: rows/s and peak memory, against a tenth of the file.

    $ python -m benchmarks.bench_score [--rows 1000000]

Rows are texts of the emotion test split with an id and a note column, every 500th text empty.
Each run is the real command (`python -m emotion_core score`) in its own process; peak memory is
that process's maximum resident set. The baseline is the same command on rows/10: a flat peak
means memory does not grow with the file.
"""

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine, peak_rss_mb, test_split
from tests.helpers import ROOT


def write_csv(path: Path, rows: int) -> None:
    texts, _ = test_split()
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", "note"])
        for i in range(rows):
            writer.writerow([i, "" if i % 500 == 0 else texts[i % len(texts)], f"row {i}"])


def score_here(path: str) -> None:
    """Run the score command in this process; print seconds and this process's peak memory."""
    from emotion_core.cli import main as cli

    start = time.perf_counter()
    assert cli(["score", path, "-o", str(Path(path).with_suffix(".out.csv")), "--quiet"]) == 0
    print(json.dumps({"seconds": time.perf_counter() - start,
                      "peak_mb": peak_rss_mb()}))


def score(path: Path) -> tuple[float, float]:
    """Seconds and peak MB of one `score` run, in a fresh process."""
    result = subprocess.run([sys.executable, "-m", "benchmarks.bench_score", "--one", str(path)], cwd=ROOT, check=True,
                            capture_output=True, text=True)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    return figures["seconds"], figures["peak_mb"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return score_here(args.one)
    print(f"machine: {machine()}")
    print("| rows | file MB | seconds | rows/s | peak MB |\n| ---: | ---: | ---: | ---: | ---: |")
    peaks = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in (args.rows // 10, args.rows):
            path = Path(tmp) / f"rows{rows}.csv"
            write_csv(path, rows)
            seconds, peak = score(path)
            peaks.append(peak)
            print(f"| {rows:,} | {path.stat().st_size / 1e6:.0f} | {seconds:.0f} | {rows / seconds:.0f} | {peak:.0f} |")
            path.unlink()
            path.with_suffix(".out.csv").unlink()
    print(f"\npeak memory, {args.rows:,} rows vs {args.rows // 10:,}: {peaks[1] / peaks[0]:.2f}x")


if __name__ == "__main__":
    main()
