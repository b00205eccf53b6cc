"""Score a table of any size on Ray Data: read CSV, Parquet or JSON Lines, score in a pool of actors, write Parquet or CSV.

    $ emotion score tickets.parquet -o scored.parquet --on ray                 # a local Ray on this machine
    $ emotion score 's3://bucket/tickets/*.parquet' -o scored.parquet --on ray --address auto --actors 8

    >>> from emotion_core.ray_scoring import score_on_ray
    >>> score_on_ray("tickets.parquet", "scored.parquet", text_column="body")

Each actor runs `batch.BatchScorer`, the per-batch work of `score`, so the answers are `score`'s.
The output is a folder of part files, written under a temporary name beside OUTPUT and renamed
into place when every row is in it; it must be a path every node can write (one machine, or a
shared disk).
"""

import logging
import os
import re
import warnings
from pathlib import Path

from .batch import CHUNK_ROWS, BatchScorer, ScoreSummary, find_text_column, replaced_columns
from .clusters import (
    ROW_ID,
    check_csv,
    check_id_column,
    check_output,
    check_reachable,
    input_format,
    local_csv_files,
    model_labels,
    output_format,
    scores_folder,
    summarize,
    worker_model,
)
from .errors import EmotionCoreError
from .language import any_language_setting

logger = logging.getLogger(__name__)

READERS = {"csv": "read_csv", "parquet": "read_parquet", "json": "read_json"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the colours of Ray's task names in its messages
BATCH_ROWS = CHUNK_ROWS  # as `score` reads: smaller batches leave the engine's threads waiting more often


def connect(address: str | None) -> None:
    """Join the cluster at `address` (or $RAY_ADDRESS), else start a new local Ray on loopback (never one that
    another program started: `ray.init()` alone would join that)."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address and address != "auto":
        check_reachable(address.removeprefix("ray://"), "Ray")
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(address="local", include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        where = f"reach the Ray cluster at {address}" if address else "start a local Ray"
        raise EmotionCoreError(f"Could not {where}: {str(exc).strip().splitlines()[0]} "
                               "Check --address (or RAY_ADDRESS), or leave both unset to start a local Ray.") from None


def read(path: str):
    """The input as a Ray Dataset; a clear message when it cannot be read."""
    import ray

    kind = input_format(path)
    options = csv_options(path) if kind == "csv" else {}
    try:
        return getattr(ray.data, READERS[kind])(path, **options)
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise EmotionCoreError(f"Could not read {path}: {str(exc).strip().splitlines()[0]}") from None


def csv_options(path: str) -> dict:
    """pyarrow's CSV options that read cells as `score` does: every column a string (pyarrow would make "007"
    the number 7, and fail on a column of numbers with a word far down), quoted line breaks inside a text."""
    import pandas as pd
    import pyarrow as pa
    from pyarrow import csv

    files = local_csv_files(path)
    columns = pd.read_csv(files[0], nrows=0, encoding="utf-8-sig").columns if files else []
    return {"parse_options": csv.ParseOptions(newlines_in_values=True),
            "convert_options": csv.ConvertOptions(column_types={str(c): pa.string() for c in columns})}


def with_row_numbers(dataset):
    """The dataset with ROW_ID, each row's position in the input.

    Ray Data has no row index; zipping with a range of the same length gives one, as long as the
    run keeps the input's order (`preserve_order`, set here). Ray deprecates `zip` for its reliance
    on that order, which is why it is pinned below the release that removes it (requirements).
    """
    import ray

    ray.data.DataContext.get_current().execution_options.preserve_order = True
    numbers = ray.data.range(dataset.count()).rename_columns({"id": ROW_ID})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return dataset.zip(numbers)


def plan_actors(actors: int | None) -> tuple[int, int]:
    """How many actors, and threads for each: every CPU but one scores, the one left reads and writes.

    An actor holds its CPU for the whole job, so actors on every CPU would leave none for the reads
    that feed them, and the job would wait for ever. Ray gives each actor one thread per CPU it
    holds; its threads here are the node's CPUs shared among the actors, so that on a small
    machine the reading CPU scores too between reads.
    """
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1))
    actors = actors or max(1, cpus - 1)
    if actors >= cpus:
        raise EmotionCoreError(f"--actors {actors} would hold all {cpus} CPUs of the cluster and leave none to read "
                               f"the input: use at most {cpus - 1}." if cpus > 1 else
                               "The Ray cluster has one CPU: scoring there needs at least two (one reads, one scores).")
    nodes = max(1, len([node for node in ray.nodes() if node["Alive"]]))
    return actors, max(1, cpus // nodes // max(1, actors // nodes))


def score_on_ray(input_path: str, output_path: str | Path, model: str | None = None, text_column: str | None = None,
                 engine: str | None = None, id_column: str | None = None, address: str | None = None,
                 actors: int | None = None, batch_rows: int = BATCH_ROWS, any_language: bool | None = None) -> ScoreSummary:
    """Score every row of `input_path` on Ray into the folder `output_path` (Parquet, or CSV for a .csv name).

    Every input column is kept, with `id_column` (or ROW_ID, added) to tie each output row to its
    input row, then the columns `score` adds. `any_language`: read texts in every language, not only
    English (default: $EMOTION_ANY_LANGUAGE).
    """
    out = Path(output_path)
    check_output(out)
    if input_format(str(input_path)) == "csv":
        check_csv(str(input_path))
    model = worker_model(model)
    connect(address)
    from ray.exceptions import RayTaskError  # Ray is imported now: connect started it

    try:
        any_language = any_language_setting() if any_language is None else any_language
        return run_job(str(input_path), out, model, text_column, engine, id_column, actors, batch_rows, any_language)
    except RayTaskError as exc:  # what went wrong inside a task, in one line, not Ray's coloured task name
        cause = getattr(exc, "cause", None) or exc
        reason = ANSI.sub("", (str(cause).strip().splitlines() or [type(cause).__name__])[-1])
        raise EmotionCoreError(f"Could not score {input_path}: {reason}") from None


def run_job(input_path: str, out: Path, model: str, text_column: str | None, engine: str | None,
            id_column: str | None, actors: int | None, batch_rows: int, any_language: bool) -> ScoreSummary:
    """`score_on_ray`'s job, once the cluster is reached."""
    dataset = read(input_path)
    try:
        head = dataset.take_batch(200, batch_format="pandas")
    except ValueError as exc:  # Ray reads lazily: an empty or unreadable input shows here
        raise EmotionCoreError(f"Could not read {input_path}: {str(exc).strip().splitlines()[0]}") from None
    column = find_text_column(head, text_column)
    check_id_column(head.columns, id_column, input_path)
    replaced_columns(list(head.columns), column, model_labels(model), sentences=False, explain=False)  # refused here, not in a worker
    if not id_column:
        dataset = with_row_numbers(dataset)
    actors, threads = plan_actors(actors)
    dataset = dataset.repartition(target_num_rows_per_block=batch_rows)  # a one-file input is one block: split it among the actors
    scored = dataset.map_batches(BatchScorer, fn_constructor_kwargs={"model": model, "text_column": column, "engine": engine,
                                                                     "any_language": any_language},
                                 batch_format="pandas", batch_size=batch_rows, concurrency=actors, num_cpus=1,
                                 runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads)}})
    with scores_folder(out) as partial:
        (scored.write_csv if output_format(out) == "csv" else scored.write_parquet)(str(partial))
    summary = summarize(out, column)
    logger.info("%s", summary)
    return summary
