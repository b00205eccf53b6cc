"""Shift one label's prior: how readily a model answers it, chosen on validation by a grid's requirements.

    $ python -m emotion_core shift --model runs/neutral/e2-n1 --label neutral \
          --rule examples/sweep/neutral.json --out runs/neutral-shifted

How often a model answers a label follows how often the label was in its training rows, and
that mix is not the mix of text people bring: GoEmotions' neutral comments and its mild emotions
are close, so a little more neutral in training swallows mild emotion and a little less misses
plain statements. Adding an offset b to one label's logit moves that balance without training
again (a prior shift, as in logit adjustment: Menon et al., ICLR 2021). The offset goes into the
classification head's bias, so every engine, export and explanation carries it.

b is chosen on validation, on a grid from -MAX_OFFSET to MAX_OFFSET: for each b, the figures the
grid file's `require` list names (as metrics.json holds them; the calibration refitted for each b).
Among the b that meet them all, the middle of the widest unbroken run of them: the largest margin
either way. When none meets all: the b that meets the most, then the best mean over sources of
validation macro-F1, then the smallest shift. The folder is then evaluated again (figures,
calibration, card) and exported.
"""

from pathlib import Path

import numpy as np
from safetensors.torch import load_file, save_file

from .calibration import ece, fit_calibration
from .errors import EmotionCoreError
from .evaluation import EVAL_SPLITS, add_reports, calibrate_folder, eval_data
from .export import export_folder
from .model_folder import RUN_CONFIG, STALE_WITH_NEW_WEIGHTS, WEIGHTS, check_replaceable, new_folder, write_json
from .predict import Classifier
from .sweep import check_requirements, read_rule, validation_score

MAX_OFFSET, STEP = 1.0, 0.01


def head_bias(state: dict, num_labels: int) -> str:
    """The name of the classification head's bias: the last vector in the weights with one entry per label."""
    names = [name for name, tensor in state.items() if name.endswith("bias") and tuple(tensor.shape) == (num_labels,)]
    if not names:
        raise EmotionCoreError(f"No bias with {num_labels} entries in the weights: cannot find the classification head.")
    return names[-1]


def figures(logits: dict, labels: dict, sources: dict, names: list[str], label: int, offset: float) -> dict:
    """metrics.json's evaluation figures (overall and per source) and validation ECE, with `offset` added to one label's logit."""
    report: dict = {}
    for split in logits:
        shifted = logits[split].copy()
        shifted[:, label] += offset
        add_reports(report, split, labels[split], shifted.argmax(axis=1), sources[split], names)
        if split == "validation":
            calibrated = fit_calibration(shifted, labels[split], names).probabilities(shifted)
            report["calibration"] = {"validation": {"ece_after": ece(calibrated, labels[split])}}
    return report


def choose_offset(trials: list[dict]) -> float:
    """The middle of the widest unbroken run of offsets that meet every requirement; else most met, best score, least shift."""
    runs, current = [], []
    for trial in trials:
        if trial["met"] == trial["required"]:
            current.append(trial["offset"])
        elif current:
            runs.append(current)
            current = []
    runs += [current] if current else []
    if runs:
        widest = max(runs, key=len)  # the first of equals: the smaller shift
        return widest[(len(widest) - 1) // 2]
    best = max(trials, key=lambda t: (t["met"], round(t["score"], 6), -abs(t["offset"])))
    return best["offset"]


def shift_prior(model: str | Path, label: str, rule_file: str | Path, out: str | Path) -> dict:
    """Write the model with the chosen offset on `label` into the model folder OUT (replaced atomically)."""
    require = read_rule(rule_file).get("require")
    if not require:
        raise EmotionCoreError(f"{rule_file} names no requirements (\"require\") to choose the offset by.")
    check_replaceable(Path(out))  # before the offsets are tried, not after
    classifier = Classifier.from_pretrained(model, engine="torch")
    if classifier.folder is None or label not in classifier.labels:
        raise EmotionCoreError(f"shift needs a local model folder with the label {label!r} (labels: {', '.join(classifier.labels)}).")
    data = eval_data(classifier, None, splits=tuple(s for s in EVAL_SPLITS if s != "test"))  # test stays unread
    logits = {split: classifier.logits(texts).astype(np.float64) for split, (texts, _, _) in data.items()}
    labels, sources = {s: d[1] for s, d in data.items()}, {s: d[2] for s, d in data.items()}
    index, trials = classifier.labels.index(label), []
    for offset in np.round(np.arange(-MAX_OFFSET, MAX_OFFSET + STEP / 2, STEP), 2):
        report = figures(logits, labels, sources, classifier.labels, index, float(offset))
        checks = check_requirements(report, require)
        trials.append({"offset": float(offset), "met": sum(c["met"] for c in checks), "required": len(checks),
                       "score": validation_score(report), "checks": checks})
    offset = choose_offset(trials)
    record = {"label": label, "offset": offset, "rule": str(rule_file), "source": str(model),
              "met_all": [t["offset"] for t in trials if t["met"] == t["required"]],
              "chosen": next(t for t in trials if t["offset"] == offset)}
    write_shifted(classifier, offset, index, Path(out), record, f"python -m emotion_core shift --model {model} "
                  f"--label {label} --rule {rule_file} --out {out}")
    return record


def write_shifted(classifier: Classifier, offset: float, index: int, out: Path, record: dict, command: str) -> None:
    """Copy the folder with the head's bias shifted, then redo its figures, calibration, card and exports."""
    with new_folder(out, copy_of=classifier.folder, leave_out=STALE_WITH_NEW_WEIGHTS) as tmp:
        state = load_file(tmp / WEIGHTS)
        bias = head_bias(state, len(classifier.labels))
        state[bias] = state[bias].clone()
        state[bias][index] += offset
        save_file(state, tmp / WEIGHTS, metadata={"format": "pt"})
        run_config = classifier.run_config | {"command": "\n".join(filter(None, [classifier.run_config.get("command"), command])),
                                              "prior_shift": record}
        write_json(tmp / RUN_CONFIG, run_config)
        calibrate_folder(tmp, figures=True, name=Path(out).resolve().name)
        export_folder(tmp)


def shift_table(record: dict) -> list[str]:
    """The chosen offset's checks, and the range of offsets that met them all."""
    met = record["met_all"]
    every = (f"{len(met)} offsets meet every requirement, from {met[0]:+.2f} to {met[-1]:+.2f}" if met
             else "no offset meets every requirement")
    lines = [f"offset on {record['label']}: {record['offset']:+.2f} ({every})",
             "", "| requirement | value at the offset | met |", "| --- | ---: | --- |"]
    for check in record["chosen"]["checks"]:
        value = "—" if check["value"] is None else f"{check['value']:.4f}"
        lines.append(f"| {check['figure']} {check['op']} {check['bound']} | {value} | {'yes' if check['met'] else 'no'} |")
    return lines
