"""Behaviour: the pass rate per capability (negation, sarcasm, hedges, typos, ...) of hand-written cases.

    $ python -m benchmarks.bench_behaviour                                   # the bundled model, measured cases
    $ python -m benchmarks.bench_behaviour --models bundled runs/candidate   # beside another model folder
    $ python -m benchmarks.bench_behaviour --cases tuning --failures 5       # the cases kept for choosing settings
    $ python -m benchmarks.bench_behaviour --models bundled models/new --record models/new   # into its card

The cases are in benchmarks/data/behaviour.tsv (measured: never used to train or choose) and
behaviour_tuning.tsv (for training and choosing settings); emotion_core/behaviour.py says what a
case accepts. Each model answers through its default engine and `predict_batch`, the language step
included, as users get it. --record keeps one model folder's pass rates (beside the first other
model's, as the model before it) and some of its misses in its metrics.json and model card.
"""

import argparse
from pathlib import Path

from benchmarks.common import load_models, machine
from emotion_core.behaviour import misses, pass_rates, read_cases, record, run_cases

CASES = {"measured": Path(__file__).resolve().parent / "data" / "behaviour.tsv",
         "tuning": Path(__file__).resolve().parent / "data" / "behaviour_tuning.tsv"}
TARGETS = {"negation": "≥ 85%", "sarcasm": "≥ 50%", "neutral": "≥ 90%", "invariance": "100%", "typos": "≥ 90%"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["bundled"], help="'bundled' and/or model folders")
    parser.add_argument("--cases", choices=sorted(CASES), default="measured")
    parser.add_argument("--failures", type=int, default=0, help="print up to this many failed cases per capability")
    parser.add_argument("--record", metavar="FOLDER", help="one of --models: keep its results in its folder and card")
    args = parser.parse_args()
    if args.record and (args.record not in args.models or args.cases != "measured"):
        parser.error("--record takes a model folder named in --models, measured on the measured cases")
    print(f"machine: {machine()}")
    cases = read_cases(CASES[args.cases])
    results = {}
    for name, classifier in load_models(args.models).items():
        labels, passed = run_cases(classifier, cases)
        results[name] = (labels, passed)
        if args.failures:
            print_failures(name, cases, labels, passed, args.failures)
    rates = {name: pass_rates(cases, passed) for name, (_, passed) in results.items()}
    print(f"\n{len(cases)} {args.cases} cases of {CASES[args.cases].name}\n")
    print("| capability | cases | " + " | ".join(results) + " | target |")
    print("| --- | ---: | " + " | ".join("---:" for _ in results) + " | --- |")
    for capability, (_, count) in next(iter(rates.values())).items():
        shares = [done / total for done, total in (rate[capability] for rate in rates.values())]
        print(f"| {capability} | {count} | " + " | ".join(f"{value:.0%}" for value in shares) +
              f" | {TARGETS.get(capability, 'no worse than before')} |")
    overall = [sum(passed) / len(passed) for _, passed in results.values()]
    print(f"| all | {len(cases)} | " + " | ".join(f"{rate:.0%}" for rate in overall) + " | |")
    if args.record:
        before = next((rates[name] for name in results if name != args.record), None)
        record(args.record, CASES[args.cases].name, cases, *results[args.record], before=before)
        print(f"\nrecorded in {args.record}")


def print_failures(name: str, cases, labels, passed, limit: int) -> None:
    """Up to `limit` failed cases per capability (an invariance group once): what was accepted, what the model said."""
    print(f"\nFailed cases of {name}:")
    for miss in misses(cases, labels, passed, limit):
        print(f"  {miss['capability']}: expected {miss['expect']}, said {miss['said'] or 'not English'}: {miss['text']}")


if __name__ == "__main__":
    main()
