"""Classification metrics with scikit-learn (no Hub download, unlike `evaluate.load`)."""

from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


def compute_metrics(eval_pred) -> dict[str, float]:
    """The Trainer's per-epoch metrics: accuracy, macro-F1 (picks the best checkpoint), weighted-F1."""
    logits, labels = eval_pred
    preds = np.asarray(logits).argmax(axis=-1)
    return {
        "accuracy": float(accuracy_score(labels, preds)),
        "macro_f1": macro_f1(labels, preds),
        "weighted_f1": float(f1_score(labels, preds, average="weighted", zero_division=0)),
    }


def macro_f1(labels: np.ndarray, preds: np.ndarray) -> float:
    """Mean F1 over the labels the split has: a label no text of it carries (neutral on the emotion data set)
    is not averaged in, and answering it counts as a wrong answer for the text's own label."""
    return float(f1_score(labels, preds, labels=np.unique(labels), average="macro", zero_division=0))


def classification_report(labels: np.ndarray, preds: np.ndarray, names: list[str]) -> dict:
    """Everything `metrics.json` holds for one split: headline scores, per-class scores, confusion matrix."""
    ids = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, preds, labels=ids, zero_division=0)
    answered = np.bincount(preds, minlength=len(names)) / max(len(preds), 1)
    return {
        "n": int(len(labels)),
        "accuracy": float(accuracy_score(labels, preds)),
        "macro_f1": macro_f1(labels, preds),
        "weighted_f1": float(f1_score(labels, preds, labels=ids, average="weighted", zero_division=0)),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s), "answered": float(a)}
            for name, p, r, f, s, a in zip(names, precision, recall, f1, support, answered)
        },
        "labels": names,
        "confusion_matrix": confusion_matrix(labels, preds, labels=ids).tolist(),
    }


def plot_confusion_matrix(matrix: list[list[int]], names: list[str], path: Path, title: str) -> None:
    """Save the confusion matrix as a PNG (rows: true label, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 1.1 * len(names) + 1.5), dpi=110)
    ConfusionMatrixDisplay(np.asarray(matrix), display_labels=names).plot(ax=ax, cmap="Blues", colorbar=False, values_format="d")
    ax.set_title(title)
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
