"""Corrections from the people who use the model, kept in one SQLite file.

    >>> store = FeedbackStore.open()                     # $EMOTION_FEEDBACK_DB, else the default below
    >>> store.save(Correction(text="...", model="emotion-minilm", model_hash="...", predicted="joy",
    ...                       probabilities={"joy": 0.6, ...}, corrected="neutral", source="flask"))

SQLite needs no server and takes several writers on one file (waitress threads, Gradio workers,
other processes): write-ahead logging lets readers go on while one writer commits, and writers
wait their turn (`busy_timeout`) instead of failing. A correction may carry a `key` (the apps
give each prediction shown one), so a form sent twice stores it once.
"""

import functools
import hashlib
import json
import logging
import os
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from .config import MAX_TEXT_CHARS
from .errors import EmotionCoreError
from .model_folder import write_with

logger = logging.getLogger(__name__)

DB_ENV_VAR = "EMOTION_FEEDBACK_DB"
SWITCH_ENV_VAR = "EMOTION_FEEDBACK"  # "off" turns the feature off in both apps
UNAVAILABLE = "Corrections cannot be saved right now (the server's store cannot be written); predictions still work."
REPO_ENV_VAR = "EMOTION_FEEDBACK_REPO"  # a private Hub dataset repo that also gets every correction (for a Space)
BUSY_TIMEOUT_MS = 10_000
COLUMNS = ("key", "text", "model", "model_hash", "predicted", "probabilities", "corrected", "source", "created_at")

# Each entry takes the schema from its position to the next version; `PRAGMA user_version` says where a file is.
MIGRATIONS = (
    """CREATE TABLE corrections (
           id INTEGER PRIMARY KEY,
           text TEXT NOT NULL,
           model TEXT NOT NULL,
           model_hash TEXT NOT NULL,
           predicted TEXT NOT NULL,
           probabilities TEXT NOT NULL,
           corrected TEXT NOT NULL,
           source TEXT NOT NULL,
           created_at TEXT NOT NULL)""",
    """ALTER TABLE corrections ADD COLUMN key TEXT;
       CREATE UNIQUE INDEX corrections_key ON corrections (key) WHERE key IS NOT NULL""",
)
SCHEMA_VERSION = len(MIGRATIONS)
CHANGED = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c not in ("key", "text"))  # a change of mind
INSERT = f"INSERT INTO corrections ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
UPSERT = (f"{INSERT} ON CONFLICT (key) WHERE key IS NOT NULL DO UPDATE SET {CHANGED} "
          "WHERE text = excluded.text AND corrected != excluded.corrected")


def default_path() -> Path:
    """$EMOTION_FEEDBACK_DB, else feedback.db in the user's data folder ($XDG_DATA_HOME/emotion)."""
    if os.environ.get(DB_ENV_VAR):
        return Path(os.environ[DB_ENV_VAR])
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "emotion" / "feedback.db"


def enabled(setting: str | bool | None = None) -> bool:
    """False for EMOTION_FEEDBACK=off (or `setting` off, false, 0, no): the apps then show no correction control."""
    setting = os.environ.get(SWITCH_ENV_VAR, "on") if setting is None else setting
    return str(setting).strip().lower() not in ("off", "0", "false", "no")


@functools.cache
def weights_hash(folder: Path | None) -> str:
    """The first 16 hex digits of the SHA-256 of the model's weights: which model a correction was made against."""
    from .engines import weights_digest
    from .model_folder import WEIGHTS

    return weights_digest(folder)[:16] if folder and (folder / WEIGHTS).is_file() else "unknown"


