"""Training speed: dynamic padding with length grouping (what train.py does) against padding every
batch to --max-length, same model, same data, same steps, same seed.

    $ python -m benchmarks.bench_training [--steps 100] [--base-model minilm]

Samples/s come from the median step time (a callback times every optimizer step); accuracy is on
the 2,000-text validation split after the short run.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from transformers import DataCollatorWithPadding, TrainerCallback, set_seed

from benchmarks.common import machine
from emotion_core.config import DataConfig, ModelConfig, TrainConfig
from emotion_core.data import load_splits, tokenize_splits
from emotion_core.training import build_trainer, load_base_model
from tests.helpers import SHARED_EMOTION


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step."""

    def __init__(self):
        self.times, self.start = [], 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self.start)


def run(mode: str, base_model: str, steps: int, batch_size: int, max_length: int, out: Path) -> dict:
    """Train `steps` steps in one padding mode and report speed, padding and accuracy."""
    set_seed(42)
    splits = load_splits(DataConfig(data=str(SHARED_EMOTION)))
    labels = splits["train"].features["label"].names
    tokenizer, model = load_base_model(ModelConfig(base_model=base_model, max_length=max_length), labels)
    tokenized = tokenize_splits(splits, tokenizer, max_length)
    cfg = TrainConfig(output_dir=str(out / mode), max_steps=steps, batch_size=batch_size, learning_rate=1e-4)
    trainer = build_trainer(model, tokenizer, tokenized, cfg)
    if mode == "pad-to-max-length":
        trainer.data_collator = DataCollatorWithPadding(tokenizer, padding="max_length", max_length=max_length)
        trainer.args.train_sampling_strategy = "random"
    timer = StepTimer()
    trainer.add_callback(timer)
    trainer.train()
    accuracy = trainer.evaluate()["eval_accuracy"]
    step = statistics.median(timer.times[1:])  # the first step pays for warm-up
    return {"samples_per_s": batch_size / step, "step_ms": step * 1000, "accuracy": accuracy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps per mode")
    parser.add_argument("--base-model", default="minilm", help="model to fine-tune (default: the offline backbone)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128, help="the padding length of the baseline")
    args = parser.parse_args()
    print(f"machine: {machine()}\n{args.base_model}, {args.steps} steps of {args.batch_size} texts, seed 42")
    with tempfile.TemporaryDirectory() as tmp:
        results = {mode: run(mode, args.base_model, args.steps, args.batch_size, args.max_length, Path(tmp))
                   for mode in ("pad-to-max-length", "dynamic+group-by-length")}
    base = results["pad-to-max-length"]["samples_per_s"]
    print("\n| padding | samples/s (median step) | median step ms | × pad-to-max | validation accuracy |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for mode, r in results.items():
        print(f"| {mode} | {r['samples_per_s']:.1f} | {r['step_ms']:.0f} | {r['samples_per_s'] / base:.2f} | {r['accuracy']:.2%} |")


if __name__ == "__main__":
    main()
