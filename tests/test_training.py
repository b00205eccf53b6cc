"""train.py end to end on the tiny model: model folder, metrics, resume, offline behaviour, flags."""

import json
import time
from pathlib import Path

import onnx
import pytest
from safetensors import safe_open

from emotion_core import Classifier, EmotionCoreError, train


def train_args(base, data, out, *extra):
    return ["--base-model", str(base), "--data", str(data), "--output-dir", str(out), "--batch-size", "16",
            "--learning-rate", "3e-3", "--warmup-ratio", "0", "--max-length", "32", *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_base_dir, toy_dir):
    """One full tiny training run, shared by the tests that inspect its results."""
    out = tmp_path_factory.mktemp("run") / "toy-model"
    metrics = train.main(train_args(tiny_base_dir, toy_dir, out, "--epochs", "20"))
    return out, metrics


def test_model_folder_has_every_file(trained):
    out, _ = trained
    for name in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "metrics.json",
                 "confusion_matrix.png", "README.md", "run_config.json", "training_args.json"):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.bin")), "no pickle files in a model folder"
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "sadness", "1": "joy", "2": "anger"}
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.parent.glob(f".{out.name}.tmp-*")), "temporary folder renamed away"
    command = json.loads((out / "run_config.json").read_text())["command"]
    assert command.startswith("emotion train --base-model ") and f"--output-dir {out} " in command and command.endswith("--epochs 20")


def test_metrics_have_every_figure(trained):
    out, returned = trained
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(returned))
    for split in ("validation", "test"):
        m = metrics[split]
        assert {"accuracy", "macro_f1", "weighted_f1", "per_class", "confusion_matrix", "labels", "n"} <= set(m)
        assert set(m["per_class"]) == {"sadness", "joy", "anger"}
        assert sum(map(sum, m["confusion_matrix"])) == m["n"] == 60
    assert metrics["train_rows"] == 300 and metrics["train_runtime_s"] > 0


