"""The Gradio demo: type a sentence and see every emotion's probability, or score a whole CSV.

    $ python app_gradio.py                      # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / _PORT to change)
    $ EMOTION_MODEL=models/my-model python app_gradio.py

UI only: the model, scoring and error wording live in emotion_core.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import hashlib
import logging
import shutil
import tempfile
import time
import uuid
from functools import wraps
from pathlib import Path

import gradio as gr
import pandas as pd

from emotion_core import Classifier, EmotionCoreError, feedback
from emotion_core.batch import score_csv, sniff_columns
from emotion_core.config import MAX_APP_ROWS, MAX_TEXT_CHARS, env_count, example_texts
from emotion_core.explain import explain
from emotion_core.hub import configure_hub
from emotion_core.labels import display_name, label_colors
from emotion_core.language import not_english_message
from emotion_core.model_folder import CONFUSION, RELIABILITY
from emotion_core.predict import check_length, check_texts
from emotion_core.queue import DEFAULT_ORDER, QUEUE_ORDERS, review_queue

MAX_UPLOAD = "20mb"  # gradio refuses bigger files before they reach the handlers
PREVIEW_ROWS = 20
TRACK_PROGRESS = gr.Progress(track_tqdm=True)  # a handler's default: Gradio shows the progress of its tqdm bars
MAX_BATCHED = env_count("EMOTION_MAX_BATCHED", 16)  # /classify or /analyze requests per model call
OUTPUTS = Path(tempfile.gettempdir()) / "emotion-gradio"  # one folder per scoring request, below this
OUTPUT_MAX_AGE_S = 3600  # Gradio copies results into its own cache (cleaned by delete_cache); ours go after an hour



def load_classifier() -> Classifier:
    """The model, once per process ($EMOTION_MODEL or the bundled one); one that cannot be loaded (an offline Hub
    id, a broken folder) stops the start with its message in one line, as the command line does, not a traceback."""
    configure_hub()
    try:
        return Classifier.from_pretrained()
    except EmotionCoreError as exc:
        raise SystemExit(f"error: {exc}") from None


classifier = load_classifier()
corrections = feedback.FeedbackStore.for_app() if feedback.enabled() else None  # opened at the first save
NOT_READ = "not English"  # the name the page gives texts the model did not read
COLORS = {display_name(label): color for label, color in label_colors(classifier.labels).items()} | {NOT_READ: "#cfcfcf"}


def friendly(fn):
    """Show EmotionCoreError as a message in the page, not a traceback; the app keeps serving."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EmotionCoreError as exc:
            raise gr.Error(str(exc), title="Please check the input") from None

    return wrapper


# ----------------------------------------------------------------------------- text

def refuse_bad_texts(text: list[str]) -> list[list[dict]]:
    """Refuse an empty or oversized text in its own request, before it joins a batch, where an error would fail
    every request. Gradio 6 reads no gr.validate(False) answer for a batch function, so the check raises: the
    request is refused with its message (an HTTP 400 whose detail is the message)."""
    for one in text:
        check_texts([one or ""])
        check_length(one)
    return [[gr.validate(True, "") for _ in text]]


def classify(text: list[str]) -> list[list[dict]]:
    """/classify: {"emotion", "language", "probabilities" (highest first), "message" when the text is not read} for
    each text of the requests queued together (Gradio's batching hands this the list of their texts; one model call
    answers them all; a long text is read sentence by sentence). The parameter keeps the API's name, `text`."""
    return [[prediction.as_dict() for prediction in classifier.predict_batch(text)]]


def analyze(text: list[str]) -> list[list[dict]]:
    """/analyze: each text's emotion and probabilities, and each sentence's, batched as /classify is:
    {"emotion", "probabilities", "sentences": [...]} per text."""
    return [[document.as_dict() for document in classifier.analyze(text)]]


def shown(probs: dict[str, float]) -> dict[str, float]:
    """Probabilities keyed by the names the page shows (neutral reads "no clear emotion")."""
    return {display_name(label): p for label, p in probs.items()}


def probability_frame(probs: dict[str, float]) -> pd.DataFrame:
    """The bar chart's data, highest probability first."""
    return pd.DataFrame({"emotion": list(shown(probs)), "probability": list(probs.values())})


