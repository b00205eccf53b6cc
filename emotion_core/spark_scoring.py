"""Score a table of any size on Apache Spark: your own DataFrame, or a CSV, Parquet or JSON Lines input to a folder.

    $ emotion score tickets.parquet -o scored.parquet --on spark                     # a local Spark, every core
    $ emotion score 's3a://bucket/tickets/' -o scored.parquet --on spark --address spark://head:7077

    >>> from emotion_core.spark_scoring import score_dataframe
    >>> scored = score_dataframe(spark.table("tickets"), text_column="body")   # a DataFrame, nothing run yet

Each Python worker runs `batch.BatchScorer`, the per-batch work of `score`, through `mapInPandas`,
so the answers are `score`'s; the model is loaded once per worker process, which Spark reuses
from task to task. The model reaches the executors as a folder path every node can read, or a
Hub id. A file input's output is written under a temporary name beside OUTPUT by Spark's own
commit protocol and renamed into place when every row is in it.
"""

import functools
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from .batch import BatchScorer, ScoreSummary, find_text_column, prediction_columns
from .clusters import ROW_ID, check_reachable, input_format, output_format, summarize
from .config import resolve_model
from .errors import EmotionCoreError
from .model_folder import check_model_folder, new_folder

logger = logging.getLogger(__name__)

MASTER_ENV_VAR = "SPARK_MASTER"
POSITION_BITS = 33  # monotonically_increasing_id(): the partition's number above these bits, the row's place in it below


def model_labels(model: str) -> list[str]:
    """The model's labels in its output order, from its config alone (the model itself loads on the executors)."""
    from transformers import AutoConfig

    if Path(model).is_dir():
        check_model_folder(Path(model))  # refused here, not as a traceback from inside the executors
    config = AutoConfig.from_pretrained(model)
    return [config.id2label[i] for i in range(config.num_labels)]


def score_batches(scorer: BatchScorer, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """`mapInPandas`'s function: each Arrow batch of a partition through `score`'s per-batch work."""
    for batch in batches:
        yield scorer(batch)


def score_dataframe(frame, model: str | None = None, text_column: str | None = None, engine: str | None = None):
    """`frame` with the columns `score` adds (`emotion`, `confidence`, one `prob_<label>` per label), lazily.

    Every input column is kept (prediction columns already there are replaced); empty texts get
    nulls. The text column is chosen as `score` chooses it, from the first rows.
    """
    return add_scores(frame, find_text_column(first_rows(frame), text_column), model, engine)


def add_scores(frame, column: str, model: str | None = None, engine: str | None = None):
    """`score_dataframe` once the text column is known."""
    from pyspark.sql.types import FloatType, StringType, StructField, StructType

    model = resolve_model(model)
    if Path(model).exists():
        model = str(Path(model).resolve())  # the executors' working folder is not ours
    labels = model_labels(model)
    added = [StructField("emotion", StringType()), StructField("confidence", FloatType()),
             *(StructField(f"prob_{label}", FloatType()) for label in labels)]
    kept = [f for f in frame.schema.fields if f.name not in prediction_columns(labels)]
    scorer = BatchScorer(model, column, engine)
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
    gives each partition's first row, so the numbers are consecutive and no data is moved.
    """
    from pyspark.sql import functions as F

    position = F.monotonically_increasing_id()
    frame = frame.withColumn(ROW_ID, position)
    partition = F.shiftright(F.col(ROW_ID), POSITION_BITS)
    starts, total = [], 0
    for row in frame.groupBy(partition.alias("partition")).count().orderBy("partition").collect():
        starts += [F.lit(row["partition"]), F.lit(total)]
        total += row["count"]
    return frame.withColumn(ROW_ID, F.create_map(*starts)[partition] + F.col(ROW_ID).bitwiseAND((1 << POSITION_BITS) - 1))


def session(master: str | None):
    """The active SparkSession, else a new one on `master` (or $SPARK_MASTER, else every local core), and whether
    it is new (then the caller stops it)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    master = master or os.environ.get(MASTER_ENV_VAR) or "local[*]"
    if master.startswith("spark://"):
        for address in master.removeprefix("spark://").split(","):
            check_reachable(address, "Spark")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the workers' Python: this one, which has the package
    builder = SparkSession.builder.master(master).appName("emotion score").config("spark.ui.enabled", "false")
    if master.startswith("local"):
        builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # py4j and the JVM raise their own kinds; all mean the same to the user
        raise EmotionCoreError(f"Could not start Spark on {master}: {str(exc).strip().splitlines()[0]} "
                               "(Spark needs Java 17 or 21: apt-get install openjdk-17-jre-headless, or bash setup.sh --dev.)") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark, True


def read(spark, path: str):
    """The input as a Spark DataFrame, CSV cells as strings as `score` reads them; a clear message when it cannot be read."""
    from pyspark.errors import AnalysisException

    kind = input_format(path)
    reader = spark.read.option("header", True).option("escape", '"') if kind == "csv" else spark.read
    try:
        return getattr(reader, kind)(path)
    except AnalysisException as exc:
        raise EmotionCoreError(f"Could not read {path}: {str(exc).strip().splitlines()[0]}") from None


def score_on_spark(input_path: str, output_path: str | Path, model: str | None = None, text_column: str | None = None,
                   engine: str | None = None, id_column: str | None = None, address: str | None = None) -> ScoreSummary:
    """Score every row of `input_path` on Spark into the folder `output_path` (Parquet, or CSV for a .csv name).

    Every input column is kept, with `id_column` (or ROW_ID, added) to tie each output row to its
    input row. Runs on the active SparkSession, else on a new one on `address` (a master URL) that
    stops when the job has.
    """
    out = Path(output_path)
    spark, started = session(address)
    try:
        frame = read(spark, str(input_path))
        column = find_text_column(first_rows(frame, str(input_path)), text_column)
        if id_column and id_column not in frame.columns:
            raise EmotionCoreError(f"{input_path} has no column '{id_column}' (found: {', '.join(frame.columns)}).")
        if not id_column:
            frame = with_row_numbers(frame)
        cores = spark.sparkContext.defaultParallelism
        if frame.rdd.getNumPartitions() < cores:  # a single file is often one partition: give every core a share
            frame = frame.repartition(cores)
        scored = add_scores(frame, column, model, engine)
        with new_folder(out) as partial:
            writer = scored.write.mode("overwrite")
            if output_format(out) == "csv":
                writer.option("header", True).option("escape", '"').csv(str(partial))
            else:
                writer.parquet(str(partial))
        summary = summarize(out, column)
        logger.info("%s", summary)
        return summary
    finally:
        if started:
            spark.stop()
