"""Load labelled text from the Hub or local files into one `DatasetDict`, and tokenize it.

Every run ends up as the same shape, however many sources it mixes: splits `train`, `validation`
and maybe `test`, each with a string column `text`, a ClassLabel column `label` whose names are
stored with it, and a string column `source` naming where each row came from.
"""

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value, concatenate_datasets

from .config import DataConfig
from .errors import EmotionCoreError
from .hub import OFFLINE_TRAINING_HINT, hub_failure, hub_is_offline, hub_unreachable
from .labels import name_label, order_labels, parse_label_names
from .normalize import normalize, parse_steps
from .sources import FOLDED, MULTI_LABEL_SEPARATOR, TWEETEVAL_FILES, Source, read_goemotions, read_mix_file, read_tweeteval

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
    tsv = path.suffix.lower() == ".tsv"
    try:
        frame = pd.read_csv(path, sep="\t" if tsv else ",", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise EmotionCoreError(f"{path} is empty: expected a header row with '{text_column}' and '{label_column}'") from None
    except pd.errors.ParserError as exc:
        raise EmotionCoreError(f"{path} is not a valid {path.suffix[1:].upper()} file: {exc}") from None
    check_columns(path, list(frame.columns), text_column, label_column)
    merged = [i for i, text in enumerate(frame[text_column]) if "\t" in text] if tsv else []
    if merged:  # a '"' opens a quoted field, which runs on to the next '"': the rows between (tabs and all) become one
        raise EmotionCoreError(f"{path}: the text of row {merged[0] + 1} holds a tab, so a '\"' in it "
                               "began a quoted field that took in the rows after it. Quote that whole text, doubling "
                               "its '\"', or remove the stray quote.")
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


def read_file(path: str | Path, text_column: str = "text", label_column: str = "label", fmt: str | None = None) -> Rows:
    """Read one labelled file of any supported format, chosen by `fmt` (a known source's) or its extension."""
    path = Path(path)
    if not path.is_file():
        raise EmotionCoreError(f"File not found: {path}")
    try:
        suffix = path.suffix.lower()
        if fmt == "goemotions":
            return read_goemotions(path)
        if fmt == "tweeteval":
            return read_tweeteval(path)
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


def local_split_files(source: Source) -> dict[str, Path] | None:
    """Map split names to local files, or None when `source.data` names a Hub data set."""
    if (source.validation_file or source.test_file) and not source.train_file:
        raise EmotionCoreError("--validation-file and --test-file go with --train-file (or put all three in one --data folder).")
    if source.train_file:
        explicit = {"train": source.train_file, "validation": source.validation_file, "test": source.test_file}
        return {split: Path(p) for split, p in explicit.items() if p}
    path = Path(source.data)
    if path.is_dir() and source.format == "tweeteval":
        return {split: path / name for split, name in TWEETEVAL_FILES.items() if (path / name).is_file()}
    if path.is_dir():
        return find_split_files(path)
    if path.is_file():
        return {"train": path}
    if path.is_absolute() or source.data.startswith(".") or not HUB_ID.match(source.data):
        raise EmotionCoreError(f"Data not found: {source.data} is neither a file nor a folder.")
    return None


def read_hub(source: Source) -> dict[str, Rows]:
    """Download a Hub data set and return its splits as texts and label names."""
    from datasets import load_dataset

    what = f"data set '{source.data}' from the Hub" + ("" if hub_is_offline() else " (no local folder of that name either)")
    unreachable = hub_unreachable()
    if unreachable:
        raise EmotionCoreError(f"Could not load {what}: {unreachable}. {OFFLINE_TRAINING_HINT}")
    try:
        hub = load_dataset(source.data)
    except Exception as exc:  # unknown id, gated, a dropped connection: all become one clear line
        raise hub_failure(what, exc) from None
    splits = {}
    for split, stems in SPLIT_STEMS.items():
        name = next((stem for stem in stems if stem in hub), None)
        if name is None:
            continue
        part = hub[name]
        check_columns(Path(source.data), part.column_names, source.text_column, source.label_column, where=f" [{name}]")
        feature = part.features[source.label_column]
        labels = part[source.label_column]
        labels = feature.int2str(labels) if isinstance(feature, ClassLabel) else [str(x) for x in labels]
        splits[split] = (part[source.text_column], labels)
    return splits


def read_source(source: Source) -> dict[str, Rows]:
    """Every split of one source, as texts and raw labels."""
    files = local_split_files(source)
    if files is None:
        return read_hub(source)
    return {split: read_file(path, source.text_column, source.label_column, source.format) for split, path in files.items()}


def config_sources(cfg: DataConfig) -> list[Source]:
    """The sources of a run: the mix file's, or one per --data value sharing the column and label flags."""
    if cfg.mix:
        return read_mix_file(cfg.mix)
    if cfg.train_file or cfg.validation_file or cfg.test_file:
        return [Source(train_file=cfg.train_file, validation_file=cfg.validation_file, test_file=cfg.test_file,
                       text_column=cfg.text_column, label_column=cfg.label_column, label_names=cfg.label_names,
                       label_map=cfg.label_map)]
    return [Source(data=data, text_column=cfg.text_column, label_column=cfg.label_column, label_names=cfg.label_names,
                   label_map=cfg.label_map) for data in cfg.data]


# ----------------------------------------------------------------------------- building splits

class DataReport(dict):
    """{source: {split: {"rows": kept, "dropped": {reason: count}}}}, for the log, metrics.json and the card."""

    def count(self, source: str, split: str, kept: int = 0, reason: str | None = None, n: int = 1) -> None:
        entry = self.setdefault(source, {}).setdefault(split, {"rows": 0, "dropped": {}})
        entry["rows"] += kept
        if reason:
            entry["dropped"][reason] = entry["dropped"].get(reason, 0) + n

    def dropped(self, source: str, split: str) -> str:
        """What was dropped and why, e.g. `7,102 multi-label, 498 unmapped label`; empty when nothing was."""
        entry = self.get(source, {}).get(split, {"dropped": {}})
        return ", ".join(f"{n:,} {reason}" for reason, n in entry["dropped"].items() if n)

    def lines(self) -> list[str]:
        """One line per source and split, e.g. `goemotions train: 5,272 rows (dropped 7,102 multi-label, ...)`."""
        out = []
        for source, splits in self.items():
            for split, entry in splits.items():
                dropped = self.dropped(source, split)
                weighed = f", {entry['per_epoch']:,} seen per epoch" if "per_epoch" in entry else ""
                out.append(f"{source} {split}: {entry['rows']:,} rows" + (f" (dropped {dropped})" if dropped else "") + weighed)
        return out


def load_splits(cfg: DataConfig, seed: int = 42) -> DatasetDict:
    """`load_sources` without its report."""
    return load_sources(cfg, seed)[0]


def load_sources(cfg: DataConfig, seed: int = 42, sources: list[Source] | None = None) -> tuple[DatasetDict, DataReport]:
    """Load every source into one train / validation (/ test, / folded), with a `source` column, ready to tokenize.

    One pipeline, each step entered once: every source is read, its labels mapped, its texts
    normalised (`--normalize`) and its repeated train rows dropped; then the sources become the
    run's splits (`build_splits`). Train rows that repeat any evaluation text are dropped too, so
    no figure is inflated by a text the model trained on, and a source without a validation file
    gives 10% of its train rows (stratified) to validation, so there is always a split to pick the
    best checkpoint on. `sources` stands in for the config's (a model folder's own, when it is
    evaluated again).
    """
    sources = sources or config_sources(cfg)
    names = [source.name for source in sources]
    if len(set(names)) != len(names):
        raise EmotionCoreError(f"Two sources share the name {max(names, key=names.count)!r}: give them names in a mix file.")
    steps = parse_steps(cfg.normalize)
    report = DataReport()
    rows = {}
    for source in sources:
        mapped = map_labels(source, read_source(source), report)
        rows[source.name] = normalise(source.name, mapped, steps, report)
    splits = build_splits(sources, rows, seed, report)
    if cfg.max_train_samples:
        train = splits["train"].shuffle(seed=seed)
        splits["train"] = train.select(range(min(cfg.max_train_samples, len(train))))
    for line in report.lines():
        logger.info("data: %s", line)
    return splits, report


def map_labels(source: Source, raw: dict[str, Rows], report: DataReport) -> dict[str, Rows]:
    """One source's splits with the model's label names, dropping (and counting) the rows that cannot be used;
    plus `folded` when its grouping folds validation labels. A train_only source keeps its train split alone."""
    if source.train_only:  # never measured: its other splits are not read into the run at all
        raw = {"train": raw["train"]}
    out = {split: map_split(source, split, split_rows, report) for split, split_rows in raw.items()}
    if "validation" in raw and source.folds() and source.mapping(FOLDED):
        out[FOLDED] = map_split(source, FOLDED, raw["validation"], report)
    return out


def map_split(source: Source, split: str, rows: Rows, report: DataReport) -> Rows:
    """One split's rows named and mapped: empty texts, GoEmotions' multi-label rows and unmapped labels dropped."""
    label_names = parse_label_names(source.label_names)
    mapping = source.mapping(split)
    report.count(source.name, split)  # listed in the order read, whatever is dropped
    texts, labels = [], []
    for text, raw in zip(*rows):
        if not text or not text.strip():
            report.count(source.name, split, reason="empty text")
            continue
        label = name_label(raw, label_names)
        if not label:
            raise EmotionCoreError(f"The {split} split of {source.name} has rows with an empty label.")
        if source.format == "goemotions" and MULTI_LABEL_SEPARATOR in label:
            report.count(source.name, split, reason="multi-label")
            continue
        if mapping is not None:
            if label not in mapping:
                report.count(source.name, split, reason="unmapped label")
                continue
            label = mapping[label]
        texts.append(text)
        labels.append(label)
    return texts, labels


def normalise(name: str, by_split: dict[str, Rows], steps: tuple[str, ...], report: DataReport) -> dict[str, Rows]:
    """Every split's texts normalised; a train text that repeats an earlier one (once normalised) dropped."""
    out = {}
    for split, (texts, labels) in by_split.items():
        kept_texts, kept_labels, seen = [], [], set()
        for text, label in zip(texts, labels):
            text = normalize(text, steps)
            if split == "train":
                if text in seen:
                    report.count(name, split, reason="duplicate")
                    continue
                seen.add(text)
            kept_texts.append(text)
            kept_labels.append(label)
        report.count(name, split, kept=len(kept_texts))
        if not kept_texts:
            dropped = report.dropped(name, split)
            raise EmotionCoreError(f"The {split} split of {name} has no usable rows" + (f" (dropped: {dropped})." if dropped else "."))
        out[split] = kept_texts, kept_labels
    return out


def build_splits(sources: list[Source], rows: dict[str, dict[str, Rows]], seed: int, report: DataReport) -> DatasetDict:
    """The run's splits from every source's rows: the labels (those of train), validation held out where a source
    has none, train rows that are evaluation texts dropped, and each source weighed."""
    labels = order_labels(label for by_split in rows.values() for label in by_split["train"][1])
    if len(labels) < 2:
        raise EmotionCoreError(f"The train split has {'only the label ' + repr(labels[0]) if labels else 'no label'}: "
                               "a classifier needs two or more (check the label column and the label map).")
    strict = len(sources) == 1 and sources[0].label_map is None
    parts: dict[str, list[Dataset]] = {}
    for source in sources:
        for split, dataset in source_datasets(source, rows[source.name], labels, strict, seed, report).items():
            parts.setdefault(split, []).append(dataset)
    if "validation" not in parts:
        raise EmotionCoreError("Every source is train_only: at least one must have rows to measure the model on.")
    splits = DatasetDict({split: concatenate_datasets(datasets) for split, datasets in parts.items()})
    splits["train"] = drop_leaks(splits, report)
    splits["train"] = weigh(splits["train"], sources, seed, report)
    return splits


def source_datasets(source: Source, by_split: dict[str, Rows], labels: list[str], strict: bool, seed: int,
                    report: DataReport) -> dict[str, Dataset]:
    """One source's splits as Datasets with the run's label names; validation held out of train if missing (unless
    the source is for training only)."""
    name = source.name
    features = Features({"text": Value("string"), "label": ClassLabel(names=labels), "source": Value("string")})
    out = {}
    for split, (texts, split_labels) in by_split.items():
        texts, split_labels = keep_known_labels(name, split, texts, split_labels, labels, strict, report)
        data = {"text": texts, "label": [labels.index(x) for x in split_labels], "source": [name] * len(texts)}
        out[split] = Dataset.from_dict(data, features=features)
    if "validation" not in out and not source.train_only:
        if len(out["train"]) < 2:
            raise EmotionCoreError(f"{name} has {len(out['train'])} train row and no validation split, too few to hold "
                                   "one out: give it a validation file, or more rows.")
        held = hold_out(out["train"], seed)
        out["train"], out["validation"] = held["train"], held["test"]
        report.count(name, "validation", kept=len(held["test"]))
        report.count(name, "train", kept=-len(held["test"]), reason="moved to validation", n=len(held["test"]))
        logger.info("%s: no validation split given: held out %d training rows", name, len(held["test"]))
    return out


def keep_known_labels(name: str, split: str, texts: list[str], split_labels: list[str], labels: list[str],
                      strict: bool, report: DataReport) -> Rows:
    """Refuse (one plain source) or drop (mixed or mapped sources) evaluation rows whose label no train row has."""
    unknown = sorted(set(split_labels) - set(labels))
    if not unknown:
        return texts, split_labels
    if strict:
        raise EmotionCoreError(f"The {split} split has labels that train lacks: {', '.join(unknown)}. "
                               f"Train has: {', '.join(labels)}.")
    kept = [(t, label) for t, label in zip(texts, split_labels) if label in labels]
    report.count(name, split, kept=len(kept) - len(texts), reason="unmapped label", n=len(texts) - len(kept))
    return [t for t, _ in kept], [label for _, label in kept]


def hold_out(train: Dataset, seed: int) -> DatasetDict:
    """Split 10% of one source's train rows off as validation, stratified by label where possible."""
    try:
        return train.train_test_split(test_size=HELD_OUT_FRACTION, seed=seed, stratify_by_column="label")
    except ValueError:  # a label with a single row cannot be stratified
        return train.train_test_split(test_size=HELD_OUT_FRACTION, seed=seed)


def weigh(train: Dataset, sources: list[Source], seed: int, report: DataReport) -> Dataset:
    """Repeat (weight > 1) or subsample (weight < 1) train rows, so one source, or one label of it, counts for more.

    A source's rows are picked as one group, or label by label when it sets `label_weights`.
    """
    names = train.features["label"].names
    for source in sources:
        unknown = sorted(set(source.label_weights or {}) - set(names))
        if unknown:
            raise EmotionCoreError(f"Source {source.name}: label_weights names {', '.join(unknown)}, which no train row has "
                                   f"(labels: {', '.join(names)}).")
    groups = {(s.name, None if s.label_weights is None else label): s.label_weight(label)
              for s in sources for label in (names if s.label_weights else [None])}
    if all(weight == 1 for weight in groups.values()):
        return train
    rng, picks = np.random.default_rng(seed), []
    source_of, label_of = np.array(train["source"]), np.array(train["label"])
    for (name, label), weight in groups.items():
        wanted = source_of == name
        rows = np.flatnonzero(wanted if label is None else wanted & (label_of == names.index(label)))
        extra = rng.choice(rows, size=round((weight % 1) * len(rows)), replace=False)
        picks += [rows] * int(weight) + [extra]
        entry = report[name]["train"]
        entry["per_epoch"] = entry.get("per_epoch", 0) + int(len(rows) * int(weight) + len(extra))
    return train.select(np.sort(np.concatenate(picks)))


def drop_leaks(splits: DatasetDict, report: DataReport) -> Dataset:
    """Train without the rows whose text is also an evaluation text (validation, test, folded; of any source)."""
    held = {text for split in ("validation", "test", FOLDED) if split in splits for text in splits[split]["text"]}
    leaks = [i for i, text in enumerate(splits["train"]["text"]) if text in held]
    sources = splits["train"]["source"]
    for i in leaks:
        report.count(sources[i], "train", kept=-1, reason="duplicate")
    keep = sorted(set(range(len(splits["train"]))) - set(leaks))
    return splits["train"].select(keep) if leaks else splits["train"]


def tokenize_batch(batch: dict, tokenizer, max_length: int) -> dict:
    """Tokenize one batch of texts, truncated to `max_length` and not padded."""
    return tokenizer(batch["text"], truncation=True, max_length=max_length)


def tokenize_splits(splits: DatasetDict, tokenizer, max_length: int) -> DatasetDict:
    """Tokenize every split without padding (the collator pads each batch to its own longest text)."""
    return splits.map(
        tokenize_batch, batched=True, remove_columns=["text"], desc="Tokenizing",
        fn_kwargs={"tokenizer": tokenizer, "max_length": max_length},
    )
