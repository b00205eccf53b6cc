"""Inference speed on a CPU: every engine we ship against `transformers.pipeline`, same model, same run.

    $ python -m benchmarks.bench_inference                 # bundled model and a DistilBERT-size model
    $ python -m benchmarks.bench_inference --models bundled --rounds 5
    $ python -m benchmarks.bench_inference --models bundled --configs onnx-int8-in-turn onnx-int8
    $ git worktree add ../before HEAD~1 && python -m benchmarks.bench_inference --models bundled --baseline ../before
    $ python -m benchmarks.bench_inference --breakdown           # where the default engine's time goes, stage by stage

For each model: throughput on the 2,000 test texts through `Classifier.predict_proba` (the
engines, without the language step that `predict_batch` adds: `--breakdown` times it) or the
pipeline, single-text latency p50/p99, peak memory, labels identical to the fp32 reference, and
test accuracy. Each round runs every configuration
once, each in a fresh process (so peak memory is its own); the table gives the median over
rounds of throughput and latency, and the highest peak. Interleaving the configurations spreads
the drift of a shared VM's speed over all of them instead of favouring whichever ran first.
The DistilBERT-size model has random weights (no DistilBERT weights
can be downloaded here): its speed is real, its accuracy is not. `--baseline` also runs the chosen
configurations from another checkout of the project on its own bundled model, in the same rounds:
a change's speed against the code before it, on the same machine at the same time.
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

CONFIGS = ("pipeline-bs1", "pipeline-bs32", "torch", "onnx", "onnx-int8-in-turn", "onnx-int8", "auto")
REQUIRED = {"pipeline-bs1", "pipeline-bs32", "torch"}  # the baselines and the fp32 reference: always measured
LATENCY_CALLS = 200
CALIBRATION_TEXTS = 500  # validation texts the DistilBERT-size model's int8 scales are fixed on


def distilbert_size_model(folder: Path) -> Path:
    """A DistilBERT-base-shaped classifier (66 M parameters, random weights) with the bundled tokenizer, its int8 scales
    fixed on CALIBRATION_TEXTS validation texts."""
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertForSequenceClassification

    from emotion_core import EMOTION_LABELS, Classifier
    from emotion_core.config import BUNDLED_MODEL
    from emotion_core.export import export_onnx

    tokenizer = AutoTokenizer.from_pretrained(BUNDLED_MODEL)
    config = DistilBertConfig(vocab_size=tokenizer.vocab_size, id2label=dict(enumerate(EMOTION_LABELS)),
                              label2id={n: i for i, n in enumerate(EMOTION_LABELS)})
    model = DistilBertForSequenceClassification(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    reference = Classifier.from_pretrained(folder, engine="torch")
    export_onnx(reference.model, folder, score=reference.scorer(reference.encode(test_split("validation")[0][:CALIBRATION_TEXTS])))
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


def breakdown(model_dir: str, rounds: int) -> None:
    """Where the default engine's time goes over the test split: each stage timed alone (medians of `rounds`), then
    one single-threaded pass of the int8 file profiled by ONNX Runtime, its time per kind of operator, and the int8
    matrix products' rate against the same kernel on one large product (what these cores can do)."""
    from emotion_core import Classifier
    from emotion_core.engines import without_rescoring

    texts, _ = test_split()
    classifier = Classifier.from_pretrained(model_dir)
    ids = classifier.encode(texts)
    stages = {"language step (fastText, lingua for what it sets apart)": lambda: classifier.languages(texts),
              "normalise and tokenise": lambda: classifier.encode(texts),
              "int8 model alone (both cores)": lambda: classifier.logits_of_ids(ids, engine=without_rescoring(classifier.engine)),
              "int8 model, near-ties rescored in fp32": lambda: classifier.logits_of_ids(ids),
              "all of predict_batch": lambda: classifier.predict_batch(texts)}
    print(f"\n### Where the time goes: {len(texts):,} test texts, {np.mean([len(row) for row in ids]):.1f} tokens each\n")
    print("| stage | ms | µs per text |")
    print("| --- | ---: | ---: |")
    for name, run in stages.items():
        run()
        ms = statistics.median(timed(run) for _ in range(rounds)) * 1000
        print(f"| {name} | {ms:.0f} | {ms * 1000 / len(texts):.0f} |")
    operators, macs = profile_operators(classifier, ids)
    total = sum(operators.values())
    print("\nOne thread, the int8 file alone, per kind of operator (ONNX Runtime's profiler):\n")
    print("| operator | s | share |")
    print("| --- | ---: | ---: |")
    for op, seconds in sorted(operators.items(), key=lambda item: -item[1]):
        if seconds / total >= 0.001:
            print(f"| {op} | {seconds:.2f} | {seconds / total:.1%} |")
    peak = int8_peak_macs()
    rate = macs / operators["MatMulIntegerToFloat"] / 1e9
    print(f"\nThe feed-forward and output products (MatMulIntegerToFloat) ran at {rate:.0f} G multiply-adds/s on one core; "
          f"the same kernel on one 4096×1536×384 product: {peak / 1e9:.0f} G/s.")


