"""Scoring on Ray: a real Ray on loopback, the tiny model, the same answers as `score` row by row."""

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import ray

from emotion_core import Classifier, EmotionCoreError
from emotion_core.batch import score_csv
from tests.helpers import ROOT, free_port, kill_while_it_scores, neutral_toy_rows


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module, two CPUs, on 127.0.0.1; shut down at the end."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


@pytest.fixture
def tickets(tmp_path) -> pd.DataFrame:
    """Toy texts with an id column, some of them empty, two not in English."""
    texts = [text for text, _ in neutral_toy_rows(300, seed=7)]
    texts[5] = texts[77] = ""
    texts[20], texts[140] = "Estoy muy feliz porque aprobé el examen.", "今日はとても悲しい気分です。"
    return pd.DataFrame({"ticket": [f"t{i:04d}" for i in range(len(texts))], "text": texts})


def test_ray_gives_score_s_answers_row_by_row(local_ray, tmp_path, tickets, tiny_neutral_model):
    from emotion_core.ray_scoring import score_on_ray

    tickets.to_csv(tmp_path / "tickets.csv", index=False)
    score_csv(tmp_path / "tickets.csv", tmp_path / "local.csv", Classifier.from_pretrained(tiny_neutral_model), progress=False)
    summary = score_on_ray(str(tmp_path / "tickets.csv"), tmp_path / "ray.parquet", model=str(tiny_neutral_model),
                           id_column="ticket", actors=1, batch_rows=64)  # the default engine, batched its own way
    local = pd.read_csv(tmp_path / "local.csv", dtype={"ticket": str}).set_index("ticket")
    on_ray = pd.read_parquet(tmp_path / "ray.parquet").set_index("ticket")
    assert sorted(on_ray.index) == sorted(local.index)  # every row exactly once
    on_ray = on_ray.loc[local.index]
    assert list(on_ray.columns) == list(local.columns)
    assert on_ray["emotion"].fillna("").tolist() == local["emotion"].fillna("").tolist()
    assert on_ray["language"].fillna("").tolist() == local["language"].fillna("").tolist()
    probs = [c for c in local.columns if c.startswith("prob_")]
    np.testing.assert_allclose(on_ray[probs].to_numpy(float), local[probs].to_numpy(float), atol=1e-4)  # local rounds to 4 places
    assert (summary.rows, summary.skipped, summary.languages) == (300, 2, {"es": 1, "ja": 1})
    assert dict(summary.label_counts) == local["emotion"].value_counts().to_dict()
    assert not list(tmp_path.glob(".ray.parquet.tmp-*"))


def test_rows_without_an_id_are_numbered_in_input_order(local_ray, tmp_path, tickets, tiny_neutral_model):
    from emotion_core.clusters import ROW_ID
    from emotion_core.ray_scoring import score_on_ray

    tickets.to_parquet(tmp_path / "tickets.parquet")
    score_on_ray(str(tmp_path / "tickets.parquet"), tmp_path / "out.csv", model=str(tiny_neutral_model), actors=1, batch_rows=50)
    parts = sorted((tmp_path / "out.csv").glob("*.csv"))  # a folder of CSV files, as Ray writes them
    out = pd.concat(pd.read_csv(part, keep_default_na=False) for part in parts).sort_values(ROW_ID)
    assert out[ROW_ID].tolist() == list(range(300))
    assert out["ticket"].tolist() == tickets["ticket"].tolist() and out["text"].tolist() == tickets["text"].tolist()
    tickets.iloc[:10].to_parquet(tmp_path / "tickets.parquet")  # scored again into the same folder: replaced
    assert score_on_ray(str(tmp_path / "tickets.parquet"), tmp_path / "out.csv", model=str(tiny_neutral_model), actors=1).rows == 10
    assert sum(len(pd.read_csv(part)) for part in (tmp_path / "out.csv").glob("*.csv")) == 10


