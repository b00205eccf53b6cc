"""What scoring on a cluster, Ray or Spark, shares: the input's format, the id column, reaching the cluster,
the output folder and the closing summary."""

import glob
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .batch import ScoreSummary, clear_csv_errors, read_through
from .config import resolve_model
from .errors import EmotionCoreError
from .model_folder import check_model_folder, check_replaceable, new_folder

FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "json", ".json": "json"}
ROW_ID = "row"  # the id column added when the input has none: the row's number in the input, from 0
SCORES_MARK = "_EMOTION_SCORES"  # in each output folder of scores; Ray, Spark and pyarrow pass over "_" files


def input_format(path: str) -> str:
    """`csv`, `parquet` or `json` (lines) for a file, a glob or a folder: by the name's suffix, else by its files' suffix."""
    suffix = Path(path.rstrip("/")).suffix.lower()
    if suffix not in FORMATS and Path(path).is_dir():
        suffix = next((p.suffix.lower() for p in sorted(Path(path).iterdir()) if p.suffix.lower() in FORMATS), "")
    if suffix not in FORMATS:
        raise EmotionCoreError(f"Cannot tell the format of {path}: name a .csv, .parquet or .jsonl file, "
                               "or a folder of them.")
    return FORMATS[suffix]


def worker_model(model: str | None) -> str:
    """The model as the workers load it: a folder as an absolute path (their working folder is not ours), checked
    here so that a broken one is refused with a message, not a traceback from inside a worker; or a Hub id."""
    model = resolve_model(model)
    if Path(model).is_dir():
        check_model_folder(Path(model))
    return str(Path(model).resolve()) if Path(model).exists() else model


def local_csv_files(path: str) -> list[Path]:
    """The CSV files on this machine that `path` (a file, a folder or a glob) names; none for a URL."""
    if Path(path).is_file():
        return [Path(path)]
    if Path(path).is_dir():
        return sorted(Path(path).glob("*.csv"))
    return sorted(Path(p) for p in glob.glob(path)) if "://" not in path else []


def check_csv(path: str) -> None:
    """Read the CSV files through as `score` reads them (UTF-8, each quote closed), so that Ray and Spark refuse
    what `score` refuses: both took a file cut off inside a quote, and Spark another encoding, without a word."""
    for file in local_csv_files(path):
        with clear_csv_errors(file, "utf-8-sig"):
            read_through(file, "utf-8-sig")


def model_labels(model: str) -> list[str]:
    """The model's labels in its output order, from its config alone (the model itself loads on the workers)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model)
    except OSError as exc:  # a Hub id not found, or the Hub not reachable
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise EmotionCoreError(f"Could not read the configuration of the model {model}: {reason}") from None
    return [config.id2label[i] for i in range(config.num_labels)]


def is_scores_folder(path: Path) -> bool:
    """A folder of part files that `score --on ray/spark` wrote."""
    return (path / SCORES_MARK).is_file()


def check_output(out: Path) -> None:
    """Refuse, before a job starts, an output folder that holds something else than scores written here."""
    check_replaceable(out, is_scores_folder, "a folder of scores")


@contextmanager
def scores_folder(out: Path) -> Iterator[Path]:
    """A temporary folder for the job's part files, marked and renamed into place at the end (`new_folder`)."""
    with new_folder(out, ours=is_scores_folder, what="a folder of scores") as partial:
        yield partial
        (partial / SCORES_MARK).touch()


def output_format(out: Path) -> str:
    """CSV part files for an output named `.csv`, Parquet for any other name."""
    return "csv" if out.suffix.lower() == ".csv" else "parquet"


def check_id_column(columns, id_column: str | None, name: str) -> None:
    """Refuse an id column the input lacks, and, when none is named, an input with a column named ROW_ID already
    (the row numbers would take its place)."""
    if id_column and id_column not in columns:
        raise EmotionCoreError(f"{name} has no column '{id_column}' (found: {', '.join(map(str, columns))}).")
    if not id_column and ROW_ID in columns:
        raise EmotionCoreError(f"{name} has a column '{ROW_ID}' already: pass --id-column {ROW_ID} (or another id column).")


def check_reachable(address: str, cluster: str, timeout_s: float = 5) -> None:
    """Refuse a HOST:PORT nobody answers at within seconds: Ray and Spark themselves keep retrying for minutes."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s).close()
    except ValueError:
        raise EmotionCoreError(f"The {cluster} address {address} is not HOST:PORT.") from None
    except OSError as exc:
        raise EmotionCoreError(f"Could not reach the {cluster} cluster at {address}: {exc.strerror or exc}. Check --address, "
                               f"or leave it unset to start a local {cluster}.") from None


def summarize(out: Path, column: str) -> ScoreSummary:
    """Rows, empty texts, labels and texts not read of a written output folder, from its `language` and `emotion`
    columns alone, read here batch by batch: the folder is on a disk this machine shares with the cluster, and two
    columns read in seconds."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    from pyarrow import csv

    read = pa.schema([("language", pa.string()), ("emotion", pa.string())])
    kind = "parquet"
    if output_format(out) == "csv":
        kind = ds.CsvFileFormat(parse_options=csv.ParseOptions(newlines_in_values=True),
                                convert_options=csv.ConvertOptions(column_types=dict(zip(read.names, read.types))))
    summary = ScoreSummary(out, column)
    # Part files only ("." and "_" files are left out); both read as text even in a part whose texts were all empty.
    for batch in ds.dataset(out, format=kind, schema=read).to_batches(columns=read.names):
        frame = batch.to_pandas().replace("", None)
        unread = frame["emotion"].isna()
        summary.label_counts.update(frame["emotion"].dropna())
        summary.languages.update(frame["language"][unread].dropna())
        summary.skipped += int((unread & frame["language"].isna()).sum())
        summary.rows += len(frame)
    return summary
