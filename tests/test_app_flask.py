"""The Flask app: every route and bad input through the test client, a live waitress server, a real browser.

Behaviour is tested on the tiny model trained with neutral (conftest), whose answers follow its cue words;
the tests named `bundled` check what users get from the bundled model as the app starts with no settings.
"""

import json
import threading
import urllib.error
import urllib.request
from dataclasses import replace

import pandas as pd
import pytest

from app_flask import create_app
from emotion_core import Classifier
from emotion_core.config import example_texts
from emotion_core.explain import explain
from tests.helpers import bundled_engine, flask_server, post_json, screenshot_path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def app(tiny_neutral_model):
    """The app on the tiny model trained with neutral, small limits so the tests can reach them."""
    return create_app({"TESTING": True, "MODEL": str(tiny_neutral_model), "MAX_TEXT_CHARS": 500, "MAX_BATCH": 8,
                       "MAX_CONTENT_LENGTH": 64 * 1024})


@pytest.fixture(scope="module")
def bundled_app():
    """The app as users start it: no settings, so the bundled model."""
    return create_app({"TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


# ----------------------------------------------------------------------------- page

def test_form_page_has_no_external_assets(client):
    response = client.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and '<label for="text">' in html
    assert "a CSV of up to 64 KB and\n    50,000 rows, answered when every row is scored" in html  # what an upload may be
    assert "http://" not in html and "https://" not in html and "<script" not in html
    with client.get("/static/css/style.css") as css:  # a file response: closed, as a server closes it
        assert css.status_code == 200


def test_every_example_is_a_button_that_classifies_it(client):
    html = client.get("/").get_data(as_text=True)
    examples = example_texts()
    assert len(examples) >= 5 and html.count('<button type="submit" name="text" value=') == len(examples)
    response = client.post("/", data={"text": examples[0]})
    assert response.status_code == 200 and "Top emotion" in response.get_data(as_text=True)


def test_post_shows_every_emotion_highest_first_and_keeps_the_text(client):
    response = client.post("/", data={"text": "i feel so furious today"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'Top emotion: <span class="emotion emotion-anger">anger</span>' in html
    names = [line.split(">")[1].split("<")[0] for line in html.splitlines() if '<span class="name">' in line]
    assert len(names) == 4 and names[0] == "anger" and "no clear emotion" in names
    assert ">i feel so furious today</textarea>" in html
    marks = [line for line in html.split("<mark ")[1:]]
    assert len(marks) == 5 and any('class="w w-pos-4"' in m and ">furious</mark>" in m for m in marks)


def test_a_text_no_word_of_which_moves_the_answer_is_not_painted_in_full_colour(client, monkeypatch):
    """Faint scores (how faint a model's are depends on the machine it trained on, so they are made faint here)
    get the legend and no strong colour; decisive ones get no legend."""
    def faint(classifier, text):
        why = explain(classifier, text)
        peak = max(abs(s) for s in why.scores) or 1.0
        return replace(why, scores=[s / peak / 10 for s in why.scores])  # the strongest word moves a tenth of a unit

    furious = client.post("/", data={"text": "i feel so furious today"}).get_data(as_text=True)
    assert "No word on its own" not in furious and "-4\"" in furious
    monkeypatch.setattr("app_flask.explain", faint)
    html = client.post("/", data={"text": "i feel so furious today"}).get_data(as_text=True)
    assert "No word on its own changes this prediction much" in html
    assert html.count("<mark ") == 5 and "-4\"" not in html and "-3\"" not in html


def test_explanation_words_are_escaped_too(client):
    html = client.post("/", data={"text": "i feel <b>great</b> today"}).get_data(as_text=True)
    assert "<b>great</b>" not in html and "&lt;b&gt;great&lt;/b&gt;</mark>" in html


@pytest.mark.parametrize("text,status,message", [
    ("", 400, "Text is empty"),
    ("   ", 400, "Text is empty"),
    ("x" * 501, 413, "Text is too long: 501 characters (the limit is 500)."),
])
def test_page_bad_text_gets_a_message(client, text, status, message):
    response = client.post("/", data={"text": text})
    assert response.status_code == status and message in response.get_data(as_text=True)


def test_user_text_is_shown_as_text_never_markup(client):
    attack = '<script>alert(1)</script><img src=x onerror=alert(2)>'
    html = client.post("/", data={"text": attack}).get_data(as_text=True)
    assert attack not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_security_headers_everywhere(client):
    for response in (client.get("/"), client.get("/healthz"), client.post("/api/predict", json={})):
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_healthz(client, tiny_neutral_model):
    assert client.get("/healthz").get_json() == {
        "status": "ok", "model": "tiny-neutral", "engine": Classifier.from_pretrained(tiny_neutral_model).engine.name,
        "labels": ["sadness", "joy", "anger", "neutral"]}


def test_bundled_healthz(bundled_app):
    assert bundled_app.test_client().get("/healthz").get_json() == {
        "status": "ok", "model": "emotion-minilm", "engine": bundled_engine(),
        "labels": ["sadness", "joy", "love", "anger", "fear", "surprise", "neutral"]}


def test_debug_is_off_unless_asked(app):
    assert app.debug is False


# ----------------------------------------------------------------------------- JSON API

def test_api_predict_one_and_many(client):
    one = client.post("/api/predict", json={"text": "i feel so happy today"}).get_json()
    assert one["emotion"] == "joy" and list(one["probabilities"])[0] == "joy"
    assert sum(one["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    many = client.post("/api/predict", json={"texts": ["i am furious", "i feel so lonely"]}).get_json()
    assert [p["emotion"] for p in many["predictions"]] == ["anger", "sadness"]
    assert "explanation" not in one and "explanation" not in many["predictions"][0]


SPANISH = "Estoy muy feliz porque aprobé el examen de matemáticas."
GERMAN = "Ich bin so wütend auf meinen Chef, er hört mir nie zu."


def test_api_says_when_a_text_is_not_english_and_gives_it_no_emotion(client):
    one = client.post("/api/predict", json={"text": SPANISH}).get_json()  # a single text: through the batcher
    assert one == {"model": one["model"], "emotion": None, "language": "es", "probabilities": {},
                   "message": "This model reads English; this looks like Spanish."}
    many = client.post("/api/predict", json={"texts": ["i am furious", GERMAN], "explain": True}).get_json()["predictions"]
    assert [(p["emotion"], p["language"]) for p in many] == [("anger", "en"), (None, "de")]
    assert many[0]["explanation"]["label"] == "anger" and many[1]["explanation"] is None
    assert "message" not in many[0] and many[1]["message"].endswith("this looks like German.")
    mixed = f"I am so happy today, the sun is out and all my friends are coming over tonight. {GERMAN}"
    read = client.post("/api/predict", json={"text": mixed, "sentences": True}).get_json()
    assert read["language"] == "en" and read["emotion"] in read["probabilities"]
    german = [s for s in read["sentences"] if s["language"] == "de"]  # the tiny model reads it in windows of words
    assert german and all(s["emotion"] is None and s["text"] in GERMAN for s in german)


def test_the_page_says_when_a_text_is_not_english_in_place_of_the_bars(client):
    html = client.post("/", data={"text": SPANISH}).get_data(as_text=True)
    assert '<p id="language-notice" class="notice language" role="status">This model reads English; this looks like ' \
           'Spanish.</p>' in html
    assert '<ul class="bars">' not in html and "Save correction" not in html and "<title>Emotion</title>" in html
    mixed = client.post("/", data={"text": f"I am so happy today, the sun is out and all my friends are coming over tonight. "
                                           f"{GERMAN}"}).get_data(as_text=True)
    assert '<span class="chip unread">not read: German</span>' in mixed and '<ul class="bars">' in mixed


def test_any_language_reads_every_text_in_the_app(tiny_neutral_model, monkeypatch):
    monkeypatch.setenv("EMOTION_ANY_LANGUAGE", "1")
    one = create_app({"TESTING": True, "MODEL": str(tiny_neutral_model)}).test_client().post("/api/predict", json={"text": SPANISH})
    assert one.get_json()["language"] == "es" and one.get_json()["emotion"] is not None


def test_api_predict_explains_on_request(client):
    one = client.post("/api/predict", json={"text": "i am furious about the delay", "explain": True}).get_json()
    why = one["explanation"]
    assert why["label"] == one["emotion"] == "anger"
    assert why["probability"] == pytest.approx(one["probabilities"]["anger"], abs=0.02)  # int8 scales activations per batch
    assert [w["word"] for w in why["words"]] == "i am furious about the delay".split()
    assert max(why["words"], key=lambda w: w["score"])["word"] == "furious"
    peak = max(1.0, *(abs(w["score"]) for w in why["words"]))  # scaled by the strongest word, never blown up
    assert [w["scaled"] for w in why["words"]] == pytest.approx([w["score"] / peak for w in why["words"]])
    many = client.post("/api/predict", json={"texts": ["i am furious", "so lonely"], "explain": True}).get_json()
    assert [len(p["explanation"]["words"]) for p in many["predictions"]] == [3, 2]


@pytest.mark.parametrize("kwargs,status,message", [
    ({"data": "text=hi", "content_type": "application/x-www-form-urlencoded"}, 415, "Content-Type: application/json"),
    ({"data": "{not json", "content_type": "application/json"}, 400, "not valid JSON"),
    ({"json": ["a list"]}, 400, 'either "text"'),
    ({"json": {"text": "a", "texts": ["b"]}}, 400, 'either "text"'),
    ({"json": {"message": "hi"}}, 400, 'either "text"'),
    ({"json": {"text": 42}}, 422, "must be a string, not int"),
    ({"json": {"text": " "}}, 422, "Text is empty"),
    ({"json": {"texts": ["fine", "i am \ud83d happy"]}}, 422, "Text is not valid Unicode: character 6 is a lone surrogate"),
    ({"json": {"texts": "not a list"}}, 422, "non-empty list"),
    ({"json": {"texts": []}}, 422, "non-empty list"),
    ({"json": {"texts": ["word " * 50] * 6, "explain": True}}, 413, "Too many words to explain: 300 (the limit is 250"),
    ({"json": {"texts": ["ok", None]}}, 422, "must be a string, not NoneType"),
    ({"json": {"texts": ["a"] * 9}}, 413, "Too many texts: 9 (the limit is 8 per request)."),
    ({"json": {"text": "x" * 501}}, 413, "Text is too long"),
    ({"json": {"text": "x" * 70_000}}, 413, "The request is too large (the limit is 64 KB)."),
    ({"json": {"text": "hi", "explain": "yes"}}, 400, '"explain" and "sentences" must be true or false'),
    ({"json": {"text": "hi", "sentences": 1}}, 400, '"explain" and "sentences" must be true or false'),
])
def test_api_predict_bad_input(client, kwargs, status, message):
    response = client.post("/api/predict", **kwargs)
    assert response.status_code == status
    assert message in response.get_json()["error"]


def test_api_unknown_route_and_method_are_json(client):
    assert client.get("/api/predict").status_code == 405 and "error" in client.get("/api/predict").get_json()
    assert client.get("/api/nothing").status_code == 404 and "error" in client.get("/api/nothing").get_json()


def test_api_score_returns_the_scored_csv(client, tmp_path):
    from io import BytesIO

    data = {"file": (BytesIO(b"id,comment\n1,i feel wonderful\n2,\n"), "my reviews.csv")}
    with client.post("/api/score", data=data, content_type="multipart/form-data") as response:
        assert response.status_code == 200 and response.mimetype == "text/csv"
        assert 'filename=my_reviews-scored.csv' in response.headers["Content-Disposition"]
        (tmp_path / "out.csv").write_bytes(response.data)
    scored = pd.read_csv(tmp_path / "out.csv")
    assert scored["id"].tolist() == [1, 2] and scored["emotion"].tolist()[0] == "joy"
    assert list(scored.columns)[-4:] == [f"prob_{x}" for x in ("sadness", "joy", "anger", "neutral")]


@pytest.mark.parametrize("data,status,message", [
    ({}, 400, 'form field "file"'),
    ({"file": (b"title,body\na,b\n", "x.csv")}, 422, "no single text column (found: title, body)"),
    ({"file": (b"title,body\na,b\n", "x.csv"), "text_column": "nope"}, 422, "CSV has no column 'nope'"),
    ({"file": ("text\ncaf\xe9\n".encode("latin-1"), "x.csv")}, 422, "x.csv is not UTF-8 text"),
    ({"file": (b"", "x.csv")}, 422, "is empty"),
    ({"file": (b"x" * 70_000, "big.csv")}, 413, "too large"),
])
def test_api_score_bad_input(client, data, status, message):
    from io import BytesIO

    form = {k: (BytesIO(v[0]), v[1]) if isinstance(v, tuple) else v for k, v in data.items()}
    response = client.post("/api/score", data=form, content_type="multipart/form-data")
    assert response.status_code == status and message in response.get_json()["error"]


# ----------------------------------------------------------------------------- neutral, sentences, documents

def test_neutral_reads_no_clear_emotion_on_the_page_and_neutral_in_the_api(client):
    html = client.post("/", data={"text": "the quick brown fox at work"}).get_data(as_text=True)
    assert 'Top emotion: <span class="emotion emotion-neutral">no clear emotion</span>' in html
    names = [line.split(">")[1].split("<")[0] for line in html.splitlines() if '<span class="name">' in line]
    assert names[0] == "no clear emotion" and len(names) == 4
    body = client.post("/api/predict", json={"text": "the quick brown fox at work"}).get_json()
    assert body["emotion"] == "neutral" and list(body["probabilities"])[0] == "neutral"


def test_sentences_on_the_page_and_in_the_api(client):
    text = "the quick fox at work. i feel so furious today."
    body = client.post("/api/predict", json={"text": text, "sentences": True}).get_json()
    assert body["whole"] is True and [s["text"] for s in body["sentences"]] == ["the quick fox at work.", "i feel so furious today."]
    assert [s["emotion"] for s in body["sentences"]] == ["neutral", "anger"]
    assert body["sentences"][1]["start"] == text.index("i feel")
    assert set(body["sentences"][0]["probabilities"]) == set(body["probabilities"])
    html = client.post("/", data={"text": text}).get_data(as_text=True)
    assert "Sentence by sentence" in html and html.count('<span class="chip">') == 2 and "no clear emotion 100%" in html
    single = client.post("/", data={"text": "i feel so furious today"}).get_data(as_text=True)
    assert "Sentence by sentence" not in single  # one sentence: nothing more to show
    many = client.post("/api/predict", json={"texts": [text, "so happy"], "sentences": True}).get_json()
    assert [len(p["sentences"]) for p in many["predictions"]] == [2, 1]


def test_a_long_document_is_read_to_its_end(client):
    document = "the quick brown fox jumps over the lazy dog at work. " * 8 + "i feel so furious today."
    body = client.post("/api/predict", json={"text": document, "sentences": True}).get_json()
    assert body["emotion"] == "anger" and body["whole"] is False and body["sentences"][-1]["emotion"] == "anger"
    html = client.post("/", data={"text": document}).get_data(as_text=True)
    assert 'Top emotion: <span class="emotion emotion-anger">anger</span>' in html and html.count('<span class="chip">') == 9


def test_api_score_one_row_per_sentence(client, tmp_path):
    from io import BytesIO

    csv = b'id,text\n1,"the fox at work. i feel so furious today."\n2,\n3,so happy\n'
    with client.post("/api/score", data={"file": (BytesIO(csv), "x.csv"), "sentences": "true"},
                             content_type="multipart/form-data") as response:
        (tmp_path / "out.csv").write_bytes(response.data)
    scored = pd.read_csv(tmp_path / "out.csv")
    assert scored["id"].tolist() == [1, 1, 2, 3] and scored["sentence"].tolist()[:2] == [1, 2]
    assert scored["emotion"].tolist()[:2] == ["neutral", "anger"] and "prob_neutral" in scored.columns


def test_sentences_are_shown_as_text_never_markup(client):
    html = client.post("/", data={"text": "the fox <b>jumps</b>. i am <i>furious</i>!"}).get_data(as_text=True)
    assert "<b>jumps</b>" not in html and "&lt;i&gt;furious&lt;/i&gt;!</li>" in html


# ----------------------------------------------------------------------------- live server

def waitress_url(app):
    """`app` behind a real waitress server on a free loopback port, until the module ends."""
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()


@pytest.fixture(scope="module")
def live_url(app):
    yield from waitress_url(app)


@pytest.fixture(scope="module")
def bundled_live_url(bundled_app):
    yield from waitress_url(bundled_app)


def test_live_server_json_api(live_url):
    status, body, _ = post_json(f"{live_url}/api/predict", {"text": "i feel so happy today"})
    assert status == 200 and body["emotion"] == "joy"
    status, body, _ = post_json(f"{live_url}/api/predict", {"text": ""})
    assert status == 422 and body == {"error": "Text is empty: type something to classify."}
    with urllib.request.urlopen(f"{live_url}/healthz", timeout=10) as response:
        assert json.load(response)["status"] == "ok" and response.headers["Server"] == "waitress"


@pytest.mark.parametrize("javascript", [True, False])
def test_bundled_browser_fills_the_form_and_reads_the_bars(bundled_live_url, javascript, tmp_path):
    """The page a user sees, on a phone, with the bundled model: it makes the README's picture (docs/flask.png)."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(java_script_enabled=javascript, viewport={"width": 390, "height": 844})  # a phone
        errors = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto(bundled_live_url)
        page.get_by_label("Your text").fill("i am scared of walking home alone at night")
        page.get_by_role("button", name="Classify").click()
        expect(page.get_by_role("heading", name="Top emotion: fear")).to_be_visible()
        rows = page.locator(".bars li")
        expect(rows).to_have_count(7)
        first = rows.first
        assert first.locator(".name").inner_text().lower() == "fear"
        width = float(first.locator("rect:not(.track)").get_attribute("width"))
        assert width > 50 and first.locator(".value").inner_text().endswith("%")
        assert page.get_by_label("Your text").input_value() == "i am scared of walking home alone at night"
        assert page.locator(".bar").first.bounding_box()["width"] > 100  # styles loaded despite the strict CSP
        expect(page.locator(".why mark")).to_have_count(9)
        strongest = page.locator(".why mark.w-pos-4")
        expect(strongest).to_have_text(["scared"])
        assert strongest.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(239, 68, 60)"
        assert not [e for e in errors if "Content Security Policy" in e]
        page.get_by_label("Your text").fill("Ich bin so wütend auf meinen Chef, er hört mir nie zu.")
        page.get_by_role("button", name="Classify").click()
        expect(page.locator("#language-notice")).to_have_text("This model reads English; this looks like German.")
        expect(page.locator(".bars li")).to_have_count(0)
        example = example_texts()[0]
        page.get_by_role("button", name=example).click()  # "Try one": the example is read and stays in the form
        expect(page.get_by_label("Your text")).to_have_value(example)
        expect(page.get_by_role("heading", name="Top emotion: joy")).to_be_visible()
        if javascript:
            page.get_by_label("Your text").fill("The package arrived two days late. The lamp inside is broken. I am furious.")
            page.get_by_role("button", name="Classify").click()
            expect(page.get_by_role("heading", name="Top emotion: anger")).to_be_visible()
            expect(page.get_by_text("Sentence by sentence")).to_be_visible()
            expect(page.locator(".chip")).to_have_count(3)
            shot = screenshot_path(tmp_path, "flask.png")
            page.screenshot(path=str(shot), full_page=True)
            assert shot.read_bytes()[:4] == b"\x89PNG"
        browser.close()


def test_the_served_app_keeps_no_upload_and_refuses_odd_bodies(tiny_neutral_model, tmp_path):
    """Under waitress (which sends files itself), an upload and its scores are gone once answered; a name too long
    for the file system, JSON nested deeper than Python parses and a bad limit are messages, not a 500."""
    import httpx

    (tmp_path / "tmp").mkdir()
    with flask_server(threads=2, model=tiny_neutral_model, env={"TMPDIR": str(tmp_path / "tmp")}) as url:
        for _ in range(2):
            answer = httpx.post(f"{url}/api/score", files={"file": ("r" * 240 + ".csv", b"text\ni feel wonderful\n")},
                                timeout=60)
            assert answer.status_code == 200 and answer.text.startswith("text,language,emotion,confidence")
        assert f'filename={"r" * 100}-scored.csv' in answer.headers["content-disposition"]
        nested = httpx.post(f"{url}/api/predict", content=b"[" * 100_000 + b"]" * 100_000,
                            headers={"Content-Type": "application/json"}, timeout=60)
        assert nested.status_code == 400 and nested.json()["error"] == "The body is not valid JSON."
    assert not list((tmp_path / "tmp").glob("emotion-flask-*"))


@pytest.mark.parametrize("setting", ["5k", "0", "true"])
def test_a_limit_that_is_not_a_count_is_refused_at_start(tiny_neutral_model, monkeypatch, setting):
    from emotion_core import EmotionCoreError

    monkeypatch.setenv("EMOTION_MAX_TEXT_CHARS", setting)
    with pytest.raises(EmotionCoreError, match="MAX_TEXT_CHARS .EMOTION_MAX_TEXT_CHARS. must be a whole number of at least 1"):
        create_app({"MODEL": str(tiny_neutral_model)})


def test_python_app_flask_serves_the_bundled_model_with_waitress():
    with flask_server(threads=2) as url, urllib.request.urlopen(f"{url}/healthz", timeout=10) as response:
        assert json.load(response)["model"] == "emotion-minilm" and response.headers["Server"] == "waitress"
