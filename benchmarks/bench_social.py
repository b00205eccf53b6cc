"""Social-media writing: GoEmotions dev comments with an emoji or a hashtag, read with and without
the normalisation steps that turn them into words.

    $ python -m benchmarks.bench_social                                  # the bundled model
    $ python -m benchmarks.bench_social --models bundled runs/previous   # beside another model folder

Rows: GoEmotions dev comments with a single label that ekman-love+neutral maps (the six, the mild
emotions as their group, neutral) and at least one emoji or hashtag. For each model, accuracy on
all of them and on the emotional ones alone (which a model without neutral can answer too), read
as the model was trained ("with its steps") and with the emoji, hashtags and elongations steps
left out ("before": the raw emoji reach the tokenizer, most as [UNK]).
"""

import argparse
import re

import numpy as np

from benchmarks.common import goemotions_dev, load_models, machine
from emotion_core.labels import NEUTRAL
from emotion_core.sources import LABEL_MAPS

SOCIAL_STEPS = ("emoji", "hashtags", "elongations")
HASHTAG = re.compile(r"(?<![\w&#])#[A-Za-z]")


def social_rows() -> list[tuple[str, str]]:
    """(text, grouped label) of the dev rows with an emoji or a hashtag."""
    import emoji

    grouping = LABEL_MAPS["ekman-love+neutral"]
    return [(text, grouping[label]) for text, label in goemotions_dev()
            if label in grouping and (emoji.emoji_count(text) or HASHTAG.search(text))]


def accuracy(classifier, rows: list[tuple[str, str]]) -> float:
    """Share of rows answered with their label."""
    answers = np.asarray(classifier.labels)[classifier.predict_proba([t for t, _ in rows]).argmax(axis=1)]
    return float((answers == np.array([label for _, label in rows])).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["bundled"], help="'bundled' and/or model folders")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    rows = social_rows()
    emotional = [(t, label) for t, label in rows if label != NEUTRAL]
    print(f"\n{len(rows)} GoEmotions dev rows with an emoji or a hashtag, {len(emotional)} of them emotional\n")
    print("| model | engine | steps | all rows: accuracy | emotional rows: accuracy |\n| --- | --- | --- | ---: | ---: |")
    for name, classifier in load_models(args.models).items():
        own = classifier.normalization
        for steps, words in ((own, "its own"), (tuple(s for s in own if s not in SOCIAL_STEPS), "without emoji, hashtags, elongations")):
            if steps == own and words != "its own":
                continue  # a model trained without these steps: "without" is what it already does
            classifier.normalization = steps
            print(f"| {name} | {classifier.engine.name} | {words} | {accuracy(classifier, rows):.1%} | "
                  f"{accuracy(classifier, emotional):.1%} |")
        classifier.normalization = own


if __name__ == "__main__":
    main()
