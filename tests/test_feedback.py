"""The corrections store: a real SQLite file, written by many threads and processes at once."""

import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import numpy as np
import pandas as pd
import pytest

from emotion_core import EmotionCoreError
from emotion_core.explain import explain
from emotion_core.feedback import MIGRATIONS, SCHEMA_VERSION, Correction, FeedbackStore, KeyTaken, correction_for, read_store
from tests.helpers import ROOT, flask_server, neutral_toy_rows, post_json

LABELS = ["sadness", "joy", "anger", "neutral"]


def correction(i: int, key: str | None = None) -> Correction:
    return Correction(text=f"text number {i}", model="tiny", model_hash="abc123", predicted="joy",
                      probabilities={"joy": 0.7, "anger": 0.3}, corrected="anger", source="test", key=key)


def test_a_correction_is_stored_with_everything_it_needs(tmp_path):
    store = FeedbackStore.open(tmp_path / "feedback.db")
    assert store.save(correction(1, key="k1"))
    [saved] = store.rows()
    assert (saved.text, saved.predicted, saved.corrected, saved.probabilities) == ("text number 1", "joy", "anger",
                                                                                  {"joy": 0.7, "anger": 0.3})
    assert saved.created_at.endswith("+00:00")  # UTC
    with sqlite3.connect(tmp_path / "feedback.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_the_same_key_twice_is_stored_once(tmp_path):
    store = FeedbackStore.open(tmp_path / "feedback.db")
    assert store.save(correction(1, key="k1")) and not store.save(correction(1, key="k1"))
    assert store.save(correction(2)) and store.save(correction(2))  # without keys, two saves are two corrections
    assert len(store.rows()) == 3
    changed = Correction(**{**correction(1, key="k1").__dict__, "corrected": "sadness", "created_at": "2027-01-01T00:00:00+00:00"})
    assert store.save(changed)  # the same key, another answer: the person changed their mind
    assert [(r.key, r.corrected, r.created_at) for r in store.rows()][0] == ("k1", "sadness", "2027-01-01T00:00:00+00:00")
    assert len(store.rows()) == 3 and not store.save(changed)
    other = Correction(**{**changed.__dict__, "text": "another text", "corrected": "joy"})
    with pytest.raises(KeyTaken, match="key belongs to another text"):  # said, not dropped without a word
        store.save(other)
    assert [(r.text, r.corrected) for r in store.rows()][0] == ("text number 1", "sadness")


def test_a_store_moved_away_while_an_app_runs_is_made_anew(tmp_path):
    store = FeedbackStore.open(tmp_path / "feedback.db")
    assert store.save(correction(1, key="k1"))
    for end in ("", "-wal", "-shm"):  # archived by whoever looks after the server
        if (tmp_path / f"feedback.db{end}").exists():
            (tmp_path / f"feedback.db{end}").rename(tmp_path / f"archived.db{end}")
    assert store.save(correction(2, key="k2")) and [r.key for r in store.rows()] == ["k2"]
    assert [r.key for r in FeedbackStore.open(tmp_path / "archived.db").rows()] == ["k1"]


def first_schema_store(path) -> None:
    """A store as the first schema made it, holding one correction ('old text')."""
    with closing(sqlite3.connect(path)) as db:
        db.execute(MIGRATIONS[0])
        db.execute("INSERT INTO corrections (text, model, model_hash, predicted, probabilities, corrected, source, created_at) "
                   "VALUES ('old text', 'm', 'h', 'joy', '{}', 'sadness', 'flask', '2026-01-01T00:00:00+00:00')")
        db.execute("PRAGMA user_version=1")
        db.commit()


def test_an_older_file_is_migrated_and_keeps_its_rows(tmp_path):
    path = tmp_path / "feedback.db"
    first_schema_store(path)
    before = path.read_bytes()
    assert [(r.text, r.key) for r in read_store(path)] == [("old text", None)] and path.read_bytes() == before  # as it is
    store = FeedbackStore.open(path)
    assert [r.text for r in store.rows()] == ["old text"]
    assert store.save(correction(1, key="k")) and not store.save(correction(1, key="k"))


def test_a_file_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "feedback.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(EmotionCoreError, match="newer than this version of the package knows"):
        FeedbackStore.open(path)


WRITER = """
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from emotion_core.feedback import Correction, FeedbackStore
store, process = FeedbackStore.open(sys.argv[1]), int(sys.argv[2])
def save(i):
    key = f"p{process}-{i % 150}"  # every key twice: a form sent again
    store.save(Correction(text=f"t{i % 150}", model="m", model_hash="h", predicted="joy", probabilities={}, corrected="anger",
                          source="test", key=key))
with ThreadPoolExecutor(8) as pool:
    list(pool.map(save, range(300)))
"""


@pytest.mark.slow
def test_many_writers_lose_nothing_and_double_nothing(tmp_path):
    """Four processes of eight threads each write to one file at once, every correction twice under one key."""
    path = tmp_path / "feedback.db"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(p)], cwd=ROOT) for p in range(4)]
    with ThreadPoolExecutor(4) as pool:  # and threads of this process beside them
        list(pool.map(lambda i: FeedbackStore.open(path).save(correction(i, key=f"here-{i}")), range(100)))
    assert [w.wait(timeout=120) for w in writers] == [0] * 4
    keys = [r.key for r in FeedbackStore.open(path).rows()]
    assert len(keys) == len(set(keys)) == 4 * 150 + 100