@dataclass
class Correction:
    """A person's answer beside the model's: what it said, with what confidence, and what is right."""

    text: str
    model: str
    model_hash: str
    predicted: str
    probabilities: dict[str, float]
    corrected: str
    source: str  # which app or command: "gradio", "flask", "api", "review"
    key: str | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))

    def check(self, labels: list[str], limit: int = MAX_TEXT_CHARS) -> None:
        """Refuse what the store should not keep: an empty text or one over `limit` (the app's), a label the model
        does not have."""
        from .predict import check_length, check_unicode

        if not isinstance(self.text, str) or not self.text.strip():
            raise EmotionCoreError("A correction needs the text it corrects.")
        check_unicode(self.text)
        check_length(self.text, limit)
        if self.corrected not in labels:
            raise EmotionCoreError(f"Unknown label {self.corrected!r}: the model's labels are {', '.join(labels)}.")


class FeedbackStore:
    """The corrections table in one SQLite file; every method opens its own connection, so any thread may call it.

    Creating one touches no file: the apps make theirs at start and serve predictions even when
    the file cannot be written; the first save brings the schema up to date, or says why not.
    """

    def __init__(self, path: str | Path | None = None, mirror=None):
        self.path = Path(path) if path else default_path()
        self.mirror = mirror  # a hub.HubMirror, or None

    @classmethod
    def for_app(cls, path: str | Path | None = None) -> "FeedbackStore":
        """The apps' store: the file, and the Hub repo named by $EMOTION_FEEDBACK_REPO when there is one. A repo that
        cannot be reached is logged and left out: corrections are still kept in the file, predictions still served."""
        from .hub import HubMirror

        store, repo = cls(path), os.environ.get(REPO_ENV_VAR)
        if repo:
            try:
                store.mirror = HubMirror(repo, store.path.parent / "hub-mirror")
            except EmotionCoreError as exc:
                logger.warning("%s Corrections are kept in %s only.", exc, store.path)
        return store

    @classmethod
    def open(cls, path: str | Path | None = None) -> "FeedbackStore":
        """The store at `path` (default: `default_path()`), its schema brought up to date now."""
        store = cls(path)
        store.migrate()
        return store

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in WAL mode that waits for other writers; sqlite's errors become one clear message."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)) as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                yield db
        except (sqlite3.Error, OSError) as exc:
            read_only = self.path.parent.is_dir() and not os.access(self.path.parent, os.W_OK)  # SQLite only says it cannot open it
            why = "its folder is read-only (SQLite writes its log beside it)" if read_only else exc
            raise EmotionCoreError(f"The feedback store {self.path} cannot be written: {why}. Predictions still work; "
                                   f"set {DB_ENV_VAR} to a writable file, or {SWITCH_ENV_VAR}=off.") from None

    def migrate(self) -> None:
        """Bring the file's schema up to date now (the first save would)."""
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            self.bring_up_to_date(db)
            db.execute("COMMIT")

    def bring_up_to_date(self, db: sqlite3.Connection) -> None:
        """Run the migrations this file has not had, inside the caller's write transaction, so that two processes
        starting at once take turns, and a file replaced while an app runs (archived, deleted) is made anew."""
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise newer_schema(self.path, version)
        if version == 0 and (tables := table_names(db)):
            raise EmotionCoreError(f"{self.path} is not a feedback store: it holds other tables ({', '.join(tables)}). "
                                   f"Name another file (--db, or {DB_ENV_VAR}).")
        for script in MIGRATIONS[version:]:
            for statement in script.split(";"):
                db.execute(statement)
        if version < SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def save(self, correction: Correction) -> bool:
        """Store one correction. One with the key and text of a stored one takes its place when its answer differs
        (the person changed their mind: their last answer counts); False when nothing changed (a form sent twice).
        A key already used for another text is refused (KeyTaken)."""
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            self.bring_up_to_date(db)
            saved = db.execute(UPSERT, values(correction)).rowcount == 1
            taken = not saved and key_taken(db, correction)
            db.execute("COMMIT")
        if taken:
            raise KeyTaken("This correction's key belongs to another text: send a new key, or none.")
        if saved and self.mirror is not None:
            try:
                self.mirror.append(asdict(correction))
            except OSError as exc:  # the file has it; the Hub copy misses this one
                logger.warning("Could not add a correction to the Hub copy: %s", exc)
        return saved

    def merge(self, corrections: list[Correction]) -> tuple[int, int]:
        """Add corrections kept elsewhere (a Space's, from its Hub repo) in one transaction: how many changed the store,
        and how many were passed over because their key is stored with another text (a client that reused a key).

        Merging the same ones again changes nothing: one with a key takes the place of the stored one of that key and
        text when it is as new or newer (the person's last answer counts, whatever the order they come in); one
        without a key is added unless the same one, made at the same time, is stored.
        """
        latest = {}  # each key and text's last answer; its time says which, a file's own order where two share one
        for i, correction in enumerate(sorted(corrections, key=lambda c: c.created_at)):
            latest[(correction.key, correction.text) if correction.key is not None else i] = correction
        changed = taken = 0
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            self.bring_up_to_date(db)
            for correction in latest.values():
                if correction.key is None and db.execute(
                        "SELECT 1 FROM corrections WHERE key IS NULL AND text = ? AND corrected = ? AND source = ? "
                        "AND created_at = ?", (correction.text, correction.corrected, correction.source,
                                               correction.created_at)).fetchone():
                    continue
                if db.execute(f"{UPSERT} AND created_at <= excluded.created_at", values(correction)).rowcount:
                    changed += 1
                elif key_taken(db, correction):
                    taken += 1
            db.execute("COMMIT")
        return changed, taken

    def rows(self) -> list[Correction]:
        """Every correction, oldest first (the schema brought up to date first, in the same transaction)."""
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            self.bring_up_to_date(db)
            found = read_corrections(db)
            db.execute("COMMIT")
        return found


