"""Inference speed on a CPU: every engine we ship against `transformers.pipeline`, same model, same run.

    $ python -m benchmarks.bench_inference                 # bundled model and a DistilBERT-size model
    $ python -m benchmarks.bench_inference --models bundled --rounds 5
    $ python -m benchmarks.bench_inference --models bundled --configs onnx-int8-in-turn onnx-int8

For each model: throughput on the 2,000 test texts, single-text latency p50/p99, peak memory,
labels identical to the fp32 reference, and test accuracy. Each round runs every configuration
once, each in a fresh process (so peak memory is its own); the table gives the median over
rounds of throughput and latency, and the highest peak. Interleaving the configurations spreads
the drift of a shared VM's speed over all of them instead of favouring whichever ran first.
The DistilBERT-size model has random weights (no DistilBERT weights
can be downloaded here): its speed is real, its accuracy is not.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine, peak_rss_mb, test_split
from tests.helpers import ROOT

CONFIGS = ("pipeline-bs1", "pipeline-bs32", "torch", "bf16", "onnx", "onnx-int8-in-turn", "onnx-int8", "auto")
REQUIRED = {"pipeline-bs1", "pipeline-bs32", "torch"}  # the baselines and the fp32 reference: always measured
LATENCY_CALLS = 200


def distilbert_size_model(folder: Path) -> Path:
    """A DistilBERT-base-shaped classifier (66 M parameters, random weights) with the bundled tokenizer."""
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertForSequenceClassification

    from emotion_core import EMOTION_LABELS
    from emotion_core.config import BUNDLED_MODEL
    from emotion_core.export import export_onnx

    tokenizer = AutoTokenizer.from_pretrained(BUNDLED_MODEL)
    config = DistilBertConfig(vocab_size=tokenizer.vocab_size, id2label=dict(enumerate(EMOTION_LABELS)),
                              label2id={n: i for i, n in enumerate(EMOTION_LABELS)})
    model = DistilBertForSequenceClassification(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    export_onnx(model, folder)
    return folder


def measure(model_dir: str, config: str, repeats: int) -> dict:
    """Run one configuration in this process and report its figures."""
    from emotion_core import Classifier

    texts, labels = test_split()
    engine = "torch" if config.startswith("pipeline") else config.removesuffix("-in-turn")
    classifier = Classifier.from_pretrained(model_dir, engine=engine)
    if config.startswith("pipeline"):
        from transformers import AutoTokenizer, pipeline

        pipe = pipeline("text-classification", model=classifier.model, tokenizer=AutoTokenizer.from_pretrained(classifier.files),
                        top_k=None,
                        device=-1)
        batch_size = int(config.removeprefix("pipeline-bs"))
        order = classifier.labels

        def run(batch):
            out = pipe(batch, batch_size=batch_size, truncation=True)
            return np.array([[{d["label"]: d["score"] for d in row}[name] for name in order] for row in out])
    elif config.endswith("-in-turn"):  # the engine's batches one after another on all cores, not side by side
        def run(batch):
            alone = getattr(classifier.engine, "alone", classifier.engine)
            logits = classifier.logits_of_ids(classifier.encode(batch), batch_size=alone.batch_size, engine=alone)
            return classifier.calibration.probabilities(logits)
    else:
        run = classifier.predict_proba
    run(texts)  # warm-up, untimed: oneDNN builds kernels for each new batch shape on first use
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        probs = run(texts)
        seconds.append(time.perf_counter() - start)
    latencies = []
    for text in texts[:LATENCY_CALLS]:
        start = time.perf_counter()
        run([text])
        latencies.append((time.perf_counter() - start) * 1000)
    predicted = [classifier.labels[i] for i in probs.argmax(axis=1)]
    return {
        "texts_per_s": len(texts) / statistics.median(seconds),
        "p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99)),
        "peak_mb": peak_rss_mb(),
        "accuracy": float(np.mean([p == y for p, y in zip(predicted, labels)])),
        "predicted": predicted, "engine": classifier.engine.name,
    }


def combine(runs: list[dict]) -> dict:
    """One configuration's rounds as one row: medians of speed and latency, the highest peak memory."""
    if "unavailable" in runs[0]:
        return runs[0]
    row = {key: statistics.median(r[key] for r in runs) for key in ("texts_per_s", "p50_ms", "p99_ms")}
    return runs[-1] | row | {"peak_mb": max(r["peak_mb"] for r in runs)}


def run_config(model_dir: str, config: str, repeats: int) -> dict:
    """`measure` in a fresh process, so peak memory belongs to that configuration alone.

    An engine the folder can't run (no int8 export) gives {"unavailable": why} instead.
    """
    result = subprocess.run([sys.executable, "-m", "benchmarks.bench_inference", "--one", model_dir, config, "--repeats", str(repeats)],
                            cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        reason = [line for line in result.stderr.splitlines() if "is not available" in line]
        if not reason:
            raise RuntimeError(f"{config} failed:\n{result.stderr[-2000:]}")
        return {"unavailable": reason[-1].split("is not available: ", 1)[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(name: str, model_dir: str, repeats: int, rounds: int, configs: list[str]) -> None:
    """Measure the configurations on one model, `rounds` times interleaved, and print the table."""
    configs = [c for c in CONFIGS if c in set(configs) | REQUIRED]
    runs = [{config: run_config(model_dir, config, repeats) for config in configs} for _ in range(rounds)]
    results = {config: combine([r[config] for r in runs]) for config in configs}
    reference = results["torch"]["predicted"]
    baseline = max(results["pipeline-bs1"]["texts_per_s"], results["pipeline-bs32"]["texts_per_s"])
    print(f"\n### {name}\n")
    print("| configuration | texts/s | × best pipeline | p50 ms (1 text) | p99 ms | peak MB | labels = fp32 | test accuracy |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for config, r in results.items():
        if "unavailable" in r:
            print(f"| {config} | not available: {r['unavailable']} | | | | | | |")
            continue
        agree = np.mean([a == b for a, b in zip(r["predicted"], reference)])
        label = f"auto = {r['engine']}" if config == "auto" else config
        print(f"| {label} | {r['texts_per_s']:.0f} | {r['texts_per_s'] / baseline:.2f} | {r['p50_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['peak_mb']:.0f} | {agree:.2%} | {r['accuracy']:.2%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["bundled", "distilbert-size"], choices=["bundled", "distilbert-size"])
    parser.add_argument("--repeats", type=int, default=1, help="timed runs over the 2,000 texts per configuration and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every configuration, interleaved")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS, metavar="CONFIG",
                        help=f"configurations to measure (the pipelines and torch always are): {', '.join(CONFIGS)}")
    parser.add_argument("--one", nargs=2, metavar=("MODEL_DIR", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one, args.repeats)))
        return
    from emotion_core.config import BUNDLED_MODEL

    print(f"machine: {machine()}\n2,000 texts of the emotion test split; {args.rounds} rounds, each configuration in a fresh "
          f"process, {args.repeats} timed run(s) a round; medians over rounds; latency over {LATENCY_CALLS} single-text calls "
          "a round.")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            folder = str(BUNDLED_MODEL) if name == "bundled" else str(distilbert_size_model(Path(tmp) / "distilbert"))
            report(f"{name} ({folder if name == 'bundled' else 'DistilBERT-base shape, random weights'})", folder, args.repeats,
                   args.rounds, args.configs)


if __name__ == "__main__":
    main()
