"""The Gradio demo: handlers, the launched app through gradio_client, a real browser, and the Space bundle.

Behaviour is tested on the tiny model trained with neutral (conftest), whose answers follow its cue words;
the tests named `bundled` check what users get from the bundled model as the app starts with no settings.
"""

import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from emotion_core import EmotionCoreError, feedback
from emotion_core.explain import explain
from emotion_core.labels import display_name
from tests.helpers import ROOT, bundled_engine, free_port, gradio_refusal, gradio_server, neutral_toy_rows, screenshot_path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
REVIEW = "The package arrived two days late. The lamp inside is broken. I am furious."


@pytest.fixture(scope="module")
def app(tiny_neutral_model):
    """app_gradio started with EMOTION_MODEL set to the tiny model trained with a neutral label."""
    os.environ["EMOTION_MODEL"] = str(tiny_neutral_model)
    sys.modules.pop("app_gradio", None)
    try:
        return importlib.import_module("app_gradio")
    finally:
        del os.environ["EMOTION_MODEL"]
        sys.modules.pop("app_gradio", None)


@pytest.fixture(scope="module")
def bundled_app():
    """app_gradio as a user starts it: no EMOTION_MODEL, so the bundled model (loaded once, at import)."""
    assert "EMOTION_MODEL" not in os.environ
    sys.modules.pop("app_gradio", None)
    try:
        return importlib.import_module("app_gradio")
    finally:
        sys.modules.pop("app_gradio", None)


def launched(app):
    """The real app, launched on loopback until the module ends."""
    port = free_port()
    app.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, max_file_size=app.MAX_UPLOAD,
                    quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.demo.close()


@pytest.fixture(scope="module")
def server(app):
    yield from launched(app)


@pytest.fixture(scope="module")
def bundled_server(bundled_app):
    yield from launched(bundled_app)


@pytest.fixture
def sample_csv(tmp_path) -> Path:
    path = tmp_path / "reviews.csv"
    path.write_text("id,comment\n1,i feel wonderful\n2,\n3,so sad and lonely tonight\n")
    return path


# ----------------------------------------------------------------------------- handlers

def values(outputs) -> list:
    """The values of the text tab's outputs (each an update that also sets whether it is shown)."""
    return [output["value"] if "value" in output else None for output in outputs]


def test_show_gives_label_and_sorted_chart(app):
    outputs = app.show("i feel happy today")
    probs, frame, words, _, _ = values(outputs)
    assert [output.get("visible") for output in outputs] == [True, True, True, False, False]  # no notice
    assert next(iter(probs)) == "joy"
    why = explain(app.classifier, "i feel happy today")  # the highlights are the core's explanation, scaled
    assert words == [(w + " ", round(c, 3)) for w, c in zip(why.words, why.scaled())]
    assert [w for w, _ in words] == ["i ", "feel ", "happy ", "today "] and all(-1 <= s <= 1 for _, s in words)
    assert list(frame.columns) == ["emotion", "probability"] and len(frame) == len(app.classifier.labels)
    assert frame["probability"].is_monotonic_decreasing
    assert list(probs) == frame["emotion"].tolist()


def test_neutral_shows_as_no_clear_emotion(app):
    probs, frame, _, _, _ = values(outputs := app.show("the quick brown fox at work"))
    assert next(iter(probs)) == "no clear emotion" and frame["emotion"].tolist()[0] == "no clear emotion"
    assert set(app.COLORS) == {"sadness", "joy", "anger", "no clear emotion", "not English"}
    assert outputs[3]["visible"] is False  # one sentence: nothing more to show
    [[answer]] = app.classify(["the quick brown fox at work"])
    assert answer["emotion"] == "neutral" and answer["probabilities"]["neutral"] > 0.5  # the API keeps the label's own name
    _, counts = app.summarize(None, None)
    assert counts.empty