def values(correction: Correction) -> list:
    """A correction's values in the order of COLUMNS, as the table keeps them."""
    row = {**asdict(correction), "probabilities": json.dumps(correction.probabilities)}
    return [row[c] for c in COLUMNS]


def key_taken(db: sqlite3.Connection, correction: Correction) -> bool:
    """True when the correction's key is stored with another text."""
    return db.execute("SELECT 1 FROM corrections WHERE key = ? AND text != ?",
                      (correction.key, correction.text)).fetchone() is not None


class KeyTaken(EmotionCoreError):
    """A correction whose key was stored with another text: the client reused a key."""


def table_names(db: sqlite3.Connection) -> list[str]:
    """The tables in a SQLite file, by name."""
    return [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]


def read_corrections(db: sqlite3.Connection) -> list[Correction]:
    """Every correction in the store, oldest first; a column an older schema has not got yet (key) is None, so
    that a file is read as it is, never migrated to be read."""
    present = {row[1] for row in db.execute("PRAGMA table_info(corrections)")}
    columns = [c for c in COLUMNS if c in present]
    found = db.execute(f"SELECT {', '.join(columns)} FROM corrections ORDER BY id").fetchall()
    return [Correction(**{**dict(zip(columns, row)), "probabilities": json.loads(row[columns.index("probabilities")])})
            for row in found]


def read_store(path: Path) -> list[Correction]:
    """Every correction in the file, read without writing to it (stats and export need no write access), whatever
    its schema's version up to this one. EmotionCoreError when it is no feedback store."""
    if not path.is_file():
        raise EmotionCoreError(f"No corrections file at {path}: pass --db, or set {DB_ENV_VAR}.")
    try:
        with closing(read_only(path)) as db:
            version, tables = db.execute("PRAGMA user_version").fetchone()[0], table_names(db)
            if "corrections" not in tables:
                raise EmotionCoreError(f"{path} is not a feedback store (it holds "
                                       f"{'the tables ' + ', '.join(tables) if tables else 'no table'}).")
            if version > SCHEMA_VERSION:
                raise newer_schema(path, version)
            return read_corrections(db)
    except sqlite3.Error as exc:
        raise EmotionCoreError(f"The feedback store {path} cannot be read: {exc}.") from None


