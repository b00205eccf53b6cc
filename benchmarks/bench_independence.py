"""One text, one answer: how far a text's probabilities move with the texts it is scored beside.

    $ python -m benchmarks.bench_independence                       # every engine on the bundled model
    $ git show HEAD~1:models/emotion-minilm/model.int8.onnx > /tmp/old.int8.onnx
    $ python -m benchmarks.bench_independence --int8-file /tmp/old.int8.onnx   # and an int8 file of your own, as it is

500 validation texts (a seeded sample of the three sources' validation splits), each scored alone,
then in 20 random batches (the texts shuffled and cut into batches of 1 to 64) and in a shuffled
CSV file through `score`: the largest change of any probability from the text's own, and how many
labels changed. `--int8-file` runs that file through a plain ONNX Runtime session (no rescoring),
for a file the engines would refuse, such as an export with dynamic scales.
"""

import argparse
import random
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.bench_language import english_sets
from benchmarks.common import machine
from emotion_core import Classifier
from emotion_core.batch import score_csv
from emotion_core.config import BUNDLED_MODEL

ENGINES = ("auto", "onnx-int8", "onnx", "torch")
TEXTS, BATCHINGS, MAX_BATCH = 500, 20, 64


def sample(seed: int = 0) -> list[str]:
    """TEXTS validation texts from the three sources, shuffled."""
    texts = [text for name, texts in english_sets("validation").items() if not name.startswith("plain") for text in texts]
    return random.Random(seed).sample(texts, TEXTS)


def in_batches(score, texts: list[str], rng: random.Random) -> np.ndarray:
    """Each text's probabilities when the texts are shuffled and cut into batches of random sizes."""
    order = list(range(len(texts)))
    rng.shuffle(order)
    out, start = np.empty((len(texts), 0)), 0
    while start < len(order):
        chunk = order[start:start + rng.randint(1, MAX_BATCH)]
        probs = score([texts[i] for i in chunk])
        out = out if out.shape[1] else np.empty((len(texts), probs.shape[1]))
        out[chunk] = probs
        start += len(chunk)
    return out


def in_a_file(classifier: Classifier, texts: list[str], rng: random.Random) -> np.ndarray:
    """Each text's probabilities from `score` on a CSV of the texts in shuffled order (written to 4 places)."""
    order = list(range(len(texts)))
    rng.shuffle(order)
    with tempfile.TemporaryDirectory() as tmp:
        pd.DataFrame({"id": order, "text": [texts[i] for i in order]}).to_csv(Path(tmp) / "in.csv", index=False)
        score_csv(Path(tmp) / "in.csv", Path(tmp) / "out.csv", classifier, progress=False)
        scored = pd.read_csv(Path(tmp) / "out.csv").set_index("id").sort_index()
    return scored[[f"prob_{label}" for label in classifier.labels]].to_numpy(float)


def measure(name: str, score, texts: list[str], classifier: Classifier | None) -> str:
    """One table row: the largest change over every batching (and the file), and the labels that changed."""
    alone = np.concatenate([score([text]) for text in texts])
    rng = random.Random(1)
    batched = [in_batches(score, texts, rng) for _ in range(BATCHINGS)]
    worst = max(float(np.abs(b - alone).max()) for b in batched)
    flips = sum(int((b.argmax(axis=1) != alone.argmax(axis=1)).sum()) for b in batched)
    filed = "—"
    if classifier is not None:
        file_probs = in_a_file(classifier, texts, rng)
        filed = f"{np.abs(file_probs - alone).max():.4f} (file rounded to 4 places)"
    return f"| {name} | {worst:.4f} | {flips} of {BATCHINGS * len(texts):,} | {filed} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--int8-file", type=Path, help="also an int8 ONNX file of the bundled model's, run as it is")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    texts = sample()
    print(f"\n{TEXTS} validation texts; {BATCHINGS} random batchings (batches of 1 to {MAX_BATCH}); a shuffled file\n")
    print("| engine | largest change in a batch | labels changed | largest change in a file |")
    print("| --- | ---: | ---: | ---: |")
    for engine in args.engines:
        classifier = Classifier.from_pretrained(BUNDLED_MODEL, engine=engine)
        label = f"auto = {classifier.engine.name}" if engine == "auto" else engine
        print(measure(label, classifier.predict_proba, texts, classifier), flush=True)
    if args.int8_file:
        from emotion_core.engines import OnnxEngine

        classifier = Classifier.from_pretrained(BUNDLED_MODEL, engine="onnx")
        session = OnnxEngine(args.int8_file, "given")

        def score(batch):
            return classifier.calibration.probabilities(classifier.logits_of_ids(classifier.encode(batch), engine=session))
        print(measure(f"{args.int8_file.name}, as it is", score, texts, None))


if __name__ == "__main__":
    main()