def test_model_card_carries_metrics_for_the_hub(trained):
    from huggingface_hub import ModelCard

    out, metrics = trained
    card = ModelCard.load(out / "README.md")
    results = {(r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert results[("test", "accuracy")] == round(metrics["test"]["accuracy"], 4)
    assert results[("validation", "f1")] == round(metrics["validation"]["macro_f1"], 4)  # f1, averaged: macro
    assert {r.metric_config for r in card.data.eval_results if r.metric_type == "f1"} == {"macro"}
    assert "| sadness |" in card.text and "confusion_matrix.png" in card.text


def test_trained_model_loads_and_beats_chance(trained, toy_dir):
    out, metrics = trained
    classifier = Classifier.from_pretrained(out, engine="torch")  # fp32, as the metrics were measured
    assert classifier.labels == ["sadness", "joy", "anger"]
    assert classifier.max_length == 32  # inference truncates where training did
    probs = classifier.predict("i feel so happy and glad today")
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert metrics["test"]["accuracy"] > 0.8  # chance is 1/3
    rows = [line.rsplit(";", 1) for line in (toy_dir / "test.txt").read_text().splitlines()]
    predicted = [next(iter(p)) for p in classifier.predict_batch([text for text, _ in rows])]
    assert sum(p == y for p, (_, y) in zip(predicted, rows)) / len(rows) == pytest.approx(metrics["test"]["accuracy"])


def test_fp16_weights_load_as_fp32(tmp_path, tiny_base_dir, toy_dir):
    out = tmp_path / "half"
    train.main(train_args(tiny_base_dir, toy_dir, out, "--max-steps", "2", "--save-fp16"))
    with safe_open(out / "model.safetensors", "pt") as f:
        assert {str(f.get_slice(k).get_dtype()) for k in f.keys()} == {"F16"}
    model = Classifier.from_pretrained(out).model
    assert next(model.parameters()).dtype.is_floating_point and str(next(model.parameters()).dtype) == "torch.float32"
    # the ONNX export comes from the saved (rounded) weights, so fp16 holds them exactly and stores them
    graph = onnx.load(str(out / "model.onnx"))
    assert sum(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.graph.initializer) >= 4
    texts = ["i feel so happy and glad today", "i am so sad"]
    reference = Classifier.from_pretrained(out, engine="torch").logits(texts)
    assert abs(Classifier.from_pretrained(out, engine="onnx").logits(texts) - reference).max() < 1e-4


def test_resume_continues_from_the_last_checkpoint(tmp_path, tiny_base_dir, toy_dir):
    out = tmp_path / "resumed"
    train.main(train_args(tiny_base_dir, toy_dir, out, "--epochs", "1"))  # 19 steps, a checkpoint at the end
    checkpoints = out.with_name("resumed.checkpoints")
    assert [p.name for p in checkpoints.glob("checkpoint-*")] == ["checkpoint-19"]
    metrics = train.main(train_args(tiny_base_dir, toy_dir, out, "--epochs", "2", "--resume"))
    state = json.loads((checkpoints / "checkpoint-38" / "trainer_state.json").read_text())
    assert state["global_step"] == 38
    first_logged_step = min(h["step"] for h in state["log_history"] if "eval_accuracy" in h)
    assert first_logged_step == 19  # the epoch-1 evaluation came from the first run's state
    assert Classifier.from_pretrained(out).labels and metrics["test"]["n"] == 60


def test_resume_without_checkpoint_is_refused(tmp_path, tiny_base_dir, toy_dir):
    with pytest.raises(EmotionCoreError, match="no checkpoint in"):
        train.main(train_args(tiny_base_dir, toy_dir, tmp_path / "fresh", "--resume"))


def test_resume_continues_only_its_own_run(tmp_path, tiny_base_dir, toy_dir):
    """Checkpoints of a run with other data or settings, or one that has trained longer than asked, are not resumed
    (the Trainer would train nothing and save the old model as this run's); a fresh run removes the old ones."""
    out = tmp_path / "model"
    checkpoints = out.with_name("model.checkpoints")
    train.main(train_args(tiny_base_dir, toy_dir, out, "--epochs", "2"))
    assert sorted(p.name for p in checkpoints.glob("checkpoint-*")) == ["checkpoint-19", "checkpoint-38"]
    with pytest.raises(EmotionCoreError, match="has trained longer than this run asks .epoch 2, step 38"):
        train.main(train_args(tiny_base_dir, toy_dir, out, "--epochs", "1", "--resume"))
    (out / "model.safetensors").unlink()  # as if killed after the last checkpoint, while it saved the model
    train.main(train_args(tiny_base_dir, toy_dir, out, "--epochs", "2", "--resume"))  # resumed to finish
    assert (out / "model.safetensors").is_file()
    with pytest.raises(EmotionCoreError, match="are another run's .other data or settings"):
        train.main(train_args(tiny_base_dir, toy_dir, out, "--epochs", "3", "--learning-rate", "1e-3", "--resume"))
    train.main(train_args(tiny_base_dir, toy_dir, out, "--epochs", "1"))  # afresh: the two-epoch checkpoints go
    assert [p.name for p in checkpoints.glob("checkpoint-*")] == ["checkpoint-19"]


def test_failed_save_leaves_the_old_model_in_place(tmp_path, tiny_base_dir, toy_dir, monkeypatch):
    out = tmp_path / "model"
    out.mkdir()
    (out / "config.json").write_text("{}")  # a model folder (only those, or empty ones, are replaced)
    (out / "marker").write_text("old model")
    monkeypatch.setattr("emotion_core.training.build_model_card", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        train.main(train_args(tiny_base_dir, toy_dir, out, "--max-steps", "1"))
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "marker"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_hub_base_model_offline_fails_fast_with_hint(tmp_path, toy_dir):
    start = time.monotonic()
    with pytest.raises(EmotionCoreError) as err:
        train.main(["--data", str(toy_dir), "--output-dir", str(tmp_path / "x")])  # default distilbert-base-uncased
    assert time.monotonic() - start < 10
    assert "Could not load base model 'distilbert-base-uncased'" in str(err.value)
    assert "python train.py --base-model minilm --data ../shared/data/emotion" in str(err.value)


@pytest.mark.parametrize("argv,message", [
    (["--push-to-hub"], "--push-to-hub needs --hub-model-id"),
    (["--max-length", "2"], "--max-length must be between"),
    (["--epochs", "0"], "must be positive"),
    (["--label-smoothing", "1"], "--label-smoothing must be in"),
    (["--focal-gamma", "-1"], "--focal-gamma must be at least 0"),
    (["--focal-gamma", "2", "--label-smoothing", "0.1"], "cannot be combined"),
])
def test_bad_flag_combinations_fail_before_any_work(argv, message):
    with pytest.raises(EmotionCoreError, match=message):
        train.main(argv)


def test_json_config_file_replaces_flags(tmp_path, tiny_base_dir, toy_dir):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"base_model": str(tiny_base_dir), "data": str(toy_dir), "max_steps": 1,
                                  "output_dir": str(tmp_path / "from-json"), "max_length": 32}))
    train.main([str(config)])
    assert json.loads((tmp_path / "from-json" / "run_config.json").read_text())["max_length"] == 32


