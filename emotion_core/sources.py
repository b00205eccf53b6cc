"""Training sources: where each data set lives, how it is read, and how its labels map onto the model's.

One run may mix several sources (`--data A B`, or a mix file). Known sources have a reader and
label mappings built in. GoEmotions:

| mapping              | GoEmotions rows kept (single-label only)                                     |
| -------------------- | ---------------------------------------------------------------------------- |
| `six`                | the label is one of the six emotions                                         |
| `ekman-love`         | the authors' Ekman grouping, with love and caring kept as `love`; no disgust or neutral |
| `six+neutral`        | `six`, and the rows labelled neutral as `neutral`                            |
| `ekman-love+neutral` | `ekman-love`, and the rows labelled neutral as `neutral`                     |

Validation and test rows of a source with a built-in grouping keep only the labels that are model
labels themselves (the six, and neutral where the mapping has it), so its figures compare across
groupings. The validation rows whose label the grouping folds into another (annoyance into anger,
admiration into joy, ...) become a split of their own, `folded`: mild emotion, measured on its own.

TweetEval's emotion task (tweets labelled anger, joy, optimism or sadness; label ids in a file
beside the texts) maps by `optimism-as-joy` (its default, as GoEmotions' Ekman grouping does) or
`no-optimism` (its optimism rows dropped); either way its validation split is the anger, joy and
sadness rows, and under `optimism-as-joy` the optimism rows are measured apart as `folded`.
"""

import json
from dataclasses import dataclass, fields
from pathlib import Path

from .config import unknown_key
from .errors import EmotionCoreError
from .labels import EMOTION_LABELS, NEUTRAL

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
TWEETEVAL = {"anger": "anger", "joy": "joy", "sadness": "sadness"}
LABEL_MAPS = {"six": SIX, "ekman-love": EKMAN_LOVE, "six+neutral": SIX | {NEUTRAL: NEUTRAL},
              "ekman-love+neutral": EKMAN_LOVE | {NEUTRAL: NEUTRAL},
              "optimism-as-joy": TWEETEVAL | {"optimism": "joy"}, "no-optimism": TWEETEVAL}
FORMATS = {"goemotions": ("emotions.txt", "six"), "tweeteval": ("mapping.txt", "optimism-as-joy")}  # its marker file, its map
TWEETEVAL_FILES = {"train": "train_text.txt", "validation": "val_text.txt", "test": "test_text.txt"}
FOLDED = "folded"  # the split of validation rows whose label a built-in grouping folds into another
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
    format: str | None = None     # None: by file extension; a key of FORMATS: that data set's own files
    weight: float = 1.0           # times each train row is seen per epoch: 2 twice, 0.5 a seeded half
    label_weights: dict[str, float] | None = None  # the same per model label, times `weight`: {"neutral": 0.5}
    train_only: bool = False      # rows made to teach (augmentation): trained on, never measured, no validation held out

    def __post_init__(self) -> None:
        if not is_weight(self.weight):
            raise EmotionCoreError(f"A source's weight must be a positive number, not {self.weight!r}.")
        if self.label_weights is not None and not (isinstance(self.label_weights, dict)
                                                   and all(is_weight(w) for w in self.label_weights.values())):
            raise EmotionCoreError(f"label_weights must map labels to positive numbers, e.g. {{\"neutral\": 0.5}}; "
                                   f"got {self.label_weights!r}.")
        if self.format is None and self.data:
            self.format = next((name for name, (marker, _) in FORMATS.items() if (Path(self.data) / marker).is_file()), None)
        if self.format not in (None, *FORMATS):
            raise EmotionCoreError(f"Unknown source format {self.format!r} (known: {', '.join(FORMATS)}).")
        if self.format and self.label_map is None:
            self.label_map = FORMATS[self.format][1]
        if self.name is None:
            where = self.data or self.train_file or "data"
            self.name = Path(where.rstrip("/")).stem if Path(where).exists() else where

    def mapping(self, split: str) -> dict[str, str] | None:
        """Source label -> model label for one split (None keeps every label as it is).

        A built-in grouping of a known data set evaluates on the labels it keeps as they are, and on
        the labels it folds into others as the `folded` split.
        """
        if self.label_map is None:
            return None
        if self.label_map not in LABEL_MAPS:
            return read_label_map(Path(self.label_map))
        grouping = LABEL_MAPS[self.label_map]
        if split == "train" or not self.folds():
            return grouping
        folded = split == FOLDED
        return {label: model for label, model in grouping.items() if (label != model) == folded}

    def folds(self) -> bool:
        """True when the source has a `folded` split: a known data set under a built-in grouping, which folds some of
        its labels into others (a label map of one's own, or a data set of one's own, maps every split alike)."""
        return self.format in FORMATS and self.label_map in LABEL_MAPS

    def label_weight(self, label: str) -> float:
        """Times a train row with this model label is seen per epoch."""
        return self.weight * (self.label_weights or {}).get(label, 1.0)


def is_weight(value) -> bool:
    """A positive number (true and false are not weights)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


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


def source_entry(source: Source) -> dict:
    """A source as run_config.json records it: its name and data, and every other field that differs from the
    default, so that figures redone later (`evaluate`, `calibrate`, `export`) read the splits the run read."""
    recorded = {"name": source.name, "data": source.data}
    return recorded | {f.name: getattr(source, f.name) for f in fields(Source)
                       if f.name not in recorded and getattr(source, f.name) != f.default}


def run_source(entry: dict) -> Source:
    """A source as run_config.json recorded it (older folders name a run's one train file as its data)."""
    known = {f.name for f in fields(Source)}
    return Source(**{key: value for key, value in entry.items() if key in known})


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
        unknown = unknown_key(entry, allowed)
        if unknown is not None:
            raise EmotionCoreError(f"Mix file {path}, source {number}: unknown key {unknown!r} "
                                   f"(known: {', '.join(sorted(allowed))}).")
        sources.append(Source(**entry))
    if not sources:
        raise EmotionCoreError(f'Mix file {path} lists no source: give at least one, e.g. {{"sources": [{{"data": "folder"}}]}}.')
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


def read_tweeteval(path: Path) -> tuple[list[str], list[str]]:
    """TweetEval: one tweet a line in `*_text.txt`, its label id on the same line of `*_labels.txt`, the ids' names
    in `mapping.txt` (id, tab, name)."""
    labels_path = path.with_name(path.name.replace("_text", "_labels"))
    if not labels_path.is_file():
        raise EmotionCoreError(f"{path} has no {labels_path.name} beside it: TweetEval keeps each split's label ids there.")
    mapping = path.parent / "mapping.txt"
    if not mapping.is_file():
        raise EmotionCoreError(f"{path.parent} has no mapping.txt: TweetEval names its label ids there (id<TAB>name).")
    lines = [line for line in mapping.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not all(line.count("\t") == 1 for line in lines):
        raise EmotionCoreError(f"{mapping}: expected one 'id<TAB>name' per line.")
    names = dict(line.split("\t") for line in lines)
    texts = path.read_text(encoding="utf-8").splitlines()
    ids = labels_path.read_text(encoding="utf-8").splitlines()
    if len(ids) != len(texts):
        raise EmotionCoreError(f"{path} has {len(texts):,} lines but {labels_path.name} {len(ids):,}: they must pair up.")
    unknown = sorted(set(ids) - set(names))
    if unknown:
        raise EmotionCoreError(f"{labels_path}: label id {unknown[0]!r} is not in mapping.txt ({', '.join(names)}).")
    return texts, [names[i] for i in ids]
