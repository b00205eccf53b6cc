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
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .config import MAX_TEXT_CHARS
from .errors import EmotionCoreError

DB_ENV_VAR = "EMOTION_FEEDBACK_DB"
SWITCH_ENV_VAR = "EMOTION_FEEDBACK"  # "off" turns the feature off in both apps
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
    weights = folder / "model.safetensors" if folder else None
    if weights is None or not weights.is_file():
        return "unknown"
    digest = hashlib.sha256()
    with open(weights, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


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
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def check(self, labels: list[str]) -> None:
        """Refuse what the store should not keep: an empty or oversized text, a label the model does not have."""
        if not isinstance(self.text, str) or not self.text.strip():
            raise EmotionCoreError("A correction needs the text it corrects.")
        if len(self.text) > MAX_TEXT_CHARS:
            raise EmotionCoreError(f"Text is too long: {len(self.text):,} characters (the limit is {MAX_TEXT_CHARS:,}).")
        if self.corrected not in labels:
            raise EmotionCoreError(f"Unknown label {self.corrected!r}: the model's labels are {', '.join(labels)}.")


class FeedbackStore:
    """The corrections table in one SQLite file; every method opens its own connection, so any thread may call it.

    Creating one touches no file: the apps make theirs at start and serve predictions even when
    the file cannot be written; the first save brings the schema up to date, or says why not.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()
        self.migrated = False

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
            raise EmotionCoreError(f"The feedback store {self.path} cannot be written: {exc}. Predictions still work; "
                                   f"set {DB_ENV_VAR} to a writable file, or {SWITCH_ENV_VAR}=off.") from None

    def migrate(self) -> None:
        """Run the migrations this file has not had, in one transaction (two processes starting at once take turns)."""
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                db.execute("ROLLBACK")
                raise EmotionCoreError(f"The feedback store {self.path} has schema version {version}, newer than this "
                                       f"version of the package knows ({SCHEMA_VERSION}): upgrade emotion-core.")
            for script in MIGRATIONS[version:]:
                for statement in script.split(";"):
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT")
        self.migrated = True

    def save(self, correction: Correction) -> bool:
        """Store one correction; False when one with the same key is stored already (a form sent twice)."""
        if not self.migrated:
            self.migrate()
        row = asdict(correction)
        row["probabilities"] = json.dumps(row["probabilities"])
        with self.connect() as db:
            cursor = db.execute(f"INSERT OR IGNORE INTO corrections ({', '.join(COLUMNS)}) "
                                f"VALUES ({', '.join('?' * len(COLUMNS))})", [row[c] for c in COLUMNS])
            return cursor.rowcount == 1

    def rows(self) -> list[Correction]:
        """Every correction, oldest first."""
        if not self.migrated:
            self.migrate()
        with self.connect() as db:
            found = db.execute(f"SELECT {', '.join(COLUMNS)} FROM corrections ORDER BY id").fetchall()
        return [Correction(**{**dict(zip(COLUMNS, row)), "probabilities": json.loads(row[COLUMNS.index("probabilities")])})
                for row in found]


def correction_for(classifier, text: str, corrected: str, source: str, key: str | None = None) -> Correction:
    """What is stored when a person corrects the model on `text`: the model's own answer, run again here (never
    taken from the client), beside theirs; refused when the text or the label is not one the store should keep."""
    found = Correction(text=text, model=classifier.name, model_hash=weights_hash(classifier.folder), predicted="",
                       probabilities={}, corrected=corrected, source=source, key=key)
    found.check(classifier.labels)
    found.probabilities = classifier.predict(text)
    found.predicted = next(iter(found.probabilities))
    return found