def test_an_unwritable_store_is_a_clear_message(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(EmotionCoreError, match=r"cannot be written: .*set EMOTION_FEEDBACK_DB to a writable file"):
        FeedbackStore.open(tmp_path / "a-file" / "feedback.db")
    (tmp_path / "broken.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(EmotionCoreError, match="broken.db cannot be written"):
        FeedbackStore.open(tmp_path / "broken.db")


ON_A_READ_ONLY_DISK = """
import json, sys
from pathlib import Path
from app_flask import create_app
from emotion_core import EmotionCoreError
from emotion_core.feedback import FeedbackStore, read_store
from tests.test_feedback import correction
folder, model = Path(sys.argv[1]), sys.argv[2]
seen = {"read": [r.text for r in read_store(folder / "feedback.db")], "old": [r.text for r in read_store(folder / "old.db")]}
try:
    FeedbackStore(folder / "feedback.db").save(correction(2))
except EmotionCoreError as exc:
    seen["refused"] = str(exc)
client = create_app({"TESTING": True, "MODEL": model, "FEEDBACK_DB": str(folder / "feedback.db")}).test_client()
seen["api"] = [client.post("/api/feedback", json={"text": "i am furious", "label": "sadness"}).status_code,
               client.post("/api/predict", json={"text": "i am furious"}).status_code]
print(json.dumps(seen))
"""


def test_a_store_on_a_read_only_disk_is_read_and_refuses_a_save_with_a_message(tmp_path, tiny_neutral_model):
    """The folder mounted read-only (a mount namespace of its own, as a container's read-only volume): stats and export
    read the store, an older one too, a save says why it cannot, and the app goes on predicting."""
    folder = tmp_path / "volume"
    FeedbackStore.open(folder / "feedback.db").save(correction(1))
    first_schema_store(folder / "old.db")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    read_only = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && exec "$@"'
    done = subprocess.run(["unshare", "--map-root-user", "--mount", "sh", "-c", read_only, str(folder), sys.executable, "-c",
                           ON_A_READ_ONLY_DISK, str(folder), str(tiny_neutral_model)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["read"] == ["text number 1"] and seen["old"] == ["old text"]
    assert re.search(r"feedback.db cannot be written: .*(read-?only).* Predictions still work; set EMOTION_FEEDBACK_DB",
                     seen["refused"]), seen["refused"]
    assert seen["api"] == [503, 200]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


FULL_DISK = """
import resource, signal, sys
from emotion_core import EmotionCoreError
from emotion_core.feedback import FeedbackStore
from tests.test_feedback import correction
store = FeedbackStore.open(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
saved = 0
try:
    while saved < 10_000:
        saved += store.save(correction(saved, key=f"full-{saved}"))
except EmotionCoreError as exc:
    print(saved, exc, sep="\\n")
"""


def test_a_full_disk_is_a_clear_message_and_keeps_what_was_saved(tmp_path):
    path = tmp_path / "feedback.db"
    child = subprocess.run([sys.executable, "-c", FULL_DISK, str(path)], cwd=ROOT, capture_output=True, text=True,
                           timeout=120, check=True)
    assert "cannot be written" in child.stdout, child.stdout[-500:]
    saved, message = child.stdout.strip().split("\n", 1)
    assert 0 < int(saved) < 10_000
    assert re.search(r"feedback.db cannot be written: .+ Predictions still work; set EMOTION_FEEDBACK_DB to a writable file", message)
    rows = FeedbackStore.open(path).rows()  # with room again, every saved correction is there, once
    assert [r.key for r in rows] == [f"full-{i}" for i in range(int(saved))]


@pytest.mark.parametrize("bad, message", [
    ({"text": "  "}, "needs the text"),
    ({"text": "a" * 20_000}, "Text is too long"),
    ({"corrected": "hunger"}, "Unknown label 'hunger'"),
])
def test_a_correction_the_store_should_not_keep_is_refused(bad, message):
    fields = {**correction(1).__dict__, **bad}
    with pytest.raises(EmotionCoreError, match=message):
        Correction(**fields).check(LABELS)


# ----------------------------------------------------------------------------- the Flask app

@pytest.fixture
def flask_app(tiny_neutral_model, tmp_path):
    from app_flask import create_app

    return create_app({"TESTING": True, "MODEL": str(tiny_neutral_model), "FEEDBACK_DB": str(tmp_path / "feedback.db")})


def test_the_page_offers_a_correction_that_works_without_javascript(flask_app, tmp_path):
    client = flask_app.test_client()
    page = client.post("/", data={"text": "i feel so happy today"}).get_data(as_text=True)
    assert 'action="/feedback"' in page and "Nothing you type is stored unless you save a correction" in page
    key = re.search(r'name="key" value="([0-9a-f]+)"', page).group(1)
    form = {"text": "i feel so happy today", "label": "anger", "key": key}
    saved = client.post("/feedback", data=form)
    assert saved.status_code == 200 and "Saved: thank you, this text reads as anger." in saved.get_data(as_text=True)
    again = client.post("/feedback", data=form).get_data(as_text=True)
    assert "This correction was saved already." in again
    [row] = FeedbackStore.open(tmp_path / "feedback.db").rows()
    assert (row.text, row.predicted, row.corrected, row.source) == ("i feel so happy today", "joy", "anger", "flask")
    assert re.search(r'name="key" value="([0-9a-f]+)"', again).group(1) == key  # the page after saving keeps the key
    changed = client.post("/feedback", data={**form, "label": "sadness"}).get_data(as_text=True)
    assert "this text reads as sadness" in changed  # a change of mind on that page replaces the first answer
    assert [(r.key, r.corrected) for r in FeedbackStore.open(tmp_path / "feedback.db").rows()] == [(key, "sadness")]
    fresh = client.post("/", data={"text": "i feel so happy today"}).get_data(as_text=True)
    assert re.search(r'name="key" value="([0-9a-f]+)"', fresh).group(1) != key  # a new prediction, a new key
    assert row.model == "tiny-neutral" and len(row.model_hash) == 16 and set(row.probabilities) == set(LABELS)


@pytest.mark.parametrize("label", ["anger", "hunger"])  # saved, and refused before the store
def test_the_page_after_a_correction_runs_the_model_inside_a_slot(flask_app, monkeypatch, label):
    """Saving gives the slot back while the store is written; the page it returns explains the text again."""
    import app_flask

    free = []

    def counting(classifier, text):
        slots, taken = flask_app.extensions["model_slots"], 0
        while slots.acquire(blocking=False):
            taken += 1
        for _ in range(taken):
            slots.release()
        free.append(taken)
        return explain(classifier, text)

    monkeypatch.setattr(app_flask, "explain", counting)
    page = flask_app.test_client().post("/feedback", data={"text": "i feel so happy today", "label": label})
    assert page.status_code in (200, 422) and "Top emotion" in page.get_data(as_text=True)
    assert free == [flask_app.config["MAX_BUSY"] - 1]


def test_a_correction_saved_while_the_model_is_busy_is_still_said_to_be_saved(tiny_neutral_model, tmp_path, monkeypatch):
    from app_flask import create_app

    app = create_app({"TESTING": True, "MODEL": str(tiny_neutral_model), "FEEDBACK_DB": str(tmp_path / "f.db"),
                      "MAX_BUSY": 1, "BUSY_WAIT_S": 0.01})
    store, slots = app.extensions["feedback"], app.extensions["model_slots"]
    real_save = store.save

    def save_while_another_request_takes_the_slot(found):
        assert slots.acquire(blocking=False)  # the slot this request gave back, taken by another one
        return real_save(found)

    monkeypatch.setattr(store, "save", save_while_another_request_takes_the_slot)
    page = app.test_client().post("/feedback", data={"text": "i feel so happy today", "label": "anger"})
    body = page.get_data(as_text=True)
    assert page.status_code == 503 and page.headers["Retry-After"] == "1"
    assert "Saved: thank you, this text reads as anger." in body and "The server is busy" in body
    assert len(FeedbackStore.open(tmp_path / "f.db").rows()) == 1
    slots.release()


def test_the_api_stores_a_correction_and_refuses_bad_ones(flask_app, tmp_path):
    client = flask_app.test_client()
    answer = client.post("/api/feedback", json={"text": "i am furious", "label": "sadness", "key": "abc"})
    assert answer.status_code == 201 and answer.json == {"saved": True, "label": "sadness"}
    assert client.post("/api/feedback", json={"text": "i am furious", "label": "sadness", "key": "abc"}).json["saved"] is False
    taken = client.post("/api/feedback", json={"text": "another text", "label": "joy", "key": "abc"})
    assert taken.status_code == 409 and "key belongs to another text" in taken.json["error"]
    for body, status, message in [({"text": "i am furious", "label": "hunger"}, 422, "Unknown label 'hunger'"),
                                  ({"text": "  ", "label": "joy"}, 422, "Text is empty"),
                                  ({"text": "i am \ud800 furious", "label": "joy"}, 422, "character 6 is a lone surrogate"),
                                  ({"text": "x" * 20_000, "label": "joy"}, 413, "Text is too long"),
                                  ({"text": "i am furious"}, 400, 'Send "label"'),
                                  (["not", "an", "object"], 400, "Send a JSON object")]:
        refused = client.post("/api/feedback", json=body)
        assert refused.status_code == status and message in refused.json["error"], (body, refused.json)
    assert len(FeedbackStore.open(tmp_path / "feedback.db").rows()) == 1


def test_an_unwritable_store_is_a_message_and_predictions_go_on(tiny_neutral_model, tmp_path):
    from app_flask import create_app

    (tmp_path / "a-file").write_text("")
    client = create_app({"TESTING": True, "MODEL": str(tiny_neutral_model), "FEEDBACK_DB": str(tmp_path / "a-file" / "f.db")}).test_client()
    refused = client.post("/api/feedback", json={"text": "i am furious", "label": "sadness"})
    assert refused.status_code == 503 and "cannot be written" in refused.json["error"]
    assert str(tmp_path) not in refused.json["error"]  # the server's paths stay in its log
    page = client.post("/feedback", data={"text": "i am furious", "label": "sadness"})
    assert page.status_code == 503 and "cannot be written" in page.get_data(as_text=True) and "Top emotion" in page.get_data(as_text=True)
    assert client.post("/api/predict", json={"text": "i am furious"}).status_code == 200


def test_corrections_off_shows_no_form_and_stores_nothing(tiny_neutral_model, tmp_path):
    from app_flask import create_app

    client = create_app({"TESTING": True, "MODEL": str(tiny_neutral_model), "FEEDBACK": "off",
                         "FEEDBACK_DB": str(tmp_path / "f.db")}).test_client()
    assert 'action="/feedback"' not in client.post("/", data={"text": "i am furious"}).get_data(as_text=True)
    refused = client.post("/api/feedback", json={"text": "i am furious", "label": "sadness"})
    assert refused.status_code == 404 and "off" in refused.json["error"]
    assert not (tmp_path / "f.db").exists()


@pytest.mark.slow
def test_the_served_api_keeps_every_correction_of_many_users_once(tiny_neutral_model, tmp_path):
    """`python app_flask.py` (waitress, 8 threads): 60 users at once, each sending their correction twice."""
    path = tmp_path / "served.db"
    with flask_server(threads=8, model=tiny_neutral_model, env={"EMOTION_FEEDBACK_DB": str(path)}) as url:
        def send(i):
            body = {"text": f"i feel so sad number {i}", "label": "sadness", "key": f"user-{i}"}
            return post_json(f"{url}/api/feedback", body)[0], post_json(f"{url}/api/feedback", body)[0]

        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(send, range(60)))
    assert statuses == [(201, 200)] * 60
    rows = FeedbackStore.open(path).rows()
    assert sorted(r.key for r in rows) == sorted(f"user-{i}" for i in range(60)) and {r.source for r in rows} == {"api"}


# ----------------------------------------------------------------------------- the command line

def test_stats_and_export_give_what_people_corrected_as_training_data(tmp_path):
    from emotion_core.data import read_file

    store = FeedbackStore.open(tmp_path / "feedback.db")
    for i, (predicted, corrected) in enumerate([("joy", "anger"), ("joy", "anger"), ("neutral", "sadness")]):
        store.save(Correction(text=f"text {i}", model="m", model_hash="h", predicted=predicted, probabilities={},
                              corrected=corrected, source="test"))
    base = [sys.executable, "-m", "emotion_core", "feedback"]
    stats = subprocess.run([*base, "stats", "--db", str(tmp_path / "feedback.db")], cwd=ROOT, capture_output=True, text=True)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout) == {"rows": 3, "corrected": {"anger": 2, "sadness": 1},
                                        "predicted_as": {"joy -> anger": 2, "neutral -> sadness": 1}}
    for outputs in (["-o", str(tmp_path / "feedback.db")], ["-o", str(tmp_path / "feedback.db-wal")],
                    ["-o", str(tmp_path / "c.csv"), "--held-back", str(tmp_path / "c.csv")]):
        refused = subprocess.run([*base, "export", "--db", str(tmp_path / "feedback.db"), *outputs], cwd=ROOT,
                                 capture_output=True, text=True)
        assert refused.returncode == 1 and "would overwrite" in refused.stderr and "Traceback" not in refused.stderr
    assert len(FeedbackStore.open(tmp_path / "feedback.db").rows()) == 3 and not (tmp_path / "c.csv").exists()
    export = subprocess.run([*base, "export", "--db", str(tmp_path / "feedback.db"), "-o", str(tmp_path / "corrections.csv")],
                            cwd=ROOT, capture_output=True, text=True)
    assert export.returncode == 0 and "Wrote 3 corrections" in export.stdout, export.stderr
    texts, labels = read_file(tmp_path / "corrections.csv")  # as `emotion train --train-file` reads it
    assert texts == ["text 0", "text 1", "text 2"] and labels == ["anger", "anger", "sadness"]


def test_export_holds_back_a_share_that_the_gate_command_judges_a_retrained_model_on(tmp_path, tiny_neutral_model):
    from emotion_core.data import read_file

    store = FeedbackStore.open(tmp_path / "feedback.db")
    for i in range(40):
        store.save(Correction(text=f"i feel so happy number {i}", model="m", model_hash="h", predicted="joy",
                              probabilities={}, corrected="anger", source="test"))
    base = [sys.executable, "-m", "emotion_core", "feedback"]
    export = subprocess.run([*base, "export", "--db", str(tmp_path / "feedback.db"), "-o", str(tmp_path / "train.csv"),
                             "--held-back", str(tmp_path / "held.csv")], cwd=ROOT, capture_output=True, text=True)
    assert export.returncode == 0, export.stderr
    (train, _), (held, _) = read_file(tmp_path / "train.csv"), read_file(tmp_path / "held.csv")
    assert f"Wrote {len(train)} corrections" in export.stdout and f"Held back {len(held)} in" in export.stdout
    assert 0 < len(held) < 20 and len(train) + len(held) == 40 and not set(train) & set(held)
    gate = subprocess.run([*base, "gate", "--current", str(tiny_neutral_model), "--candidate", str(tiny_neutral_model),
                           "--held-back", str(tmp_path / "held.csv"), "-o", str(tmp_path / "gate.md")], cwd=ROOT,
                          capture_output=True, text=True)
    assert gate.returncode == 0 and f"Keep the current model: the report is in {tmp_path / 'gate.md'}" in gate.stdout, gate.stderr
    report = (tmp_path / "gate.md").read_text()
    assert report.startswith("# Retraining gate: Keep the current model") and f"| held-back corrections | {len(held)} |" in report


def test_an_export_is_trained_on_beside_the_recipe_s_data(tmp_path, tiny_base_dir, toy_dir):
    """The exported file added to a mix file as docs/feedback.md's recipe adds it: its rows are in what is trained on."""
    from emotion_core import train
    from emotion_core.config import DataConfig
    from emotion_core.data import load_sources
    from emotion_core.feedback import export

    store = FeedbackStore.open(tmp_path / "feedback.db")
    corrected = {f"a text people corrected number {i}": ["sadness", "joy", "anger"][i % 3] for i in range(30)}
    for text, label in corrected.items():
        store.save(Correction(text=text, model="m", model_hash="h", predicted="joy", probabilities={}, corrected=label,
                              source="review"))
    export(store.rows(), tmp_path / "corrections.csv")
    mix = tmp_path / "mix.json"
    mix.write_text(json.dumps({"sources": [{"name": "toy", "data": str(toy_dir)},
                                           {"name": "corrections", "data": str(tmp_path / "corrections.csv"), "weight": 2}]}))
    splits, _ = load_sources(DataConfig(mix=str(mix)))
    names = splits["train"].features["label"].names
    seen = {(text, names[label]) for text, label, source in zip(splits["train"]["text"], splits["train"]["label"],
                                                                splits["train"]["source"]) if source == "corrections"}
    assert seen and seen <= set(corrected.items())  # the rest held out as the source's validation split
    train.main(["--base-model", str(tiny_base_dir), "--mix", str(mix), "--output-dir", str(tmp_path / "retrained"),
                "--epochs", "1", "--batch-size", "16", "--max-length", "32", "--no-export"])
    run = json.loads((tmp_path / "retrained" / "run_config.json").read_text())
    assert [source["name"] for source in run["sources"]] == ["toy", "corrections"]


def test_stats_read_a_store_without_writing_to_it_and_refuse_other_files(tmp_path):
    from emotion_core.feedback import read_store

    path = tmp_path / "feedback.db"
    FeedbackStore.open(path).save(correction(1))
    before = path.read_bytes()
    assert [r.text for r in read_store(path)] == ["text number 1"] and path.read_bytes() == before
    other = tmp_path / "bookmarks.db"
    with closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE bookmarks (url TEXT)")
        db.commit()
    before = other.read_bytes()
    with pytest.raises(EmotionCoreError, match="bookmarks.db is not a feedback store .it holds the tables bookmarks"):
        read_store(other)
    assert other.read_bytes() == before
    with pytest.raises(EmotionCoreError, match="is not a feedback store: it holds other tables .bookmarks"):
        FeedbackStore.open(other)  # the apps, too, add nothing to it
    with closing(sqlite3.connect(other)) as db:
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("bookmarks",)]


def test_the_review_queue_in_margin_order_puts_the_most_uncertain_rows_first(tmp_path, tiny_neutral_model):
    from emotion_core import Classifier
    from emotion_core.queue import margin, review_queue

    texts = ["i feel so happy", "i am furious", "happy and furious and sad", "the quick brown fox", "", "so sad and happy"]
    pd.DataFrame({"id": range(len(texts)), "text": texts}).to_csv(tmp_path / "in.csv", index=False)
    classifier = Classifier.from_pretrained(tiny_neutral_model)
    assert review_queue(tmp_path / "in.csv", tmp_path / "queue.csv", classifier, order="margin").rows == len(texts)
    queue = pd.read_csv(tmp_path / "queue.csv", keep_default_na=False)
    scored = queue[queue["text"] != ""]
    assert scored["margin"].astype(float).is_monotonic_increasing and queue["text"].iloc[-1] == ""
    probs = classifier.predict_proba(scored["text"].tolist())
    np.testing.assert_allclose(scored["margin"].astype(float), margin(probs), atol=2e-4)
    assert sorted(queue["id"]) == list(range(len(texts)))


def test_balanced_places_take_each_answer_in_proportion_the_least_sure_first():
    from emotion_core.queue import balanced_places

    predicted = pd.Series(["joy"] * 4 + ["anger"] * 2 + [""])
    margins = pd.Series([0.4, 0.1, 0.3, 0.2, 0.5, 0.05, np.nan])
    places = balanced_places(predicted, margins)
    order = np.argsort(places.fillna(np.inf).to_numpy(), kind="stable")
    assert list(order) == [1, 5, 3, 2, 4, 0, 6]  # joy 0.1, anger 0.05, joy 0.2, joy 0.3, anger 0.5, joy 0.4; unscored last
    assert places.iloc[6] != places.iloc[6]  # NaN: an unscored row has no place


def test_typicality_ranks_a_text_like_many_others_above_an_odd_one():
    from emotion_core.queue import typicality

    texts = ["the parcel arrived late again", "my parcel arrived late", "the parcel arrived late today",
             "parcel late again", "purple giraffes dance quietly"]
    typical = typicality(texts)
    assert typical.shape == (5,) and ((typical >= 0) & (typical <= 1)).all()
    assert typical.argmin() == 4 and typical[4] == 0  # no word in common with the others
    assert typical[0] > typical[3] > 0
    np.testing.assert_allclose(typicality(texts * 2, neighbours=1), 1)  # its copy, not itself, is its neighbour
    sampled = typicality(texts * 3, neighbours=2, sample=4)  # compared with 4 of the 15 only
    assert sampled.shape == (15,) and ((sampled >= 0) & (sampled <= 1 + 1e-9)).all()
    np.testing.assert_array_equal(typicality(["!", "?", "a"]), [1, 1, 1])  # no words at all
    np.testing.assert_array_equal(typicality(["alone"]), [1])


def test_density_keys_put_the_least_sure_among_the_most_typical_first():
    from emotion_core.queue import density_keys

    texts = pd.Series(["the parcel arrived late", "my parcel arrived late", "the parcel came late",
                       "purple giraffes dance quietly", "the parcel arrived late again", ""])
    margins = pd.Series([0.2, 0.2, 0.9, 0.2, 0.6, np.nan])
    keys = density_keys(texts, margins)
    order = list(np.argsort(keys.fillna(np.inf).to_numpy(), kind="stable"))
    assert order[:2] == [0, 1] and order[-2:] == [3, 5]  # unsure and typical first; the odd text, though unsure,
    assert keys.iloc[4] < keys.iloc[2]  # after every typical one; of two alike, the less sure first; unscored last
    assert np.isnan(keys.iloc[5]) and keys.iloc[3] == 0


def test_topics_put_alike_texts_together():
    from emotion_core.queue import topics

    texts = ["the parcel arrived late", "my parcel arrived late again", "late parcel arrived",
             "rain all day in the city", "the city rain again today", "rain in the city",
             "the match ended in a draw", "a draw in the match", "that match and its draw"]
    found = topics(texts)  # 3 topics: the square root of 9 rows
    assert [len(set(found[i:i + 3])) for i in (0, 3, 6)] == [1, 1, 1] and len(set(found)) == 3
    np.testing.assert_array_equal(topics(texts), found)  # seeded
    np.testing.assert_array_equal(topics(["!", "?", "a", "."]), [0, 0, 0, 0])  # no words at all: one topic
    assert topics(["alone"]).tolist() == [0] and topics([]).tolist() == []
    assert topics(["the parcel came today"]).tolist() == [0]  # one text of several words
    assert len(set(topics(["the parcel came today"] * 4))) == 1  # texts all alike: one topic, no warning


def test_the_review_queue_takes_each_topic_in_proportion_by_default(tmp_path, tiny_neutral_model):
    from emotion_core import Classifier
    from emotion_core.queue import balanced_places, density_keys, review_queue, topics

    texts = [f"{text} {topic}" for text, _ in neutral_toy_rows(20, seed=5)
             for topic in ("parcel courier", "rain weather", "match goal")] + [""]
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "in.csv", index=False)
    classifier = Classifier.from_pretrained(tiny_neutral_model)
    review_queue(tmp_path / "in.csv", tmp_path / "queue.csv", classifier)  # the default order: topics
    queue = pd.read_csv(tmp_path / "queue.csv", keep_default_na=False)
    scored = queue[queue["emotion"] != ""].reset_index(drop=True)
    assert len(scored) == 60 and queue["text"].iloc[-1] == ""
    topic_of = dict(zip(texts[:-1], topics(texts[:-1])))  # as the queue found them, in the file's order
    found = scored["text"].map(topic_of)
    assert found.nunique() == 8  # the square root of 60 rows
    places = balanced_places(found, density_keys(scored["text"], scored["margin"].astype(float)))
    assert places.is_monotonic_increasing  # the order `density_keys` and `balanced_places` give, by topic
    first = found.iloc[:20].value_counts()
    for topic, count in found.value_counts().items():  # any first rows hold each topic in proportion, within one
        assert abs(first.get(topic, 0) - 20 * count / 60) <= 1


