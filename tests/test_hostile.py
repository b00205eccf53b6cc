"""One catalogue of hostile input, run against the `score` command, the Gradio app and the Flask app.

Every case must get either a valid answer or a clear message, and the server must answer a
normal request right after it. The servers run as users run them (`python app_flask.py`,
`python app_gradio.py`, bundled model); each outcome must be the one docs/catalogue.md lists, which
`python -m benchmarks.write_catalogue` rewrites (a run of this module with EMOTION_WRITE_CATALOGUE=1)
when a change means to alter them. Property tests (hypothesis) then throw arbitrary strings and
tables at the core.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emotion_core import EmotionCoreError
from emotion_core.batch import score_csv
from tests.helpers import ROOT, flask_server, free_port, gradio_refusal, gradio_server

OK = None  # expected outcome: a valid answer

# name -> (text, expected outcome in the apps, expected outcome in `score`)
TEXTS = {
    "empty": ("", "Text is empty", "skipped as empty"),
    "whitespace": (" \t\n  ", "Text is empty", "skipped as empty"),
    "1 MB text": ("happy " * 174_763, "Text is too long: 1,048,578 characters (the limit is 10,000).", OK),
    "control characters and NUL": ("i feel \x00 so \x07 happy \x1b[31m today\x7f", OK, OK),
    "emoji and non-Latin scripts": ("😀🎉 so happy today, je suis très heureux 我很高兴 أنا سعيد очень рад", OK, OK),
    "another language": ("Estoy muy feliz porque aprobé el examen.", OK, OK),
    "HTML and script tags": ('<script>alert("x")</script><img src=x onerror=alert(1)> i am so angry', OK, OK),
}
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\xff\xfe\x00\x10" + bytes(range(256)) * 4
# name -> (file bytes, expected outcome in all three)
FILES = {
    "CSV not in UTF-8": ("text\ncafé crème, très bien\n".encode("latin-1"), "is not UTF-8 text"),
    "no text column": (b"id,score\n1,0.5\n2,0.7\n", "no column 'text' and no single text column (found: id, score)"),
    "empty file": (b"", "is empty: expected a header row"),
    "header only": (b"id,text\n", "has a header but no rows to score"),
    "binary file named .csv": (BINARY, "is not UTF-8 text"),
    "quoted newlines, quotes and commas in cells": (b'id,text\n1,"line one\nline two"\n2,"a ""quoted"" word, and a comma"\n', OK),
}
NORMAL = "i feel so happy today"
CATALOGUE = ROOT / "docs" / "catalogue.md"
WRITING = os.environ.get("EMOTION_WRITE_CATALOGUE") == "1"
outcomes: list[tuple[str, str, str]] = []  # (case, target, what happened), in the order the tests ran


def listed() -> dict[tuple[str, str], str]:
    """The catalogue's outcome of each (case, target)."""
    rows = [line[2:-2].split(" | ", 2) for line in CATALOGUE.read_text().splitlines() if line.startswith("| ") and " --- " not in line]
    return {(case, target): what for case, target, what in rows[1:]}  # rows[0]: the header


@pytest.fixture(scope="module", autouse=True)
def write_catalogue():
    yield
    if WRITING and outcomes:
        lines = ["# Hostile-input catalogue: outcomes", "",
                 "Written by `python -m benchmarks.write_catalogue` (a run of `tests/test_hostile.py`): every case",
                 "against each target, then a normal request that must still succeed. The tests check that",
                 "every outcome is still the one listed here.", "", "| case | target | outcome |", "| --- | --- | --- |"]
        lines += [f"| {case} | {target} | {what} |" for case, target, what in outcomes]
        CATALOGUE.write_text("\n".join(lines) + "\n")


def record(case: str, target: str, what: str) -> None:
    """Keep the outcome for the catalogue, and check that it is the one the catalogue lists."""
    # a temporary folder's path says nothing and differs every run: keep the file name
    what = re.sub(rf"{re.escape(tempfile.gettempdir())}/\S*/(\S+)", r"\1", what)
    what = " ".join(what.split())[:160].replace("|", "/")
    outcomes.append((case, target, what))
    if not WRITING:
        assert listed().get((case, target)) == what, (
            f"{case} / {target}: {what!r} is not what docs/catalogue.md lists; if the change means it, "
            "run python -m benchmarks.write_catalogue")


# ----------------------------------------------------------------------------- servers

@pytest.fixture(scope="module")
def flask_url():
    with flask_server() as url:
        yield url


@pytest.fixture(scope="module")
def gradio(tmp_path_factory):
    from gradio_client import Client

    with gradio_server() as url:
        yield Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


def flask_call(url: str, path: str, **kwargs) -> tuple[int, str]:
    """POST JSON (`json=`) or a CSV upload (`csv=`); the status and the body."""
    if "json" in kwargs:
        data, headers = json.dumps(kwargs["json"]).encode(), {"Content-Type": "application/json"}
    else:
        boundary = "catalogue-boundary"
        data = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload.csv\"\r\n"
                f"Content-Type: text/csv\r\n\r\n").encode() + kwargs["csv"] + f"\r\n--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    request = urllib.request.Request(url + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")


