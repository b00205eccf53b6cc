"""`python -m emotion_core shift`: one label's prior moved by an offset chosen on validation."""

import json

import numpy as np
import pytest

from emotion_core import Classifier, EmotionCoreError
from emotion_core.cli import main as cli
from emotion_core.prior import choose_offset, figures, write_shifted


def trial(offset, met, score=0.5, required=2):
    return {"offset": offset, "met": met, "required": required, "score": score}


def test_the_middle_of_the_widest_run_that_meets_everything():
    trials = [trial(-0.2, 2), trial(-0.1, 1), trial(0.0, 2), trial(0.1, 2), trial(0.2, 2), trial(0.3, 1)]
    assert choose_offset(trials) == 0.1  # the run 0.0..0.2 beats the lone -0.2
    assert choose_offset([trial(0.0, 2), trial(0.1, 2)]) == 0.0  # an even run: the smaller shift of the middle two


def test_when_nothing_meets_everything_the_most_met_then_score_then_least_shift():
    assert choose_offset([trial(-0.1, 1, 0.6), trial(0.0, 0, 0.9), trial(0.1, 1, 0.7)]) == 0.1
    assert choose_offset([trial(-0.1, 1, 0.7), trial(0.0, 0), trial(0.1, 1, 0.7)]) == -0.1


def test_figures_follow_the_offset():
    logits = {"validation": np.array([[2.0, 1.5], [0.0, 1.0], [1.0, 0.8]])}
    labels, sources = {"validation": np.array([0, 1, 1])}, {"validation": ["a", "a", "a"]}
    before = figures(logits, labels, sources, ["joy", "neutral"], 1, 0.0)
    after = figures(logits, labels, sources, ["joy", "neutral"], 1, 0.6)
    assert before["validation"]["per_class"]["neutral"]["answered"] == pytest.approx(1 / 3)
    assert after["validation"]["per_class"]["neutral"]["answered"] == 1.0 and after["sources"]["a"]["validation"]["n"] == 3
    assert 0 <= after["calibration"]["validation"]["ece_after"] <= 1


def test_the_offset_goes_into_the_head_and_every_figure_is_redone(tiny_neutral_model, tmp_path):
    original = Classifier.from_pretrained(tiny_neutral_model, engine="torch")
    out = tmp_path / "shifted"
    record = {"label": "neutral", "offset": 0.5, "rule": "grid.json", "source": str(tiny_neutral_model), "met_all": [],
              "chosen": {"checks": []}}
    write_shifted(original, 0.5, original.labels.index("neutral"), out, record, "python -m emotion_core shift ...")
    shifted = Classifier.from_pretrained(out, engine="torch")
    texts = ["i feel so happy", "the quick fox at work", "so furious"]
    moved = shifted.logits(texts) - original.logits(texts)
    neutral = original.labels.index("neutral")
    assert moved[:, neutral] == pytest.approx([0.5] * 3, abs=1e-3)
    assert np.abs(np.delete(moved, neutral, axis=1)).max() < 1e-3
    assert json.loads((out / "run_config.json").read_text())["prior_shift"]["offset"] == 0.5
    assert "Then neutral's prior was shifted: +0.50 added to its logit" in (out / "README.md").read_text()
    assert (out / "model.onnx").is_file() and (out / "calibration.json").is_file()
    assert Classifier.from_pretrained(out).engine.name.startswith("onnx")  # the export matches the shifted weights


def test_the_command_chooses_on_validation_and_prints_the_checks(tiny_neutral_model, tmp_path, capsys):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"runs": {"a": []}, "rule": {"choose": "macro_f1", "require": [
        ["validation.accuracy", ">=", 0.5], ["calibration.validation.ece_after", "<=", 1.0]]}}))
    assert cli(["shift", "--model", str(tiny_neutral_model), "--rule", str(grid), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "201 offsets meet every requirement, from -1.00 to +1.00" in printed and "offset on neutral: +0.00" in printed
    assert "| validation.accuracy >= 0.5 |" in printed and "test: accuracy" in printed
    record = json.loads((tmp_path / "out" / "run_config.json").read_text())["prior_shift"]
    assert record["offset"] == 0.0 and len(record["met_all"]) == 201


def test_a_rule_without_requirements_is_refused(tiny_neutral_model, tmp_path):
    from emotion_core.prior import shift_prior

    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"runs": {"a": []}, "rule": {"choose": "macro_f1"}}))
    with pytest.raises(EmotionCoreError, match="names no requirements"):
        shift_prior(tiny_neutral_model, "neutral", grid, tmp_path / "out")


def test_a_label_the_model_lacks_is_refused(tiny_model_dir, tmp_path):
    from emotion_core.prior import shift_prior

    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"runs": {"a": []}, "rule": {"choose": "macro_f1", "require": [["validation.accuracy", ">=", 0.5]]}}))
    with pytest.raises(EmotionCoreError, match="with the label 'neutral'"):
        shift_prior(tiny_model_dir, "neutral", grid, tmp_path / "out")