def test_the_review_queue_in_density_order_takes_each_answer_in_proportion(tmp_path, tiny_neutral_model):
    from emotion_core import Classifier
    from emotion_core.queue import balanced_places, density_keys, review_queue

    texts = [text for text, _ in neutral_toy_rows(60, seed=5)] + [""]
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "in.csv", index=False)
    classifier = Classifier.from_pretrained(tiny_neutral_model)
    review_queue(tmp_path / "in.csv", tmp_path / "queue.csv", classifier, order="density")
    queue = pd.read_csv(tmp_path / "queue.csv", keep_default_na=False)
    scored = queue[queue["emotion"] != ""].reset_index(drop=True)
    assert len(scored) == 60 and queue["text"].iloc[-1] == ""
    places = balanced_places(scored["emotion"], density_keys(scored["text"], scored["margin"].astype(float)))
    assert places.is_monotonic_increasing  # the order `density_keys` and `balanced_places` give
    counts = scored["emotion"].value_counts()
    first = scored.iloc[:20]["emotion"].value_counts()
    for label, count in counts.items():  # any first rows hold each answer in proportion, to within one row
        assert abs(first.get(label, 0) - 20 * count / 60) <= 1


def test_the_review_queue_in_balanced_order_and_an_unknown_order(tmp_path, tiny_neutral_model):
    from emotion_core import Classifier
    from emotion_core.queue import review_queue

    texts = [text for text, _ in neutral_toy_rows(60, seed=5)] + [""]
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "in.csv", index=False)
    classifier = Classifier.from_pretrained(tiny_neutral_model)
    review_queue(tmp_path / "in.csv", tmp_path / "queue.csv", classifier, order="balanced")
    queue = pd.read_csv(tmp_path / "queue.csv", keep_default_na=False)
    scored = queue[queue["emotion"] != ""]
    assert len(scored) == 60 and queue["text"].iloc[-1] == ""
    for _, rows in scored.groupby("emotion"):
        assert rows["margin"].astype(float).is_monotonic_increasing  # the least sure of each answer first
    counts = scored["emotion"].value_counts()
    first = scored.iloc[:20]["emotion"].value_counts()
    for label, count in counts.items():
        assert abs(first.get(label, 0) - 20 * count / 60) <= 1
    with pytest.raises(EmotionCoreError, match="Unknown queue order .newest.: use one of topics, margin, density, balanced."):
        review_queue(tmp_path / "in.csv", tmp_path / "other.csv", classifier, order="newest")
    assert not (tmp_path / "other.csv").exists()
    before = (tmp_path / "in.csv").read_bytes()
    with pytest.raises(EmotionCoreError, match="The output file must differ from the input file"):
        review_queue(tmp_path / "in.csv", tmp_path / "in.csv", classifier)
    assert (tmp_path / "in.csv").read_bytes() == before


