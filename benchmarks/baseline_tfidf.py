"""The floor any fine-tuned model must beat: TF-IDF features and logistic regression.

    $ python -m benchmarks.baseline_tfidf [--data ../shared/data/emotion]

Settings are chosen on the validation split (C over a small grid); the test split is scored once.
"""

import argparse
import time

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from emotion_core.config import DataConfig
from emotion_core.data import load_splits
from emotion_core.metrics import classification_report


def fit(train, c: float):
    """TF-IDF on word 1-2 grams, then a balanced logistic regression."""
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                          LogisticRegression(C=c, max_iter=2000, class_weight="balanced"))
    return model.fit(train["text"], train["label"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/emotion", help="folder with train/val/test files")
    args = parser.parse_args()
    splits = load_splits(DataConfig(data=args.data))
    names = splits["train"].features["label"].names
    start = time.perf_counter()
    scores = {c: classification_report(splits["validation"]["label"], fit(splits["train"], c).predict(splits["validation"]["text"]), names)
              for c in (1, 3, 10, 30)}
    best = max(scores, key=lambda c: scores[c]["macro_f1"])
    test = classification_report(splits["test"]["label"], fit(splits["train"], best).predict(splits["test"]["text"]), names)
    print("| C | validation accuracy | validation macro-F1 |\n| ---: | ---: | ---: |")
    for c, m in scores.items():
        print(f"| {c} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} |")
    print(f"\nchosen C={best}: test accuracy {test['accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f} "
          f"({time.perf_counter() - start:.0f} s for the whole grid)")


if __name__ == "__main__":
    main()