def test_several_sentences_are_shown_each_with_its_emotion(app):
    _, _, words, _, _ = values(outputs := app.show("the quick fox at work. i feel so furious today."))
    sentences = outputs[3]
    assert sentences["visible"] is True
    assert sentences["value"] == [("the quick fox at work. ", "no clear emotion"), ("i feel so furious today. ", "anger")]
    assert len(words) == 10
    [[analysed]] = app.analyze(["the quick fox at work. i feel so furious today."])
    assert analysed["emotion"] in ("neutral", "anger") and [s["emotion"] for s in analysed["sentences"]] == ["neutral", "anger"]
    document = "the quick brown fox jumps over the lazy dog at work. " * 8 + "i feel so furious today."
    probs, _, _, sentences, _ = values(app.show(document))
    assert next(iter(probs)) == "anger" and len(sentences) == 9


SPANISH = "Estoy muy feliz porque aprobé el examen de matemáticas."


def test_a_text_in_another_language_gets_the_notice_in_place_of_the_bars(app):
    import gradio as gr

    label, chart, words, sentences, notice = app.show(SPANISH)
    assert [o["visible"] for o in (label, chart, words, sentences)] == [False] * 4
    assert notice == {"__type__": "update", "value": "**This model reads English; this looks like Spanish.**", "visible": True}
    assert app.show("i feel happy today")[0]["visible"] is True  # the bars come back for the next English text
    [[answer]] = app.classify([SPANISH])
    assert answer == {"emotion": None, "language": "es", "probabilities": {},
                      "message": "This model reads English; this looks like Spanish."}
    [[document]] = app.analyze([SPANISH])
    assert (document["emotion"], document["language"], document["sentences"]) == (None, "es", [])
    with pytest.raises(gr.Error, match="this looks like Spanish"):
        app.explain_words(SPANISH)
    with pytest.raises(gr.Error, match="this looks like Spanish. Corrections are kept for texts the model reads"):
        app.save_correction(SPANISH, "joy", None)


def test_the_csv_tab_counts_rows_not_in_english_apart(app, tmp_path):
    pd.DataFrame({"text": ["i feel so happy today", SPANISH, "", "Ich bin so wütend auf meinen Chef."]}).to_csv(
        tmp_path / "mixed.csv", index=False)
    out, label_counts = app.score_file(str(tmp_path / "mixed.csv"))
    assert label_counts == {"joy": 1, "not English": 2}
    _, counts = app.summarize(out, label_counts)
    assert counts["emotion"].tolist() == [*(display_name(x) for x in app.classifier.labels), "not English"]
    assert counts["rows"].tolist()[-1] == 2 and counts["rows"].sum() == 3
    assert pd.read_csv(out, keep_default_na=False)["language"].tolist() == ["en", "es", "", "de"]


@pytest.mark.parametrize("text", ["", "   ", None])
def test_empty_text_is_a_gentle_message(app, text):
    import gradio as gr

    with pytest.raises(gr.Error, match="Text is empty"):
        app.show(text)


def test_huge_text_is_refused_with_the_limit(app):
    import gradio as gr

    with pytest.raises(gr.Error, match="Text is too long: 1,000,000 characters"):
        app.show("a" * 1_000_000)
    with pytest.raises(EmotionCoreError, match="Text is too long: 1,000,000 characters"):
        app.refuse_bad_texts(["a" * 1_000_000])  # the API's check, before a text joins a batch


def test_column_picker_guesses_or_asks(app, tmp_path, sample_csv):
    update = app.pick_column(str(sample_csv))
    assert [value for _, value in update.choices] == ["id", "comment"] and update.value == "comment"
    ambiguous = tmp_path / "two.csv"
    ambiguous.write_text("title,body\na,b\n")
    update = app.pick_column(str(ambiguous))
    assert update.visible is True and update.info == "Which column holds the text?"


def test_score_file_and_summary(app, sample_csv):
    out, label_counts = app.score_file(str(sample_csv), "comment")
    scored = pd.read_csv(out)
    assert scored["id"].tolist() == [1, 2, 3] and scored["emotion"].isna().tolist() == [False, True, False]
    assert label_counts == scored["emotion"].value_counts().to_dict()  # what scoring counted, as the file has it
    preview, counts = app.summarize(out, label_counts)
    assert len(preview) == 3 and counts["rows"].sum() == 2
    assert counts["emotion"].tolist() == [display_name(x) for x in app.classifier.labels]
    assert Path(out).parent != Path(app.score_file(str(sample_csv), "comment")[0]).parent  # one folder per request


