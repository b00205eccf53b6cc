"""Classify the sample sentences with the bundled model (or $EMOTION_MODEL).

    $ python examples/classify.py [examples/sentences.txt]
"""

import sys
from pathlib import Path

from emotion_core import Classifier

path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("sentences.txt"))
texts = [line for line in path.read_text().splitlines() if line.strip()]
classifier = Classifier.from_pretrained()
for text, prediction in zip(texts, classifier.predict_batch(texts)):
    if prediction.label is None:  # not English: the model reads English only
        print(f"{'':>9} {'':>6}  {text}  ({prediction.message})")
    else:
        print(f"{prediction.label:>9} {prediction[prediction.label]:6.1%}  {text}")
