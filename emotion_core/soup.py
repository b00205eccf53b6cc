"""One model from several runs: the mean of their weights (a greedy model soup).

    $ python -m emotion_core sweep examples/sweep/soup.json --out runs/soup --jobs 8
    $ python -m emotion_core soup runs/soup --out models/soup
    $ python -m emotion_core soup models/emotion-minilm runs/calib2 --rule calibration --min-score 0.885 --out runs/soup-calib

Runs fine-tuned from the same pretrained encoder and the same new head (the same `--seed`; they
may differ in `--train-seed`, learning rate, epochs, loss or data mix) end up close enough that
the mean of their weights is itself a good model, often better than each of them (Wortsman et al.,
"Model soups", ICML 2022), and it costs nothing more at inference. The ingredients are the
finished runs of sweep folders and any model folders given. Greedy: the runs from the best down,
each joins the soup only if the soup does not get worse. By default "best" is the sweep's score
(mean over sources of validation macro-F1); with `--rule calibration` it is the validation ECE
after temperature scaling, among runs (and soups) whose score stays at least `--min-score`,
since averaging, like an ensemble, can take the edge off a model's over-confidence. Everything
is measured on the validation split, on the CPU in fp32; test figures are computed for the
finished soup alone.
"""

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .calibration import ece, fit_calibration
from .errors import EmotionCoreError
from .evaluation import add_reports, calibrate_folder, eval_data
from .model_folder import (
    CONFIG,
    METRICS,
    RUN_CONFIG,
    STALE_WITH_NEW_WEIGHTS,
    WEIGHTS,
    check_model_folder,
    check_replaceable,
    new_folder,
    read_json,
    write_json,
)
from .predict import Classifier
from .sweep import run_figures, validation_score


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
    configs = [read_json(folder / RUN_CONFIG, "base_model", "training", "labels") for folder in folders]
    starts = {(c["base_model"], c["training"].get("seed"), tuple(c["labels"])) for c in configs}
    if len(starts) > 1:
        raise EmotionCoreError("The runs did not start from the same weights (base model, --seed and labels must match; "
                               f"vary --train-seed instead of --seed): {sorted(starts)}")
    return configs


def greedy(ranked: list[str], value: Callable[[list[str]], float]) -> tuple[list[str], list[dict]]:
    """The runs kept (each while the soup's value, higher better, does not fall; ties stay), and one step per run.

    A value of -inf marks a soup that is not allowed (say, one scoring below a floor): it never joins.
    """
    kept = ranked[:1]
    best = value(kept)
    steps = [{"run": ranked[0], "soup": kept, "value": best, "kept": True}]
    for name in ranked[1:]:
        candidate = value([*kept, name])
        joins = candidate >= best and candidate > float("-inf")
        steps.append({"run": name, "soup": [*kept, name], "value": candidate, "kept": joins})
        if joins:
            kept, best = [*kept, name], candidate
    return kept, steps


def find_runs(sources: list[Path]) -> tuple[dict[str, Path], list[str]]:
    """The runs to consider, by name (their path), and the commands that made them, from sweep folders and model folders."""
    runs, commands = {}, []
    for source in sources:
        if (source / "sweep.json").is_file():
            summary = read_json(source / "sweep.json", "grid", "runs")
            runs |= {str(source / name): source / name for name, r in summary["runs"].items() if "score" in r}
            commands.append(f"python -m emotion_core sweep {summary['grid']} --out {source} --jobs N")
        elif (source / CONFIG).is_file():
            runs[str(source)] = source
            commands.append(read_json(source / RUN_CONFIG).get("command") or f"(the model in {source})")
        else:
            raise EmotionCoreError(f"{source} holds neither sweep.json nor a model: give the --out folder of a finished sweep "
                                   f"(python -m emotion_core sweep GRID --out {source}) or a model folder.")
    if not runs:
        raise EmotionCoreError(f"No run of {', '.join(map(str, sources))} finished; nothing to average.")
    for folder in runs.values():
        check_model_folder(folder)
    check_distinct(runs)
    return runs, commands


def check_distinct(runs: dict[str, Path]) -> None:
    """Refuse a run given twice (another spelling of its path, or a copy of its weights): it would count double in every average."""
    seen: dict[str, str] = {}
    for name, folder in runs.items():
        digest = hashlib.sha256((folder / WEIGHTS).read_bytes()).hexdigest()
        if digest in seen:
            raise EmotionCoreError(f"{name} and {seen[digest]} hold the same weights: give each run once.")
        seen[digest] = name


def own_figures(folder: Path) -> dict:
    """A run's own figures, as a sweep reads them, from its metrics.json; EmotionCoreError naming the file when it can't."""
    return run_figures(read_json(folder / METRICS, "validation", "train_runtime_s"))


