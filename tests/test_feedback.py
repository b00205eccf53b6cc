"""The corrections store: a real SQLite file, written by many threads and processes at once."""

import re
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from emotion_core import EmotionCoreError
from emotion_core.feedback import MIGRATIONS, SCHEMA_VERSION, Correction, FeedbackStore
from tests.helpers import ROOT, flask_server, post_json

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


def test_an_older_file_is_migrated_and_keeps_its_rows(tmp_path):
    path = tmp_path / "feedback.db"
    with sqlite3.connect(path) as db:  # a store as the first schema made it
        db.execute(MIGRATIONS[0])
        db.execute("INSERT INTO corrections (text, model, model_hash, predicted, probabilities, corrected, source, created_at) "
                   "VALUES ('old text', 'm', 'h', 'joy', '{}', 'sadness', 'flask', '2026-01-01T00:00:00+00:00')")
        db.execute("PRAGMA user_version=1")
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
from concurrent.futures import ThreadPoolExecutor
from emotion_core.feedback import Correction, FeedbackStore
store, process = FeedbackStore.open(sys.argv[1]), int(sys.argv[2])
def save(i):
    key = f"p{process}-{i % 150}"  # every key twice: a form sent again
    store.save(Correction(text=f"t{i}", model="m", model_hash="h", predicted="joy", probabilities={}, corrected="anger",
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
    assert row.model == "tiny-neutral" and len(row.model_hash) == 16 and set(row.probabilities) == set(LABELS)


def test_the_api_stores_a_correction_and_refuses_bad_ones(flask_app, tmp_path):
    client = flask_app.test_client()
    answer = client.post("/api/feedback", json={"text": "i am furious", "label": "sadness", "key": "abc"})
    assert answer.status_code == 201 and answer.json == {"saved": True, "label": "sadness"}
    assert client.post("/api/feedback", json={"text": "i am furious", "label": "sadness", "key": "abc"}).json["saved"] is False
    for body, status, message in [({"text": "i am furious", "label": "hunger"}, 422, "Unknown label 'hunger'"),
                                  ({"text": "  ", "label": "joy"}, 422, "Text is empty"),
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
