"""One text, one answer: its probabilities do not depend on the texts it is batched with, their order or its padding,
on every engine and every path (int8's scales are fixed at export: quantize.py)."""

import random
import shutil

import numpy as np
import onnx
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emotion_core import Classifier, EmotionCoreError
from emotion_core.batch import score_csv
from emotion_core.model_folder import INT8_ONNX
from tests.helpers import FILLER, SHARED_EMOTION

TOLERANCE = 0.002  # the most any probability may move with a text's company
WORDS = FILLER + ["happy", "furious", "lonely", "scared", "amazed", "adore", "not", "never", "!", "?", "😀"]
texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=60).map(" ".join)


def largest_change(classifier: Classifier, text: str, others: list[str], at: int) -> float:
    """How far `text`'s probabilities move when it is scored at place `at` among `others`, against alone."""
    alone = classifier.predict_proba([text])[0]
    together = classifier.predict_proba([*others[:at], text, *others[at:]])[at]
    return float(np.abs(together - alone).max())


@pytest.fixture(scope="module")
def default(tiny_neutral_model):
    """The tiny trained model on its default engine: int8 with fixed scales, near-ties rescored in fp32."""
    classifier = Classifier.from_pretrained(tiny_neutral_model)
    assert classifier.engine.name == "onnx-int8"
    return classifier


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts, others=st.lists(texts, max_size=80), data=st.data())
def test_a_text_scores_the_same_in_any_batch(default, text, others, data):
    at = data.draw(st.integers(0, len(others)))
    assert largest_change(default, text, others, at) <= TOLERANCE


@pytest.mark.parametrize("engine", ["torch", "onnx", "onnx-int8"])
def test_every_engine_scores_a_text_the_same_in_any_batch(tiny_neutral_model, engine):
    classifier = Classifier.from_pretrained(tiny_neutral_model, engine=engine)
    rng = random.Random(0)
    sample = [" ".join(rng.choices(WORDS, k=rng.randint(1, 60))) for _ in range(200)]
    worst = max(largest_change(classifier, text, rng.sample(sample, rng.randint(1, 100)), rng.randint(0, 1))
                for text in sample[:30])
    assert worst <= TOLERANCE, engine


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_the_bundled_model_scores_a_text_the_same_in_any_batch(bundled, data):
    pool = bundled_texts()
    text = data.draw(st.sampled_from(pool))
    others = data.draw(st.lists(st.sampled_from(pool), max_size=64))
    assert largest_change(bundled, text, others, data.draw(st.integers(0, len(others)))) <= TOLERANCE


@pytest.fixture(scope="module")
def bundled():
    return Classifier.from_pretrained()


def bundled_texts() -> list[str]:
    """Validation texts of the emotion data, short and long."""
    return [line.rsplit(";", 1)[0] for line in (SHARED_EMOTION / "val.txt").read_text().splitlines()[:300]]


def test_a_file_scored_in_another_order_gives_each_row_the_same_scores(tmp_path, default):
    rng = random.Random(1)
    rows = pd.DataFrame({"id": range(300), "text": [" ".join(rng.choices(WORDS, k=rng.randint(1, 40))) for _ in range(300)]})
    rows.to_csv(tmp_path / "in.csv", index=False)
    rows.sample(frac=1, random_state=2).to_csv(tmp_path / "shuffled.csv", index=False)
    for name in ("in", "shuffled"):
        score_csv(tmp_path / f"{name}.csv", tmp_path / f"{name}-scored.csv", default, progress=False, chunk_rows=64)
    first, second = (pd.read_csv(tmp_path / f"{name}-scored.csv").set_index("id").sort_index() for name in ("in", "shuffled"))
    probs = [c for c in first.columns if c.startswith("prob_")]
    assert first["emotion"].fillna("").tolist() == second["emotion"].fillna("").tolist()
    assert (first[probs] - second[probs]).abs().max().max() <= TOLERANCE


def test_an_int8_file_that_scales_each_batch_its_own_way_is_refused(tmp_path, tiny_neutral_model):
    """An export made before scales were fixed: its texts' scores would move with their neighbours."""
    folder = shutil.copytree(tiny_neutral_model, tmp_path / "model")
    graph = onnx.load(str(folder / INT8_ONNX))
    kept = {p.key: p.value for p in graph.metadata_props if p.key != "fixed_scales"}
    onnx.helper.set_model_props(graph, kept)
    onnx.save(graph, str(folder / INT8_ONNX))
    with pytest.raises(EmotionCoreError, match="model.int8.onnx scales each batch its own way, so a text's scores move with "
                                               "its neighbours; re-run python -m emotion_core export"):
        Classifier.from_pretrained(folder, engine="onnx-int8")
    assert Classifier.from_pretrained(folder).engine.name != "onnx-int8"  # auto passes it over


def test_the_int8_file_has_fixed_scales_and_runs_its_products_as_one_operator(tiny_neutral_model):
    graph = onnx.load(str(tiny_neutral_model / INT8_ONNX))
    ops = [node.op_type for node in graph.graph.node]
    assert "DynamicQuantizeLinear" not in ops and "QuantizeLinear" in ops
    assert "MatMulInteger" not in ops and "MatMulIntegerToFloat" in ops
    assert "SkipLayerNormalization" not in ops and "LayerNormalization" in ops
    assert {p.key: p.value for p in graph.metadata_props}["fixed_scales"] == "1"