@friendly
def explain_words(text: str) -> dict:
    """Which words pushed the predicted emotion up or down: {"label", "probability", "words": [{word, score, scaled}]}."""
    check_texts([text or ""])
    check_length(text)
    check_language(text)
    return explain(classifier, text).as_dict()


def check_language(text: str) -> None:
    """Refuse a text the model does not read (not English), saying so."""
    language = classifier.languages([text])[0]
    if not classifier.reads(language):
        raise EmotionCoreError(not_english_message(language))


def highlights(explanation: dict) -> list[tuple[str, float]]:
    """(word, score in [-1, 1]) pairs for gr.HighlightedText: red pushed the emotion up, purple pulled it down."""
    return [(w["word"] + " ", round(w["scaled"], 3)) for w in explanation["words"]]


def sentence_marks(document):
    """Each sentence with its emotion's name (a sentence not read: NOT_READ), for gr.HighlightedText; shown only for
    more than one sentence."""
    marks = [(f"{s.text} ", display_name(s.label) if s.label else NOT_READ) for s in document.sentences]
    return gr.update(value=marks, visible=len(marks) > 1)


@friendly
def show(text: str) -> tuple:
    """The text tab's outputs: the label, the chart, the highlighted words, the sentences with their emotions, and
    the notice that takes the place of all of them for a text not in English.

    The document's probabilities come from the explanation's own pass; its sentences from one more.
    """
    check_texts([text or ""])
    check_length(text)
    language = classifier.languages([text])[0]
    if not classifier.reads(language):
        return (gr.update(value=None, visible=False), gr.update(visible=False), gr.update(value=[], visible=False),
                gr.update(value=[], visible=False), gr.update(value=f"**{not_english_message(language)}**", visible=True))
    why = explain(classifier, text)
    return (gr.update(value=shown(why.probabilities), visible=True), gr.update(value=probability_frame(why.probabilities),
            visible=True), gr.update(value=highlights(why.as_dict()), visible=True), sentence_marks(classifier.analyze([text])[0]),
            gr.update(visible=False))


@friendly
def save_correction(text: str, label: str | None, request: gr.Request) -> str:
    """Store the person's answer beside the model's for `text`. One correction per text in a session: a second
    click on the same answer stores nothing more, another answer takes the first one's place."""
    if not label:
        raise EmotionCoreError("Pick the right emotion first.")
    check_texts([text or ""])
    saved = store(text, label, "gradio", request)
    return f"Saved: thank you, this text reads as **{display_name(label)}**." if saved else "This correction was saved already."


def store(text: str, label: str, source: str, request: gr.Request) -> bool:
    """Save a correction keyed by the session and the text, so that a second click stores nothing more and a change
    of mind replaces the first answer (a call without a session is keyed by itself alone)."""
    if corrections is None:
        raise EmotionCoreError("Corrections are off on this server (EMOTION_FEEDBACK=off).")
    session = getattr(request, "session_hash", None) or uuid.uuid4().hex
    key = hashlib.sha256(f"{session}\n{text}".encode()).hexdigest()[:32]
    found = feedback.correction_for(classifier, text, label, source, key)
    try:
        return corrections.save(found)
    except EmotionCoreError as exc:  # the detail (a path on the server) is for the log, not for the visitor
        logging.getLogger(__name__).warning("%s", exc)
        raise EmotionCoreError(feedback.UNAVAILABLE) from None


# ----------------------------------------------------------------------------- review

@friendly
def make_queue(file: str | None, last_scored: str | None, order: str = DEFAULT_ORDER) -> tuple[dict, str, str]:
    """The uploaded CSV's rows (else the last file scored in the Batch tab) in one of the review queue's orders; the
    first one."""
    source = file or last_scored
    if not source:
        raise EmotionCoreError("Upload a CSV file, or score one in the Batch tab first.")
    remove_old_outputs()
    OUTPUTS.mkdir(exist_ok=True)
    out = Path(tempfile.mkdtemp(dir=OUTPUTS)) / "queue.csv"
    summary = review_queue(source, out, classifier, max_rows=MAX_APP_ROWS, order=order, corrected=corrected_texts())
    rows = pd.read_csv(out, dtype=str, keep_default_na=False)
    rows = rows[(rows["emotion"] != "") & (rows["corrected"] == "")]  # empty texts, and those labelled already
    storable = rows[summary.text_column].str.len() <= MAX_TEXT_CHARS  # longer ones are scored, but never stored
    queue = {"texts": rows[summary.text_column][storable].tolist(), "guesses": rows["emotion"][storable].tolist(),
             "at": 0, "left_out": int((~storable).sum()), "corrected": summary.corrected}
    return (queue, *review_item(queue))