@pytest.mark.parametrize("content, message", [
    ('{"data": "x", "epoch": 1}', "unknown setting 'epoch' .`emotion train --help` lists them; the file spells --output-dir as output_dir"),
    ('{"data": "x",', "is not valid JSON"),
    ('["data"]', r"unknown setting '\(not an object\)'"),
])
def test_a_bad_run_file_is_a_message_not_a_traceback(tmp_path, content, message):
    (tmp_path / "run.json").write_text(content)
    with pytest.raises(EmotionCoreError, match=message):
        train.main([str(tmp_path / "run.json")])


def test_label_smoothing_reaches_the_trainer_and_the_run_record(tmp_path, tiny_base_dir, toy_dir):
    out = tmp_path / "smoothed"
    train.main(train_args(tiny_base_dir, toy_dir, out, "--max-steps", "1", "--label-smoothing", "0.2", "--no-export"))
    assert json.loads((out / "training_args.json").read_text())["label_smoothing_factor"] == 0.2
    assert json.loads((out / "run_config.json").read_text())["training"]["label_smoothing"] == 0.2


def test_focal_loss_is_cross_entropy_that_fades_for_sure_right_answers():
    import torch

    from emotion_core.training import focal_loss

    logits = torch.tensor([[4.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 3.0, 0.0]])
    labels = torch.tensor([0, 0, 0])  # sure and right, unsure and right, sure and wrong
    plain = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    assert torch.isclose(focal_loss(0)({"logits": logits}, labels), plain.mean())
    # one of two processes (or accumulated batches) with three texts each: its share of the step's mean
    assert torch.isclose(focal_loss(0)({"logits": logits}, labels, num_items_in_batch=torch.tensor(6)), plain.sum() / 6)
    per_text = [focal_loss(3)({"logits": logits[i:i + 1]}, labels[i:i + 1]) / plain[i] for i in range(3)]
    assert per_text[0] < 0.001 and per_text[0] < per_text[1] < per_text[2] < 1  # the sure right answer is all but ignored


def test_focal_gamma_is_the_loss_trained_on_and_is_recorded(tmp_path, tiny_base_dir, toy_dir, monkeypatch):
    from emotion_core import training

    calls = []

    def counted(gamma):
        loss = focal_loss(gamma)
        return lambda outputs, labels, **kw: calls.append(gamma) or loss(outputs, labels, **kw)

    focal_loss = training.focal_loss
    monkeypatch.setattr(training, "focal_loss", counted)
    out = tmp_path / "focal"
    train.main(train_args(tiny_base_dir, toy_dir, out, "--max-steps", "2", "--focal-gamma", "3", "--no-export"))
    assert calls[:2] == [3.0, 3.0]  # both training steps
    assert json.loads((out / "run_config.json").read_text())["training"]["focal_gamma"] == 3


def test_help_lists_every_flag(capsys):
    with pytest.raises(SystemExit):
        train.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--base-model", "--data", "--output-dir", "--epochs", "--learning-rate", "--batch-size", "--max-length",
                 "--seed", "--max-train-samples", "--resume", "--push-to-hub", "--hub-model-id", "--text-column",
                 "--label-column", "--train-file", "--validation-file", "--test-file", "--save-fp16"):
        assert flag in text, flag


