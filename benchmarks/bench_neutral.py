"""Neutral: does the model say "no emotion" where there is none, without swallowing mild emotion?

    $ python -m benchmarks.bench_neutral                                  # the bundled model
    $ python -m benchmarks.bench_neutral --models bundled runs/previous   # beside another model folder

For each model, with its default engine:
- GoEmotions dev rows whose single label is one of the six or neutral: accuracy, macro-F1 over the
  labels present, neutral F1 (0 for a model without neutral), ECE;
- GoEmotions dev rows whose single label ekman-love folds into one of the six (mild emotion):
  the share answered neutral, and accuracy against the grouped label;
- the plain statements of benchmarks/data/plain_statements.txt: the share answered neutral;
- the emotion test split: accuracy and macro-F1 over its six labels (a neutral answer is wrong),
  the share answered neutral, ECE.
"""

import argparse

import numpy as np

from benchmarks.common import goemotions_groups, load_models, machine, plain_statements, test_split
from emotion_core.calibration import ece
from emotion_core.labels import NEUTRAL
from emotion_core.metrics import macro_f1


def scores(classifier, texts: list[str], labels: list[str]) -> dict:
    """Accuracy, macro-F1, neutral F1, the share answered neutral and ECE of one model on labelled texts."""
    probs = classifier.predict_proba(texts)
    answered = np.asarray(classifier.labels)[probs.argmax(axis=1)]
    names = list(classifier.labels) + [label for label in sorted(set(labels)) if label not in classifier.labels]
    truth = np.array([names.index(label) for label in labels])
    preds = probs.argmax(axis=1)
    padded = np.zeros((len(texts), len(names)))  # a label the model lacks is never its answer: always wrong
    padded[:, :probs.shape[1]] = probs
    return {"n": len(texts), "accuracy": float((answered == np.array(labels)).mean()), "macro_f1": macro_f1(truth, preds),
            "neutral_f1": neutral_f1(answered, labels), "neutral_share": float((answered == NEUTRAL).mean()),
            "ece": ece(padded, truth)}


def neutral_f1(answered: np.ndarray, labels: list[str]) -> float:
    """F1 of the neutral answer."""
    truth, said = np.array(labels) == NEUTRAL, answered == NEUTRAL
    hits = float((truth & said).sum())
    return 0.0 if not hits else 2 * hits / (truth.sum() + said.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["bundled"], help="'bundled' and/or model folders")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    groups = goemotions_groups()
    test_texts, test_labels = test_split()
    plain = plain_statements()
    rows = []
    for name, classifier in load_models(args.models).items():
        both = scores(classifier, *zip(*groups["six+neutral"]))
        mild = scores(classifier, *zip(*groups["mild"]))
        test = scores(classifier, test_texts, test_labels)
        plain_share = float(np.mean([p.label == NEUTRAL for p in classifier.predict_batch(plain)]))
        rows.append((name, classifier.engine.name, both, mild, plain_share, test))
    print(f"\nGoEmotions dev: {len(groups['six+neutral']):,} rows of the six emotions or neutral, "
          f"{len(groups['mild']):,} mild-emotion rows; {len(plain)} plain statements; emotion test: {len(test_texts):,} texts.\n")
    print("| model | engine | GoEmotions six+neutral: accuracy | macro-F1 | neutral F1 | ECE | mild: answered neutral | "
          "mild: accuracy (grouped) | plain statements: neutral | emotion test: accuracy | macro-F1 | answered neutral | ECE |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, engine, both, mild, plain_share, test in rows:
        print(f"| {name} | {engine} | {both['accuracy']:.1%} | {both['macro_f1']:.3f} | {both['neutral_f1']:.3f} | "
              f"{both['ece']:.2%} | {mild['neutral_share']:.1%} | {mild['accuracy']:.1%} | {plain_share:.1%} | "
              f"{test['accuracy']:.2%} | {test['macro_f1']:.3f} | {test['neutral_share']:.1%} | {test['ece']:.2%} |")


if __name__ == "__main__":
    main()
