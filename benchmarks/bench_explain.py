"""Explanations: are they faithful, and are they fast enough for a CPU demo?

    $ python -m benchmarks.bench_explain                  # 500 test texts, k = 1, 2, 3, both modes
    $ python -m benchmarks.bench_explain --texts 100      # quicker

Faithfulness: for each of the first --texts texts of the emotion test split, delete (or mask) the
k words the explanation ranks highest, and compare the fall in the predicted emotion's
probability with the mean fall over 10 seeded draws of k random words. Targets: the top-k fall
at least twice the random fall, and larger than it on at least 70% of texts.

Speed: predict plus explain for 30-word texts (test texts of 30 words or more, cut to 30), one
call at a time; target p95 at most 300 ms. The model is the bundled one with the default engine.
"""

import argparse
import statistics
import time

import numpy as np

from benchmarks.common import machine, test_split
from emotion_core import Classifier
from emotion_core.explain import explain, faithfulness

LATENCY_CALLS = 100


def latency(classifier: Classifier, texts: list[str]) -> list[float]:
    """Milliseconds for predict + explain of 30-word texts, one call each (as the apps do it: one `explain`,
    whose probabilities come from the same forward pass)."""
    long = [" ".join(t.split()[:30]) for t in texts if len(t.split()) >= 30]
    explain(classifier, long[0])  # warm-up
    times = []
    for text in (long * (LATENCY_CALLS // len(long) + 1))[:LATENCY_CALLS]:
        start = time.perf_counter()
        explain(classifier, text)  # its probabilities are the prediction
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=500, help="test texts for the faithfulness check")
    parser.add_argument("--draws", type=int, default=10, help="random draws of k words per text")
    parser.add_argument("--model", help="model folder (default: the bundled model)")
    args = parser.parse_args()
    classifier = Classifier.from_pretrained(args.model)
    texts, _ = test_split()
    print(f"machine: {machine()}\nmodel: {classifier.name}, engine {classifier.engine.name}, "
          f"temperature {classifier.calibration.temperature:.3f}; {args.texts} test texts, {args.draws} random draws per text and k\n")
    print("| mode | k | texts | top-k fall | random fall | ratio (target ≥ 2) | top-k > random (target ≥ 70%) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode in ("delete", "mask"):
        start = time.perf_counter()
        report = faithfulness(classifier, texts[:args.texts], ks=(1, 2, 3), mode=mode, draws=args.draws)
        for k, r in report.items():
            print(f"| {mode} | {k} | {r['texts']} | {r['top_fall']:.4f} | {r['random_fall']:.4f} | {r['ratio']:.1f} | "
                  f"{r['beats_random']:.1%} |")
        print(f"<!-- {mode}: {time.perf_counter() - start:.0f} s -->")
    times = latency(classifier, texts)
    print(f"\npredict + explain, 30-word text, {len(times)} calls: p50 {statistics.median(times):.1f} ms, "
          f"p95 {np.percentile(times, 95):.1f} ms, p99 {np.percentile(times, 99):.1f} ms (target: p95 ≤ 300 ms)")


if __name__ == "__main__":
    main()