def test_a_missing_column_or_file_is_a_clear_error_and_writes_nothing(local_ray, tmp_path, tickets, tiny_neutral_model):
    from emotion_core.ray_scoring import score_on_ray

    tickets.to_parquet(tmp_path / "tickets.parquet")
    with pytest.raises(EmotionCoreError, match=r"CSV has no column 'body' \(found: ticket, text\)"):
        score_on_ray(str(tmp_path / "tickets.parquet"), tmp_path / "out.parquet", model=str(tiny_neutral_model), text_column="body")
    with pytest.raises(EmotionCoreError, match="has no column 'id'"):
        score_on_ray(str(tmp_path / "tickets.parquet"), tmp_path / "out.parquet", model=str(tiny_neutral_model), id_column="id")
    with pytest.raises(EmotionCoreError, match="Could not read"):
        score_on_ray(str(tmp_path / "nothing.parquet"), tmp_path / "out.parquet", model=str(tiny_neutral_model))
    tickets.iloc[:0].to_parquet(tmp_path / "empty.parquet")
    with pytest.raises(EmotionCoreError, match="Could not read .*empty.parquet"):
        score_on_ray(str(tmp_path / "empty.parquet"), tmp_path / "out.parquet", model=str(tiny_neutral_model))
    (tmp_path / "broken-model").mkdir()
    with pytest.raises(EmotionCoreError, match="broken-model"):
        score_on_ray(str(tmp_path / "tickets.parquet"), tmp_path / "out.parquet", model=str(tmp_path / "broken-model"))
    tickets.rename(columns={"ticket": "row"}).to_parquet(tmp_path / "rows.parquet")
    with pytest.raises(EmotionCoreError, match="has a column 'row' already: pass --id-column row"):
        score_on_ray(str(tmp_path / "rows.parquet"), tmp_path / "out.parquet", model=str(tiny_neutral_model))
    assert not (tmp_path / "out.parquet").exists()
    (tmp_path / "results").mkdir()  # a person's folder: never replaced, however the scores are named
    (tmp_path / "results" / "notes.csv").write_text("months of work\n")
    with pytest.raises(EmotionCoreError, match="results is there already and is not a folder of scores"):
        score_on_ray(str(tmp_path / "tickets.parquet"), tmp_path / "results", model=str(tiny_neutral_model))
    assert (tmp_path / "results" / "notes.csv").read_text() == "months of work\n"


def test_ray_reads_csv_cells_as_score_does(local_ray, tmp_path, tiny_neutral_model):
    """Every cell a string ("007" stays "007", a column of numbers with a word far down is fine), quoted line breaks
    inside a text; a file score refuses (cut off in a quote, not UTF-8, a gold emotion column) is refused here too."""
    from emotion_core.ray_scoring import score_on_ray

    codes = [str(i) for i in range(300)] + ["A1"]
    pd.DataFrame({"zip": ["007"] * 301, "code": codes, "text": ["i am so happy\ntoday"] * 301}).to_csv(
        tmp_path / "in.csv", index=False)
    score_on_ray(str(tmp_path / "in.csv"), tmp_path / "out.parquet", model=str(tiny_neutral_model), id_column="code")
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert len(out) == 301 and set(out["zip"]) == {"007"} and sorted(out["code"]) == sorted(codes)
    assert set(out["text"]) == {"i am so happy\ntoday"}
    for name, content, message in [("cut.csv", b'id,text\n1,fine\n2,"cut off', "is not a valid CSV file"),
                                   ("latin.csv", "id,text\n1,caf\xe9\n".encode("latin-1"), "is not UTF-8 text"),
                                   ("gold.csv", b"text,emotion\ni am happy,joy\n", "has a column 'emotion' of its own")]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(EmotionCoreError, match=message):
            score_on_ray(str(tmp_path / name), tmp_path / "refused.parquet", model=str(tiny_neutral_model))
    assert not (tmp_path / "refused.parquet").exists()