def read_only(path: Path) -> sqlite3.Connection:
    """A connection that reads the store beside its writers and never writes to it. In a folder this process may not
    write (a copy on a read-only disk), SQLite cannot make the reader's index beside it: then the file is read as it
    is, which is safe only because no app can be writing there either."""
    uri = path.resolve().as_uri()
    try:
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        db.execute("PRAGMA user_version")
        return db
    except sqlite3.OperationalError:
        if os.access(path.parent, os.W_OK) or Path(f"{path}-wal").exists():
            raise
        return sqlite3.connect(f"{uri}?immutable=1", uri=True)


def newer_schema(path: Path, version: int) -> EmotionCoreError:
    """The error for a store written by a newer release, which this one must not change."""
    return EmotionCoreError(f"The feedback store {path} has schema version {version}, newer than this version of the "
                            f"package knows ({SCHEMA_VERSION}): upgrade emotion-core.")


def check_exports(store: Path, *outputs: Path | None) -> None:
    """Refuse an export that would overwrite the store (or its write-ahead files) or another output of the same run."""
    files, written = {Path(f"{store}{end}").resolve() for end in ("", "-wal", "-shm", "-journal")}, set()
    for output in filter(None, outputs):
        if output.resolve() in files | written:
            raise EmotionCoreError(f"{output} would overwrite {'the store' if output.resolve() in files else 'the other export'}: "
                                   "write it to another file.")
        written.add(output.resolve())


def correction_for(classifier, text: str, corrected: str, source: str, key: str | None = None,
                   limit: int = MAX_TEXT_CHARS) -> Correction:
    """What is stored when a person corrects the model on `text`: the model's own answer, run again here (never
    taken from the client), beside theirs; refused when the text or the label is not one the store should keep."""
    found = Correction(text=text, model=classifier.name, model_hash=weights_hash(classifier.folder), predicted="",
                       probabilities={}, corrected=corrected, source=source, key=key)
    found.check(classifier.labels, limit)
    prediction = classifier.predict(text)
    if prediction.message:
        raise EmotionCoreError(f"{prediction.message} Corrections are kept for texts the model reads.")
    found.probabilities, found.predicted = dict(prediction), prediction.label
    return found


def stats(rows: list[Correction]) -> dict:
    """How many corrections, per corrected label, and per (predicted, corrected) pair: where the model is wrong."""
    return {"rows": len(rows), "corrected": Counter(r.corrected for r in rows),
            "predicted_as": Counter(f"{r.predicted} -> {r.corrected}" for r in rows)}


def corrected_texts(path: Path) -> dict[str, str]:
    """Each text the store at `path` holds a correction of, with its last corrected label: what a review queue leaves
    for last, so that a file queued again asks only for the rest. No file yet: none."""
    return {row.text: row.corrected for row in read_store(path)} if path.is_file() else {}


def read_lines(paths: list[Path]) -> tuple[list[Correction], int]:
    """The corrections in JSON-lines files as `hub.HubMirror` writes them, and how many lines were not one."""
    found, bad = [], 0
    for path in paths:
        for line in path.read_bytes().splitlines():
            try:
                found.append(parse_line(line))
            except (ValueError, TypeError, KeyError, EmotionCoreError):
                bad += bool(line.strip())
    return found, bad


def parse_line(line: bytes) -> Correction:
    """One correction from a line of JSON, checked as the store checks what it keeps (its label is the one the model
    had where it was made), its time in UTC; ValueError (or KeyError, TypeError) when it is not one."""
    row = json.loads(line.decode("utf-8"))
    if not all(isinstance(row[c], str) for c in COLUMNS if c not in ("key", "probabilities")):
        raise TypeError("a field that must be text is not")
    if not (row["key"] is None or isinstance(row["key"], str)) or not isinstance(row["probabilities"], dict):
        raise TypeError("a key that is not text, or probabilities that are not a mapping")
    made = datetime.fromisoformat(row["created_at"]).astimezone(UTC)  # as the apps write it, so that times compare as text
    at = made.isoformat(timespec="milliseconds" if made.microsecond else "seconds")
    correction = Correction(**{**{c: row[c] for c in COLUMNS}, "created_at": at})
    correction.check([correction.corrected])
    return correction


