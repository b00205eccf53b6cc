"""Training sources: where each data set lives, how it is read, and how its labels map onto the model's.

One run may mix several sources (`--data A B`, or a mix file). Known sources have a reader and
label mappings built in; GoEmotions is the first:

| mapping      | GoEmotions rows kept (single-label only)                                       |
| ------------ | ------------------------------------------------------------------------------ |
| `six`        | the label is one of the six emotions (5,272 train rows)                        |
| `ekman-love` | the authors' Ekman grouping, with love and caring kept as `love`; no disgust or neutral |

Validation and test rows of a source with a built-in grouping are always mapped with `six`, so
its figures compare across groupings.
"""

import json
from dataclasses import dataclass, fields
from pathlib import Path

from .errors import EmotionCoreError
from .labels import EMOTION_LABELS

SIX = {name: name for name in EMOTION_LABELS}
EKMAN_LOVE = SIX | {
    "annoyance": "anger", "disapproval": "anger",
    "nervousness": "fear",
    "amusement": "joy", "approval": "joy", "excitement": "joy", "gratitude": "joy", "optimism": "joy",
    "relief": "joy", "pride": "joy", "admiration": "joy", "desire": "joy",
    "caring": "love",
    "disappointment": "sadness", "embarrassment": "sadness", "grief": "sadness", "remorse": "sadness",
    "realization": "surprise", "confusion": "surprise", "curiosity": "surprise",
}
LABEL_MAPS = {"six": SIX, "ekman-love": EKMAN_LOVE}
MULTI_LABEL_SEPARATOR = ","


@dataclass
class Source:
    """One labelled data set and how to read it; the fields a mix file's entries may set."""

    data: str | None = None
    name: str | None = None
    train_file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    label_names: str | None = None
    label_map: str | None = None  # a name in LABEL_MAPS or a JSON file {source label: model label}
    format: str | None = None     # None: by file extension; "goemotions": its TSV + emotions.txt
    weight: float = 1.0           # times each train row is seen per epoch: 2 twice, 0.5 a seeded half

    def __post_init__(self) -> None:
        if not (isinstance(self.weight, (int, float)) and self.weight > 0):
            raise EmotionCoreError(f"A source's weight must be a positive number, not {self.weight!r}.")
        if self.format is None and self.data and (Path(self.data) / "emotions.txt").is_file():
            self.format = "goemotions"
        if self.format not in (None, "goemotions"):
            raise EmotionCoreError(f"Unknown source format {self.format!r} (known: goemotions).")
        if self.format == "goemotions" and self.label_map is None:
            self.label_map = "six"
        if self.name is None:
            where = self.data or self.train_file or "data"
            self.name = Path(where.rstrip("/")).stem if Path(where).exists() else where

    def mapping(self, split: str) -> dict[str, str] | None:
        """Source label -> model label for one split (None keeps every label as it is)."""
        if self.label_map is None:
            return None
        if self.label_map in LABEL_MAPS:
            return SIX if split != "train" and self.format == "goemotions" else LABEL_MAPS[self.label_map]
        return read_label_map(Path(self.label_map))


def read_label_map(path: Path) -> dict[str, str]:
    """A JSON object {source label: model label}."""
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EmotionCoreError(f"Label map {path} not found (or use a built-in one: {', '.join(LABEL_MAPS)}).") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EmotionCoreError(f"Label map {path} is not valid JSON: {exc}") from None
    if not isinstance(mapping, dict) or not all(isinstance(v, str) and v for v in mapping.values()):
        raise EmotionCoreError(f"Label map {path} must be a JSON object of label names, e.g. {{\"happy\": \"joy\"}}.")
    return {str(k): v for k, v in mapping.items()}


def read_mix_file(path: str | Path) -> list[Source]:
    """Sources listed in a JSON file: {"sources": [{"data": ..., "label_map": ...}, ...]}."""
    path = Path(path)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["sources"]
    except FileNotFoundError:
        raise EmotionCoreError(f"Mix file {path} not found.") from None
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise EmotionCoreError(f'Mix file {path} must be JSON like {{"sources": [{{"data": "folder"}}, ...]}}.') from None
    allowed = {f.name for f in fields(Source)}
    sources = []
    for number, entry in enumerate(entries, start=1):
        unknown = set(entry) - allowed if isinstance(entry, dict) else {"(not an object)"}
        if unknown:
            raise EmotionCoreError(f"Mix file {path}, source {number}: unknown key {sorted(unknown)[0]!r} "
                                   f"(known: {', '.join(sorted(allowed))}).")
        sources.append(Source(**entry))
    return sources


def read_goemotions(path: Path) -> tuple[list[str], list[str]]:
    """GoEmotions TSV (text, comma-separated label ids, comment id; no header), ids turned into names.

    A row with several labels keeps them all, joined by commas; the mapping step drops it.
    """
    names = (path.parent / "emotions.txt").read_text(encoding="utf-8").split()
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) < 2:
                raise EmotionCoreError(f"{path}, line {number}: expected text<TAB>label ids<TAB>id")
            try:
                ids = [int(i) for i in parts[1].split(MULTI_LABEL_SEPARATOR)]
                labels.append(MULTI_LABEL_SEPARATOR.join(names[i] for i in ids))
            except (ValueError, IndexError):
                raise EmotionCoreError(f"{path}, line {number}: bad label ids {parts[1]!r}") from None
            texts.append(parts[0])
    return texts, labels
