"""Score a CSV file of any size: stream it in chunks, add predictions, write atomically."""

import codecs
import functools
import logging
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .errors import EmotionCoreError
from .explain import explain as explain_text
from .model_folder import atomic_file, remove_stale_partials
from .predict import Classifier

logger = logging.getLogger(__name__)

CHUNK_ROWS = 5_000


@dataclass
class ScoreSummary:
    """What a scoring run did, for the closing line of the CLI and the apps."""

    output: Path
    text_column: str
    rows: int = 0
    skipped: int = 0
    label_counts: Counter = field(default_factory=Counter)
    languages: Counter = field(default_factory=Counter)  # rows left unread, by language (ISO 639-1): not English
    sentences: int | None = None  # output rows with --sentences (one per sentence)
    corrected: int | None = None  # rows a review queue left for last, as corrected already (`queue.review_queue`)

    def __str__(self) -> str:
        counts = ", ".join(f"{label} {n}" for label, n in self.label_counts.most_common())
        split = "" if self.sentences is None else f" as {self.sentences} sentences"
        unread = sum(self.languages.values())
        other = "" if not unread else (f"; {unread} not in English, left unscored: "
                                       + ", ".join(f"{code} {n}" for code, n in self.languages.most_common()))
        return (f"Scored {self.rows - self.skipped - unread} of {self.rows} rows{split} into {self.output} "
                f"(column '{self.text_column}'; {self.skipped} skipped as empty{other}). Labels: {counts or 'none'}.")


TOP_WORDS = 3


def prediction_columns(labels: list[str], sentences: bool = True, explain: bool = True) -> list[str]:
    """The columns `score` adds, in order: `sentence` and `sentence_text` with `sentences`, `top_words` with `explain`."""
    return [*(["sentence", "sentence_text"] if sentences else []), "language", "emotion", "confidence",
            *(f"prob_{label}" for label in labels), *(["top_words"] if explain else [])]


def replaced_columns(columns: list[str], text_column: str, labels: list[str], sentences: bool, explain: bool) -> list[str]:
    """The input's columns that this run's output takes the place of: those a file `score` wrote before holds of
    its own (`written_by_score`), now stale. A column of the person's own that shares a name with one this run
    writes (`emotion`, a gold label, say) is refused, not overwritten; one it does not write (`sentence`) is kept."""
    ours = written_by_score(columns)
    clash = [c for c in prediction_columns(labels, sentences, explain) if c in columns and c not in ours and c != text_column]
    if clash:
        raise EmotionCoreError(f"The file has a column '{clash[0]}' of its own, and score writes one of that name: "
                               "rename it first (its values would be lost).")
    return [c for c in columns if c in ours and c != text_column]


def written_by_score(columns: list[str]) -> list[str]:
    """The columns `score` added to a file, found where it puts them, after the person's own: `emotion`,
    `confidence` and the `prob_` columns after them (of whichever model scored it), `language` just before
    (a file scored before languages were told has none), `sentence` and `sentence_text` before that, `top_words`
    just after."""
    starts = [i for i in range(len(columns) - 2)
              if columns[i:i + 2] == ["emotion", "confidence"] and columns[i + 2].startswith("prob_")]
    if not starts:
        return []
    start = starts[-1]
    end = start + 2
    while end < len(columns) and columns[end].startswith("prob_"):
        end += 1
    start -= columns[start - 1:start] == ["language"]
    before = ["sentence", "sentence_text"] if columns[max(start - 2, 0):start] == ["sentence", "sentence_text"] else []
    return before + columns[start:end] + (["top_words"] if columns[end:end + 1] == ["top_words"] else [])


def top_words(classifier: Classifier, text: str) -> str:
    """The words that pushed the prediction up the most, e.g. `furious (+2.52); am (+0.28)`."""
    return "; ".join(f"{word} ({score:+.2f})" for word, score in explain_text(classifier, text).top_words(TOP_WORDS))


