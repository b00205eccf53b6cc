"""Evaluation and reports: a model's figures on each split, overall and per source; its calibration;
redoing both for an existing model folder; the summary lines the commands print.

Training (training.py), `evaluate` / `calibrate`, `soup`, `shift` and `sweep` all report through
here, so a figure means the same wherever it is read.
"""

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from datasets import DatasetDict

from .calibration import calibrate, save_calibration
from .card import build_model_card
from .config import DataConfig
from .data import load_sources
from .errors import EmotionCoreError
from .metrics import classification_report, plot_confusion_matrix
from .model_folder import CARD, CONFUSION, METRICS, read_json, write_json, write_text, write_with
from .sources import FOLDED, run_source

if TYPE_CHECKING:  # for the annotations only: evaluating a folder on the CPU needs no Trainer
    from transformers import Trainer

logger = logging.getLogger(__name__)

EVAL_SPLITS = ("validation", "test", FOLDED)  # folded: the mild-emotion rows a grouping folds (sources.py)


def evaluate_splits(trainer: "Trainer", tokenized: DatasetDict, labels: list[str]) -> tuple[dict, dict]:
    """Full metrics for validation and, when present, test and folded: overall and for each source on its own.

    Also returns each split's (logits, labels), which calibration fits and checks the temperatures on.
    """
    reports: dict = {}
    outputs: dict = {}
    for split in EVAL_SPLITS:
        if split not in tokenized:
            continue
        output = trainer.predict(tokenized[split], metric_key_prefix=split)
        truth = output.label_ids
        # rows must line up with their sources (rank 0's gathered copy does; it alone writes the results)
        if trainer.is_world_process_zero() and not np.array_equal(truth, tokenized[split]["label"]):
            raise EmotionCoreError(f"{split}: predictions came back in another order than the rows")
        outputs[split] = (output.predictions, truth)
        add_reports(reports, split, truth, np.argmax(output.predictions, axis=-1), tokenized[split]["source"], labels)
    return reports, outputs


def add_reports(reports: dict, split: str, truth: np.ndarray, preds: np.ndarray, sources: list[str], labels: list[str]) -> None:
    """Put one split's figures into `reports`: overall under the split's name, and per source under "sources"."""
    reports[split] = classification_report(truth, preds, labels)
    logger.info("%s: accuracy %.4f, macro-F1 %.4f", split, reports[split]["accuracy"], reports[split]["macro_f1"])
    sources = np.array(sources)
    for source in dict.fromkeys(sources):  # in order of appearance
        rows = sources == source
        report = classification_report(truth[rows], preds[rows], labels)
        reports.setdefault("sources", {}).setdefault(str(source), {})[split] = report
        logger.info("%s / %s: accuracy %.4f, macro-F1 %.4f", split, source, report["accuracy"], report["macro_f1"])


def calibrate_outputs(outputs: dict, labels: list[str]) -> dict:
    """Fit the calibration on validation logits and report ECE / NLL before and after (test too, when present)."""
    report = calibrate(outputs["validation"], outputs.get("test"), labels)
    split = "test" if "test" in report else "validation"
    own = "".join(f" ({name}: {t:.3f})" for name, t in report["label_temperatures"].items())
    logger.info("calibration: T = %.3f%s; %s ECE %.2f%% -> %.2f%%, NLL %.4f -> %.4f", report["temperature"], own, split,
                100 * report[split]["ece_before"], 100 * report[split]["ece_after"], report[split]["nll_before"],
                report[split]["nll_after"])
    return report


def calibration_summary(report: dict) -> dict:
    """The calibration figures metrics.json and the card carry (calibration.json also has the bins)."""
    keep = ("n", "ece_before", "ece_after", "nll_before", "nll_after", "labels_unchanged")
    return {"temperature": report["temperature"], "label_temperatures": report["label_temperatures"]} | {
        split: {k: report[split][k] for k in keep} for split in ("validation", "test") if split in report
    }