def corrected_texts() -> dict[str, str]:
    """The texts the store has corrections of, which a queue leaves out; none when the store cannot be read (the
    queue still works, and a save will say what is wrong)."""
    if corrections is None:
        return {}
    try:
        return feedback.corrected_texts(corrections.path)
    except EmotionCoreError as exc:
        logging.getLogger(__name__).warning("%s", exc)
        return {}


def review_item(queue: dict) -> tuple[str, str]:
    """The text to label now and where the person is in the queue."""
    at, texts = queue["at"], queue["texts"]
    notes = ([f"{queue['corrected']:,} corrected already"] if queue.get("corrected") else []) + (
        [f"{queue['left_out']:,} too long to keep as corrections, over {MAX_TEXT_CHARS:,} characters"]
        if queue.get("left_out") else [])
    left_out = f" (left out: {'; '.join(notes)})" if notes else ""
    if at >= len(texts):
        return "", f"Done: all {len(texts)} rows labelled or skipped{left_out}. Thank you."
    return texts[at], f"Row {at + 1} of {len(texts)}{left_out} · the model says **{display_name(queue['guesses'][at])}**"


def answer(label: str | None):
    """A click on an emotion's button (or Skip, for None): store the answer, show the next row."""

    @friendly
    def click(queue: dict | None, request: gr.Request) -> tuple[dict, str, str]:
        if not queue or queue["at"] >= len(queue["texts"]):
            raise EmotionCoreError("Make a queue first: upload a CSV and press Start.")
        if label is not None:
            store(queue["texts"][queue["at"]], label, "review", request)
        queue = {**queue, "at": queue["at"] + 1}
        return (queue, *review_item(queue))

    return click


# ----------------------------------------------------------------------------- batch

@friendly
def pick_column(file: str | None):
    """After an upload, offer the file's columns, preselecting the text column when it is clear."""
    if not file:
        return gr.Dropdown(choices=[], value=None, visible=False)
    columns, guess = sniff_columns(file)
    return gr.Dropdown(choices=columns, value=guess or columns[0], visible=guess is None or len(columns) > 1,
                       info=None if guess else "Which column holds the text?")


@friendly
def score_file(file: str | None, text_column: str | None = None, progress=TRACK_PROGRESS) -> tuple[str, dict]:
    """Score an uploaded CSV into a file of its own (so concurrent users never share one); its path, and
    how many rows got each label (kept in the page's state for the chart: the file is not read again).
    The page shows the command line's progress bar (`progress` follows its tqdm)."""
    if not file:
        raise EmotionCoreError("Upload a CSV file first.")
    remove_old_outputs()
    OUTPUTS.mkdir(exist_ok=True)
    out = Path(tempfile.mkdtemp(dir=OUTPUTS)) / f"{Path(file).stem}-scored.csv"
    try:
        summary = score_csv(file, out, classifier, text_column=text_column or None, max_rows=MAX_APP_ROWS)
    except BaseException:
        shutil.rmtree(out.parent, ignore_errors=True)
        raise
    return str(out), dict(summary.label_counts) | ({NOT_READ: sum(summary.languages.values())} if summary.languages else {})


def remove_old_outputs() -> None:
    """Delete scoring folders older than OUTPUT_MAX_AGE_S, so a long-running Space never fills its disk."""
    for folder in OUTPUTS.glob("tmp*"):
        if time.time() - folder.stat().st_mtime > OUTPUT_MAX_AGE_S:
            shutil.rmtree(folder, ignore_errors=True)