def timed(run) -> float:
    """Seconds one call of `run` takes."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def profile_operators(classifier, ids: list[list[int]]) -> tuple[dict[str, float], float]:
    """Seconds per operator type of one single-threaded pass of the int8 file over `ids`, batched as the engine
    batches, and the multiply-adds of its MatMulIntegerToFloat products."""
    import onnxruntime as ort

    from emotion_core.model_folder import INT8_ONNX

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.enable_profiling = 1, True
    options.profile_file_prefix = tempfile.mkdtemp() + "/ort"
    session = ort.InferenceSession(str(classifier.files / INT8_ONNX), options, providers=["CPUExecutionProvider"])
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    batches = [classifier.pad([ids[i] for i in order[start:start + 32]]) for start in range(0, len(order), 32)]
    for input_ids, mask in batches:
        session.run(["logits"], {"input_ids": input_ids, "attention_mask": mask})
    seconds: dict[str, float] = {}
    for event in json.loads(Path(session.end_profiling()).read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            seconds[op] = seconds.get(op, 0.0) + event["dur"] / 1e6
    import onnx

    graph = onnx.load(str(classifier.files / INT8_ONNX)).graph
    shapes = {tensor.name: tensor.dims for tensor in graph.initializer}
    per_token = sum(np.prod(shapes[node.input[1]]) for node in graph.node  # the pooler reads one token a text: left out
                    if node.op_type == "MatMulIntegerToFloat" and "pooler" not in node.name)
    return seconds, float(per_token) * sum(input_ids.size for input_ids, _ in batches)  # padding is multiplied too


def int8_peak_macs(m: int = 4096, k: int = 384, n: int = 1536) -> float:
    """Multiply-adds per second of ONNX Runtime's MatMulIntegerToFloat on one core, for one large product."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.integers(-127, 127, (k, n), dtype=np.int8), "b"),
               numpy_helper.from_array(np.array(0.01, np.float32), "sa"), numpy_helper.from_array(np.array(0.01, np.float32), "sb"),
               numpy_helper.from_array(np.array(128, np.uint8), "za"), numpy_helper.from_array(np.array(0, np.int8), "zb")]
    node = helper.make_node("MatMulIntegerToFloat", ["a", "b", "sa", "sb", "za", "zb"], ["y"], domain="com.microsoft")
    graph = helper.make_graph([node], "peak", [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    a = rng.integers(0, 255, (m, k), dtype=np.uint8)
    session.run(None, {"a": a})
    return m * k * n / min(timed(lambda: session.run(None, {"a": a})) for _ in range(10))


def combine(runs: list[dict]) -> dict:
    """One configuration's rounds as one row: medians of speed and latency, the highest peak memory."""
    if "unavailable" in runs[0]:
        return runs[0]
    row = {key: statistics.median(r[key] for r in runs) for key in ("texts_per_s", "p50_ms", "p99_ms")}
    return runs[-1] | row | {"peak_mb": max(r["peak_mb"] for r in runs)}


def run_config(model_dir: str, config: str, repeats: int, checkout: Path = ROOT) -> dict:
    """`measure` in a fresh process (of `checkout`'s code), so peak memory belongs to that configuration alone.

    An engine the folder can't run (no int8 export) gives {"unavailable": why} instead.
    """
    result = subprocess.run([sys.executable, "-m", "benchmarks.bench_inference", "--one", model_dir, config, "--repeats", str(repeats)],
                            cwd=checkout, capture_output=True, text=True)
    if result.returncode != 0:
        reason = [line for line in result.stderr.splitlines() if "is not available" in line]
        if not reason:
            raise RuntimeError(f"{config} failed:\n{result.stderr[-2000:]}")
        return {"unavailable": reason[-1].split("is not available: ", 1)[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(name: str, model_dir: str, repeats: int, rounds: int, configs: list[str], baseline: Path | None = None) -> None:
    """Measure the configurations on one model, `rounds` times interleaved, and print the table; with `baseline`, the
    chosen ones also from that checkout, on its own bundled model, in the same rounds."""
    configs = [c for c in CONFIGS if c in set(configs) | REQUIRED]
    runs_of = {config: (model_dir, config, ROOT) for config in configs}
    if baseline:
        runs_of |= {f"{config} (baseline)": (str(baseline / "models" / "emotion-minilm"), config, baseline)
                    for config in configs if config not in REQUIRED}
    runs = [{label: run_config(folder, config, repeats, checkout) for label, (folder, config, checkout) in runs_of.items()}
            for _ in range(rounds)]
    results = {label: combine([r[label] for r in runs]) for label in runs_of}
    reference = results["torch"]["predicted"]
    best_pipeline = max(results["pipeline-bs1"]["texts_per_s"], results["pipeline-bs32"]["texts_per_s"])
    print(f"\n### {name}\n")
    print("| configuration | texts/s | × best pipeline | p50 ms (1 text) | p99 ms | peak MB | labels = fp32 | test accuracy |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for config, r in results.items():
        if "unavailable" in r:
            print(f"| {config} | not available: {r['unavailable']} | | | | | | |")
            continue
        agree = np.mean([a == b for a, b in zip(r["predicted"], reference)])
        label = config.replace("auto", f"auto = {r['engine']}", 1) if config.startswith("auto") else config
        print(f"| {label} | {r['texts_per_s']:.0f} | {r['texts_per_s'] / best_pipeline:.2f} | {r['p50_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['peak_mb']:.0f} | {agree:.2%} | {r['accuracy']:.2%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["bundled", "distilbert-size"], choices=["bundled", "distilbert-size"])
    parser.add_argument("--repeats", type=int, default=1, help="timed runs over the 2,000 texts per configuration and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every configuration, interleaved")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS, metavar="CONFIG",
                        help=f"configurations to measure (the pipelines and torch always are): {', '.join(CONFIGS)}")
    parser.add_argument("--baseline", type=Path, metavar="CHECKOUT",
                        help="another checkout of the project (a git worktree of an earlier commit): its bundled model, run by "
                             "its code, measured in the same rounds")
    parser.add_argument("--breakdown", action="store_true", help="where the bundled model's default engine spends its time")
    parser.add_argument("--one", nargs=2, metavar=("MODEL_DIR", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one, args.repeats)))
        return
    from emotion_core.config import BUNDLED_MODEL

    if args.breakdown:
        print(f"machine: {machine()}")
        breakdown(str(BUNDLED_MODEL), args.rounds)
        return
    print(f"machine: {machine()}\n2,000 texts of the emotion test split; {args.rounds} rounds, each configuration in a fresh "
          f"process, {args.repeats} timed run(s) a round; medians over rounds; latency over {LATENCY_CALLS} single-text calls "
          "a round.")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            folder = str(BUNDLED_MODEL) if name == "bundled" else str(distilbert_size_model(Path(tmp) / "distilbert"))
            report(f"{name} ({folder if name == 'bundled' else 'DistilBERT-base shape, random weights'})", folder, args.repeats,
                   args.rounds, args.configs, args.baseline if name == "bundled" else None)


if __name__ == "__main__":
    main()
