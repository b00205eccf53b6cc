"""One model from several runs of a sweep: the mean of their weights (a greedy model soup).

    $ python -m emotion_core sweep examples/sweep/soup.json --out runs/soup --jobs 8
    $ python -m emotion_core soup runs/soup --out models/soup

Runs fine-tuned from the same pretrained encoder and the same new head (the same `--seed`; they
may differ in `--train-seed`, learning rate, epochs or data mix) end up close enough that the
mean of their weights is itself a good model, often better than each of them (Wortsman et al.,
"Model soups", ICML 2022), and it costs nothing more at inference. Greedy: the runs from the best
validation score down; each joins the soup only if the soup's score does not fall. The score is
the sweep's (mean over sources of validation macro-F1), measured on the CPU in fp32. Test
figures are computed for the finished soup alone.
"""

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import EmotionCoreError
from .predict import Classifier, check_model_folder
from .sweep import validation_score
from .training import add_reports, calibrate_folder, eval_data, replace_dir, write_atomically

WEIGHTS = "model.safetensors"
RULE = "greedy soup: runs from the best mean over sources of validation macro-F1 down, each kept if the soup's score does not fall"
NOT_COPIED = (".onnx", WEIGHTS, "calibration.json", "reliability.png")  # stale for the mean; redone or written anew


def read_json(path: Path, *keys: str) -> dict:
    """A JSON object that must hold `keys`; EmotionCoreError naming the file when it is unreadable or lacks one."""
    try:
        data = json.loads(path.read_text())
        missing = [key for key in keys if key not in data]
    except (OSError, ValueError, TypeError) as exc:
        raise EmotionCoreError(f"{path} could not be read ({type(exc).__name__}: {exc}).") from None
    if missing:
        raise EmotionCoreError(f"{path} lacks {', '.join(missing)}: was it written by `python -m emotion_core sweep` / train.py?")
    return data


def load_weights(folder: Path) -> dict[str, torch.Tensor]:
    """A run's weights; EmotionCoreError naming the folder when the file is damaged."""
    try:
        return load_file(folder / WEIGHTS)
    except (OSError, SafetensorError) as exc:
        raise EmotionCoreError(f"{folder / WEIGHTS} could not be read: {exc}") from None


def average_weights(folders: list[Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the folders' weights, summed in fp32 and stored in the first folder's dtypes."""
    first = load_weights(folders[0])
    total = {name: tensor.float() for name, tensor in first.items() if tensor.is_floating_point()}
    for folder in folders[1:]:
        state = load_weights(folder)
        if state.keys() != first.keys() or any(state[k].shape != first[k].shape for k in first):
            raise EmotionCoreError(f"{folder} does not have the same weights as {folders[0]}: they cannot be averaged.")
        for name in total:
            total[name] += state[name].float()
    return {name: (total[name] / len(folders)).to(tensor.dtype) if name in total else tensor for name, tensor in first.items()}


def check_same_start(folders: list[Path]) -> list[dict]:
    """The runs' run_config.json; refused unless all fine-tuned the same base model with the same head (same --seed)."""
    configs = [read_json(folder / "run_config.json", "base_model", "training", "labels") for folder in folders]
    starts = {(c["base_model"], c["training"].get("seed"), tuple(c["labels"])) for c in configs}
    if len(starts) > 1:
        raise EmotionCoreError("The runs did not start from the same weights (base model, --seed and labels must match; "
                               f"vary --train-seed instead of --seed): {sorted(starts)}")
    return configs


def greedy(ranked: list[str], score: Callable[[list[str]], float]) -> tuple[list[str], list[dict]]:
    """The runs kept, and one step per run: the soup's score with it, and whether it stayed (ties stay)."""
    kept = ranked[:1]
    best = score(kept)
    steps = [{"run": ranked[0], "soup_score": best, "kept": True}]
    for name in ranked[1:]:
        candidate = score([*kept, name])
        if candidate >= best:
            kept, best = [*kept, name], candidate
        steps.append({"run": name, "soup_score": candidate, "kept": kept[-1] == name})
    return kept, steps


def make_soup(sweep_dir: str | Path, out: str | Path) -> dict:
    """Cook the greedy soup of a finished sweep into the model folder OUT (replaced atomically); return its record."""
    command = f"python -m emotion_core soup {sweep_dir} --out {out}"
    sweep_dir, out = Path(sweep_dir), Path(out).resolve()
    summary_file = sweep_dir / "sweep.json"
    if not summary_file.is_file():
        raise EmotionCoreError(f"{summary_file} not found: run `python -m emotion_core sweep GRID --out {sweep_dir}` first.")
    summary = read_json(summary_file, "grid", "runs")
    runs = summary["runs"]
    ranked = sorted((name for name in runs if "score" in runs[name]), key=lambda name: -runs[name]["score"])  # ties: grid order
    if not ranked:
        raise EmotionCoreError(f"No run of {sweep_dir} finished; nothing to average.")
    for name in ranked:
        check_model_folder(sweep_dir / name)
    configs = dict(zip(ranked, check_same_start([sweep_dir / name for name in ranked])))

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(sweep_dir / ranked[0], tmp, ignore=lambda _, names: [n for n in names if n.endswith(NOT_COPIED)])
    validation: list = []  # the validation texts, read once

    def score(names: list[str]) -> float:
        save_file(average_weights([sweep_dir / name for name in names]), tmp / WEIGHTS, metadata={"format": "pt"})
        classifier = Classifier.from_pretrained(tmp, engine="torch")
        if not validation:
            validation.extend(eval_data(classifier, None, splits=("validation",))["validation"])
        texts, labels, sources = validation
        reports: dict = {}
        add_reports(reports, "validation", labels, classifier.logits(texts).argmax(axis=1), sources, classifier.labels)
        return validation_score(reports)

    try:
        kept, steps = greedy(ranked, score)
        save_file(average_weights([sweep_dir / name for name in kept]), tmp / WEIGHTS, metadata={"format": "pt"})
        record = {"rule": RULE, "sweep": str(sweep_dir), "kept": kept,
                  "steps": [step | {"sweep_score": runs[step["run"]]["score"], "flags": runs[step["run"]]["flags"]} for step in steps]}
        sweep_command = f"python -m emotion_core sweep {summary['grid']} --out {sweep_dir} --jobs N"
        run_config = configs[ranked[0]] | {"command": f"{sweep_command}\n{command}", "soup": record}
        write_atomically(tmp / "run_config.json", json.dumps(run_config, indent=2) + "\n")
        metrics = json.loads((tmp / "metrics.json").read_text())
        metrics["train_runtime_s"] = sum(runs[name]["train_runtime_s"] for name in kept)  # all the training in the soup
        write_atomically(tmp / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        calibrate_folder(tmp, figures=True, name=out.name)  # the soup's own figures (its test split too), calibration and card
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return record


def soup_table(record: dict) -> list[str]:
    """The greedy steps as a Markdown table."""
    lines = ["| run | its validation score | soup's score with it | kept |", "| --- | ---: | ---: | --- |"]
    lines += [f"| {s['run']} | {s['sweep_score']:.4f} | {s['soup_score']:.4f} | {'yes' if s['kept'] else 'no'} |" for s in record["steps"]]
    return lines
