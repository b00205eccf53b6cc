"""Score a table of any size on Apache Spark: your own DataFrame, or a CSV, Parquet or JSON Lines input to a folder.

    $ emotion score tickets.parquet -o scored.parquet --on spark                     # a local Spark, every core
    $ emotion score 's3a://bucket/tickets/*.parquet' -o scored.parquet --on spark --address spark://head:7077

    >>> from emotion_core.spark_scoring import score_dataframe
    >>> scored = score_dataframe(spark.table("tickets"), text_column="body")   # a DataFrame, nothing run yet

Each Python worker runs `batch.BatchScorer`, the per-batch work of `score`, through `mapInPandas`,
so the answers are `score`'s; the model is loaded once per worker process, which Spark reuses
from task to task. The model reaches the executors as a folder path every node can read, or a
Hub id. A file input's output is written under a temporary name beside OUTPUT by Spark's own
commit protocol and renamed into place when every row is in it.
"""

import functools
import itertools
import logging
import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from .batch import BatchScorer, ScoreSummary, find_text_column, replaced_columns
from .clusters import (
    ROW_ID,
    check_csv,
    check_id_column,
    check_output,
    check_reachable,
    input_format,
    model_labels,
    output_format,
    scores_folder,
    summarize,
    worker_model,
)
from .errors import EmotionCoreError
from .language import any_language_setting

logger = logging.getLogger(__name__)

MASTER_ENV_VAR = "SPARK_MASTER"
POSITION_BITS = 33  # monotonically_increasing_id(): the partition's number above these bits, the row's place in it below