def find_text_column(frame: pd.DataFrame, requested: str | None = None) -> str:
    """The column to score: the one asked for, else `text`, else the only non-numeric column, passing over those
    `score` writes when there are others (so a scored file scored again finds its text, not its `emotion`)."""
    columns = [str(c) for c in frame.columns]
    listing = ", ".join(columns)
    if requested:
        if requested not in columns:
            raise EmotionCoreError(f"CSV has no column '{requested}' (found: {listing}). Choose one of them.")
        return requested
    named = [c for c in columns if c.strip().lower() == "text"]
    if len(named) == 1:
        return named[0]
    textual = [c for c in columns if not pd.to_numeric(frame[c].replace("", np.nan).dropna(), errors="coerce").notna().all()]
    if len(textual) > 1:  # a scored file's `sentence` holds numbers: a textual one is a person's text (as in SST-2)
        ours = set(prediction_columns([])) - {"sentence"}
        textual = [c for c in textual if c not in ours]
    if len(textual) == 1:
        return textual[0]
    raise EmotionCoreError(f"CSV has no column 'text' and no single text column (found: {listing}). "
                           "Say which one holds the text (on the command line: --text-column NAME).")


def sniff_columns(path: str | Path, encoding: str = "utf-8-sig") -> tuple[list[str], str | None]:
    """The columns of a CSV and the text column `score_csv` would pick (None when it can't tell)."""
    path = Path(path)
    with clear_csv_errors(path, encoding):
        head = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=200, encoding=encoding)
    try:
        guess = find_text_column(head)
    except EmotionCoreError:
        guess = None
    return [str(c) for c in head.columns], guess


def score_frame(frame: pd.DataFrame, column: str, classifier: Classifier, explain: bool = False,
                sentences: bool = False) -> pd.DataFrame:
    """Add `language`, `emotion`, `confidence`, `prob_<label>` (and `top_words`) to one chunk; empty texts get empty
    cells, and so do the emotion columns of texts the model does not read (not English).

    With `sentences`, each row becomes one row per sentence of its text, numbered from 1 in `sentence`.
    """
    texts = frame[column].fillna("").astype(str)
    valid = (texts.str.strip() != "").to_numpy()
    out = frame.drop(columns=replaced_columns(list(frame.columns), column, classifier.labels, sentences, explain))
    if sentences:
        out, texts, languages, probs = sentence_rows(out, texts, valid, classifier)
        valid = out["sentence_text"].notna().to_numpy()
    else:
        languages = np.full(len(frame), None, dtype=object)
        languages[valid] = classifier.languages(texts[valid].tolist())
        probs = np.full((len(frame), len(classifier.labels)), np.nan, dtype=np.float32)
        wanted = np.array([language is not None and classifier.reads(language) for language in languages], dtype=bool)
        if wanted.any():
            probs[wanted] = classifier.predict_proba(texts[wanted].tolist())
    read = ~np.isnan(probs).any(axis=1)
    emotion = np.full(len(out), None, dtype=object)
    emotion[read] = np.asarray(classifier.labels, dtype=object)[probs[read].argmax(axis=1)]
    out["language"] = pd.array(languages, dtype="string")
    out["emotion"] = pd.array(emotion, dtype="string")  # a string column even when every text was empty (Arrow: not null)
    out["confidence"] = probs.max(axis=1)  # NaN (an empty cell) where the text was empty or not read
    for i, label in enumerate(classifier.labels):
        out[f"prob_{label}"] = probs[:, i]
    if explain:
        out["top_words"] = [top_words(classifier, text) if ok else None for text, ok in zip(texts, read)]
    return out


@functools.cache
def worker_classifier(model: str, engine: str | None, any_language: bool = False) -> Classifier:
    """This process's classifier: loaded for its first batch, then kept for every other batch it scores."""
    return Classifier.from_pretrained(model, engine=engine, any_language=any_language)


