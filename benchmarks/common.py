"""What the benchmarks share: the machine's description, the data they measure on, the models they compare."""

import os
import platform
from pathlib import Path

import torch

from tests.helpers import SHARED_DATA, SHARED_EMOTION


def machine() -> str:
    """One line saying what the numbers were measured on."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    return (f"{model}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"Python {platform.python_version()}")


def test_split(split: str = "test") -> tuple[list[str], list[str]]:
    """The 2,000 test texts (or validation texts) of the emotion data set and their labels."""
    path = SHARED_EMOTION / ("val.txt" if split == "validation" else "test.txt")
    rows = [line.rsplit(";", 1) for line in path.read_text().splitlines()]
    return [text for text, _ in rows], [label for _, label in rows]


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started (VmHWM; unlike ru_maxrss, not inherited at exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


GOEMOTIONS = SHARED_DATA / "goemotions"
PLAIN_STATEMENTS = Path(__file__).resolve().parent / "data" / "plain_statements.txt"


def goemotions_dev() -> list[tuple[str, str]]:
    """GoEmotions dev rows with a single label, as (text, fine label)."""
    from emotion_core.sources import read_goemotions

    texts, labels = read_goemotions(GOEMOTIONS / "dev.tsv")
    return [(text, label) for text, label in zip(texts, labels) if "," not in label]


def goemotions_groups() -> dict[str, list[tuple[str, str]]]:
    """GoEmotions dev, single-label rows, in the groups issue 18 measures, each as (text, model label):
    `six+neutral` (the six emotions and neutral as they are) and `mild` (the labels ekman-love folds
    into one of the six: annoyance as anger, admiration as joy, ...)."""
    from emotion_core.sources import EKMAN_LOVE, SIX

    rows = goemotions_dev()
    return {"six+neutral": [(t, label) for t, label in rows if label in SIX or label == "neutral"],
            "mild": [(t, EKMAN_LOVE[label]) for t, label in rows if label in EKMAN_LOVE and label not in SIX]}


def plain_statements() -> list[str]:
    """The plain statements written for the neutral benchmark (no emotion in any of them)."""
    lines = PLAIN_STATEMENTS.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def load_models(names: list[str]) -> dict:
    """Classifiers by name: "bundled" is the bundled model, anything else a model folder."""
    from emotion_core import Classifier
    from emotion_core.config import BUNDLED_MODEL

    return {name: Classifier.from_pretrained(BUNDLED_MODEL if name == "bundled" else name) for name in names}
