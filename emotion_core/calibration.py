"""Temperature scaling: dividing the logits by a number makes the model's probabilities mean what they say.

A fine-tuned classifier is usually over-confident: of the texts it calls "97% joy", fewer than
97% are joy. Dividing the logits by a temperature T > 1 (fitted on the validation split by
minimising negative log-likelihood) fixes most of that without changing a single label, since
the largest logit stays the largest (Guo et al., "On Calibration of Modern Neural Networks", 2017).
Training writes `calibration.json` and `reliability.png` into the model folder; `Classifier`
applies the temperatures everywhere probabilities are shown.

A model with a `neutral` label gets a second temperature, for the texts it answers neutral:
that label is learnt from one source and a shifted prior, and its answers are right more often
than one shared temperature says (docs/real-world-text.md), while the emotions' answers on the
same temperature are not. Each text is still divided by one number, so no label changes.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import EmotionCoreError
from .labels import NEUTRAL
from .model_folder import CALIBRATION, RELIABILITY, write_json, write_with

BINS = 15
OWN_TEMPERATURE_LABELS = (NEUTRAL,)  # labels whose answers get a temperature of their own
MIN_OWN_ROWS = 50  # validation texts a label must be the answer of to get its own temperature


@dataclass
class Calibration:
    """How logits become probabilities: divided by one temperature, or, for texts whose answer is in
    `by_label`, by that label's own."""

    temperature: float = 1.0
    by_label: dict[int, float] = field(default_factory=dict)  # label index -> temperature of the texts answered with it

    def scale(self, logits: np.ndarray, answers: np.ndarray | None = None) -> np.ndarray:
        """Logits divided, row by row, by the temperature of the row's answer (its top logit, or `answers`)."""
        logits = np.asarray(logits, dtype=np.float64)
        answers = logits.argmax(axis=1) if answers is None else answers
        divisors = np.full(len(logits), self.temperature)
        for label, temperature in self.by_label.items():
            divisors[answers == label] = temperature
        return logits / divisors[:, None]

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of each row."""
        return softmax(self.scale(logits))


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
    from scipy.optimize import minimize_scalar  # fitting only: answering needs numpy alone

    result = minimize_scalar(lambda log_t: nll(softmax(logits, np.exp(log_t)), labels), bounds=(np.log(0.05), np.log(20)),
                             method="bounded", options={"xatol": 1e-4})
    return float(np.exp(result.x))


def fit_calibration(logits: np.ndarray, labels: np.ndarray, names: list[str]) -> Calibration:
    """One T on every validation text; and for each of OWN_TEMPERATURE_LABELS the model has, T on the
    texts it answers with it. (The shared T divides only the other texts, but fitted on those alone
    it left validation less calibrated: docs/real-world-text.md.)"""
    logits, labels = np.asarray(logits), np.asarray(labels)
    answers = logits.argmax(axis=1)
    own = {}
    for name in OWN_TEMPERATURE_LABELS:
        if name in names and (answers == names.index(name)).sum() >= MIN_OWN_ROWS:
            rows = answers == names.index(name)
            own[names.index(name)] = fit_temperature(logits[rows], labels[rows])
    return Calibration(fit_temperature(logits, labels), own)


def calibrate(validation: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray] | None, names: list[str]) -> dict:
    """Fit the calibration on validation (logits, labels); report ECE and NLL before and after on every split given."""
    calibration = fit_calibration(*validation, names)
    report = {"temperature": calibration.temperature,
              "label_temperatures": {names[i]: t for i, t in calibration.by_label.items()}, "bins": BINS}
    for split, pair in (("validation", validation), ("test", test)):
        if pair is None:
            continue
        logits, labels = pair
        before, after = softmax(logits), calibration.probabilities(logits)
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
    own = "".join(f"; {name} {t:.2f}" for name, t in report.get("label_temperatures", {}).items())
    for ax, key, title in ((axes[0], "before", "before (T = 1)"), (axes[1], "after", f"after (T = {report['temperature']:.2f}{own})")):
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
    """Write calibration.json and reliability.png into a model folder."""
    write_json(Path(folder) / CALIBRATION, report)
    write_with(Path(folder) / RELIABILITY, lambda path: plot_reliability(report, path))


def load_calibration(folder: Path | None, names: list[str]) -> Calibration:
    """The model folder's fitted calibration (T = 1, the raw softmax, when it has none)."""
    path = Path(folder) / CALIBRATION if folder else None
    if path is None or not path.is_file():
        return Calibration()
    try:
        report = json.loads(path.read_text())
        temperature = float(report["temperature"])
        own = {name: float(t) for name, t in report.get("label_temperatures", {}).items()}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        raise EmotionCoreError(f"Model folder {folder}: {CALIBRATION} is damaged; re-run python -m emotion_core calibrate.") from None
    if unknown := sorted(set(own) - set(names)):
        raise EmotionCoreError(f"Model folder {folder}: {CALIBRATION} names labels the model lacks ({', '.join(unknown)}); "
                               "re-run python -m emotion_core calibrate.")
    for t in (temperature, *own.values()):
        if not 0 < t < 100:
            raise EmotionCoreError(f"Model folder {folder}: {CALIBRATION} has an impossible temperature {t}.")
    return Calibration(temperature, {names.index(name): t for name, t in own.items()})
