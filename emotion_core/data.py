"""Load labelled text from the Hub or local files into one `DatasetDict`, and tokenize it.

Every source ends up as the same shape: splits `train`, `validation` and maybe `test`, each
with a string column `text` and a ClassLabel column `label` whose names are stored with it.
"""

import json
import logging
import re
from pathlib import Path

import pandas as pd
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from .config import DataConfig
from .errors import EmotionCoreError
from .hub import hub_failure, hub_is_offline
from .labels import name_label, order_labels, parse_label_names

logger = logging.getLogger(__name__)

SPLIT_STEMS = {"train": ("train",), "validation": ("validation", "val", "valid", "dev"), "test": ("test",)}
EXTENSIONS = (".txt", ".csv", ".tsv", ".jsonl", ".json")
HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")
HELD_OUT_FRACTION = 0.1

Rows = tuple[list[str], list[str]]  # (texts, raw labels)


# ----------------------------------------------------------------------------- reading files

def read_txt(path: Path) -> Rows:
    """Read `text;label` lines (the emotion data set's format); the label is after the last `;`."""
    texts, labels = [], []
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            text, sep, label = line.rpartition(";")
            if not sep or not label.strip():
                raise EmotionCoreError(f"{path}, line {number}: expected 'text;label', got {line[:80]!r}")
            texts.append(text)
            labels.append(label)
    return texts, labels


def read_table(path: Path, text_column: str, label_column: str) -> Rows:
    """Read a CSV or TSV with a header row, keeping every cell as a string."""
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise EmotionCoreError(f"{path} is empty: expected a header row with '{text_column}' and '{label_column}'") from None
    except pd.errors.ParserError as exc:
        raise EmotionCoreError(f"{path} is not a valid {path.suffix[1:].upper()} file: {exc}") from None
    check_columns(path, list(frame.columns), text_column, label_column)
    return frame[text_column].tolist(), frame[label_column].tolist()


def read_jsonl(path: Path, text_column: str, label_column: str) -> Rows:
    """Read JSON Lines: one object per line with the text and label fields."""
    texts, labels = [], []
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EmotionCoreError(f"{path}, line {number}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise EmotionCoreError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}")
            check_columns(path, list(row), text_column, label_column, where=f", line {number}")
            if row[label_column] is None:
                raise EmotionCoreError(f"{path}, line {number}: the label is null.")
            texts.append("" if row[text_column] is None else str(row[text_column]))
            labels.append(str(row[label_column]))
    return texts, labels


def check_columns(path: Path, found: list[str], text_column: str, label_column: str, where: str = "") -> None:
    """Fail with the columns that are there and the flags that choose others."""
    for wanted, flag in ((text_column, "--text-column"), (label_column, "--label-column")):
        if wanted not in found:
            raise EmotionCoreError(
                f"{path}{where} has no column '{wanted}' (found: {', '.join(map(str, found)) or 'none'}). "
                f"Pass {flag} NAME."
            )


def read_file(path: str | Path, text_column: str = "text", label_column: str = "label") -> Rows:
    """Read one labelled file of any supported format, chosen by its extension."""
    path = Path(path)
    if not path.is_file():
        raise EmotionCoreError(f"File not found: {path}")
    try:
        suffix = path.suffix.lower()
        if suffix in (".csv", ".tsv"):
            return read_table(path, text_column, label_column)
        if suffix in (".jsonl", ".json"):
            return read_jsonl(path, text_column, label_column)
        return read_txt(path)
    except UnicodeDecodeError as exc:
        raise EmotionCoreError(f"{path} is not UTF-8 text (byte {exc.start}); re-save it as UTF-8.") from None


# ----------------------------------------------------------------------------- finding sources

def find_split_files(folder: Path) -> dict[str, Path]:
    """Find train / validation / test files in a folder by their usual names."""
    found = {}
    for split, stems in SPLIT_STEMS.items():
        candidates = [folder / f"{stem}{ext}" for stem in stems for ext in EXTENSIONS]
        existing = [path for path in candidates if path.is_file()]
        if existing:
            found[split] = existing[0]
    if "train" not in found:
        raise EmotionCoreError(
            f"No train file in {folder}: expected train.txt, train.csv, train.tsv or train.jsonl "
            f"(found: {', '.join(sorted(p.name for p in folder.iterdir())) or 'nothing'})."
        )
    return found