def summarize(scored: str | None, counts: dict | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A preview of the scored rows and how many rows got each emotion (the counts scoring returned)."""
    if not scored:
        return pd.DataFrame(), pd.DataFrame({"emotion": [], "rows": []})
    preview = pd.read_csv(scored, nrows=PREVIEW_ROWS, dtype=str, keep_default_na=False)
    counts = counts or {}
    bars = [*classifier.labels, *([NOT_READ] if NOT_READ in counts else [])]  # rows not in English, counted apart
    return preview, pd.DataFrame({"emotion": [display_name(label) for label in bars], "rows": [counts.get(label, 0) for label in bars]})


# ----------------------------------------------------------------------------- model

def model_card() -> str:
    """What is loaded, what it was trained from, and how well it does."""
    config, lines = classifier.run_config, [f"**Model:** `{classifier.name}`"]
    if config:
        lines.append(f"**Base:** `{config.get('base_model')}` · **Data:** `{config.get('dataset')}`")
    lines.append(f"**Labels:** {', '.join(classifier.labels)} · **Engine:** `{classifier.engine.name}`")
    metrics = classifier.metrics
    rows = [(split, metrics[split]) for split in ("validation", "test") if split in metrics]
    if len(metrics.get("sources", {})) > 1:
        rows += [(f"{split} · {source}", m) for source, by_split in metrics["sources"].items() for split, m in by_split.items()]
    if rows:
        lines += ["", "| split | texts | accuracy | macro-F1 |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| {s} | {m['n']:,} | {m['accuracy']:.1%} | {m['macro_f1']:.3f} |" for s, m in rows]
    if any(name.startswith("folded") for name, _ in rows):
        lines += ["", "*folded*: mild emotion, the validation rows whose label the training grouping folds into one of "
                      "the model's (annoyance as anger, admiration as joy, ...)."]
    calibration = metrics.get("calibration")
    fitted = classifier.calibration
    if calibration and (fitted.temperature != 1.0 or fitted.by_label):
        own = "".join(f"; {t:.2f} for the texts answered {display_name(classifier.labels[i])}" for i, t in fitted.by_label.items())
        lines += ["", f"**Calibration:** probabilities are temperature-scaled (T = {fitted.temperature:.2f}{own}, "
                      "fitted on validation), so a 90% means right about 90% of the time.", "",
                  "| split | ECE before | ECE after | NLL before | NLL after |", "| --- | ---: | ---: | ---: | ---: |"]
        lines += [f"| {s} | {m['ece_before']:.2%} | {m['ece_after']:.2%} | {m['nll_before']:.3f} | {m['nll_after']:.3f} |"
                  for s, m in calibration.items() if s in ("validation", "test")]
    return "\n".join(lines)


def model_image(name: str) -> str | None:
    """A picture from the model folder (confusion matrix, reliability diagram), when it has one."""
    path = classifier.folder / name if classifier.folder else None
    return str(path) if path and path.is_file() else None


# ----------------------------------------------------------------------------- layout

with gr.Blocks(title="Emotion", delete_cache=(3600, 3600)) as demo:
    gr.Markdown("# Emotion\nWhich emotion does a piece of English text express? "
                f"{', '.join(map(display_name, classifier.labels)).capitalize()}. A long text is read sentence by sentence.")
    with gr.Tab("Text"):
        with gr.Row():
            with gr.Column():
                text = gr.Textbox(label="Text", placeholder="Type a sentence and press Enter", lines=1, max_lines=6,
                                  max_length=MAX_TEXT_CHARS, submit_btn=False, elem_id="text-input")
                button = gr.Button("Classify", variant="primary", elem_id="classify-button")
                why = gr.HighlightedText(label="Why: red words pushed the top emotion up, purple words pulled it down",
                                         combine_adjacent=False, show_legend=False, elem_id="why")
                sentences = gr.HighlightedText(label="Sentence by sentence", color_map=COLORS, combine_adjacent=False,
                                               show_legend=True, visible=False, elem_id="sentences")
                gr.Examples(example_texts(), inputs=text, label="Try one")
            with gr.Column():
                notice = gr.Markdown(visible=False, elem_id="language-notice")
                label = gr.Label(num_top_classes=len(classifier.labels), label="Emotion", elem_id="emotion-label")
                with gr.Row(visible=corrections is not None, equal_height=True):
                    right = gr.Dropdown([(display_name(name), name) for name in classifier.labels], value=None, scale=3,
                                        label="Wrong? The right emotion is", elem_id="correct-label")
                    save = gr.Button("Save correction", scale=1, elem_id="save-correction")
                saved = gr.Markdown("Nothing you type is stored unless you save a correction.", visible=corrections is not None,
                                    elem_id="correction-status")
                chart = gr.BarPlot(x="emotion", y="probability", color="emotion", color_map=COLORS, sort="-y",
                                   y_lim=[0, 1], x_label_angle=-30, label="Probabilities", elem_id="emotion-chart")
        for trigger in (text.submit, button.click):
            trigger(show, inputs=text, outputs=[label, chart, why, sentences, notice], api_visibility="private")
        save.click(save_correction, inputs=[text, right], outputs=saved, api_name="feedback",
                   api_visibility="public" if corrections else "private")  # off: the API has no /feedback
    with gr.Tab("Batch (CSV)"):
        gr.Markdown(f"Upload a CSV with a header row (up to {MAX_UPLOAD.upper()} and {MAX_APP_ROWS:,} rows). Every row gets `emotion`, "
                    "`confidence` and one `prob_<label>` column, as with `python -m emotion_core score`.")
        upload = gr.File(label="CSV file", file_types=[".csv"], elem_id="csv-upload")
        column = gr.Dropdown(label="Text column", choices=[], visible=False, allow_custom_value=True)
        score_button = gr.Button("Score", variant="primary", elem_id="score-button")
        scored = gr.File(label="Scored CSV", interactive=False, elem_id="scored-file")
        counts = gr.BarPlot(x="emotion", y="rows", color="emotion", color_map=COLORS, sort=list(COLORS), x_label_angle=-30,
                            label="Rows per emotion")
        preview = gr.Dataframe(label=f"First {PREVIEW_ROWS} rows", interactive=False, elem_id="preview")
        upload.change(pick_column, inputs=upload, outputs=column, api_visibility="private")
        label_counts = gr.State()
        score_button.click(score_file, inputs=[upload, column], outputs=[scored, label_counts], api_name="score_csv").success(
            summarize, inputs=[scored, label_counts], outputs=[preview, counts], api_visibility="private")
    with gr.Tab("Review", visible=corrections is not None):
        gr.Markdown("Label the rows the model is least sure of, one click each: the answers are saved as corrections "
                    "and can train a better model. Upload a CSV, or start with the last file scored in the Batch tab.")
        queue_file = gr.File(label="CSV file", file_types=[".csv"], elem_id="review-upload")
        order = gr.Dropdown([(shown, name) for name, shown in QUEUE_ORDERS.items()], value=DEFAULT_ORDER, label="Order",
                            elem_id="review-order")
        start = gr.Button("Start", variant="primary", elem_id="review-start")
        queue = gr.State()
        review_text = gr.Textbox(label="Text", interactive=False, lines=3, elem_id="review-text")
        where = gr.Markdown(elem_id="review-where")
        with gr.Row():
            choices = [(display_name(name), name) for name in classifier.labels] + [("Skip", None)]
            for shown_name, name in choices:
                gr.Button(shown_name, elem_id=f"review-{name or 'skip'}").click(
                    answer(name), inputs=queue, outputs=[queue, review_text, where], api_visibility="private")
        start.click(make_queue, inputs=[queue_file, scored, order], outputs=[queue, review_text, where], api_visibility="private")
    with gr.Tab("Model"):
        gr.Markdown(model_card())
        with gr.Row():
            gr.Image(model_image(CONFUSION), label="Confusion matrix", interactive=False, buttons=[])
            gr.Image(model_image(RELIABILITY), label="Reliability diagram", interactive=False, buttons=[],
                     visible=model_image(RELIABILITY) is not None)
    api_text, api_answer = gr.Textbox(label="text", visible=False), gr.JSON(visible=False)  # the API's input and answer
    for fn in (classify, analyze):  # requests queued together share one model call; each text checked in its own request
        gr.on([], fn, inputs=api_text, outputs=api_answer, api_name=fn.__name__, batch=True, max_batch_size=MAX_BATCHED,
              validator=refuse_bad_texts)
    gr.api(explain_words, api_name="explain")  # one text's occlusions are already a batch of their own

demo.queue(default_concurrency_limit=2, max_size=64)  # a full queue answers "busy", it does not pile up

if __name__ == "__main__":
    demo.launch(max_file_size=MAX_UPLOAD)