def test_the_review_queue_puts_the_rows_corrected_already_last_and_queues_the_rest_on_their_own(tmp_path,
                                                                                               tiny_neutral_model):
    from emotion_core import Classifier
    from emotion_core.queue import review_queue

    texts = [f"{text} {topic}" for text, _ in neutral_toy_rows(12, seed=5) for topic in ("parcel courier", "rain weather")]
    done = {texts[0]: "anger", texts[5]: "neutral", texts[9]: "joy"}
    pd.DataFrame({"text": texts + [""]}).to_csv(tmp_path / "in.csv", index=False)
    pd.DataFrame({"text": [t for t in texts if t not in done]}).to_csv(tmp_path / "rest.csv", index=False)
    classifier = Classifier.from_pretrained(tiny_neutral_model)
    summary = review_queue(tmp_path / "in.csv", tmp_path / "queue.csv", classifier, corrected=done)
    queue = pd.read_csv(tmp_path / "queue.csv", keep_default_na=False)
    assert summary.corrected == 3 and sorted(queue["text"]) == sorted(texts + [""])
    assert queue["corrected"].tolist() == [""] * 21 + ["anger", "neutral", "joy", ""]  # in the file's order; empty last
    assert queue["text"].iloc[21:24].tolist() == [texts[0], texts[5], texts[9]]
    review_queue(tmp_path / "rest.csv", tmp_path / "rest-queue.csv", classifier)
    alone = pd.read_csv(tmp_path / "rest-queue.csv", keep_default_na=False)
    assert queue["text"].iloc[:21].tolist() == alone["text"].tolist()  # as if the file held only the rest
    assert review_queue(tmp_path / "in.csv", tmp_path / "plain.csv", classifier).corrected is None
    assert "corrected" not in pd.read_csv(tmp_path / "plain.csv").columns  # no store given: no column