def score_batches(scorer: BatchScorer, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """`mapInPandas`'s function: each Arrow batch of a partition through `score`'s per-batch work."""
    for batch in batches:
        yield scorer(batch)


def score_dataframe(frame, model: str | None = None, text_column: str | None = None, engine: str | None = None,
                    any_language: bool | None = None):
    """`frame` with the columns `score` adds (`language`, `emotion`, `confidence`, one `prob_<label>` per label),
    lazily.

    Every input column is kept (prediction columns already there are replaced); empty texts get
    nulls, and so do the emotion columns of texts not in English (unless `any_language`; default
    $EMOTION_ANY_LANGUAGE). The text column is chosen as `score` chooses it, from the first rows.
    """
    return add_scores(frame, find_text_column(first_rows(frame), text_column), *resolved(model), engine,
                      any_language_setting() if any_language is None else any_language)


def resolved(model: str | None) -> tuple[str, list[str]]:
    """The model as the executors will load it (an absolute folder, or a Hub id) and its labels."""
    model = worker_model(model)
    return model, model_labels(model)


def add_scores(frame, column: str, model: str, labels: list[str], engine: str | None = None, any_language: bool = False):
    """`score_dataframe` once the text column, the model and its labels are known."""
    from pyspark.sql.types import FloatType, StringType, StructField, StructType

    added = [StructField("language", StringType()), StructField("emotion", StringType()), StructField("confidence", FloatType()),
             *(StructField(f"prob_{label}", FloatType()) for label in labels)]
    replaced = replaced_columns(frame.columns, column, labels, sentences=False, explain=False)  # as score_frame drops them
    kept = [f for f in frame.schema.fields if f.name not in replaced]
    scorer = BatchScorer(model, column, engine, any_language)
    with warnings.catch_warnings():  # PySpark 4 warns on pandas 3; the tests check this path gives `score`'s answers on it
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
        return frame.mapInPandas(functools.partial(score_batches, scorer), StructType(kept + added))


def first_rows(frame, name: str = "The DataFrame", rows: int = 200) -> pd.DataFrame:
    """The first rows as pandas, to choose the text column by; an input with no rows is refused."""
    head = pd.DataFrame([row.asDict() for row in frame.limit(rows).collect()], columns=frame.columns)
    if head.empty:
        raise EmotionCoreError(f"{name} has no rows to score.")
    return head


def with_row_numbers(frame):
    """`frame` with ROW_ID, each row's place in the order Spark reads the input, from 0.

    `monotonically_increasing_id` numbers rows within each partition; one small counting job
    gives each partition's first row, so the numbers are consecutive and no data is moved. (For a
    folder of files, Spark's order is its own: largest files first.)
    """
    from pyspark.sql import functions as F

    frame = frame.withColumn(ROW_ID, F.monotonically_increasing_id())
    partition = F.shiftright(F.col(ROW_ID), POSITION_BITS).cast("int")
    counts = {row["partition"]: row["count"] for row in frame.groupBy(partition.alias("partition")).count().collect()}
    starts = list(itertools.accumulate(counts.get(p, 0) for p in range(max(counts) + 1)))
    first = F.array(*(F.lit(start - counts.get(p, 0)) for p, start in enumerate(starts)))
    return frame.withColumn(ROW_ID, first[partition] + F.col(ROW_ID).bitwiseAND((1 << POSITION_BITS) - 1))


def spread(frame, cores: int):
    """`frame` over at least `cores` partitions that hold rows, so that every core scores: one file is often a
    single such partition, however many splits Spark makes of it (a Parquet row group is read by one)."""
    from pyspark.sql import functions as F

    filled = frame.groupBy(F.spark_partition_id()).count().count()
    return frame.repartition(cores) if filled < cores else frame


def session(master: str | None):
    """The SparkSession running in this process, else a new one on `master` (or $SPARK_MASTER, else every local
    core), and whether it is new (then the caller stops it)."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if SparkSession.getActiveSession() is not None or SparkContext._active_spark_context is not None:
        if master:
            logger.warning("Spark is running in this process already: scoring there, not on %s", master)
        return SparkSession.builder.getOrCreate(), False
    master = master or os.environ.get(MASTER_ENV_VAR) or "local[*]"
    if master.startswith("spark://"):
        check_any_reachable(master.removeprefix("spark://").split(","))
    builder = SparkSession.builder.master(master).appName("emotion score").config("spark.ui.enabled", "false")
    local = master.startswith("local")
    if local:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the workers' Python: this one, which has the package
        builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # py4j and the JVM raise their own kinds; all mean the same to the user
        java = "" if shutil.which("java") else " Spark needs Java 17 or 21: apt-get install openjdk-17-jre-headless."
        raise EmotionCoreError(f"Could not start Spark on {master}: {first_line(exc)}{java}") from None
    spark.sparkContext.setLogLevel("ERROR" if local else "WARN")  # on a cluster, "no resources accepted" shows
    return spark, True


def check_any_reachable(addresses: list[str]) -> None:
    """Refuse a master list none of which answers (a standby may be down)."""
    for address in addresses[:-1]:
        try:
            return check_reachable(address, "Spark")
        except EmotionCoreError:
            continue
    check_reachable(addresses[-1], "Spark")


def first_line(exc: Exception) -> str:
    """The line of a Spark, Py4J or Python worker error that says what went wrong."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    said = [line for line in lines if "Exception:" in line or "Error:" in line]
    return (said[-1] if "Python worker" in lines[0] and said else said[0] if said else lines[0]).removeprefix(": ")


@contextmanager
def clear_spark_errors(what: str):
    """Turn what Spark raises while it reads, counts or writes into one message naming `what`."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    try:
        yield
    except (PySparkException, Py4JJavaError) as exc:
        raise EmotionCoreError(f"Could not score {what}: {first_line(exc)}") from None


def read(spark, path: str):
    """The input as a Spark DataFrame, CSV cells as strings as `score` reads them (quoted line breaks and all),
    refusing a malformed row rather than filling it with nulls; a clear message when it cannot be read."""
    from pyspark.errors import AnalysisException

    kind = input_format(path)
    reader = spark.read.option("mode", "FAILFAST")
    if kind == "csv":
        reader = reader.option("header", True).option("escape", '"').option("multiLine", True)
    try:
        return getattr(reader, kind)(path)
    except AnalysisException as exc:
        raise EmotionCoreError(f"Could not read {path}: {first_line(exc)}") from None


def score_on_spark(input_path: str, output_path: str | Path, model: str | None = None, text_column: str | None = None,
                   engine: str | None = None, id_column: str | None = None, address: str | None = None,
                   any_language: bool | None = None) -> ScoreSummary:
    """Score every row of `input_path` on Spark into the folder `output_path` (Parquet, or CSV for a .csv name).

    Every input column is kept, with `id_column` (or ROW_ID, added) to tie each output row to its
    input row. Runs on the SparkSession of this process, else on a new one on `address` (a master
    URL) that stops when the job has. `any_language`: as `score_dataframe`.
    """
    out = Path(output_path)
    if input_format(str(input_path)) == "csv":  # refused before Spark starts, as a model folder that cannot be read is
        check_csv(str(input_path))
    check_output(out)
    model, labels = resolved(model)
    spark, started = session(address)
    try:
        with clear_spark_errors(str(input_path)):
            frame = read(spark, str(input_path))
            column = find_text_column(first_rows(frame, str(input_path)), text_column)
            frame = spread(identified(frame, id_column, str(input_path)), spark.sparkContext.defaultParallelism)
            with scores_folder(out) as partial:
                any_language = any_language_setting() if any_language is None else any_language
                write(add_scores(frame, column, model, labels, engine, any_language), partial, output_format(out))
        summary = summarize(out, column)
        logger.info("%s", summary)
        return summary
    finally:
        if started:
            spark.stop()


def identified(frame, id_column: str | None, name: str):
    """`frame` with the column that ties each output row to its input row: `id_column`, else ROW_ID, added."""
    check_id_column(frame.columns, id_column, name)
    return frame if id_column else with_row_numbers(frame)


def write(scored, folder: Path, kind: str) -> None:
    """Part files of `scored` in `folder` (a local path: no cluster default file system in between), texts as they were."""
    writer = scored.write.mode("overwrite")
    if kind == "csv":
        writer = writer.option("header", True).option("escape", '"')
        writer = writer.option("ignoreLeadingWhiteSpace", False).option("ignoreTrailingWhiteSpace", False)
    getattr(writer, kind)(folder.as_uri())