def calibrate_folder(folder: str | Path, data_cfg: DataConfig | None = None, figures: bool = False, name: str | None = None) -> dict:
    """Redo calibration for an existing model folder, on the data it was trained on (or `data_cfg`'s).

    The logits come from the fp32 model (the `torch` engine), as they do in training. With `figures`,
    the accuracy / F1 figures (overall and per source) and the confusion matrix are redone from the
    same logits too: `python -m emotion_core evaluate`, e.g. for a model trained on a GPU in bf16. `name`
    names the model in its card (default: the folder's name).
    """
    from .predict import Classifier

    classifier = Classifier.from_pretrained(folder, engine="torch")
    if classifier.folder is None:
        raise EmotionCoreError("calibrate needs a local model folder.")
    metrics = read_json(classifier.folder / METRICS)
    outputs, reports = {}, {}
    splits = EVAL_SPLITS if figures else ("validation", "test")
    for split, (texts, labels, sources) in eval_data(classifier, data_cfg, splits=splits).items():
        outputs[split] = (classifier.logits(texts), labels)
        if figures:
            add_reports(reports, split, labels, outputs[split][0].argmax(axis=1), sources, classifier.labels)
    report = calibrate_outputs({split: outputs[split] for split in ("validation", "test") if split in outputs},
                               classifier.labels)
    save_calibration(classifier.folder, report)
    metrics |= reports | {"calibration": calibration_summary(report)}
    if figures:
        plot_split_confusion(metrics, classifier.folder)
    write_json(classifier.folder / METRICS, metrics)
    card = build_model_card(metrics, classifier.run_config, model_name=name or classifier.folder.name)
    write_text(classifier.folder / CARD, str(card))
    return report | {"figures": reports}


def eval_data(classifier, data_cfg: DataConfig | None, splits=("validation", "test"),
              raw: bool = False) -> dict[str, tuple[list[str], np.ndarray, list[str]]]:
    """Texts, label indices and source names of the evaluation splits of the model's data (or `data_cfg`'s).

    The texts are normalised as the model's run normalised them, unless `raw` (for scoring them with another model):
    then they are as the files have them, which changes the rows of no split but a validation split held out of
    train (only train rows are deduplicated before it is held out)."""
    sources = None
    if data_cfg is None:
        sources = [run_source(entry) for entry in classifier.run_config.get("sources") or []]
        if not sources:
            raise EmotionCoreError(f"{classifier.folder} does not say what data it was trained on: pass --data.")
        data_cfg = DataConfig(data=[s.data for s in sources])
    # the splits as the run made them: its steps, so the same duplicates are dropped and the same rows held out
    # (the classifier normalising the texts again changes nothing: the steps are idempotent)
    data_cfg.normalize = "none" if raw else ",".join(classifier.normalization) or "none"
    seed = classifier.run_config.get("training", {}).get("seed", 42)  # a source without validation rows: the run's 10%
    loaded, _ = load_sources(data_cfg, seed=seed, sources=sources)
    out = {}
    for split in splits:
        if split in loaded:
            names = loaded[split].features["label"].int2str(loaded[split]["label"])
            unknown = sorted(set(names) - set(classifier.labels))
            if unknown:
                raise EmotionCoreError(f"The {split} split has labels the model lacks: {', '.join(unknown)}.")
            out[split] = (loaded[split]["text"], np.array([classifier.labels.index(n) for n in names]), loaded[split]["source"])
    return out


def summary_lines(metrics: dict) -> list[str]:
    """Accuracy and macro-F1 per split, overall and per source, one line each."""
    rows = [(split, metrics[split]) for split in EVAL_SPLITS if split in metrics]
    if len(metrics.get("sources", {})) > 1:
        rows += [(f"{split} / {source}", m) for source, by_split in metrics["sources"].items() for split, m in by_split.items()]
    return [f"{name}: accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f} (n={m['n']:,})" for name, m in rows]


def plot_split_confusion(metrics: dict, folder: Path) -> None:
    """confusion_matrix.png of the test split (validation when there is none)."""
    split = "test" if "test" in metrics else "validation"
    title = f"Confusion matrix ({split}, n={metrics[split]['n']})"
    write_with(folder / CONFUSION, lambda path: plot_confusion_matrix(metrics[split]["confusion_matrix"], metrics[split]["labels"],
                                                                      path, title))
