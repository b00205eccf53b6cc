"""The review queue's orders compared in minutes, on the feedback loop's pool alone: which order's first
corrections teach a stand-in model the most?

    $ python -m benchmarks.bench_queue_orders                # about 10 minutes on 2 CPUs
    $ python -m benchmarks.bench_queue_orders --dev-seed 2   # another halving of the pool

bench_loop takes an hour and more per try, and its never-shown half must play no part in choosing the
queue's order. So the orders are compared here first, on the pool only: the pool (bench_loop's) halved
by a seed, one half corrected from, the other measured on; the model a TF-IDF logistic regression (words
and word pairs) trained on the loop's start data (the bundled recipe's sources without the slice),
retrained on that data plus the first CORRECTIONS rows of each order (weighted WEIGHT each). The
orders are the product's own (`feedback.queue_order`), on this model's
probabilities; random order is drawn with RANDOM_SEEDS.
"""

import argparse
import random

import numpy as np
import pandas as pd

from benchmarks.bench_loop import label_map_without_slice, slice_halves
from benchmarks.common import GOEMOTIONS, machine
from emotion_core.data import read_txt
from emotion_core.sources import read_goemotions
from tests.helpers import SHARED_EMOTION

CORRECTIONS = 250  # about a third of the half corrected from, as bench_loop's 500 are of its pool
WEIGHT = 30  # each correction's weight beside the start data: enough to move a model trained on 60,000 texts
DEV_SEED = 1  # how the pool is halved by default
RANDOM_SEEDS = range(4)


def start_data() -> list[tuple[str, str]]:
    """The loop's start data: the emotion train split and GoEmotions train mapped as the bundled mix maps it,
    the slice left out."""
    label_map = label_map_without_slice()
    texts, labels = read_goemotions(GOEMOTIONS / "train.tsv")
    rows = [(text, label_map[label]) for text, label in zip(texts, labels) if label in label_map]
    return rows + list(zip(*read_txt(SHARED_EMOTION / "train.txt")))


def orders(model, vectors, pool: list[tuple[str, str]]) -> dict[str, np.ndarray]:
    """Each order of the pool's rows, as positions: the queue's own (`feedback.queue_order`), on the stand-in
    model's probabilities, and random draws."""
    from emotion_core.queue import QUEUE_ORDERS, margin, queue_order

    probs = model.predict_proba(vectors.transform([text for text, _ in pool]))
    margins = pd.Series(margin(probs))
    predicted = pd.Series(model.classes_[probs.argmax(axis=1)])
    texts = pd.Series([text for text, _ in pool])
    found = {order: queue_order(order, predicted, texts, margins) for order in QUEUE_ORDERS}
    for seed in RANDOM_SEEDS:
        found[f"random (seed {seed})"] = np.array(random.Random(seed).sample(range(len(pool)), len(pool)))
    return found


def main() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev-seed", type=int, default=DEV_SEED, help="how the pool is halved")
    args = parser.parse_args()
    pool, _ = slice_halves()  # bench_loop's pool; its never-shown half is not read here
    pool = random.Random(args.dev_seed).sample(pool, len(pool))
    corrected_from, measured_on = pool[:len(pool) // 2], pool[len(pool) // 2:]
    start = start_data()
    vectors = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2)).fit([t for t, _ in start + corrected_from])

    def fit(rows, weights=None):
        return LogisticRegression(max_iter=300, C=4).fit(vectors.transform([t for t, _ in rows]), [y for _, y in rows],
                                                         sample_weight=weights)

    def accuracy(model) -> float:
        return float(np.mean(model.predict(vectors.transform([t for t, _ in measured_on])) == [y for _, y in measured_on]))

    base = fit(start)
    print(f"{machine()}\npool halved with seed {args.dev_seed}: {len(corrected_from)} corrected from, {len(measured_on)} measured on; "
          f"start accuracy {accuracy(base):.2%}", flush=True)
    print(f"| order | accuracy after {CORRECTIONS} corrections |\n| --- | ---: |")
    for name, order in orders(base, vectors, corrected_from).items():
        chosen = [corrected_from[i] for i in order[:CORRECTIONS]]
        model = fit(start + chosen, [1.0] * len(start) + [float(WEIGHT)] * CORRECTIONS)
        print(f"| {name} | {accuracy(model):.2%} |", flush=True)


if __name__ == "__main__":
    main()