def rank(own: dict[str, dict], rule: str, min_score: float) -> list[str]:
    """The runs in the order they are offered to the soup: best score first, or (calibration) lowest ECE among those scoring enough."""
    if rule == "macro_f1":
        return sorted(own, key=lambda name: -own[name]["score"])  # ties: the order given
    ranked = sorted((n for n in own if own[n]["ece"] is not None and own[n]["score"] >= min_score), key=lambda n: own[n]["ece"])
    if not ranked:
        raise EmotionCoreError(f"No run has validation ECE figures and a score of at least {min_score}: nothing to start a soup with.")
    return ranked


def describe(rule: str, min_score: float) -> str:
    """When a run joins the soup, in words, for run_config.json, the card and the table."""
    if rule == "macro_f1":
        return "the mean over sources of validation macro-F1 did not fall"
    return (f"the validation ECE after temperature scaling did not rise and the mean over sources of validation macro-F1 "
            f"stayed at least {min_score}")


def make_soup(sources: list[str | Path], out: str | Path, rule: str = "macro_f1", min_score: float = 0.0) -> dict:
    """Cook the greedy soup of the given sweeps' runs and model folders into the model folder OUT (replaced atomically)."""
    if rule not in ("macro_f1", "calibration"):
        raise EmotionCoreError(f"Unknown soup rule {rule!r}: macro_f1 or calibration.")
    if min_score and rule != "calibration":
        raise EmotionCoreError("--min-score is a floor for --rule calibration; the default rule keeps the best score anyway.")
    options = f" --rule calibration --min-score {min_score}" if rule == "calibration" else ""
    command = f"python -m emotion_core soup {' '.join(map(str, sources))}{options} --out {out}"
    out = Path(out).resolve()
    check_replaceable(out)  # before the soup is cooked, not after
    runs, commands = find_runs([Path(source) for source in sources])
    configs = dict(zip(runs, check_same_start(list(runs.values()))))
    own = {name: own_figures(folder) for name, folder in runs.items()}
    ranked = rank(own, rule, min_score)

    validation: list = []  # the validation texts, read once
    measured: dict[tuple, dict] = {}
    with new_folder(out, copy_of=runs[ranked[0]], leave_out=(WEIGHTS, *STALE_WITH_NEW_WEIGHTS)) as tmp:

        def value(names: list[str]) -> float:
            save_file(average_weights([runs[name] for name in names]), tmp / WEIGHTS, metadata={"format": "pt"})
            classifier = Classifier.from_pretrained(tmp, engine="torch")
            if not validation:
                validation.extend(eval_data(classifier, None, splits=("validation",))["validation"])
            texts, labels, text_sources = validation
            logits, reports = classifier.logits(texts), {}
            add_reports(reports, "validation", labels, logits.argmax(axis=1), text_sources, classifier.labels)
            calibrated = fit_calibration(logits, labels, classifier.labels).probabilities(logits)
            figures = {"score": validation_score(reports), "ece": ece(calibrated, labels)}
            measured[tuple(names)] = figures
            if rule == "macro_f1":
                return figures["score"]
            return -figures["ece"] if figures["score"] >= min_score else float("-inf")

        kept, steps = greedy(ranked, value)
        if steps[0]["value"] == float("-inf") and len(kept) == 1:
            raise EmotionCoreError(f"No average of these runs has a mean over sources of validation macro-F1 of at least {min_score} "
                                   "when measured here (CPU, fp32).")
        save_file(average_weights([runs[name] for name in kept]), tmp / WEIGHTS, metadata={"format": "pt"})
        record = {"rule": rule, "joined_if": describe(rule, min_score), "sources": [str(s) for s in sources], "kept": kept,
                  "steps": [{"run": s["run"], "kept": s["kept"], "own": own[s["run"]], "soup": measured[tuple(s["soup"])]}
                            for s in steps]}
        run_config = configs[ranked[0]] | {"command": "\n".join([*dict.fromkeys(commands), command]), "soup": record}
        write_json(tmp / RUN_CONFIG, run_config)
        metrics = read_json(tmp / METRICS)
        metrics["train_runtime_s"] = sum(own[name]["train_runtime_s"] for name in kept)  # all the training in the soup
        write_json(tmp / METRICS, metrics)
        calibrate_folder(tmp, figures=True, name=out.name)  # the soup's own figures (its test split too), calibration and card
    return record


def soup_table(record: dict) -> list[str]:
    """The greedy steps as a Markdown table: each run's own validation figures and the soup's with it."""
    lines = [f"a run joins if {record['joined_if']}", "",
             "| run | its validation score | its ECE | soup's score with it | soup's ECE with it | kept |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for s in record["steps"]:
        own_ece = "—" if s["own"]["ece"] is None else f"{100 * s['own']['ece']:.2f}%"
        lines.append(f"| {s['run']} | {s['own']['score']:.4f} | {own_ece} | {s['soup']['score']:.4f} | "
                     f"{100 * s['soup']['ece']:.2f}% | {'yes' if s['kept'] else 'no'} |")
    return lines
