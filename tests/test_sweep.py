"""`python -m emotion_core sweep`: a grid trained in parallel processes, chosen on validation alone."""

import json

import pytest

from emotion_core import EmotionCoreError
from emotion_core.cli import main as cli
from emotion_core.sweep import read_grid, validation_score


def test_sweep_chooses_on_validation_and_reads_test_of_the_winner_only(tmp_path, tiny_base_dir, toy_dir, capsys):
    common = ["--base-model", str(tiny_base_dir), "--data", str(toy_dir), "--batch-size", "16", "--warmup-ratio", "0",
              "--max-length", "32"]
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"common": common, "runs": {
        "barely": ["--learning-rate", "1e-6", "--max-steps", "2", "--no-export"],
        "learns": ["--learning-rate", "3e-3", "--epochs", "20"],
        "broken": ["--epochs", "0"],
    }}))
    out = tmp_path / "sweep"
    assert cli(["sweep", str(grid), "--out", str(out), "--jobs", "3"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "sweep.json").read_text())
    runs = summary["runs"]
    assert summary["chosen"] == "learns"  # not the first listed: the better on validation
    assert runs["learns"]["score"] > runs["barely"]["score"]
    assert 0 <= runs["learns"]["ece"] <= 1 and summary["rule"] == "mean over sources of validation macro-F1"
    assert "must be positive" in (out / "broken.log").read_text() and "exit status 1" in runs["broken"]["failed"]
    assert "failed" in runs["broken"] and "| broken | failed |" in printed
    assert "chosen: learns" in printed
    assert printed.count("test: accuracy") == 1  # the winner's test figures, and no one else's
    winner = json.loads((out / "learns" / "metrics.json").read_text())
    assert f"test: accuracy {winner['test']['accuracy']:.4f}" in printed
    assert (out / "learns" / "model.safetensors").is_file() and (out / "learns.log").stat().st_size > 0
    assert (out / "learns" / "model.int8.onnx").is_file() and not (out / "barely" / "model.int8.onnx").exists()


def test_validation_score_is_the_mean_over_sources():
    metrics = {"validation": {"macro_f1": 0.5},
               "sources": {"a": {"validation": {"macro_f1": 0.9}}, "b": {"validation": {"macro_f1": 0.7}}}}
    assert validation_score(metrics) == pytest.approx(0.8)
    assert validation_score({"validation": {"macro_f1": 0.5}}) == 0.5


@pytest.mark.parametrize("text", ["not json", '{"common": []}', '{"runs": {"a": "--epochs 3"}}', '{"runs": {}}'])
def test_a_bad_grid_file_is_refused_with_the_expected_shape(tmp_path, text):
    grid = tmp_path / "grid.json"
    grid.write_text(text)
    with pytest.raises(EmotionCoreError, match="grid"):
        read_grid(grid)


def test_jobs_must_be_positive(tmp_path, capsys):
    assert cli(["sweep", "examples/sweep/bundled.json", "--out", str(tmp_path), "--jobs", "0"]) == 1
    assert "--jobs must be at least 1" in capsys.readouterr().err


def test_the_bundled_grid_reads_and_names_its_rule():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "sweep" / "bundled.json"
    runs = read_grid(path)
    assert len(runs) == 6 and all("--base-model" in flags and "--mix" in flags for flags in runs.values())
    assert "validation macro-F1" in json.loads(path.read_text())["about"]


def test_the_calibration_rule_takes_the_lowest_ece_among_runs_good_enough():
    from emotion_core.sweep import choose

    results = {"sharp": {"score": 0.91, "ece": 0.030}, "calm": {"score": 0.89, "ece": 0.015},
               "twin": {"score": 0.90, "ece": 0.015}, "unmeasured": {"score": 0.95, "ece": None},
               "weak": {"score": 0.80, "ece": 0.005}, "broken": {"failed": "exit status 1"}}
    assert choose(results, {"choose": "macro_f1"}) == "unmeasured"
    # "weak" is better calibrated but not good enough; "calm" and "twin" tie, and the first listed wins
    assert choose(results, {"choose": "calibration", "min_score": 0.85}) == "calm"
    assert choose(results, {"choose": "calibration", "min_score": 0.95}) is None
    assert choose(results, {"choose": "calibration", "min_score": 0.85, "max_ece": 0.016}) == "calm"
    assert choose(results, {"choose": "calibration", "min_score": 0.85, "max_ece": 0.015}) is None  # must be below
    assert choose({"broken": {"failed": "exit status 1"}}, {"choose": "macro_f1"}) is None


