"""Temperature scaling: one number that makes the model's probabilities mean what they say.

A fine-tuned classifier is usually over-confident: of the texts it calls "97% joy", fewer than
97% are joy. Dividing the logits by a temperature T > 1 (fitted on the validation split by
minimising negative log-likelihood) fixes most of that without changing a single label, since
the largest logit stays the largest (Guo et al., "On Calibration of Modern Neural Networks", 2017).
Training writes `calibration.json` and `reliability.png` into the model folder; `Classifier`
applies the temperature everywhere probabilities are shown.
"""

import json
import os
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from .errors import EmotionCoreError

CALIBRATION_FILE = "calibration.json"
DIAGRAM_FILE = "reliability.png"
BINS = 15


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, stable for large logits."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    exp = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels."""
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))))


def reliability_bins(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> list[dict]:
    """Texts grouped by confidence into equal-width bins: count, mean confidence and accuracy of each."""
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    return [{"low": float(edges[b]), "high": float(edges[b + 1]), "n": int((which == b).sum()),
             "confidence": float(confidence[which == b].mean()) if (which == b).any() else 0.0,
             "accuracy": float(correct[which == b].mean()) if (which == b).any() else 0.0} for b in range(bins)]


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error: the gap between confidence and accuracy, weighted by bin size."""
    return float(sum(b["n"] * abs(b["confidence"] - b["accuracy"]) for b in reliability_bins(probs, labels, bins)) / len(labels))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature in [0.05, 20] that minimises validation NLL (a 1-D bounded search on log T)."""
    result = minimize_scalar(lambda log_t: nll(softmax(logits, np.exp(log_t)), labels), bounds=(np.log(0.05), np.log(20)),
                             method="bounded", options={"xatol": 1e-4})
    return float(np.exp(result.x))


def calibrate(validation: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray] | None) -> dict:
    """Fit T on validation (logits, labels); report ECE and NLL before and after on every split given."""
    temperature = fit_temperature(*validation)
    report = {"temperature": temperature, "bins": BINS}
    for split, pair in (("validation", validation), ("test", test)):
        if pair is None:
            continue
        logits, labels = pair
        before, after = softmax(logits), softmax(logits, temperature)
        report[split] = {
            "n": int(len(labels)),
            "ece_before": ece(before, labels), "ece_after": ece(after, labels),
            "nll_before": nll(before, labels), "nll_after": nll(after, labels),
            "labels_unchanged": bool((before.argmax(1) == after.argmax(1)).all()),
            "bins_before": reliability_bins(before, labels), "bins_after": reliability_bins(after, labels),
        }
    return report


def plot_reliability(report: dict, path: Path) -> None:
    """Reliability diagram of the report's test split (else validation): accuracy per confidence bin, before and after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    split = "test" if "test" in report else "validation"
    m = report[split]
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), dpi=110, sharey=True)
    for ax, key, title in ((axes[0], "before", "before (T = 1)"), (axes[1], "after", f"after (T = {report['temperature']:.2f})")):
        bins = [b for b in m[f"bins_{key}"] if b["n"]]
        ax.bar([b["low"] for b in bins], [b["accuracy"] for b in bins], width=1 / report["bins"], align="edge",
               color="#4c78a8", edgecolor="white", label="accuracy")
        ax.plot([0, 1], [0, 1], "--", color="#888", label="perfect calibration")
        ax.set_title(f"{title}: ECE {100 * m[f'ece_{key}']:.2f}%, NLL {m[f'nll_{key}']:.3f}")
        ax.set_xlabel("confidence")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel(f"accuracy ({split}, n={m['n']:,})")
    axes[0].legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_calibration(folder: Path, report: dict) -> None:
    """Write calibration.json and reliability.png into a model folder, each via a temporary name."""
    folder = Path(folder)
    for name, write in ((CALIBRATION_FILE, lambda p: p.write_text(json.dumps(report, indent=2) + "\n")),
                        (DIAGRAM_FILE, lambda p: plot_reliability(report, p))):
        partial = folder / f".{name}.tmp{Path(name).suffix}"
        write(partial)
        os.replace(partial, folder / name)


def load_temperature(folder: Path | None) -> float:
    """The model folder's fitted temperature (1.0, i.e. the raw softmax, when it has none)."""
    path = Path(folder) / CALIBRATION_FILE if folder else None
    if path is None or not path.is_file():
        return 1.0
    try:
        temperature = float(json.loads(path.read_text())["temperature"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise EmotionCoreError(f"Model folder {folder}: {CALIBRATION_FILE} is damaged; re-run python -m emotion_core calibrate.") from None
    if not 0 < temperature < 100:
        raise EmotionCoreError(f"Model folder {folder}: {CALIBRATION_FILE} has an impossible temperature {temperature}.")
    return temperature