def test_an_unknown_flag_is_an_argparse_error_not_a_traceback(capsys):
    with pytest.raises(SystemExit) as exit_:
        train.main(["--base-model", "minilm", "--no-such-flag", "3"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "emotion train: error: unrecognized arguments: --no-such-flag 3"


@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_one_model(tmp_path, tiny_base_dir, toy_dir):
    import subprocess
    import sys

    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "train.py",
               *train_args(tiny_base_dir, toy_dir, out, "--epochs", "20")]
    result = subprocess.run(command, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("Saved ") == 1  # rank 0 alone writes the model folder
    for name in ("model.safetensors", "model.onnx", "metrics.json", "README.md", "config.json"):
        assert (out / name).is_file(), name
    # rank 0 alone checks the int8 export: it is written, or refused once (a toy model may lose labels in int8)
    assert (out / "model.int8.onnx").is_file() != (result.stderr.count("no int8 export keeps") == 1)
    # 300 rows, 16 per device, 2 processes: 10 steps an epoch (19 for one process)
    steps = [int(p.name.split("-")[1]) for p in out.with_name("ddp.checkpoints").glob("checkpoint-*")]
    assert max(steps) == 200
    assert json.loads((out / "metrics.json").read_text())["test"]["accuracy"] > 0.6
    assert Classifier.from_pretrained(out).labels == ["sadness", "joy", "anger"]


def test_an_output_folder_holding_other_files_is_refused_before_training(tmp_path, tiny_base_dir, toy_dir, trained):
    """Writing a model replaces its folder: a folder of a person's files is refused (and kept), a model folder is not."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "notes.txt").write_text("months of work")
    with pytest.raises(EmotionCoreError, match="models is there already and is not a model folder"):
        train.main(train_args(tiny_base_dir, toy_dir, tmp_path / "models"))
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["notes.txt"]  # not a checkpoint written
    from emotion_core.model_folder import check_replaceable

    check_replaceable(trained[0])  # a model folder, and nothing at all, may be replaced
    check_replaceable(tmp_path / "nothing-here")


def test_figures_redone_later_read_the_splits_the_run_read(tmp_path, tiny_base_dir, toy_dir):
    """`evaluate`, `calibrate` and `export` read the data back from run_config.json: explicit files stay those
    files, and a validation split held out of one file is held out with the run's seed, not another."""
    from emotion_core.config import DataConfig
    from emotion_core.data import load_sources
    from emotion_core.evaluation import eval_data

    files = tmp_path / "files"
    train.main(train_args(tiny_base_dir, toy_dir, files, "--epochs", "1", "--train-file", str(toy_dir / "train.txt"),
                          "--validation-file", str(toy_dir / "val.txt"), "--test-file", str(toy_dir / "test.txt")))
    redone = eval_data(Classifier.from_pretrained(files, engine="torch"), None)
    assert list(redone["validation"][0]) == [line.rsplit(";", 1)[0] for line in (toy_dir / "val.txt").read_text().splitlines()]
    assert len(redone["test"][0]) == 60
    held_out = tmp_path / "held-out"
    train.main(train_args(tiny_base_dir, toy_dir / "train.txt", held_out, "--epochs", "1", "--seed", "7"))
    trained_on = set(load_sources(DataConfig(data=[str(toy_dir / "train.txt")], normalize="none"), seed=7)[0]["train"]["text"])
    validation = eval_data(Classifier.from_pretrained(held_out, engine="torch"), None)["validation"][0]
    assert validation and not trained_on & set(validation)


def test_a_held_out_split_redone_later_is_the_one_the_run_held_out(tmp_path, tiny_base_dir, toy_dir):
    """Texts the run's normalisation makes alike ("I feel HAPPY", "i feel happy") are dropped as duplicates before
    10% is held out; read back without those steps, other rows were held out, some of them trained on."""
    from emotion_core.config import DataConfig
    from emotion_core.data import load_sources
    from emotion_core.evaluation import eval_data

    lines = (toy_dir / "train.txt").read_text().splitlines()
    shouted = [f"{text.upper()};{label}" for text, label in (line.rsplit(";", 1) for line in lines[::3])]
    (tmp_path / "train.txt").write_text("\n".join(lines + shouted) + "\n")
    out = tmp_path / "model"
    train.main(train_args(tiny_base_dir, tmp_path / "train.txt", out, "--epochs", "1", "--normalize", "default"))
    run = load_sources(DataConfig(data=[str(tmp_path / "train.txt")], normalize="default"), seed=42)[0]
    redone = eval_data(Classifier.from_pretrained(out, engine="torch"), None)["validation"][0]
    assert list(redone) == run["validation"]["text"] and not set(redone) & set(run["train"]["text"])
    assert len(redone) == json.loads((out / "metrics.json").read_text())["validation"]["n"]
    test = tmp_path / "test.txt"  # texts another model (the gate's candidate) must read as the files have them
    test.write_text("I AM SOOO HAPPY 😂;joy\nso sad today;sadness\n")
    files = tmp_path / "files"
    train.main(train_args(tiny_base_dir, toy_dir, files, "--max-steps", "1", "--normalize", "default", "--no-export",
                          "--train-file", str(toy_dir / "train.txt"), "--validation-file", str(toy_dir / "val.txt"),
                          "--test-file", str(test)))
    classifier = Classifier.from_pretrained(files, engine="torch")
    assert eval_data(classifier, None, ("test",), raw=True)["test"][0] == ["I AM SOOO HAPPY 😂", "so sad today"]
    assert eval_data(classifier, None, ("test",))["test"][0] == ["i am so happy face with tears of joy", "so sad today"]