def export(rows: list[Correction], path: Path) -> Path:
    """The corrections as a CSV that `emotion train`, a mix file and a sweep read as a source (`text`, `label`),
    with where each came from beside them; written atomically."""
    frame = pd.DataFrame({"text": [r.text for r in rows], "label": [r.corrected for r in rows],
                          "predicted": [r.predicted for r in rows], "model": [r.model for r in rows],
                          "model_hash": [r.model_hash for r in rows], "source": [r.source for r in rows],
                          "created_at": [r.created_at for r in rows]})
    return write_with(Path(path), lambda partial: frame.to_csv(partial, index=False))


HELD_BACK = 0.2  # the share of corrections a retrained model is judged on, never trained on
MAX_TEST_DROP = 0.005  # how much worse (accuracy) a replacement may be on each fixed test split


def split_corrections(rows: list[Correction], held_back: float = HELD_BACK) -> tuple[list, list]:
    """The corrections to train on, and those held back to judge the new model on, split by a hash of the text:
    a text corrected twice lands on one side, and a text held back once stays held back in every later export."""
    def held(row: Correction) -> bool:
        return int(hashlib.sha256(" ".join(row.text.lower().split()).encode()).hexdigest()[:8], 16) < held_back * 2**32
    return [r for r in rows if not held(r)], [r for r in rows if held(r)]


def gate(current, candidate, held_back: Path) -> dict:
    """Whether `candidate` should replace `current`: better on the held-back corrections, and at most
    MAX_TEST_DROP worse on each fixed test split the current model was measured on. Both are Classifiers."""
    from .data import read_file
    from .evaluation import eval_data

    texts, labels = read_file(held_back)
    test = eval_data(current, None, splits=("test",), raw=True).get("test")  # each model normalises them its own way
    if not texts or test is None:
        raise EmotionCoreError(f"The gate needs held-back corrections ({held_back} has {len(texts)}) and a test split in "
                               "the current model's data.")
    figures = {"held-back corrections": (texts, labels)}
    for text, truth, source in zip(*test):
        split = figures.setdefault(f"{source} test", ([], []))
        split[0].append(text)
        split[1].append(current.labels[truth])
    rows = [{"split": name, "texts": len(t), "current": accuracy(current, t, y), "candidate": accuracy(candidate, t, y)}
            for name, (t, y) in figures.items()]
    better = rows[0]["candidate"] > rows[0]["current"]
    kept = all(r["candidate"] >= r["current"] - MAX_TEST_DROP for r in rows[1:])
    return {"replace": better and kept, "better_on_corrections": better, "test_splits_kept": kept, "rows": rows}


def accuracy(classifier, texts: list[str], labels: list[str]) -> float:
    """The share of `texts` (never none: `gate` refuses an empty held-back file) the classifier labels as `labels` says."""
    return float(np.mean([next(iter(p), None) == y for p, y in zip(classifier.predict_batch(texts), labels)]))


def gate_report(decision: dict, current: str, candidate: str) -> str:
    """The gate's decision as Markdown: the verdict first, then each split's accuracy for both models."""
    verdict = "Replace" if decision["replace"] else "Keep the current model"
    why = [] if decision["better_on_corrections"] else ["the candidate is not better on the held-back corrections"]
    why += [] if decision["test_splits_kept"] else [f"the candidate is more than {MAX_TEST_DROP:.1%} worse on a test split"]
    lines = [f"# Retraining gate: {verdict}", "", f"Current: `{current}` · candidate: `{candidate}`"]
    lines += [""] + ([f"Not replaced: {'; '.join(why)}."] if why else ["The candidate is better on the held-back corrections "
                                                                        "and keeps every test split."])
    lines += ["", "| split | texts | current | candidate | change |", "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['split']} | {r['texts']:,} | {r['current']:.2%} | {r['candidate']:.2%} | {r['candidate'] - r['current']:+.2%} |"
              for r in decision["rows"]]
    return "\n".join(lines) + "\n\nNothing is replaced by this report: copy the candidate into place yourself.\n"