@pytest.mark.parametrize("rule", [{"choose": "luck"}, {"choose": "calibration"}, {"choose": "calibration", "min_score": "high"},
                                  {"choose": "calibration", "min_score": True}, "calibration", ["macro_f1"], {}, None,
                                  {"choose": "calibration", "min_score": 0.8, "max_ece": "2%"},
                                  {"choose": "calibration", "min_score": 0.8, "max_ece": False}])
def test_an_unknown_rule_is_refused(tmp_path, rule):
    from emotion_core.sweep import read_rule

    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"runs": {"a": []}, "rule": rule}))
    with pytest.raises(EmotionCoreError, match="unknown rule"):
        read_rule(grid)


@pytest.mark.parametrize("path", ["test.accuracy", "sources.emotion.test.macro_f1", "accuracy"])
def test_a_requirement_on_anything_but_validation_figures_is_refused(tmp_path, path):
    from emotion_core.sweep import read_rule

    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"runs": {"a": []}, "rule": {"choose": "macro_f1", "require": [[path, ">=", 0.3]]}}))
    with pytest.raises(EmotionCoreError, match="choices are made on validation figures alone"):
        read_rule(grid)
    grid.write_text(json.dumps({"runs": {"a": []}, "rule": {"choose": "macro_f1", "require": [
        ["sources.emotion.validation.accuracy", ">=", 0.3], ["folded.accuracy", ">=", 0.5]]}}))
    assert len(read_rule(grid)["require"]) == 2


def test_a_rule_is_read_only_from_a_grid_that_is_one(tmp_path):
    from emotion_core.sweep import read_rule

    grid = tmp_path / "grid.json"
    grid.write_text("[1, 2]")
    with pytest.raises(EmotionCoreError, match="not a sweep grid"):
        read_rule(grid)


def test_when_no_run_meets_the_rule_no_test_figures_are_read(tmp_path):
    from emotion_core.sweep import summary_table

    summary = {"chosen": None, "rule": "lowest validation ECE ...",
               "runs": {"a": {"score": 0.8, "ece": 0.02, "validation": {"emotion": 0.8}, "train_runtime_s": 10}}}
    lines = summary_table(summary, tmp_path)  # tmp_path holds no run folder: reading one would fail
    assert "| a | 0.8000 | emotion 0.8000 | 2.00% | — | 10 |" in lines
    assert "no run meets the rule" in lines[-1] and not any("test:" in line for line in lines)


def test_the_calibration_grid_reads_and_names_its_rule():
    from pathlib import Path

    from emotion_core.sweep import describe_rule, read_rule

    path = Path(__file__).resolve().parents[1] / "examples" / "sweep" / "calibration.json"
    assert len(read_grid(path)) == 3
    assert describe_rule(read_rule(path)) == ("lowest validation ECE after temperature scaling, among runs whose mean over "
                                              "sources of validation macro-F1 is at least 0.885")
    assert read_rule(path.with_name("bundled.json")) == {"choose": "macro_f1"}  # no rule named: the default
    assert describe_rule({"choose": "calibration", "min_score": 0.885, "max_ece": 0.0177}).endswith("and whose ECE is below 1.77%")


def test_every_example_grid_is_runnable_as_written(monkeypatch):
    """A typo in a grid would otherwise surface an hour into a sweep."""
    from pathlib import Path

    from emotion_core import train
    from emotion_core.sweep import read_rule

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)  # grids name their files relative to the project
    files = sorted((root / "examples" / "sweep").glob("*.json"))
    grids = [path for path in files if "runs" in json.loads(path.read_text())]  # the rest are mix files
    assert len(grids) >= 4
    for grid in grids:
        read_rule(grid)
        for name, argv in read_grid(grid).items():
            _, _, train_cfg = train.parse([*argv, "--output-dir", f"runs/{name}"])
            assert train_cfg.epochs > 0, (grid.name, name)