def test_the_queue_command_puts_what_the_store_holds_last(tmp_path, tiny_neutral_model, capsys):
    from emotion_core import Classifier
    from emotion_core.cli import main as cli

    classifier = Classifier.from_pretrained(tiny_neutral_model)
    FeedbackStore(tmp_path / "fb.db").save(correction_for(classifier, "i am furious", "anger", "review"))
    pd.DataFrame({"text": ["i am furious", "i feel so happy", "so sad today"]}).to_csv(tmp_path / "in.csv", index=False)
    command = ["feedback", "queue", str(tmp_path / "in.csv"), "-o", str(tmp_path / "queue.csv"), "--model",
               str(tiny_neutral_model), "--db", str(tmp_path / "fb.db")]
    assert cli(command) == 0
    assert "the 1 corrected already (in " in capsys.readouterr().out
    queue = pd.read_csv(tmp_path / "queue.csv", keep_default_na=False)
    assert queue["text"].iloc[-1] == "i am furious" and queue["corrected"].tolist() == ["", "", "anger"]
    assert cli([*command[:-1], str(tmp_path / "none.db")]) == 0  # no store yet: nothing corrected, no message
    assert "corrected already" not in capsys.readouterr().out and not (tmp_path / "none.db").exists()
    (tmp_path / "bad.db").write_text("not a database")
    assert cli([*command[:-1], str(tmp_path / "bad.db")]) == 1
    assert "bad.db cannot be read" in capsys.readouterr().err