@pytest.mark.parametrize("content,message", [
    (b"title,body\na,b\n", "no single text column"),  # the picker asks; scoring without an answer explains
    ("text\ncaf\xe9\n".encode("latin-1"), "not UTF-8 text"),
    (b"", "is empty"),
])
def test_bad_csv_gets_the_cli_message(app, tmp_path, content, message):
    import gradio as gr

    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(gr.Error) as err:
        app.score_file(str(path), None)
    assert message in str(err.value)


def test_bundled_model_tab_names_the_model(bundled_app):
    app = bundled_app
    card = app.model_card()
    assert "`emotion-minilm`" in card and "sentence-transformers/all-MiniLM-L6-v2" in card and "| test | 2,000 |" in card
    assert f"**Engine:** `{bundled_engine()}`" in card and "| validation · goemotions |" in card
    assert "**Calibration:**" in card and "| test |" in card.split("**Calibration:**")[1]
    assert app.model_image("confusion_matrix.png").endswith("confusion_matrix.png")
    assert app.model_image("reliability.png").endswith("reliability.png")


# ----------------------------------------------------------------------------- launched app

def test_client_classify_and_score(app, server, sample_csv, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False, download_files=str(tmp_path))
    answer = client.predict("i feel great", api_name="/classify")
    probs = answer["probabilities"]
    assert set(probs) == set(app.classifier.labels) and abs(sum(probs.values()) - 1) < 1e-4
    assert answer["emotion"] == next(iter(probs)) and answer["language"] == "en"
    scored = client.predict(handle_file(str(sample_csv)), "comment", api_name="/score_csv")
    assert pd.read_csv(scored)["id"].tolist() == [1, 2, 3]
    found = client.predict(handle_file(str(sample_csv)), api_name="/score_csv")  # the column left out: found as score finds it
    assert "prob_joy" in pd.read_csv(found).columns
    with pytest.raises(Exception) as refused:
        client.predict("  ", api_name="/classify")
    assert gradio_refusal(refused.value) == "Text is empty: type something to classify."
    assert len(client.predict("still serving", api_name="/classify")["probabilities"]) == len(app.classifier.labels)
    assert client.predict(SPANISH, api_name="/classify")["message"] == "This model reads English; this looks like Spanish."
    why = client.predict("i am furious about the delay", api_name="/explain")
    assert why["label"] == "anger" and [w["word"] for w in why["words"]] == "i am furious about the delay".split()
    assert max(why["words"], key=lambda w: w["score"])["word"] == "furious"
    analysed = client.predict("The parcel came a week late. I am furious.", api_name="/analyze")
    assert [s["text"] for s in analysed["sentences"]] == ["The parcel came a week late.", "I am furious."]


def test_every_endpoint_the_readme_names_answers_its_required_arguments_alone(server, sample_csv, tmp_path):
    import re

    from gradio_client import Client, handle_file

    client = Client(server, verbose=False, download_files=str(tmp_path))
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    documented = re.search(r"API \(`gradio_client`: (.*?)\)", readme, re.S).group(1)
    assert sorted(re.findall(r"`(/\w+)`", documented)) == sorted(endpoints)
    examples = {"text": "i feel great", "file": handle_file(str(sample_csv)), "label": "joy"}
    for name, info in endpoints.items():
        required = {p["parameter_name"]: examples[p["parameter_name"]] for p in info["parameters"] if not p["parameter_has_default"]}
        assert client.predict(**required, api_name=name) is not None, name


