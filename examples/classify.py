"""Classify the sample sentences with the bundled model (or $EMOTION_MODEL).

    $ python examples/classify.py [examples/sentences.txt]
"""

import sys
from pathlib import Path

from emotion_core import Classifier

path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("sentences.txt"))
texts = [line for line in path.read_text().splitlines() if line.strip()]
classifier = Classifier.from_pretrained()
for text, probs in zip(texts, classifier.predict_batch(texts)):
    label, p = next(iter(probs.items()))
    print(f"{label:>9} {p:6.1%}  {text}")