@dataclass(frozen=True)
class BatchScorer:
    """`score`'s work on one batch of rows, as a small picklable object that Ray and Spark workers call.

    A pandas DataFrame (or an Arrow table) in; the same rows out with the columns `score` adds. The
    model is loaded once per worker process (`worker_classifier`), never once per batch, and long
    texts are read whole as `score` reads them, so every engine gives `score`'s answers.
    """

    model: str
    text_column: str = "text"
    engine: str | None = None
    any_language: bool = False  # read texts in every language, not only English

    def __call__(self, batch) -> pd.DataFrame:
        frame = batch.to_pandas() if hasattr(batch, "to_pandas") else batch
        return score_frame(frame, self.text_column, worker_classifier(self.model, self.engine, self.any_language))


def sentence_rows(frame: pd.DataFrame, texts: pd.Series, valid: np.ndarray,
                  classifier: Classifier) -> tuple[pd.DataFrame, list[str], list, np.ndarray]:
    """Each row repeated once per sentence of its text (an empty text, or one not read: once, unscored), with the
    sentences' texts, languages and probabilities."""
    documents = iter(classifier.analyze(texts[valid].tolist())) if valid.any() else iter(())
    repeat, numbers, pieces, languages, probs = [], [], [], [], []
    unread = [np.nan] * len(classifier.labels)
    for row, ok in enumerate(valid):
        document = next(documents) if ok else None
        found = (document.sentences or [None]) if ok else [None]
        repeat += [row] * len(found)
        numbers += list(range(1, len(found) + 1)) if document and document.sentences else [None]
        pieces += [s.text if s else None for s in found]
        languages += [s.language for s in found] if document and document.sentences else [document and document.language]
        probs += [[s.probabilities[label] for label in classifier.labels] if s and s.probabilities else unread for s in found]
    out = frame.iloc[repeat].reset_index(drop=True)
    out.insert(len(out.columns), "sentence", pd.array(numbers, dtype="Int64"))
    out.insert(len(out.columns), "sentence_text", pieces)
    return (out, [p or "" for p in pieces], languages,
            np.asarray(probs, dtype=np.float32).reshape(len(out), len(classifier.labels)))


@contextmanager
def clear_csv_errors(path: Path, encoding: str):
    """Turn what pandas and the codecs raise on a bad file into one message that says what to do."""
    try:
        yield
    except UnicodeDecodeError as exc:  # its position is in a buffer of pandas', not in the file: the byte says enough
        raise EmotionCoreError(f"{path.name} is not {encoding.removesuffix('-sig').upper()} text (it holds the byte "
                               f"0x{exc.object[exc.start]:02x}). Save it as UTF-8, or name its encoding "
                               "(on the command line: --encoding latin-1).") from None
    except UnicodeError as exc:  # a codec that refuses the file's start (UTF-16 without its byte-order mark)
        raise EmotionCoreError(f"{path.name} cannot be read as {encoding}: {exc}. Name its encoding "
                               "(on the command line: --encoding latin-1).") from None
    except pd.errors.EmptyDataError:
        raise EmotionCoreError(f"{path.name} is empty: expected a header row and one text per row.") from None
    except pd.errors.ParserError as exc:
        raise EmotionCoreError(f"{path.name} is not a valid CSV file: {str(exc).strip()}") from None


def read_through(src: Path, encoding: str, max_rows: int | None = None, chunk_rows: int = 100_000) -> None:
    """Read a CSV through as `score` reads it, scoring nothing: what is wrong with it is raised as scoring would raise
    it (`clear_csv_errors` turns that into a message), and a file of more than `max_rows` rows is refused (reading
    it costs a small part of scoring it: a server's slot is not held for the minutes it would take to find out at
    the last row)."""
    rows = 0
    with pd.read_csv(src, dtype=str, keep_default_na=False, chunksize=chunk_rows, encoding=encoding) as chunks:
        for chunk in chunks:
            rows += len(chunk)
            if max_rows is not None and rows > max_rows:
                raise EmotionCoreError(f"{src.name} has more than {max_rows:,} rows, the limit here. "
                                       "Score it with: python -m emotion_core score FILE -o OUT.csv")