def flask_still_serves(url: str) -> None:
    status, body = flask_call(url, "/api/predict", json={"text": NORMAL})
    assert status == 200 and json.loads(body)["emotion"] == "joy"


def gradio_still_serves(client) -> None:
    assert client.predict(NORMAL, api_name="/classify")["emotion"] == "joy"


def answered(answer: dict) -> str:
    """A valid answer's outcome: its emotion, or that its language was not read (no probabilities, a message)."""
    if answer["emotion"] is None:
        assert answer["probabilities"] == {} and answer["message"].startswith("This model reads English")
        return f"not read: {answer['language']}"
    assert sum(answer["probabilities"].values()) == pytest.approx(1, abs=1e-4) and answer["language"] == "en"
    return answer["emotion"]


# ----------------------------------------------------------------------------- texts

@pytest.mark.parametrize("case", TEXTS)
def test_text_in_flask(flask_url, case):
    text, expected, _ = TEXTS[case]
    status, body = flask_call(flask_url, "/api/predict", json={"text": text})
    answer = json.loads(body)
    if expected is OK:
        assert status == 200
        record(case, "Flask /api/predict", f"200, {answered(answer)}")
    else:
        assert status in (413, 422) and expected in answer["error"]
        record(case, "Flask /api/predict", f"{status}: {answer['error']}")
    flask_still_serves(flask_url)


@pytest.mark.parametrize("case", TEXTS)
def test_text_in_gradio(gradio, case):
    text, expected, _ = TEXTS[case]
    if expected is OK:
        record(case, "Gradio /classify", f"answer: {answered(gradio.predict(text, api_name='/classify'))}")
    else:
        with pytest.raises(Exception) as err:
            gradio.predict(text, api_name="/classify")
        assert expected in gradio_refusal(err.value)
        record(case, "Gradio /classify", f"400: {gradio_refusal(err.value)}")
    gradio_still_serves(gradio)