def test_the_command_scores_on_ray_and_an_unreachable_cluster_fails_fast(tmp_path, tickets, tiny_neutral_model):
    """`emotion score --on ray` as users run it, in its own process: a local Ray, then a cluster address nobody answers."""
    tickets.to_csv(tmp_path / "tickets.csv", index=False)
    command = [sys.executable, "-m", "emotion_core", "score", str(tmp_path / "tickets.csv"), "--model", str(tiny_neutral_model),
               "--on", "ray"]
    done = subprocess.run([*command, "-o", str(tmp_path / "scored.parquet")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Scored 296 of 300 rows" in done.stdout + done.stderr  # 2 empty, 2 not in English
    assert len(pd.read_parquet(tmp_path / "scored.parquet")) == 300
    start = time.monotonic()
    refused = subprocess.run([*command, "-o", str(tmp_path / "never.parquet"), "--address", "127.0.0.1:9"], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and time.monotonic() - start < 120
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Could not reach the Ray cluster at 127.0.0.1:9"), refused.stderr[-2000:]
    assert not (tmp_path / "never.parquet").exists()


NODES_UP = """
import sys, time, ray
ray.init(address=sys.argv[1], log_to_driver=False)
deadline = time.monotonic() + 60
while len([n for n in ray.nodes() if n["Alive"]]) < 2 and time.monotonic() < deadline:
    time.sleep(0.5)
sys.exit(0 if len([n for n in ray.nodes() if n["Alive"]]) == 2 else 1)
"""


@pytest.fixture
def two_node_cluster():
    """A Ray cluster of two nodes on this machine, one CPU each: `ray start --head`, and a second node joining it.

    Each `ray start --block` owns its node's processes, so stopping it stops only this cluster (`ray stop`
    would stop every Ray on the machine). Yields the address and the environment that reaches it (a token).
    """
    ray_cli = str(Path(sys.executable).with_name("ray"))
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    common = ["--block", "--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
    head = subprocess.Popen([ray_cli, "start", "--head", "--port", str(port), "--include-dashboard", "false", *common], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nodes = [head]
    try:
        wait_for_port(port)
        nodes.append(subprocess.Popen([ray_cli, "start", "--address", f"127.0.0.1:{port}", *common], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        subprocess.run([sys.executable, "-c", NODES_UP, f"127.0.0.1:{port}"], env=env, check=True, capture_output=True, timeout=120)
        yield f"127.0.0.1:{port}", env
    finally:
        for node in reversed(nodes):
            node.terminate()
            node.wait(timeout=60)


def wait_for_port(port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on port {port}"
            time.sleep(0.3)


@pytest.mark.slow
def test_a_worker_killed_mid_job_loses_no_row_and_repeats_none(two_node_cluster, tmp_path, tiny_neutral_model):
    address, env = two_node_cluster
    rows = 100_000  # long enough (tens of seconds) that the actor is still scoring when it is killed
    pd.DataFrame({"ticket": range(rows), "text": [text for text, _ in neutral_toy_rows(rows, seed=3)]}).to_parquet(tmp_path / "in.parquet")
    command = [sys.executable, "-m", "emotion_core", "score", str(tmp_path / "in.parquet"), "-o", str(tmp_path / "out.parquet"),
               "--model", str(tiny_neutral_model), "--on", "ray", "--address", address, "--id-column", "ticket", "--actors", "1"]
    with open(tmp_path / "job.err", "w") as log:  # a file, not a pipe: a full pipe would stall the job's progress bar
        job = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
        killed = kill_while_it_scores(job, lambda: next((p for p in psutil.process_iter(["cmdline"])
                                                         if "MapWorker" in " ".join(p.info["cmdline"] or [])), None))
        job.wait(timeout=600)
    err = (tmp_path / "job.err").read_text()[-3000:]
    assert killed, f"no scoring actor was seen; the job said:\n{err}"
    assert job.returncode == 0, err
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert sorted(out["ticket"]) == list(range(rows))  # every row exactly once
    assert out["emotion"].notna().all()


def test_actors_on_every_cpu_are_refused_before_the_job_waits_for_ever(local_ray, tmp_path, tickets, tiny_neutral_model):
    from emotion_core.ray_scoring import score_on_ray

    tickets.to_parquet(tmp_path / "tickets.parquet")
    with pytest.raises(EmotionCoreError, match="--actors 2 would hold all 2 CPUs of the cluster and leave none to read the input"):
        score_on_ray(str(tmp_path / "tickets.parquet"), tmp_path / "out.parquet", model=str(tiny_neutral_model), actors=2)
    assert not (tmp_path / "out.parquet").exists()


def test_json_lines_in_a_folder_are_read_and_scored(local_ray, tmp_path, tickets, tiny_neutral_model):
    from emotion_core.ray_scoring import score_on_ray

    (tmp_path / "in").mkdir()
    tickets.iloc[:150].to_json(tmp_path / "in" / "a.jsonl", orient="records", lines=True)
    tickets.iloc[150:].to_json(tmp_path / "in" / "b.jsonl", orient="records", lines=True)
    summary = score_on_ray(str(tmp_path / "in"), tmp_path / "out.parquet", model=str(tiny_neutral_model), id_column="ticket",
                           actors=1)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert sorted(out["ticket"]) == sorted(tickets["ticket"]) and summary.rows == 300