def check_encoding(encoding: str) -> None:
    """Refuse an unknown codec name before reading anything."""
    try:
        text = codecs.lookup(encoding)._is_text_encoding  # base64, zlib and the like are codecs too, of bytes
    except LookupError:
        text = False
    if not text:
        raise EmotionCoreError(f"Unknown encoding {encoding!r}: use a Python codec name such as utf-8 or latin-1.") from None


def check_paths(src: Path, dst: Path) -> None:
    """Refuse a missing input, and an output that is the input (it would be replaced before it was read)."""
    if not src.is_file():
        raise EmotionCoreError(f"File not found: {src}")
    if src.resolve() == dst.resolve():
        raise EmotionCoreError("The output file must differ from the input file.")


def score_csv(
    input_path: str | Path,
    output_path: str | Path,
    classifier: Classifier | None = None,
    text_column: str | None = None,
    encoding: str = "utf-8-sig",
    chunk_rows: int = CHUNK_ROWS,
    progress: bool = True,
    max_rows: int | None = None,
    explain: bool = False,
    sentences: bool = False,
) -> ScoreSummary:
    """Score every row of a CSV into a new CSV: input columns, then emotion, confidence, prob_<label>.

    Memory stays flat however long the file is; the output appears only when complete.
    Prediction columns already in the input (a scored file scored again) are replaced (`replaced_columns`).
    `max_rows` caps the work one call may do (the apps set it; the command line does not).
    `explain` adds `top_words`, the words that drove each prediction (one occlusion pass per row:
    several times slower than scoring alone). `sentences` writes one row per sentence of each
    text instead of one per text (the document's emotion, the default, reads long texts whole).
    """
    src, dst = Path(input_path), Path(output_path)
    check_encoding(encoding)
    check_paths(src, dst)
    classifier = classifier or Classifier.from_pretrained()
    remove_stale_partials(dst)
    with atomic_file(dst) as tmp, clear_csv_errors(src, encoding):
        summary = stream_scores(src, tmp, classifier, text_column, encoding, chunk_rows, progress, max_rows, explain, sentences)
    summary.output = dst
    logger.info("%s", summary)
    return summary


def stream_scores(src: Path, tmp: Path, classifier: Classifier, text_column: str | None,
                  encoding: str, chunk_rows: int, progress: bool, max_rows: int | None = None,
                  explain: bool = False, sentences: bool = False) -> ScoreSummary:
    """Read, score and append chunk by chunk, with a progress bar measured in bytes read."""
    if max_rows is not None:
        read_through(src, encoding, max_rows)
    with open(src, "rb") as raw, tqdm.wrapattr(raw, "read", total=src.stat().st_size, desc=f"Scoring {src.name}",
                                               unit="B", unit_scale=True, disable=not progress) as wrapped:
        summary = None
        with pd.read_csv(wrapped, dtype=str, keep_default_na=False, chunksize=chunk_rows, encoding=encoding) as chunks:
            for chunk in chunks:  # the reader is closed even when a chunk is refused
                if summary is None:
                    summary = ScoreSummary(tmp, find_text_column(chunk, text_column))
                    if summary.text_column in prediction_columns(classifier.labels, sentences, explain):
                        raise EmotionCoreError(f"The text column '{summary.text_column}' has the name of an output column; "
                                               "rename it first.")
                scored = score_frame(chunk, summary.text_column, classifier, explain, sentences)
                scored.to_csv(tmp, mode="a" if summary.rows else "w", header=not summary.rows, index=False, float_format="%.4f")
                summary.rows += len(chunk)
                summary.skipped += int((chunk[summary.text_column].fillna("").astype(str).str.strip() == "").sum())
                summary.label_counts.update(scored["emotion"].dropna())
                unread = scored["emotion"].isna() & scored["language"].notna()  # a text, not empty, and not read
                summary.languages.update(scored["language"][unread & scored["sentence"].isna() if sentences else unread])
                if sentences:
                    summary.sentences = (summary.sentences or 0) + int(scored["sentence"].notna().sum())
    if summary is None or summary.rows == 0:
        raise EmotionCoreError(f"{src.name} has a header but no rows to score.")
    return summary