def test_the_queue_command_reads_a_file_in_another_encoding(tmp_path, tiny_neutral_model, capsys):
    from emotion_core.cli import main as cli

    (tmp_path / "latin.csv").write_bytes("text\nje suis ravi du café\ni am furious\n".encode("latin-1"))
    command = ["feedback", "queue", str(tmp_path / "latin.csv"), "-o", str(tmp_path / "queue.csv"), "--model",
               str(tiny_neutral_model)]
    assert cli(command) == 1 and "--encoding latin-1" in capsys.readouterr().err  # as the message says, so it does
    assert cli([*command, "--encoding", "latin-1"]) == 0
    assert sorted(pd.read_csv(tmp_path / "queue.csv")["text"]) == ["i am furious", "je suis ravi du café"]


# ----------------------------------------------------------------------------- a Space's corrections on the Hub

MIRRORED = """
import json, sys
from emotion_core.feedback import Correction, FeedbackStore
store = FeedbackStore.for_app(sys.argv[1])
assert store.mirror is not None, "no mirror"
for i in range(3):
    store.save(Correction(text=f"text {i}", model="m", model_hash="h", predicted="joy", probabilities={"joy": 1.0},
                          corrected="anger", source="gradio", key=f"k{i}"))
store.mirror.scheduler.trigger().result()  # what the scheduler does every five minutes, now
print("pushed")
"""


