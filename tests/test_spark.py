"""Scoring on Spark: a real Spark on loopback, the tiny model, the same answers as `score` row by row."""

import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import psutil
import pytest

from emotion_core import Classifier, EmotionCoreError
from emotion_core.batch import score_csv
from emotion_core.clusters import ROW_ID
from tests.helpers import ROOT, kill_while_it_scores, neutral_toy_rows


@pytest.fixture(scope="module")
def spark():
    """One local Spark for the module, two cores, on 127.0.0.1, with small file splits so that one file is
    several partitions; stopped at the end. `score_on_spark` runs on it, as on a user's session."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
               .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.sql.files.maxPartitionBytes", "4k").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def tickets() -> pd.DataFrame:
    """Toy texts with an id column, some empty, one with the quotes and commas a CSV has to escape, one with a line
    break and spaces around it."""
    texts = [text for text, _ in neutral_toy_rows(300, seed=11)]
    texts[5] = texts[77] = ""
    texts[9] = f'she said "{texts[9]}", twice, and left'
    texts[12] = f"  {texts[12]}\nand a second line  "
    texts[30], texts[200] = "Ich bin so wütend auf meinen Chef, er hört nie zu.", "Я очень устал после работы сегодня."
    return pd.DataFrame({"ticket": [f"t{i:04d}" for i in range(len(texts))], "text": texts})


def test_spark_gives_score_s_answers_row_by_row(spark, tmp_path, tickets, tiny_neutral_model):
    from emotion_core.spark_scoring import score_on_spark

    tickets.to_csv(tmp_path / "tickets.csv", index=False)
    score_csv(tmp_path / "tickets.csv", tmp_path / "local.csv", Classifier.from_pretrained(tiny_neutral_model), progress=False)
    summary = score_on_spark(str(tmp_path / "tickets.csv"), tmp_path / "spark.parquet", model=str(tiny_neutral_model),
                             id_column="ticket")  # the default engine, in Spark's batches
    local = pd.read_csv(tmp_path / "local.csv", dtype={"ticket": str}, keep_default_na=False).set_index("ticket")
    on_spark = pd.read_parquet(tmp_path / "spark.parquet").set_index("ticket")
    assert sorted(on_spark.index) == sorted(local.index)  # every row exactly once
    on_spark = on_spark.loc[local.index]
    assert list(on_spark.columns) == list(local.columns)
    assert on_spark["text"].fillna("").tolist() == tickets["text"].tolist()  # the quoted text read whole
    assert on_spark["emotion"].fillna("").tolist() == local["emotion"].tolist()
    assert on_spark["language"].fillna("").tolist() == local["language"].tolist()
    probs = [c for c in local.columns if c.startswith("prob_")]
    np.testing.assert_allclose(on_spark[probs].to_numpy(float), local[probs].replace("", np.nan).to_numpy(float), atol=1e-4)
    assert (summary.rows, summary.skipped, summary.languages) == (300, 2, {"de": 1, "ru": 1})
    assert dict(summary.label_counts) == local["emotion"].replace("", np.nan).value_counts().to_dict()
    assert not list(tmp_path.glob(".spark.parquet.tmp-*"))


def test_rows_without_an_id_are_numbered_in_input_order_across_partitions(spark, tmp_path, tickets, tiny_neutral_model):
    from emotion_core.spark_scoring import score_on_spark

    tickets.to_csv(tmp_path / "tickets.csv", index=False)
    assert spark.read.option("header", True).csv(str(tmp_path / "tickets.csv")).rdd.getNumPartitions() > 2
    score_on_spark(str(tmp_path / "tickets.csv"), tmp_path / "out.csv", model=str(tiny_neutral_model))
    parts = sorted((tmp_path / "out.csv").glob("part-*.csv"))  # a folder of CSV files, as Spark writes them
    out = pd.concat(pd.read_csv(part, keep_default_na=False, dtype={"ticket": str}) for part in parts).sort_values(ROW_ID)
    assert out[ROW_ID].tolist() == list(range(300))
    assert out["ticket"].tolist() == tickets["ticket"].tolist() and out["text"].tolist() == tickets["text"].tolist()


def test_a_spark_user_scores_their_own_dataframe(spark, tickets, tiny_neutral_model):
    from emotion_core.spark_scoring import score_dataframe

    frame = spark.createDataFrame([(t, {"body": x}) for t, x in zip(tickets["ticket"], tickets["text"])],
                                  "ticket string, fields map<string,string>").selectExpr("ticket", "fields['body'] AS body")
    scored = score_dataframe(frame, model=str(tiny_neutral_model), text_column="body")
    assert scored.columns[:4] == ["ticket", "body", "language", "emotion"]
    rows = {row["ticket"]: row for row in scored.collect()}
    local = Classifier.from_pretrained(tiny_neutral_model).predict_batch([tickets["text"][0], tickets["text"][1]])
    assert [rows["t0000"]["emotion"], rows["t0001"]["emotion"]] == [p.label for p in local]
    assert rows["t0005"]["emotion"] is None and rows["t0005"]["confidence"] is None  # an empty text is left unscored
    assert (rows["t0030"]["language"], rows["t0030"]["emotion"], rows["t0030"]["confidence"]) == ("de", None, None)
    read = score_dataframe(frame.filter("ticket = 't0030'"), model=str(tiny_neutral_model), text_column="body", any_language=True)
    assert read.collect()[0]["emotion"] in Classifier.from_pretrained(tiny_neutral_model).labels


def test_a_missing_column_or_file_is_a_clear_error_and_writes_nothing(spark, tmp_path, tickets, tiny_neutral_model):
    from emotion_core.spark_scoring import score_on_spark

    tickets.to_parquet(tmp_path / "tickets.parquet")
    model = str(tiny_neutral_model)
    with pytest.raises(EmotionCoreError, match=r"CSV has no column 'body' \(found: ticket, text\)"):
        score_on_spark(str(tmp_path / "tickets.parquet"), tmp_path / "out.parquet", model=model, text_column="body")
    with pytest.raises(EmotionCoreError, match="has no column 'id'"):
        score_on_spark(str(tmp_path / "tickets.parquet"), tmp_path / "out.parquet", model=model, id_column="id")
    with pytest.raises(EmotionCoreError, match="Could not read .*nothing.parquet"):
        score_on_spark(str(tmp_path / "nothing.parquet"), tmp_path / "out.parquet", model=model)
    tickets.iloc[:0].to_parquet(tmp_path / "empty.parquet")
    with pytest.raises(EmotionCoreError, match="empty.parquet has no rows to score"):
        score_on_spark(str(tmp_path / "empty.parquet"), tmp_path / "out.parquet", model=model)
    (tmp_path / "broken-model").mkdir()
    with pytest.raises(EmotionCoreError, match="broken-model"):
        score_on_spark(str(tmp_path / "tickets.parquet"), tmp_path / "out.parquet", model=str(tmp_path / "broken-model"))
    with pytest.raises(EmotionCoreError, match="Cannot tell the format of .*tickets.txt"):
        score_on_spark(str(tmp_path / "tickets.txt"), tmp_path / "out.parquet", model=model)
    tickets.rename(columns={"ticket": "row"}).to_parquet(tmp_path / "rows.parquet")
    with pytest.raises(EmotionCoreError, match="has a column 'row' already: pass --id-column row"):
        score_on_spark(str(tmp_path / "rows.parquet"), tmp_path / "out.parquet", model=model)
    assert not (tmp_path / "out.parquet").exists()
    (tmp_path / "results").mkdir()  # a person's folder: never replaced, however the scores are named
    (tmp_path / "results" / "notes.csv").write_text("months of work\n")
    with pytest.raises(EmotionCoreError, match="results is there already and is not a folder of scores"):
        score_on_spark(str(tmp_path / "tickets.parquet"), tmp_path / "results", model=model)
    assert (tmp_path / "results" / "notes.csv").read_text() == "months of work\n"


def test_a_csv_that_score_refuses_is_refused_before_spark_reads_it(spark, tmp_path, tiny_neutral_model):
    from emotion_core.spark_scoring import score_on_spark

    for name, content, message in [("cut.csv", b'id,text\n1,fine\n2,"cut off', "is not a valid CSV file"),
                                   ("latin.csv", "id,text\n1,caf\xe9\n".encode("latin-1"), "is not UTF-8 text")]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(EmotionCoreError, match=message):
            score_on_spark(str(tmp_path / name), tmp_path / "out.parquet", model=str(tiny_neutral_model))
    assert not (tmp_path / "out.parquet").exists()


def test_a_text_column_named_sentence_is_scored_and_a_folder_of_scores_replaced(spark, tmp_path, tiny_neutral_model):
    """SST-2 names its text column `sentence`, which `score --sentences` writes; without that flag it is kept, as
    `score` keeps it."""
    from emotion_core.spark_scoring import score_on_spark

    pd.DataFrame({"sentence": ["i feel so happy today", "so lonely at work", "i am furious"], "label": [1, 0, 0]}
                 ).to_parquet(tmp_path / "sst.parquet")
    for _ in range(2):  # the second time into the folder of scores the first wrote
        summary = score_on_spark(str(tmp_path / "sst.parquet"), tmp_path / "out.parquet", model=str(tiny_neutral_model))
    out = pd.read_parquet(tmp_path / "out.parquet").sort_values("row")
    assert summary.text_column == "sentence" and summary.rows == 3
    assert out["sentence"].tolist() == ["i feel so happy today", "so lonely at work", "i am furious"]
    assert out["emotion"].notna().all()


def test_the_command_scores_on_spark_and_an_unreachable_master_fails_fast(tmp_path, tickets, tiny_neutral_model):
    """`emotion score --on spark` as users run it, in its own process: a local Spark, then a master nobody answers at."""
    tickets.to_csv(tmp_path / "tickets.csv", index=False)
    command = [sys.executable, "-m", "emotion_core", "score", str(tmp_path / "tickets.csv"), "--model", str(tiny_neutral_model),
               "--on", "spark"]
    done = subprocess.run([*command, "-o", str(tmp_path / "scored.parquet"), "--address", "local[2]"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Scored 296 of 300 rows" in done.stdout  # 2 empty, 2 not in English
    assert len(pd.read_parquet(tmp_path / "scored.parquet")) == 300
    start = time.monotonic()
    refused = subprocess.run([*command, "-o", str(tmp_path / "never.parquet"), "--address", "spark://127.0.0.1:9"], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and time.monotonic() - start < 60
    assert refused.stderr.strip().splitlines()[-1].startswith("error: Could not reach the Spark cluster at 127.0.0.1:9")
    actors = subprocess.run([*command, "-o", str(tmp_path / "never.parquet"), "--actors", "2"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert actors.returncode == 1 and "--actors is for --on ray" in actors.stderr
    assert not (tmp_path / "never.parquet").exists()


KILLED_JOB = """
import sys
from pyspark.sql import SparkSession
from emotion_core.spark_scoring import score_on_spark
spark = (SparkSession.builder.master("local-cluster[2,1,1024]").config("spark.ui.enabled", "false")
         .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
         .config("spark.sql.execution.arrow.maxRecordsPerBatch", "500").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
print(score_on_spark(sys.argv[1], sys.argv[2], model=sys.argv[3], id_column="ticket"))
spark.stop()
"""


@pytest.mark.slow
def test_an_executor_killed_mid_job_loses_no_row_and_repeats_none(tmp_path, tiny_neutral_model):
    """`local-cluster[2,1,1024]`: two executors, each its own JVM with its own Python workers; one is killed while it scores."""
    rows = 20_000
    pd.DataFrame({"ticket": range(rows), "text": [text for text, _ in neutral_toy_rows(rows, seed=3)]}).to_parquet(tmp_path / "in.parquet")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_WORKER_DIR": str(tmp_path / "work"), "SPARK_LOCAL_IP": "127.0.0.1"}
    job = subprocess.Popen([sys.executable, "-c", KILLED_JOB, str(tmp_path / "in.parquet"), str(tmp_path / "out.parquet"),
                            str(tiny_neutral_model)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        killed = kill_while_it_scores(job, lambda: scoring_executor(job))
        out, err = job.communicate(timeout=600)
    finally:  # a failed assertion leaves no JVM behind
        for process in [*psutil.Process(job.pid).children(recursive=True), job] if job.poll() is None else []:
            process.kill()
    assert killed, "no scoring worker was seen"
    assert job.returncode == 0, err[-3000:]
    assert f"Scored {rows} of {rows} rows" in out
    scored = pd.read_parquet(tmp_path / "out.parquet")
    assert sorted(scored["ticket"]) == list(range(rows))  # every row exactly once
    assert scored["emotion"].notna().all()


def scoring_executor(job: subprocess.Popen) -> psutil.Process | None:
    """The executor process above a Python worker of `job` (the worker runs the model), once there is one."""
    workers = [p for p in psutil.Process(job.pid).children(recursive=True) if is_python_worker(p)]
    executor = workers[0].parent() if workers else None
    while executor is not None and "CoarseGrainedExecutorBackend" not in " ".join(executor.cmdline()):
        executor = executor.parent()
    assert executor is not None or not workers, "the scoring worker has no executor above it"
    return executor


def is_python_worker(process: psutil.Process) -> bool:
    """A Python worker of an executor: the process that runs the model."""
    try:
        return "pyspark.daemon" in " ".join(process.cmdline())
    except psutil.Error:
        return False


def test_the_summary_reads_a_part_whose_texts_were_all_empty(tmp_path):
    """A part file of empty texts has an `emotion` column of nulls only (Arrow types it null, not text)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from emotion_core.clusters import summarize

    (tmp_path / "out.parquet").mkdir()
    pq.write_table(pa.table({"text": ["", " "], "emotion": pa.array([None, None], pa.null())}), tmp_path / "out.parquet" / "a.parquet")
    pq.write_table(pa.table({"text": ["x", "y"], "emotion": ["joy", "anger"]}), tmp_path / "out.parquet" / "b.parquet")
    summary = summarize(tmp_path / "out.parquet", "text")
    assert (summary.rows, summary.skipped, dict(summary.label_counts)) == (4, 2, {"joy": 1, "anger": 1})
