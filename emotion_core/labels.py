"""Label names and their order.

The six emotions keep the order of the Hub's `dair-ai/emotion` ClassLabel, so a model
trained from the Hub or from local files has the same `id2label`.
"""

import itertools
from collections.abc import Iterable

from .errors import EmotionCoreError

EMOTION_LABELS: tuple[str, ...] = ("sadness", "joy", "love", "anger", "fear", "surprise")
NEUTRAL = "neutral"  # the answer for text that carries no emotion; a model has it only if it was trained with it
KNOWN_LABELS = (*EMOTION_LABELS, NEUTRAL)


def order_labels(names: Iterable[str]) -> list[str]:
    """Put label names in a stable order: the Hub's for the emotions (then neutral), else numeric or alphabetical."""
    found = set(names)
    if found <= set(KNOWN_LABELS):
        return [name for name in KNOWN_LABELS if name in found]
    if all(name.lstrip("-").isdigit() for name in found):
        return sorted(found, key=int)
    return sorted(found)


def parse_label_names(spec: str | None) -> list[str] | None:
    """Read `--label-names`: a comma-separated list, or `emotion` for the six in the Hub's order."""
    if not spec:
        return None
    if spec.strip().lower() == "emotion":
        return list(EMOTION_LABELS)
    names = [name.strip() for name in spec.split(",")]
    if any(not name for name in names) or len(set(names)) != len(names):
        raise EmotionCoreError(f"--label-names must be distinct, comma-separated names; got {spec!r}")
    return names


def name_label(value: str, label_names: list[str] | None) -> str:
    """Turn a raw label cell into a label name, looking ids up in `label_names` when given."""
    value = value.strip()
    if label_names is None or not value.lstrip("-").isdigit():
        return value
    index = int(value)
    if not 0 <= index < len(label_names):
        raise EmotionCoreError(f"label id {index} is out of range for --label-names {','.join(label_names)}")
    return label_names[index]


# One colour per emotion, shared by both apps; other label sets cycle through the extras.
EMOTION_COLORS = {"sadness": "#4c78a8", "joy": "#f2b701", "love": "#e45788", "anger": "#d62728",
                  "fear": "#7b4fa0", "surprise": "#17a589", NEUTRAL: "#9e9e9e"}
EXTRA_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def label_colors(labels: Iterable[str]) -> dict[str, str]:
    """A colour for every label: the emotion palette first, then a fixed cycle for other names."""
    others = itertools.cycle(EXTRA_COLORS)
    return {label: EMOTION_COLORS.get(label) or next(others) for label in labels}


def display_name(label: str) -> str:
    """How the apps name a label: neutral reads "no clear emotion", the others as they are."""
    return "no clear emotion" if label == NEUTRAL else label