@pytest.fixture
def fake_hub():
    """A server on loopback that answers the few Hub endpoints CommitScheduler calls, and keeps what it was sent; and
    those `feedback pull` calls, to list and download the files it keeps."""
    import base64
    import hashlib

    from flask import Flask, request
    from werkzeug.serving import make_server

    app, seen = Flask("fake-hub"), {"created": [], "commits": [], "auth": set(), "public": False, "files": {}}

    @app.get("/api/datasets/<org>/<name>")
    def info(org, name):
        if seen["public"]:
            return {"id": f"{org}/{name}", "private": False}
        return {"error": "Repository not found"}, 404, {"X-Error-Code": "RepoNotFound"}

    @app.post("/api/repos/create")
    def create():
        seen["created"].append(request.json)
        seen["auth"].add(request.headers.get("Authorization"))
        return {"url": f"{request.host_url}datasets/{request.json['organization']}/{request.json['name']}"}

    @app.post("/api/datasets/<org>/<name>/preupload/<revision>")
    def preupload(org, name, revision):
        return {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in request.json["files"]]}

    @app.post("/api/datasets/<org>/<name>/commit/<revision>")
    def commit(org, name, revision):
        lines = [json.loads(line) for line in request.get_data(as_text=True).splitlines() if line.strip()]
        files = {f["value"]["path"]: base64.b64decode(f["value"]["content"]).decode() for f in lines if f["key"] == "file"}
        seen["commits"].append({"repo": f"{org}/{name}", "files": files})
        seen["files"].update(files)
        return {"commitUrl": f"{request.host_url}datasets/{org}/{name}/commit/{'0' * 40}", "commitOid": "0" * 40}

    def oid(content: str) -> str:
        return hashlib.sha1(content.encode()).hexdigest()

    @app.get("/api/datasets/<org>/<name>/tree/<revision>")
    def tree(org, name, revision):
        seen["auth"].add(request.headers.get("Authorization"))
        return [{"type": "file", "path": path, "size": len(content.encode()), "oid": oid(content)}
                for path, content in seen["files"].items()]

    @app.get("/datasets/<org>/<name>/resolve/<revision>/<path:path>")
    def resolve(org, name, revision, path):
        seen["auth"].add(request.headers.get("Authorization"))
        content = seen["files"][path]
        return content, 200, {"X-Repo-Commit": "0" * 40, "ETag": f'"{oid(content)}"'}

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()


