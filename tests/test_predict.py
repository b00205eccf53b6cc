"""Classifier: probabilities, batching, input checks, model resolution and broken model folders."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import emotion_core
from emotion_core import Classifier, EmotionCoreError
from emotion_core.config import BUNDLED_MODEL, env_count, resolve_model
from emotion_core.explain import explain
from tests.helpers import ROOT


def test_predict_gives_every_label_highest_first(classifier):
    probs = classifier.predict("i feel happy today")
    assert set(probs) == set(classifier.labels) and len(probs) == 6
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    values = list(probs.values())
    assert values == sorted(values, reverse=True)


def test_predict_batch_matches_predict_whatever_the_lengths(tiny_model_dir):
    classifier = Classifier.from_pretrained(tiny_model_dir, engine="torch")  # fp32: padding changes nothing
    texts = ["short", "a much longer text about the weather and my friends at work today " * 3, "i feel sad", "ok then"]
    batch = classifier.predict_batch(texts, batch_size=2)
    for text, probs in zip(texts, batch):
        single = classifier.predict(text)
        assert list(probs) == list(single)
        assert np.allclose(list(probs.values()), list(single.values()), atol=1e-5)


def test_a_very_long_text_is_read_not_refused(classifier):
    probs = classifier.predict("word " * 100_000)
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert classifier.max_length == 64


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_a_clear_value_error(classifier, text):
    with pytest.raises(ValueError, match="Text is empty"):
        classifier.predict(text)


def test_empty_item_in_a_batch_is_named(classifier):
    with pytest.raises(EmotionCoreError, match=r"item 1"):
        classifier.predict_batch(["fine", " "])


def test_a_lone_surrogate_is_a_clear_error_not_a_tokenizer_crash(classifier):
    """JSON's "\\ud800" decodes to a str no tokenizer, file or database takes."""
    with pytest.raises(EmotionCoreError, match=r"not valid Unicode \(item 1\): character 4 is a lone surrogate \(U\+DC00\)"):
        classifier.predict_batch(["fine", "so \udc00 sad"])
    assert classifier.analyze(["so \U0001f622 sad"])[0].label in classifier.labels  # a whole emoji is fine
    with pytest.raises(EmotionCoreError, match="not valid Unicode: character 4"):
        explain(classifier, "so \udc00 sad")


def test_model_resolution_order(monkeypatch, tmp_path):
    monkeypatch.delenv("EMOTION_MODEL", raising=False)
    assert resolve_model() == str(BUNDLED_MODEL)
    monkeypatch.setenv("EMOTION_MODEL", str(tmp_path))
    assert resolve_model() == str(tmp_path)
    assert resolve_model("explicit") == "explicit"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("EMOTION_MODEL", "~/models/emotion")
    assert resolve_model() == str(tmp_path / "models" / "emotion")


def test_a_model_folder_under_home_loads_by_a_tilde_path(monkeypatch, tmp_path, tiny_model_dir):
    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copytree(tiny_model_dir, tmp_path / "emo")
    assert Classifier.from_pretrained("~/emo", engine="torch").labels == Classifier.from_pretrained(tiny_model_dir, engine="torch").labels


def test_predict_batch_takes_a_pandas_column_an_array_or_nothing(classifier):
    import pandas as pd

    texts = ["i feel happy today", "so sad and alone"]
    expected = classifier.predict_batch(texts)
    assert classifier.predict_batch(pd.Series(texts, index=[5, 9])) == expected
    assert classifier.predict_batch(np.array(texts)) == expected
    assert classifier.predict_batch([]) == [] and classifier.analyze([]) == []
    assert classifier.predict_proba([]).shape == (0, len(classifier.labels))


@pytest.mark.parametrize("value", ["lots", "0", "-3", "2.5"])
def test_a_count_setting_that_is_not_a_count_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv("EMOTION_MAX_BATCHED", value)
    with pytest.raises(EmotionCoreError, match=f"EMOTION_MAX_BATCHED must be a whole number of at least 1, not '{value}'"):
        env_count("EMOTION_MAX_BATCHED", 16)


def test_a_count_setting_left_out_or_set(monkeypatch):
    monkeypatch.delenv("EMOTION_MAX_BATCHED", raising=False)
    assert env_count("EMOTION_MAX_BATCHED", 16) == 16
    monkeypatch.setenv("EMOTION_MAX_BATCHED", " 4 ")
    assert env_count("EMOTION_MAX_BATCHED", 16) == 4


