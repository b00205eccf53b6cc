"""Temperature scaling: the fit, the figures, the files, and the classifier applying it."""

import json
import shutil

import numpy as np
import pytest

from emotion_core import Classifier, EmotionCoreError
from emotion_core.calibration import Calibration, calibrate, ece, fit_calibration, fit_temperature, nll, save_calibration, softmax
from emotion_core.cli import main as cli

SIX = ["sadness", "joy", "love", "anger", "fear", "surprise"]


def overconfident(n: int, temperature: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose labels were drawn from softmax(logits / temperature): the right T is `temperature`."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(n, 6))
    probs = softmax(logits, temperature)
    labels = np.array([rng.choice(6, p=p) for p in probs])
    return logits, labels


def drawn(logits: np.ndarray, temperature: float, rng) -> np.ndarray:
    """Labels drawn from softmax(logits / temperature): the right temperature for these logits is `temperature`."""
    return np.array([rng.choice(logits.shape[1], p=p) for p in softmax(logits, temperature)])


def test_neutral_answers_get_their_own_temperature_and_no_label_changes():
    rng, names = np.random.default_rng(6), ["sadness", "joy", "neutral"]
    emotions = np.concatenate([rng.normal(0, 3, size=(3_000, 2)), np.full((3_000, 1), -20.0)], axis=1)
    calm = rng.normal(0, 1, size=(2_000, 3))
    calm[:, 2] = calm.max(axis=1) + 0.5  # answered neutral, and right more often than the raw softmax says
    logits = np.concatenate([emotions, calm])
    labels = np.concatenate([drawn(emotions, 2.0, rng), drawn(calm, 0.4, rng)])
    calibration = fit_calibration(logits, labels, names)
    assert set(calibration.by_label) == {2} and calibration.by_label[2] < 1.0 < calibration.temperature
    probs = calibration.probabilities(logits)
    assert (probs.argmax(axis=1) == logits.argmax(axis=1)).all()
    answered = logits.argmax(axis=1) == 2
    one = softmax(logits[answered], calibration.temperature)
    assert ece(probs[answered], labels[answered]) < ece(one, labels[answered]) / 2  # better than the shared temperature
    assert fit_calibration(logits[:40], labels[:40], names).by_label == {}  # too few answers to fit one


def test_fit_recovers_the_temperature():
    logits, labels = overconfident(20_000, 2.5)
    assert fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.06)


def test_calibration_lowers_ece_and_nll_and_keeps_labels():
    report = calibrate(overconfident(5_000, 2.0, seed=1), overconfident(5_000, 2.0, seed=2), SIX)
    test = report["test"]
    assert report["label_temperatures"] == {}  # no neutral label: one temperature
    assert test["ece_after"] < test["ece_before"] / 3 and test["ece_after"] < 0.03
    assert test["nll_after"] < test["nll_before"] and test["labels_unchanged"]
    assert sum(b["n"] for b in test["bins_after"]) == 5_000 and len(test["bins_after"]) == 15


def test_ece_of_a_calibrated_model_is_small_and_of_a_sure_wrong_one_large():
    logits, labels = overconfident(20_000, 1.0, seed=3)
    assert ece(softmax(logits), labels) < 0.02
    sure = np.tile([0.99, 0.002, 0.002, 0.002, 0.002, 0.002], (100, 1))
    assert ece(sure, np.ones(100, dtype=int)) == pytest.approx(0.99)
    assert nll(sure, np.zeros(100, dtype=int)) == pytest.approx(-np.log(0.99))


@pytest.fixture
def calibrated_dir(tmp_path, tiny_model_dir):
    folder = tmp_path / "calibrated"
    shutil.copytree(tiny_model_dir, folder)
    save_calibration(folder, calibrate(overconfident(600, 2.0, seed=4), overconfident(600, 2.0, seed=5), SIX))
    return folder


def test_classifier_applies_the_temperature(calibrated_dir, tiny_model_dir):
    raw, scaled = Classifier.from_pretrained(tiny_model_dir), Classifier.from_pretrained(calibrated_dir)
    temperature = json.loads((calibrated_dir / "calibration.json").read_text())["temperature"]
    assert raw.calibration == Calibration() and scaled.calibration.temperature == pytest.approx(temperature) and temperature > 1.5
    texts = ["i feel happy today", "so lonely at work"]
    logits = raw.logits(texts)
    assert np.allclose(scaled.predict_proba(texts), softmax(logits, temperature), atol=1e-6)
    assert (scaled.predict_proba(texts).argmax(1) == raw.predict_proba(texts).argmax(1)).all()
    assert (calibrated_dir / "reliability.png").read_bytes()[:4] == b"\x89PNG"


def test_damaged_calibration_is_a_clear_error(calibrated_dir):
    (calibrated_dir / "calibration.json").write_text("{not json")
    with pytest.raises(EmotionCoreError, match="calibration.json is damaged"):
        Classifier.from_pretrained(calibrated_dir)
    (calibrated_dir / "calibration.json").write_text('{"temperature": 1.2, "label_temperatures": {"boredom": 0.5}}')
    with pytest.raises(EmotionCoreError, match=r"names labels the model lacks \(boredom\)"):
        Classifier.from_pretrained(calibrated_dir)


def test_calibrate_command_redoes_an_existing_folder(tmp_path, tiny_base_dir, toy_dir, capsys):
    from emotion_core import train

    out = tmp_path / "model"
    train.main(["--base-model", str(tiny_base_dir), "--data", str(toy_dir), "--output-dir", str(out), "--max-steps", "3",
                "--max-length", "32"])
    first = json.loads((out / "calibration.json").read_text())
    assert {"validation", "test", "temperature"} <= set(first) and first["test"]["labels_unchanged"]
    assert json.loads((out / "metrics.json").read_text())["calibration"]["temperature"] == first["temperature"]
    (out / "calibration.json").unlink()
    assert cli(["calibrate", "--model", str(out)]) == 0  # data from run_config.json
    printed = capsys.readouterr().out
    assert "temperature" in printed and "test (n=60): ECE" in printed and "labels unchanged: True" in printed
    again = json.loads((out / "calibration.json").read_text())
    assert again["temperature"] == pytest.approx(first["temperature"], rel=1e-3)  # same data, same fp32 logits
    assert "## Calibration" in (out / "README.md").read_text()
    assert not list(out.glob(".*.tmp*"))
    # `evaluate` also redoes the figures from the same fp32 logits: stale ones are replaced, calibration stays
    metrics = json.loads((out / "metrics.json").read_text())
    (source,) = metrics["sources"]
    trained = metrics["test"]["accuracy"], metrics["sources"][source]["validation"]["macro_f1"]
    metrics["test"]["accuracy"] = metrics["sources"][source]["validation"]["macro_f1"] = -1.0
    (out / "metrics.json").write_text(json.dumps(metrics))
    assert cli(["evaluate", "--model", str(out)]) == 0
    assert f"test: accuracy {trained[0]:.4f}" in capsys.readouterr().out
    redone = json.loads((out / "metrics.json").read_text())
    assert (redone["test"]["accuracy"], redone["sources"][source]["validation"]["macro_f1"]) == pytest.approx(trained, abs=0.02)
    assert redone["calibration"]["temperature"] == pytest.approx(first["temperature"], rel=1e-3)
    assert "| test | 60 | " in (out / "README.md").read_text()