def test_a_space_s_corrections_are_committed_to_its_private_dataset_repo(fake_hub, tmp_path):
    url, seen = fake_hub
    token = "hf_" + "x" * 34
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": url, "HF_TOKEN": token, "EMOTION_FEEDBACK_REPO": "me/corrections"}
    done = subprocess.run([sys.executable, "-c", MIRRORED, str(tmp_path / "feedback.db")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "pushed" in done.stdout, done.stderr[-2000:]
    assert token not in done.stdout + done.stderr
    assert seen["created"] == [{"name": "corrections", "organization": "me", "visibility": "private", "type": "dataset"}]
    assert seen["auth"] == {f"Bearer {token}"}
    [commit] = seen["commits"]
    [(path, content)] = commit["files"].items()
    assert commit["repo"] == "me/corrections" and path.startswith("corrections/corrections-") and path.endswith(".jsonl")
    assert [json.loads(line)["text"] for line in content.splitlines()] == ["text 0", "text 1", "text 2"]
    assert len(FeedbackStore.open(tmp_path / "feedback.db").rows()) == 3  # and kept in the file as well
    seen["public"] = True  # a repo that exists and is public: people's texts would be published
    refused = subprocess.run([sys.executable, "-c", MIRRORED, str(tmp_path / "again.db")], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "The corrections repo me/corrections is public" in refused.stderr
    assert len(seen["commits"]) == 1


CHANGED_MIND = """
import sys
from emotion_core.feedback import Correction, FeedbackStore
store = FeedbackStore.for_app(sys.argv[1])  # the Space restarted: a new disk, the same repo
for corrected, key, at in (("sadness", "k1", "2030-01-01T00:00:00+00:00"), ("love", None, "2030-01-01T00:00:01+00:00")):
    store.save(Correction(text="text 1", model="m", model_hash="h", predicted="joy", probabilities={"joy": 1.0},
                          corrected=corrected, source="api", key=key, created_at=at))
store.mirror.scheduler.trigger().result()
"""


def test_a_space_s_corrections_are_pulled_from_its_repo_into_a_local_store_once(fake_hub, tmp_path):
    url, seen = fake_hub
    token = "hf_" + "y" * 34
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": url, "HF_TOKEN": token, "EMOTION_FEEDBACK_REPO": "me/corrections"}
    for script, store in ((MIRRORED, "space.db"), (CHANGED_MIND, "restarted.db")):
        subprocess.run([sys.executable, "-c", script, str(tmp_path / store)], cwd=ROOT, env=env, check=True, timeout=120)
    assert len(seen["files"]) == 2  # one file per process
    seen["files"]["corrections/damaged.jsonl"] = '{"text": null, "corrected": "joy"}\nnot json\n'
    pull = [sys.executable, "-m", "emotion_core", "feedback", "pull", "--repo", "me/corrections", "--db", str(tmp_path / "mine.db")]
    first = subprocess.run(pull, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    assert (f"Read 5 corrections in 3 files of me/corrections; 4 new or changed in {tmp_path / 'mine.db'}; 2 lines that "
            "were no correction passed over.") in first.stdout
    again = subprocess.run(pull, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "0 new or changed" in again.stdout and token not in first.stdout + first.stderr + again.stdout + again.stderr
    assert seen["auth"] == {f"Bearer {token}"}
    rows = {(r.key, r.text, r.corrected) for r in read_store(tmp_path / "mine.db")}
    assert rows == {("k0", "text 0", "anger"), ("k1", "text 1", "sadness"), ("k2", "text 2", "anger"), (None, "text 1", "love")}
    offline = subprocess.run(pull, cwd=ROOT, env={**env, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=60)
    assert offline.returncode == 1 and offline.stderr.strip().endswith(
        "Could not reach the corrections repo me/corrections: HF_HUB_OFFLINE=1 is set.")


def test_merging_keeps_each_key_s_last_answer_whatever_the_order_and_changes_nothing_twice(tmp_path):
    store = FeedbackStore.open(tmp_path / "feedback.db")
    first, changed = correction(1, key="k"), correction(1, key="k")
    first.created_at, changed.created_at, changed.corrected = "2030-01-01T00:00:00+00:00", "2030-01-02T00:00:00+00:00", "fear"
    keyless = correction(2)
    assert store.merge([changed, first, keyless]) == (2, 0)
    assert store.merge([first]) == (0, 0) and store.merge([changed, keyless]) == (0, 0)
    assert {(r.key, r.corrected) for r in store.rows()} == {("k", "fear"), (None, keyless.corrected)}
    again = correction(1, key="k")  # a change of mind in the same second, pulled after the first answer was
    again.created_at, again.corrected = changed.created_at, "sadness"
    assert store.merge([changed, again]) == (1, 0) and store.merge([changed, again]) == (0, 0)
    other = correction(3, key="k")  # a key stored with another text is passed over, and said to be
    other.created_at = "2031-01-01T00:00:00+00:00"
    assert store.merge([other]) == (0, 1) and {(r.key, r.corrected) for r in store.rows()} == {("k", "sadness"), (None, "anger")}


@pytest.mark.parametrize("line", ['{"text": null}', "not json", b'{"text": "caf\xe9"}'],
                         ids=["a text that is not text", "not JSON", "not UTF-8"])
def test_a_line_that_is_no_correction_is_refused(line):
    from emotion_core.feedback import parse_line

    with pytest.raises((ValueError, TypeError, KeyError)):
        parse_line(line if isinstance(line, bytes) else line.encode())


def test_a_line_s_time_is_read_in_utc_as_the_apps_write_it():
    from dataclasses import asdict

    from emotion_core.feedback import parse_line

    row = asdict(correction(1, key="k"))
    for written, read in (("2030-01-01T02:00:00+02:00", "2030-01-01T00:00:00+00:00"),
                          ("2030-01-01T00:00:00.250Z", "2030-01-01T00:00:00.250+00:00")):
        assert parse_line(json.dumps({**row, "created_at": written}).encode()).created_at == read
    with pytest.raises(EmotionCoreError, match="lone surrogate"):
        parse_line(json.dumps({**row, "text": "\ud800"}).encode())


def test_an_unreachable_repo_leaves_corrections_in_the_file(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("EMOTION_FEEDBACK_REPO", "me/corrections")  # and HF_HUB_OFFLINE=1, as in every test
    store = FeedbackStore.for_app(tmp_path / "feedback.db")
    assert store.mirror is None and "Could not reach the corrections repo me/corrections" in caplog.text
    assert store.save(correction(1))


def test_the_gate_replaces_only_a_model_better_on_held_back_corrections_that_keeps_the_test_splits(
        tmp_path, tiny_neutral_model, tiny_model_dir):
    from emotion_core import Classifier
    from emotion_core.evaluation import eval_data
    from emotion_core.feedback import gate, gate_report, split_corrections

    rows = [correction(i) for i in range(50)] + [correction(7)]  # text number 7 corrected twice
    train, held = split_corrections(rows)
    assert 0 < len(held) < 25 and not {r.text for r in train} & {r.text for r in held}  # a text on one side only
    assert {r.text for r in split_corrections(rows + [correction(99)])[1]} - {"text number 99"} == {r.text for r in held}
    current = Classifier.from_pretrained(tiny_neutral_model)
    people = {f"i feel so happy number {i}": "anger" for i in range(10)}  # what people said the model got wrong
    pd.DataFrame({"text": list(people), "label": list(people.values())}).to_csv(tmp_path / "held.csv", index=False)

    texts, truth, _ = eval_data(current, None, splits=("test",))["test"]
    right = [t for t, y, p in zip(texts, truth, current.predict_batch(texts)) if next(iter(p)) == current.labels[y]]

    class Retrained:
        """A model that learned the corrections and answers like the current one elsewhere, but on the test texts
        in `spoiled`, which the current model gets right and this one not."""

        labels = current.labels

        def __init__(self, spoiled: tuple[str, ...] = ()):
            self.spoiled = spoiled

        def predict_batch(self, texts):
            answers = current.predict_batch(texts)
            for i, text in enumerate(texts):
                if text in people:
                    answers[i] = {people[text]: 1.0}
                elif text in self.spoiled:
                    answers[i] = {next(label for label in self.labels if label != next(iter(answers[i]))): 1.0}
            return answers

    assert gate(current, current, tmp_path / "held.csv")["replace"] is False  # not better on the corrections
    better = gate(current, Retrained(), tmp_path / "held.csv")
    held_back, *tests = better["rows"]
    assert better["replace"] is True and (held_back["current"], held_back["candidate"]) == (0.0, 1.0)
    assert len(tests) == 1 and tests[0]["split"].endswith(" test") and tests[0]["candidate"] == tests[0]["current"]
    worse = gate(current, Retrained(spoiled=(right[0],)), tmp_path / "held.csv")  # one test text of 80 wrong: 1.25 points
    assert (worse["replace"], worse["better_on_corrections"], worse["test_splits_kept"]) == (False, True, False)
    report = gate_report(worse, "models/current", "runs/retrained")
    assert report.startswith("# Retraining gate: Keep the current model") and "more than 0.5% worse on a test split" in report
    assert "| held-back corrections | 10 | 0.00% | 100.00% | +100.00% |" in report
    random = Classifier.from_pretrained(tiny_model_dir)  # six labels, random weights: worse everywhere
    assert gate(current, random, tmp_path / "held.csv")["replace"] is False