def local_split_files(cfg: DataConfig) -> dict[str, Path] | None:
    """Map split names to local files, or None when `cfg.data` names a Hub data set."""
    if (cfg.validation_file or cfg.test_file) and not cfg.train_file:
        raise EmotionCoreError("--validation-file and --test-file go with --train-file (or put all three in one --data folder).")
    if cfg.train_file:
        explicit = {"train": cfg.train_file, "validation": cfg.validation_file, "test": cfg.test_file}
        return {split: Path(p) for split, p in explicit.items() if p}
    path = Path(cfg.data)
    if path.is_dir():
        return find_split_files(path)
    if path.is_file():
        return {"train": path}
    if path.is_absolute() or cfg.data.startswith(".") or not HUB_ID.match(cfg.data):
        raise EmotionCoreError(f"Data not found: {cfg.data} is neither a file nor a folder.")
    return None


def read_hub(cfg: DataConfig) -> dict[str, Rows]:
    """Download a Hub data set and return its splits as texts and label names."""
    from datasets import load_dataset

    try:
        hub = load_dataset(cfg.data)
    except Exception as exc:  # offline, unknown id, gated: all become one clear line
        raise hub_failure(
            f"data set '{cfg.data}' from the Hub" + ("" if hub_is_offline() else f" (no local folder of that name either)"),
            exc,
        ) from None
    splits = {}
    for split, stems in SPLIT_STEMS.items():
        name = next((stem for stem in stems if stem in hub), None)
        if name is None:
            continue
        part = hub[name]
        check_columns(Path(cfg.data), part.column_names, cfg.text_column, cfg.label_column, where=f" [{name}]")
        feature = part.features[cfg.label_column]
        labels = part[cfg.label_column]
        labels = feature.int2str(labels) if isinstance(feature, ClassLabel) else [str(x) for x in labels]
        splits[split] = (part[cfg.text_column], labels)
    return splits


# ----------------------------------------------------------------------------- building splits

def load_splits(cfg: DataConfig, seed: int = 42) -> DatasetDict:
    """Load train / validation (/ test) with labels named and checked, ready to tokenize.

    Without a validation file, 10% of train is held out (stratified) so there is always a
    split to pick the best checkpoint on.
    """
    files = local_split_files(cfg)
    raw = {split: read_file(path, cfg.text_column, cfg.label_column) for split, path in files.items()} if files else read_hub(cfg)
    label_names = parse_label_names(cfg.label_names)
    named = {split: clean_rows(split, rows, label_names) for split, rows in raw.items()}

    labels = order_labels(named["train"][1])
    for split, (_, split_labels) in named.items():
        unknown = sorted(set(split_labels) - set(labels))
        if unknown:
            raise EmotionCoreError(
                f"The {split} split has labels that train lacks: {', '.join(unknown)}. "
                f"Train has: {', '.join(labels)}."
            )
    features = Features({"text": Value("string"), "label": ClassLabel(names=labels)})
    splits = DatasetDict({
        split: Dataset.from_dict({"text": texts, "label": [labels.index(x) for x in split_labels]}, features=features)
        for split, (texts, split_labels) in named.items()
    })
    if "validation" not in splits:
        try:
            held = splits["train"].train_test_split(test_size=HELD_OUT_FRACTION, seed=seed, stratify_by_column="label")
        except ValueError:  # a label with a single row cannot be stratified
            held = splits["train"].train_test_split(test_size=HELD_OUT_FRACTION, seed=seed)
        splits["train"], splits["validation"] = held["train"], held["test"]
        logger.info("no validation split given: held out %d training rows", len(splits["validation"]))
    if cfg.max_train_samples:
        train = splits["train"].shuffle(seed=seed)
        splits["train"] = train.select(range(min(cfg.max_train_samples, len(train))))
    logger.info("loaded %s", {split: len(ds) for split, ds in splits.items()})
    return splits


def clean_rows(split: str, rows: Rows, label_names: list[str] | None) -> Rows:
    """Name the labels, drop rows with empty text (counted in the log), and refuse an empty split."""
    texts, raw_labels = rows
    kept = [(text, name_label(label, label_names)) for text, label in zip(texts, raw_labels) if text and text.strip()]
    if len(kept) < len(texts):
        logger.warning("%s: dropped %d rows with empty text", split, len(texts) - len(kept))
    if not kept:
        raise EmotionCoreError(f"The {split} split has no rows with text.")
    if any(not label for _, label in kept):
        raise EmotionCoreError(f"The {split} split has rows with an empty label.")
    return [t for t, _ in kept], [label for _, label in kept]


def tokenize_batch(batch: dict, tokenizer, max_length: int) -> dict:
    """Tokenize one batch of texts, truncated to `max_length` and not padded."""
    return tokenizer(batch["text"], truncation=True, max_length=max_length)


def tokenize_splits(splits: DatasetDict, tokenizer, max_length: int) -> DatasetDict:
    """Tokenize every split without padding (the collator pads each batch to its own longest text)."""
    return splits.map(
        tokenize_batch, batched=True, remove_columns=["text"], desc="Tokenizing",
        fn_kwargs={"tokenizer": tokenizer, "max_length": max_length},
    )