def test_the_package_without_a_checkout_asks_for_a_model(tmp_path, tiny_model_dir):
    """emotion_core installed alone (no models/ beside it) says where a model can come from, and runs with one."""
    import subprocess
    import sys

    shutil.copytree(Path(emotion_core.__file__).parent, tmp_path / "emotion_core", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("EMOTION_MODEL", "PYTHONPATH")}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "emotion_core", *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)

    for args in (["predict", "i feel fine"], ["calibrate"], ["space", "build", str(tmp_path / "space")]):
        result = run(*args)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert "a checkout of the project" in result.stderr.strip().splitlines()[-1], args
    assert not (tmp_path / "space").exists()
    answer = run("predict", "--model", str(tiny_model_dir), "i feel fine")
    assert answer.returncode == 0 and json.loads(answer.stdout)["text"] == "i feel fine"


def test_env_var_picks_the_model(monkeypatch, tiny_model_dir):
    monkeypatch.setenv("EMOTION_MODEL", str(tiny_model_dir))
    assert Classifier.from_pretrained().source == str(tiny_model_dir)


def broken_copy(src, dst, damage):
    shutil.copytree(src, dst)
    damage(dst)
    return dst


def truncate_weights(folder):
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])


def drop_labels(folder):
    config = json.loads((folder / "config.json").read_text())
    config.pop("id2label"), config.pop("label2id")
    (folder / "config.json").write_text(json.dumps(config))


def pickle_only(folder):
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")


@pytest.mark.parametrize("damage,message", [
    (lambda d: (d / "model.safetensors").unlink(), "has no weights (model.safetensors is missing)"),
    (truncate_weights, "could not be loaded"),
    (drop_labels, "names no labels"),
    (pickle_only, "only safetensors are accepted"),
    (lambda d: (d / "config.json").unlink(), "has no config.json"),
    (lambda d: (d / "config.json").write_text("{not json"), "config.json is not valid JSON"),
])
def test_broken_model_folder_is_named_with_what_is_wrong(tmp_path, tiny_model_dir, damage, message):
    folder = broken_copy(tiny_model_dir, tmp_path / "broken", damage)
    with pytest.raises(EmotionCoreError) as err:
        Classifier.from_pretrained(folder)
    assert str(folder) in str(err.value) and message in str(err.value)


def test_unknown_hub_model_offline_is_a_clear_error():
    with pytest.raises(EmotionCoreError, match=r"Could not load model 'someone/emotion-model'.*EMOTION_MODEL"):
        Classifier.from_pretrained("someone/emotion-model")


def test_mistyped_model_folder_is_not_sent_to_the_hub():
    with pytest.raises(EmotionCoreError, match=r"Model folder ./modles/emotion not found"):
        Classifier.from_pretrained("./modles/emotion")


HUB_CODE = """import json, sys
from emotion_core import Classifier, EmotionCoreError
try:
    c = Classifier.from_pretrained("someone/emotion-model")
    print(json.dumps({"files": str(c.files), "folder": c.folder, "answer": c.predict("i feel happy")}))
except EmotionCoreError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def hub_cache_with(tmp_path, tiny_model_dir, leave_out: str | None = None):
    """A Hub cache (huggingface_hub's layout) holding `someone/emotion-model`: the tiny model's files at one commit."""
    repo = tmp_path / "hub" / "models--someone--emotion-model"
    snapshot = repo / "snapshots" / ("a" * 40)
    shutil.copytree(tiny_model_dir, snapshot)
    if leave_out:
        (snapshot / leave_out).unlink()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    return tmp_path / "hub", snapshot


def load_from_hub_cache(cache):
    out = subprocess.run([sys.executable, "-c", HUB_CODE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def test_a_hub_model_in_the_local_cache_loads_offline_as_its_folder_would(tmp_path, tiny_model_dir, classifier):
    cache, snapshot = hub_cache_with(tmp_path, tiny_model_dir)
    found = load_from_hub_cache(cache)
    assert found["files"] == str(snapshot) and found["folder"] is None  # commands that write into a folder refuse it
    assert found["answer"] == pytest.approx(classifier.predict("i feel happy"))


def test_a_hub_model_without_a_tokenizer_file_is_named(tmp_path, tiny_model_dir):
    cache, _ = hub_cache_with(tmp_path, tiny_model_dir, leave_out="tokenizer.json")
    error = load_from_hub_cache(cache)["error"]
    assert error.startswith("Hub model 'someone/emotion-model' cannot be used:") and "has no tokenizer.json" in error