def test_a_grid_with_the_calibration_rule_chooses_by_validation_ece(tmp_path, tiny_base_dir, toy_dir, capsys):
    common = ["--base-model", str(tiny_base_dir), "--data", str(toy_dir), "--batch-size", "16", "--warmup-ratio", "0",
              "--max-length", "32", "--no-export"]
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"common": common, "rule": {"choose": "calibration", "min_score": 0.0}, "runs": {
        "short": ["--learning-rate", "3e-3", "--epochs", "2"],
        "long": ["--learning-rate", "3e-3", "--epochs", "8"],
    }}))
    out = tmp_path / "sweep"
    assert cli(["sweep", str(grid), "--out", str(out)]) == 0
    summary = json.loads((out / "sweep.json").read_text())
    eces = {name: json.loads((out / name / "metrics.json").read_text())["calibration"]["validation"]["ece_after"]
            for name in ("short", "long")}
    assert summary["chosen"] == min(eces, key=eces.get) and summary["rule"].startswith("lowest validation ECE")
    assert {name: r["ece"] for name, r in summary["runs"].items()} == eces
    printed = capsys.readouterr().out
    assert f"{100 * eces['long']:.2f}% |" in printed and printed.count("test: accuracy") == 1


def test_required_figures_narrow_the_choice_and_the_fallback_takes_those_that_meet_the_most():
    from emotion_core.sweep import check_requirements, choose, figure

    metrics = {"sources": {"goemotions": {"validation": {"per_class": {"neutral": {"f1": 0.82}}},
                                          "folded": {"per_class": {"neutral": {"answered": 0.31}}}}}}
    assert figure(metrics, "sources.goemotions.validation.per_class.neutral.f1") == 0.82
    assert figure(metrics, "sources.goemotions.test.accuracy") is None and figure(metrics, "sources") is None
    require = [["sources.goemotions.validation.per_class.neutral.f1", ">=", 0.8],
               ["sources.goemotions.folded.per_class.neutral.answered", "<=", 0.25],
               ["sources.emotion.validation.accuracy", ">=", 0.9]]  # absent: not met
    assert [c["met"] for c in check_requirements(metrics, require)] == [True, False, False]
    results = {"best": {"score": 0.95, "checks": [{"met": True}, {"met": False}]},
               "balanced": {"score": 0.90, "checks": [{"met": True}, {"met": True}]},
               "also": {"score": 0.91, "checks": [{"met": True}, {"met": True}]}}
    rule = {"choose": "macro_f1", "require": require[:2]}
    assert choose(results, rule) == "also"  # the best score among the runs that meet both
    results["also"]["checks"] = results["balanced"]["checks"] = [{"met": False}, {"met": False}]
    assert choose(results, rule) is None
    assert choose(results, rule | {"fallback": "most_met"}) == "best"


@pytest.mark.parametrize("require", [[["a.b", ">", 1]], [["a.b", ">=", "1"]], [["a.b", ">="]], "a.b >= 1", [[1, ">=", 1]]])
def test_a_malformed_requirement_is_refused(tmp_path, require):
    from emotion_core.sweep import read_rule

    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"runs": {"a": []}, "rule": {"choose": "macro_f1", "require": require}}))
    with pytest.raises(EmotionCoreError, match="unknown rule"):
        read_rule(grid)


def test_the_neutral_grid_names_its_requirements():
    from pathlib import Path

    from emotion_core.sweep import describe_rule, read_rule

    rule = read_rule(Path(__file__).resolve().parents[1] / "examples" / "sweep" / "neutral.json")
    words = describe_rule(rule)
    assert words.startswith("mean over sources of validation macro-F1, among runs with sources.emotion.validation.accuracy >= 0.935")
    assert "sources.goemotions.folded.per_class.neutral.answered <= 0.25" in words and words.endswith("(else those that meet the most)")