@pytest.mark.parametrize("case", TEXTS)
def test_text_in_score(tmp_path, case):
    text, _, expected = TEXTS[case]
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": [1, 2], "text": [text, NORMAL]}).to_csv(src, index=False)
    result = run_score(src, tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert out["id"].tolist() == [1, 2] and out["emotion"][1] == "joy"
    if expected is OK:  # an emotion, or none for a text not in English
        assert (out["emotion"][0] and float(out["confidence"][0]) > 0) != (out["language"][0] not in ("en", ""))
    else:
        assert out["emotion"][0] == "" and expected in result.stdout
    outcome = f"; emotion {out['emotion'][0]}" if out["emotion"][0] else f"; language {out['language'][0]}" if out["language"][0] else ""
    record(case, "score", result.stdout.strip().split(" into ")[0] + outcome)


# ----------------------------------------------------------------------------- files

def run_score(src: Path, dst: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emotion_core", "score", str(src), "-o", str(dst), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("case", FILES)
def test_file_in_score(tmp_path, case):
    content, expected = FILES[case]
    src, dst = tmp_path / "upload.csv", tmp_path / "out.csv"
    src.write_bytes(content)
    result = run_score(src, dst)
    if expected is OK:
        assert result.returncode == 0, result.stderr
        assert pd.read_csv(dst, dtype=str)["text"].tolist() == pd.read_csv(src, dtype=str)["text"].tolist()
        record(case, "score", result.stdout.strip().split(" into ")[0])
    else:
        assert result.returncode == 1 and expected in result.stderr and not dst.exists()
        assert result.stderr.count("\n") == 1, "one line, no traceback"
        record(case, "score", f"exit 1: {result.stderr.strip()}")


@pytest.mark.parametrize("case", FILES)
def test_file_in_flask(flask_url, case):
    content, expected = FILES[case]
    status, body = flask_call(flask_url, "/api/score", csv=content)
    if expected is OK:
        assert status == 200 and body.startswith("id,text,language,emotion,confidence")
        record(case, "Flask /api/score", "200, scored CSV")
    else:
        assert status == 422 and expected in json.loads(body)["error"]
        record(case, "Flask /api/score", f"{status}: {json.loads(body)['error']}")
    flask_still_serves(flask_url)


@pytest.mark.parametrize("case", FILES)
def test_file_in_gradio(gradio, tmp_path, case):
    from gradio_client import handle_file

    content, expected = FILES[case]
    src = tmp_path / "upload.csv"
    src.write_bytes(content)
    if expected is OK:
        scored = gradio.predict(handle_file(str(src)), None, api_name="/score_csv")
        assert pd.read_csv(scored, dtype=str)["text"].tolist() == pd.read_csv(src, dtype=str)["text"].tolist()
        record(case, "Gradio /score_csv", "scored CSV")
    else:
        with pytest.raises(Exception) as err:
            gradio.predict(handle_file(str(src)), None, api_name="/score_csv")
        assert expected in str(err.value)
        record(case, "Gradio /score_csv", f"error: {err.value}")
    gradio_still_serves(gradio)


def test_oversize_uploads_are_refused(flask_url, gradio, tmp_path):
    from gradio_client import handle_file

    big = b"text\n" + b"i feel happy today\n" * 1_200_000  # 22.8 MB: over Flask's 10 MB and Gradio's 20 MB
    status, body = flask_call(flask_url, "/api/score", csv=big)
    assert status == 413 and json.loads(body)["error"] == "The request is too large (the limit is 10 MB)."
    record("over-size upload (22.8 MB)", "Flask /api/score", f"413: {json.loads(body)['error']}")
    flask_still_serves(flask_url)
    src = tmp_path / "big.csv"
    src.write_bytes(big)
    with pytest.raises(Exception) as err:
        gradio.predict(handle_file(str(src)), None, api_name="/score_csv")
    assert "File too large" in str(err.value) or "exceeds" in str(err.value) or "413" in str(err.value), str(err.value)
    record("over-size upload (22.8 MB)", "Gradio /score_csv", f"error: {err.value}")
    gradio_still_serves(gradio)
    record("over-size upload (22.8 MB)", "score", "not capped: a local file is streamed (1,000,000 rows in 1.18 GB)")


@pytest.mark.parametrize("body,message", [
    (["a list"], 'either "text"'),
    ({"text": 42}, "must be a string, not int"),
    ({"texts": [1, 2]}, "must be a string, not int"),
    ({"texts": "not a list"}, "non-empty list"),
    ({"text": "hi", "explain": "yes"}, '"explain" and "sentences" must be true or false'),
])
def test_json_of_the_wrong_shape_in_flask(flask_url, body, message):
    status, answer = flask_call(flask_url, "/api/predict", json=body)
    assert status in (400, 422) and message in json.loads(answer)["error"]
    record(f"JSON {json.dumps(body)}", "Flask /api/predict", f"{status}: {json.loads(answer)['error']}")
    flask_still_serves(flask_url)


def test_wrong_types_in_gradio(gradio):
    with pytest.raises(Exception) as err:
        gradio.predict(None, api_name="/classify")
    assert "Text is empty" in gradio_refusal(err.value)
    record("null instead of a text", "Gradio /classify", f"400: {gradio_refusal(err.value)}")
    gradio_still_serves(gradio)


# ----------------------------------------------------------------------------- models

def broken_folder(tmp_path: Path) -> str:
    folder = tmp_path / "broken-model"
    folder.mkdir()
    (folder / "config.json").write_text("{")
    return str(folder)


MODELS = {"EMOTION_MODEL a Hub id, offline": lambda tmp_path: "someone/missing-model",
          "EMOTION_MODEL a broken model folder": broken_folder}


@pytest.mark.parametrize("app", ["app_gradio.py", "app_flask.py"])
@pytest.mark.parametrize("case", MODELS)
def test_a_model_that_cannot_be_loaded_stops_the_start_in_one_line(tmp_path, app, case):
    port = str(free_port())
    env = {**os.environ, "EMOTION_MODEL": MODELS[case](tmp_path), "HF_HUB_OFFLINE": "1", "GRADIO_SERVER_PORT": port,
           "GRADIO_SERVER_NAME": "127.0.0.1"}
    command = [sys.executable, app] + (["--port", port] if app == "app_flask.py" else [])
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    stderr = done.stderr.strip()
    assert done.returncode == 1 and "Traceback" not in stderr and len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("error: ")
    record(case, f"python {app}", stderr)


# ----------------------------------------------------------------------------- properties

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_any_string_gives_a_distribution_or_a_clear_error(classifier, text):
    try:
        probs = classifier.predict_proba([text])[0]
    except EmotionCoreError as exc:
        assert "Text is empty" in str(exc) and not text.strip()
        return
    assert text.strip() and np.isfinite(probs).all() and probs.min() >= 0 and probs.sum() == pytest.approx(1, abs=1e-5)


cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(cells, cells), min_size=1, max_size=30))
def test_any_table_comes_back_with_the_same_rows_in_the_same_order(classifier, tmp_path_factory, rows):
    folder = tmp_path_factory.mktemp("table")
    frame = pd.DataFrame({"id": [f"{i:03d}" for i in range(len(rows))], "text": [a for a, _ in rows],
                          "note": [b for _, b in rows]})
    frame.to_csv(folder / "in.csv", index=False)
    score_csv(folder / "in.csv", folder / "out.csv", classifier, progress=False, chunk_rows=7)
    out = pd.read_csv(folder / "out.csv", dtype=str, keep_default_na=False)
    back = pd.read_csv(folder / "in.csv", dtype=str, keep_default_na=False)  # what pandas itself reads back
    assert out[["id", "text", "note"]].equals(back)
    assert (out["language"] == "").tolist() == [not t.strip() for t in back["text"]]
    assert (out["emotion"] == "").tolist() == [not t.strip() or language != "en" for t, language in zip(back["text"], out["language"])]