def test_a_correction_saved_in_the_demo_is_stored_once(app, server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    text = "i feel so happy about the gradio correction test"
    assert client.predict(text, "anger", api_name="/feedback") == "Saved: thank you, this text reads as **anger**."
    assert client.predict(text, "anger", api_name="/feedback") == "This correction was saved already."
    with pytest.raises(Exception, match="hunger is not in the list of choices"):  # the dropdown's own check
        client.predict(text, "hunger", api_name="/feedback")
    [row] = [r for r in app.corrections.rows() if r.text == text]
    assert (row.predicted, row.corrected, row.source) == (next(iter(app.classifier.predict(text))), "anger", "gradio")
    assert client.predict(text, "joy", api_name="/feedback") == "Saved: thank you, this text reads as **joy**."
    assert [r.corrected for r in app.corrections.rows() if r.text == text] == ["joy"]  # a change of mind: the last answer


def test_a_store_that_cannot_be_written_is_a_message_and_the_demo_goes_on(app, tmp_path, monkeypatch, caplog):
    import gradio as gr

    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setattr(app, "corrections", feedback.FeedbackStore(tmp_path / "a-file" / "feedback.db"))
    with pytest.raises(gr.Error) as refused:
        app.save_correction("i am furious", "sadness", None)
    assert refused.value.message == feedback.UNAVAILABLE and str(tmp_path) in caplog.text  # the path for the log alone
    assert next(iter(app.show("i am furious")[0]["value"])) == app.classifier.predict("i am furious").label


def test_requests_batched_together_get_their_own_answers_and_errors(app, server):
    """Requests in flight together share one model call; each gets its own text's answer, and a bad text is refused
    alone, before it could fail the batch it would have joined."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    texts = ["i feel so happy today", "the quick brown fox at work", "i am furious", "so lonely and sad", "  "] * 3
    answers = app.classifier.predict_batch([t if t.strip() else "x" for t in texts])
    expected = [p.label if t.strip() else None for t, p in zip(texts, answers)]

    def call(text):
        client = Client(server, verbose=False)
        try:
            return client.predict(text, api_name="/classify")["emotion"]
        except Exception as exc:
            return gradio_refusal(exc)

    with ThreadPoolExecutor(len(texts)) as pool:
        answers = list(pool.map(call, texts))
    assert answers == [e or "Text is empty: type something to classify." for e in expected]


def test_bundled_browser_text_csv_and_review(bundled_server, sample_csv, tmp_path):
    """The demo a user sees, with the bundled model: it makes the README's picture (docs/gradio.png) and the
    review tab's (docs/review.png)."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1080})
        page.goto(bundled_server)
        box = page.locator("#text-input input, #text-input textarea").first
        box.fill("i am so scared of the dark forest at night")
        box.press("Enter")
        expect(page.locator("#emotion-label [data-testid=label-output-value]")).to_have_text("fear", timeout=20_000)
        expect(page.locator("#emotion-label [data-testid=joy-confidence-set]")).to_be_visible()
        expect(page.locator("#emotion-chart canvas, #emotion-chart svg").first).to_be_visible(timeout=20_000)
        expect(page.locator("#why")).to_contain_text("scared", timeout=20_000)
        expect(page.locator("#sentences")).to_be_hidden()
        expect(page.locator("#language-notice")).to_be_hidden()
        box.fill("Ich habe solche Angst vor dem dunklen Wald in der Nacht.")
        box.press("Enter")
        expect(page.locator("#language-notice")).to_have_text("This model reads English; this looks like German.",
                                                              timeout=20_000)
        expect(page.locator("#emotion-label")).to_be_hidden()
        expect(page.locator("#emotion-chart")).to_be_hidden()
        box.fill(REVIEW)
        box.press("Enter")
        expect(page.locator("#sentences")).to_contain_text("The lamp inside is broken.", timeout=20_000)
        expect(page.locator("#emotion-label [data-testid=label-output-value]")).to_have_text("anger", timeout=20_000)
        expect(page.locator("#language-notice")).to_be_hidden()
        expect(page.locator("#why")).to_contain_text("furious", timeout=20_000)
        expect(page.locator(".pending, .generating")).to_have_count(0, timeout=20_000)  # not faded mid-update
        shot = screenshot_path(tmp_path, "gradio.png")
        page.screenshot(path=str(shot))
        assert shot.read_bytes()[:4] == b"\x89PNG"

        page.get_by_role("tab", name="Batch (CSV)").click()
        page.locator("#csv-upload input[type=file]").set_input_files(str(sample_csv))
        page.locator("#score-button").click()
        link = page.locator("#scored-file a").first
        expect(link).to_be_visible(timeout=30_000)
        with page.expect_download() as download:
            link.click()
        path = tmp_path / "downloaded.csv"
        download.value.save_as(path)
        scored = pd.read_csv(path)
        assert scored["id"].tolist() == [1, 2, 3] and "prob_joy" in scored.columns
        expect(page.locator("#preview")).to_contain_text("so sad and lonely tonight", timeout=20_000)

        page.get_by_role("tab", name="Review").click()
        page.locator("#review-upload input[type=file]").set_input_files(str(ROOT / "examples" / "reviews.csv"))
        page.locator("#review-start").click()
        expect(page.locator("#review-where")).to_contain_text("Row 1 of 9 · the model says", timeout=20_000)
        expect(page.locator(".pending, .generating")).to_have_count(0, timeout=20_000)
        shot = screenshot_path(tmp_path, "review.png")
        page.screenshot(path=str(shot))
        assert shot.read_bytes()[:4] == b"\x89PNG"
        browser.close()


def test_browser_correction_and_review_with_a_click_each(app, server, tmp_path):
    """A person corrects one answer under the result, then labels a CSV's rows in the Review tab, a click each."""
    from playwright.sync_api import expect, sync_playwright

    texts = ["i feel so happy at work in the browser", "happy and furious and sad in the browser", "the lazy dog in the browser"]
    pd.DataFrame({"comment": texts}).to_csv(tmp_path / "to-review.csv", index=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(server)
        expect(page.locator("#correction-status")).to_contain_text("Nothing you type is stored unless you save a correction")
        box = page.locator("#text-input input, #text-input textarea").first
        box.fill("i feel so gloomy in the browser")
        box.press("Enter")
        expect(page.locator("#emotion-label [data-testid=label-output-value]")).to_have_text("sadness", timeout=20_000)
        page.locator("#correct-label input").click()
        page.get_by_role("option", name="anger").click()
        page.locator("#save-correction").click()
        expect(page.locator("#correction-status")).to_contain_text("Saved: thank you, this text reads as anger", timeout=20_000)

        page.get_by_role("tab", name="Review").click()
        page.locator("#review-upload input[type=file]").set_input_files(str(tmp_path / "to-review.csv"))
        page.locator("#review-start").click()
        expect(page.locator("#review-where")).to_contain_text("Row 1 of 3", timeout=20_000)
        shown = []
        for button, row in (("#review-joy", 2), ("#review-skip", 3), ("#review-neutral", None)):
            shown.append(page.locator("#review-text textarea").input_value())
            page.locator(button).click()
            expect(page.locator("#review-where")).to_contain_text(f"Row {row} of 3" if row else "Done: all 3 rows", timeout=20_000)
        browser.close()
    assert sorted(shown) == sorted(texts)
    stored = {(r.text, r.corrected, r.source) for r in app.corrections.rows()}
    assert ("i feel so gloomy in the browser", "anger", "gradio") in stored
    assert {(shown[0], "joy", "review"), (shown[2], "neutral", "review")} <= stored
    assert not any(r.text == shown[1] for r in app.corrections.rows())  # skipped: nothing stored


def test_browser_batch_tab_shows_the_scoring_progress(server, tmp_path):
    """A long upload shows the command line's progress bar in the page while it is scored."""
    from playwright.sync_api import expect, sync_playwright

    rows = [text for text, _ in neutral_toy_rows(20_000, seed=5)]
    pd.DataFrame({"text": rows}).to_csv(tmp_path / "long.csv", index=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(server)
        page.get_by_role("tab", name="Batch (CSV)").click()
        page.locator("#csv-upload input[type=file]").set_input_files(str(tmp_path / "long.csv"))
        page.locator("#score-button").click()
        expect(page.locator("#scored-file .progress-text, #scored-file .progress-level").first).to_be_visible(timeout=20_000)
        expect(page.locator("#scored-file")).to_contain_text("Scoring long.csv", timeout=20_000)
        expect(page.locator("#scored-file a").first).to_be_visible(timeout=120_000)
        browser.close()


# ----------------------------------------------------------------------------- Space

@pytest.fixture(scope="module")
def space_dir(tmp_path_factory):
    from emotion_core.space import build_space

    return build_space(tmp_path_factory.mktemp("space") / "emotion-space", space_id="someone/emotion")


def test_space_front_matter_links_the_bundled_model_s_base(space_dir):
    import gradio
    from huggingface_hub import RepoCard

    card = RepoCard.load(space_dir / "README.md")
    data = card.data.to_dict()
    assert data["sdk"] == "gradio" and data["sdk_version"] == gradio.__version__
    assert data["app_file"] == "app_gradio.py" and data["python_version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert data["license"] == "apache-2.0"
    assert data["datasets"] == ["dair-ai/emotion", "google-research-datasets/go_emotions"]  # as the model's card names them
    assert data["models"] == ["sentence-transformers/all-MiniLM-L6-v2"]  # the bundled model's base
    assert {"title", "emoji", "colorFrom", "colorTo"} <= set(data)
    text = (space_dir / "README.md").read_text()
    assert f"sdk_version: '{gradio.__version__}'" in text and "python_version: '3." in text
    requirements = (space_dir / "requirements.txt").read_text()
    assert f"gradio=={gradio.__version__}" in requirements and "torch==2.13.0" in requirements
    assert "pytest" not in requirements and "playwright" not in requirements
    for name in ("model.safetensors", "model.onnx", "normalization.json", "calibration.json", "reliability.png"):
        assert (space_dir / "models" / "emotion-minilm" / name).is_file(), name  # served as trained: normalised, calibrated
    assert (space_dir / "models" / "emotion-minilm" / "model.int8.onnx").is_file() == (bundled_engine() == "onnx-int8")
    assert (space_dir / "emotion_core" / "predict.py").is_file() and (space_dir / "examples" / "sentences.txt").is_file()


@pytest.mark.slow
def test_space_app_boots_from_its_folder_with_the_bundled_model(space_dir):
    from gradio_client import Client

    env = {k: v for k, v in os.environ.items() if k not in ("EMOTION_MODEL", "PYTHONPATH")}
    with gradio_server(cwd=space_dir, env=env) as url:
        client = Client(url, verbose=False)
        answer = client.predict("i am so happy to see you", api_name="/classify")
        assert answer["emotion"] == next(iter(answer["probabilities"])) == "joy"
        info = client.view_api(return_format="dict", print_info=False)
        assert {"/classify", "/explain", "/score_csv"} <= set(info["named_endpoints"])


def test_space_deploy_to_dead_endpoint_fails_fast(tmp_path):
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0", "HF_TOKEN": "hf_fakeTokenNeverPrinted"}
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "emotion_core", "space", "deploy", "--space-id", "someone/emotion"],
                            env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert time.monotonic() - start < 60
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: Could not deploy the Space someone/emotion: ")
    assert "hf_fakeTokenNeverPrinted" not in result.stdout + result.stderr


def test_space_build_refuses_a_full_folder(tmp_path):
    from emotion_core import EmotionCoreError
    from emotion_core.space import build_space

    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(EmotionCoreError, match="exists and is not empty"):
        build_space(tmp_path / "x")


def test_the_review_tab_asks_in_the_queues_order_and_stores_each_click(app, tmp_path, monkeypatch):
    from emotion_core.queue import review_queue

    monkeypatch.setattr(app, "corrections", feedback.FeedbackStore(tmp_path / "review.db"))
    texts = ["i feel so happy", "happy and furious and sad", "", "the quick brown fox", "i am furious"]
    pd.DataFrame({"id": range(len(texts)), "comment": texts}).to_csv(tmp_path / "review.csv", index=False)
    queue, first, where = app.make_queue(str(tmp_path / "review.csv"), None)
    assert len(queue["texts"]) == 4 and where.startswith("Row 1 of 4 · the model says")
    review_queue(tmp_path / "review.csv", tmp_path / "queue.csv", app.classifier)
    ordered = pd.read_csv(tmp_path / "queue.csv", keep_default_na=False)["comment"].tolist()
    assert queue["texts"] == ordered[:4] and first == ordered[0]  # the queue's order, the empty text left out
    margins, _, _ = app.make_queue(str(tmp_path / "review.csv"), None, "margin")  # the order the tab offers second
    review_queue(tmp_path / "review.csv", tmp_path / "margins.csv", app.classifier, order="margin")
    by_margin = pd.read_csv(tmp_path / "margins.csv", keep_default_na=False).iloc[:4]
    assert margins["texts"] == by_margin["comment"].tolist()
    assert by_margin["margin"].astype(float).is_monotonic_increasing
    queue, second, where = app.answer("anger")(queue, None)
    assert second == queue["texts"][1] and where.startswith("Row 2 of 4")
    queue, *_ = app.answer(None)(queue, None)  # skipped: nothing stored
    queue, *_ = app.answer("sadness")(queue, None)
    queue, last, where = app.answer("joy")(queue, None)
    assert last == "" and where == "Done: all 4 rows labelled or skipped. Thank you."
    stored = {r.text: r.corrected for r in app.corrections.rows()}
    assert stored == {queue["texts"][0]: "anger", queue["texts"][2]: "sadness", queue["texts"][3]: "joy"}
    scored, _ = app.score_file(str(tmp_path / "review.csv"), "comment")  # the Batch tab's file, reviewed as it is
    again, first, where = app.make_queue(None, scored)  # the next round asks only for the row not labelled
    assert again["texts"] == [queue["texts"][1]] == [first]
    assert where.startswith("Row 1 of 1 (left out: 3 corrected already) · the model says")


def test_the_review_tab_still_queues_when_the_store_cannot_be_read(app, tmp_path, monkeypatch):
    (tmp_path / "other.db").write_text("not a database")
    monkeypatch.setattr(app, "corrections", feedback.FeedbackStore(tmp_path / "other.db"))
    pd.DataFrame({"text": ["i feel so happy", "i am furious"]}).to_csv(tmp_path / "in.csv", index=False)
    queue, _, where = app.make_queue(str(tmp_path / "in.csv"), None)
    assert sorted(queue["texts"]) == ["i am furious", "i feel so happy"] and where.startswith("Row 1 of 2 · ")


def test_a_lone_surrogate_is_a_message_on_every_text_handler(app):
    import gradio as gr

    for handler, args in ((app.explain_words, ()), (app.show, ()), (app.save_correction, ("joy", None))):
        with pytest.raises(gr.Error, match="not valid Unicode: character 4 is a lone surrogate"):
            handler("hi \ud800 there", *args)


def test_the_review_tab_leaves_out_texts_too_long_to_keep(app, tmp_path, monkeypatch):
    monkeypatch.setattr(app, "corrections", feedback.FeedbackStore(tmp_path / "long.db"))
    texts = ["i feel so happy", "word " * 2_001, "i am furious"]  # scored, but over the store's 10,000 characters
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "long.csv", index=False)
    queue, _, where = app.make_queue(str(tmp_path / "long.csv"), None)
    assert sorted(queue["texts"]) == ["i am furious", "i feel so happy"]
    assert where.startswith("Row 1 of 2 (left out: 1 too long to keep as corrections, over 10,000 characters)")
    for label in ("joy", "anger"):
        queue, *_, where = app.answer(label)(queue, None)
    assert where.startswith("Done: all 2 rows labelled or skipped (left out")


def test_corrections_off_leaves_no_control_and_no_review_tab(tiny_neutral_model, monkeypatch):
    import gradio as gr

    monkeypatch.setenv("EMOTION_MODEL", str(tiny_neutral_model))
    monkeypatch.setenv("EMOTION_FEEDBACK", "off")
    sys.modules.pop("app_gradio", None)
    try:
        off = importlib.import_module("app_gradio")
    finally:
        sys.modules.pop("app_gradio", None)
    assert off.corrections is None
    shown = {c.get("props", {}).get("elem_id"): c["props"].get("visible") for c in off.demo.get_config_file()["components"]}
    assert shown["correction-status"] is False and shown["review-start"] is not False  # inside the hidden tab
    tabs = [c["props"] for c in off.demo.get_config_file()["components"] if c["type"] == "tabitem"]
    assert [t["visible"] for t in tabs if t["label"] == "Review"] == [False]
    with pytest.raises(gr.Error, match="Corrections are off on this server"):
        off.save_correction("i am furious", "anger", None)
    assert "/feedback" not in off.demo.get_api_info()["named_endpoints"]  # the API has no /feedback either
