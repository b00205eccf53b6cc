"""The bundled model: present, small, labelled in the Hub's order, and right on plain sentences."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from emotion_core import EMOTION_LABELS, Classifier
from emotion_core.config import BUNDLED_MODEL, PROJECT_ROOT

PLAIN = [
    ("i feel so happy and grateful today", "joy"),
    ("i am thrilled that we won the game", "joy"),
    ("i feel so lonely and sad without you", "sadness"),
    ("i cried all night because i miss my dog", "sadness"),
    ("i feel so romantic and tender with my wife tonight", "love"),
    ("i feel so loved and cherished by my family", "love"),
    ("i am so angry that they lied to me", "anger"),
    ("i am furious with the rude waiter", "anger"),
    ("i am scared of walking home alone at night", "fear"),
    ("i feel anxious and terrified about the exam", "fear"),
    ("i am amazed by how big the ocean is", "surprise"),
    ("i was shocked and surprised by the sudden news", "surprise"),
]


@pytest.fixture(scope="module")
def bundled():
    return Classifier.from_pretrained()  # no argument, no EMOTION_MODEL: the bundled model


def test_bundled_model_is_the_default_and_small(bundled):
    assert bundled.source == str(BUNDLED_MODEL) and bundled.labels == list(EMOTION_LABELS)
    assert (BUNDLED_MODEL / "model.safetensors").stat().st_size < 50e6
    assert next(bundled.model.parameters()).dtype.is_floating_point and str(next(bundled.model.parameters()).dtype) == "torch.float32"


def test_bundled_metrics_meet_the_targets():
    test = json.loads((BUNDLED_MODEL / "metrics.json").read_text())["test"]
    assert test["n"] == 2000 and test["accuracy"] >= 0.93 and test["macro_f1"] >= 0.89


@pytest.mark.parametrize("text,label", PLAIN)
def test_plain_sentences(bundled, text, label):
    assert next(iter(bundled.predict(text))) == label


def test_sample_csv_scores_with_the_bundled_model(tmp_path):
    out = tmp_path / "scored.csv"
    result = subprocess.run([sys.executable, "-m", "emotion_core", "score", "examples/reviews.csv", "-o", str(out)],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Scored 9 of 10 rows" in result.stdout
    scored = pd.read_csv(out)
    assert scored["id"].tolist() == list(range(1, 11))
    assert scored.loc[scored["id"] == 1, "emotion"].item() == "joy"
