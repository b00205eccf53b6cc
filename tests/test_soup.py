"""`python -m emotion_core soup`: the mean of the weights of a sweep's runs, chosen greedily on validation."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from emotion_core import EmotionCoreError, train
from emotion_core.cli import main as cli
from emotion_core.config import TrainConfig
from emotion_core.soup import average_weights, check_same_start, greedy, rank
from emotion_core.training import training_arguments


def test_greedy_keeps_a_run_only_when_the_soup_does_not_get_worse():
    scores = {("a",): 0.80, ("a", "b"): 0.79, ("a", "c"): 0.82, ("a", "c", "d"): 0.82}
    kept, steps = greedy(["a", "b", "c", "d"], lambda names: scores[tuple(names)])
    assert kept == ["a", "c", "d"]  # b lowers the score; a tie keeps d
    assert [(s["run"], s["value"], s["kept"]) for s in steps] == [
        ("a", 0.80, True), ("b", 0.79, False), ("c", 0.82, True), ("d", 0.82, True)]
    assert [s["soup"] for s in steps] == [["a"], ["a", "b"], ["a", "c"], ["a", "c", "d"]]  # what each step measured


def test_a_soup_that_is_not_allowed_never_joins_even_after_a_first_run_that_is_not_either():
    values = {("a",): float("-inf"), ("a", "b"): float("-inf"), ("a", "c"): -0.05, ("a", "c", "d"): float("-inf")}
    kept, steps = greedy(["a", "b", "c", "d"], lambda names: values[tuple(names)])
    assert kept == ["a", "c"] and [s["kept"] for s in steps] == [True, False, True, False]


def test_calibration_rule_offers_runs_from_the_lowest_ece_among_those_that_score_enough():
    own = {"sure": {"score": 0.90, "ece": 0.030}, "calm": {"score": 0.89, "ece": 0.015}, "weak": {"score": 0.80, "ece": 0.005},
           "uncalibrated": {"score": 0.95, "ece": None}, "mid": {"score": 0.88, "ece": 0.020}}
    assert rank(own, "calibration", 0.85) == ["calm", "mid", "sure"]
    assert rank(own, "macro_f1", 0.85) == ["uncalibrated", "sure", "calm", "mid", "weak"]
    with pytest.raises(EmotionCoreError, match="at least 0.99"):
        rank(own, "calibration", 0.99)


def test_average_weights_is_the_elementwise_mean_in_the_stored_dtype(tmp_path):
    folders = []
    for i, value in enumerate((1.0, 2.0, 4.5)):
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        save_file({"w": torch.full((2, 3), value, dtype=torch.float16), "ids": torch.arange(4) + i}, folder / "model.safetensors")
        folders.append(folder)
    mean = average_weights(folders)
    assert mean["w"].dtype == torch.float16 and torch.equal(mean["w"], torch.full((2, 3), 2.5, dtype=torch.float16))
    assert torch.equal(mean["ids"], torch.arange(4))  # integer buffers are the first run's, not averaged
    save_file({"other": torch.zeros(1)}, folders[2] / "model.safetensors")
    with pytest.raises(EmotionCoreError, match="cannot be averaged"):
        average_weights(folders)


def test_runs_that_started_from_other_weights_are_refused(tmp_path):
    def run(name: str, seed: int):
        folder = tmp_path / name
        folder.mkdir()
        config = {"base_model": "base", "labels": ["joy", "anger"], "training": {"seed": seed, "train_seed": 3}}
        (folder / "run_config.json").write_text(json.dumps(config))
        return folder

    assert len(check_same_start([run("a", 42), run("b", 42)])) == 2
    with pytest.raises(EmotionCoreError, match="vary --train-seed instead of --seed"):
        check_same_start([tmp_path / "a", run("c", 7)])


def test_train_seed_sets_the_trainers_seed_only():
    assert training_arguments(TrainConfig(output_dir="unused", seed=42, train_seed=7)).seed == 7
    assert training_arguments(TrainConfig(output_dir="unused", seed=42)).seed == 42


TINY_RUN = ["--batch-size", "16", "--warmup-ratio", "0", "--max-length", "32", "--learning-rate", "3e-3", "--no-export"]


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory, tiny_base_dir, toy_dir) -> tuple:
    """A finished sweep of three tiny runs from the same weights (other orders of batches, one shorter), and its grid."""
    tmp = tmp_path_factory.mktemp("soup")
    grid = tmp / "grid.json"
    grid.write_text(json.dumps({"common": ["--base-model", str(tiny_base_dir), "--data", str(toy_dir), *TINY_RUN], "runs": {
        "first": ["--epochs", "6", "--train-seed", "1"],
        "second": ["--epochs", "6", "--train-seed", "2"],
        "shorter": ["--epochs", "3", "--train-seed", "3"],
    }}))
    assert cli(["sweep", str(grid), "--out", str(tmp / "sweep"), "--jobs", "3"]) == 0
    return tmp / "sweep", grid


def test_soup_of_a_sweep_is_a_complete_model_folder(tmp_path, tiny_sweep, capsys):
    sweep, grid = tiny_sweep
    first, second = (load_file(sweep / name / "model.safetensors") for name in ("first", "second"))
    assert not torch.equal(first["classifier.weight"], second["classifier.weight"])  # another order of batches
    capsys.readouterr()

    out = tmp_path / "soup"
    assert cli(["soup", str(sweep), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    run_config = json.loads((out / "run_config.json").read_text())
    record = run_config["soup"]
    runs = {name: str(sweep / name) for name in ("first", "second", "shorter")}
    own_scores = [s["own"]["score"] for s in record["steps"]]
    assert record["steps"][0]["run"] == record["kept"][0] and own_scores == sorted(own_scores, reverse=True)  # the best run first
    assert sorted(s["run"] for s in record["steps"]) == sorted(runs.values())
    kept_scores = [s["soup"]["score"] for s in record["steps"] if s["kept"]]
    assert kept_scores == sorted(kept_scores)  # a run joined only if the soup's score did not fall
    expected = average_weights([Path(name) for name in record["kept"]])
    soup = load_file(out / "model.safetensors")
    assert all(torch.equal(soup[k], expected[k]) for k in expected)
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"validation", "test", "calibration"} <= metrics.keys()
    runtimes = {name: json.loads((Path(name) / "metrics.json").read_text())["train_runtime_s"] for name in record["kept"]}
    assert metrics["train_runtime_s"] == pytest.approx(sum(runtimes.values()))
    assert (out / "calibration.json").is_file() and (out / "reliability.png").is_file()
    assert not list(out.glob("*.onnx")) and not list(tmp_path.glob(".soup.tmp-*"))
    card = (out / "README.md").read_text()
    assert "greedy model soup" in card and "# soup" in card and "macro-F1 did not fall" in card
    assert f"python -m emotion_core sweep {grid} --out {sweep} --jobs N\npython -m emotion_core soup {sweep} --out {out}" in card
    assert "| run | its validation score |" in printed and f"test: accuracy {metrics['test']['accuracy']:.4f}" in printed


def test_calibration_soup_mixes_a_sweep_with_a_model_folder_and_never_lets_ece_rise(tmp_path, tiny_sweep, tiny_base_dir,
                                                                                     toy_dir, capsys):
    sweep, _ = tiny_sweep
    extra = tmp_path / "extra"  # a run outside the sweep, say the bundled model, from the same starting weights
    train.main(["--base-model", str(tiny_base_dir), "--data", str(toy_dir), *TINY_RUN, "--epochs", "4", "--train-seed", "4",
                "--output-dir", str(extra)])
    capsys.readouterr()

    out = tmp_path / "soup"
    assert cli(["soup", str(extra), str(sweep), "--rule", "calibration", "--min-score", "0.3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    record = json.loads((out / "run_config.json").read_text())["soup"]
    assert record["rule"] == "calibration" and sorted(s["run"] for s in record["steps"]) == sorted(
        [str(extra), *(str(sweep / name) for name in ("first", "second", "shorter"))])
    own_eces = [s["own"]["ece"] for s in record["steps"]]
    assert own_eces == sorted(own_eces)  # offered from the lowest validation ECE up
    current = record["steps"][0]["soup"]["ece"]
    for step in record["steps"][1:]:  # a run joined only if the soup's ECE did not rise and its score stayed high enough
        joins = step["soup"]["ece"] <= current and step["soup"]["score"] >= 0.3
        assert step["kept"] == joins
        current = step["soup"]["ece"] if joins else current
    soup = load_file(out / "model.safetensors")
    expected = average_weights([Path(name) for name in record["kept"]])
    assert all(torch.equal(soup[k], expected[k]) for k in expected)
    card = (out / "README.md").read_text()
    assert "ECE after temperature scaling did not rise and the mean over sources of validation macro-F1 stayed at least 0.3" in card
    assert f"--rule calibration --min-score 0.3 --out {out}" in card
    assert "soup's ECE with it" in printed


def test_a_soup_that_kept_one_run_says_so_in_its_card(tmp_path, tiny_sweep):
    sweep, _ = tiny_sweep
    out = tmp_path / "soup"
    assert cli(["soup", str(sweep / "shorter"), "--rule", "calibration", "--out", str(out)]) == 0
    card = (out / "README.md").read_text()
    assert f"no other run joined {sweep / 'shorter'}" in card and "the mean of the weights" not in card
    assert torch.equal(load_file(out / "model.safetensors")["classifier.weight"],
                       load_file(sweep / "shorter" / "model.safetensors")["classifier.weight"])


def test_a_run_given_twice_or_a_floor_without_its_rule_is_refused(tmp_path, tiny_sweep, capsys):
    sweep, _ = tiny_sweep
    copy = tmp_path / "copy-of-first"
    shutil.copytree(sweep / "first", copy)
    assert cli(["soup", str(sweep), str(copy), "--out", str(tmp_path / "soup")]) == 1
    assert "hold the same weights: give each run once" in capsys.readouterr().err
    assert cli(["soup", str(sweep), "--min-score", "0.5", "--out", str(tmp_path / "soup")]) == 1
    assert "--min-score is a floor for --rule calibration" in capsys.readouterr().err
    assert cli(["soup", str(sweep), "--rule", "calibration", "--min-score", "1.01", "--out", str(tmp_path / "soup")]) == 1
    assert "nothing to start a soup with" in capsys.readouterr().err
    assert not (tmp_path / "soup").exists()


def test_soup_needs_a_finished_sweep(tmp_path, capsys):
    assert cli(["soup", str(tmp_path), "--out", str(tmp_path / "soup")]) == 1
    assert "holds neither sweep.json nor a model" in capsys.readouterr().err


def test_the_soup_grid_varies_the_order_of_batches_never_the_starting_weights():
    from emotion_core.sweep import read_grid

    path = Path(__file__).resolve().parents[1] / "examples" / "sweep" / "soup.json"
    runs = read_grid(path)
    assert len(runs) == 8 and not any("--seed" in flags for flags in runs.values())  # one head for all: averageable
    assert len({tuple(flags) for flags in runs.values()}) == 8
    assert "greedy model soup" in json.loads(path.read_text())["about"]


@pytest.mark.parametrize("damage,message", [
    ("sweep_not_json", "sweep.json could not be read"),
    ("sweep_without_runs", "sweep.json lacks runs"),
    ("run_without_weights", "has no weights"),
    ("run_config_not_json", "run_config.json could not be read"),
    ("weights_truncated", "model.safetensors could not be read"),
    ("metrics_missing", "metrics.json could not be read"),
])
def test_a_damaged_sweep_is_named_with_what_is_wrong(tmp_path, tiny_model_dir, damage, message, capsys):
    sweep = tmp_path / "sweep"
    shutil.copytree(tiny_model_dir, sweep / "a")
    (sweep / "a" / "run_config.json").write_text(json.dumps({"base_model": "b", "labels": ["x"], "training": {"seed": 42}}))
    (sweep / "a" / "metrics.json").write_text(json.dumps({"validation": {"macro_f1": 0.5}, "train_runtime_s": 1}))
    (sweep / "sweep.json").write_text(json.dumps({"grid": "g", "runs": {"a": {"score": 0.5, "flags": [], "train_runtime_s": 1}}}))
    weights = sweep / "a" / "model.safetensors"
    if damage == "sweep_not_json":
        (sweep / "sweep.json").write_text("{not json")
    elif damage == "sweep_without_runs":
        (sweep / "sweep.json").write_text('{"grid": "g"}')
    elif damage == "run_without_weights":
        weights.unlink()
    elif damage == "run_config_not_json":
        (sweep / "a" / "run_config.json").write_text("[1,")
    elif damage == "metrics_missing":
        (sweep / "a" / "metrics.json").unlink()
    else:
        weights.write_bytes(weights.read_bytes()[:100])
    assert cli(["soup", str(sweep), "--out", str(tmp_path / "soup")]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not (tmp_path / "soup").exists()
