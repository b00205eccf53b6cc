"""The light web form and JSON API, served by waitress (a production WSGI server).

    $ python app_flask.py [--host 127.0.0.1] [--port 5000] [--threads 4]
    $ flask --app app_flask run --debug          # development only

    $ curl -s localhost:5000/api/predict -H 'Content-Type: application/json' -d '{"text": "i feel great"}'

Web glue only: the model, scoring and error wording live in emotion_core.
"""

import argparse
import shutil
import sys
import tempfile
import threading
import uuid
from pathlib import Path

from flask import Flask, abort, current_app, g, jsonify, render_template, request, send_file
from werkzeug.exceptions import HTTPException
from werkzeug.utils import secure_filename

from emotion_core import Classifier, EmotionCoreError, feedback
from emotion_core.batch import score_csv
from emotion_core.batching import Batcher
from emotion_core.config import MAX_APP_ROWS, MAX_TEXT_CHARS, example_texts
from emotion_core.explain import explain
from emotion_core.hub import configure_hub
from emotion_core.labels import display_name, label_colors
from emotion_core.language import language_name, not_english_message
from emotion_core.predict import check_length, check_unicode

SECURITY_HEADERS = {
    # only this site's own files: no inline script or style, no framing
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
ERROR_MESSAGES = {413: "The request is too large (the limit is {limit}).",
                  415: "Send JSON with Content-Type: application/json.",
                  503: "The server is busy; try again in a moment."}
MODEL_ROUTES = {"index", "api_predict", "api_score", "feedback_form", "api_feedback"}  # the views that run the model and need a slot


MAX_NAME = 100  # characters of an upload's name kept: with "-scored.csv" and a temporary prefix, under 255 bytes
COUNTS = ("MAX_TEXT_CHARS", "MAX_BATCH", "MAX_CONTENT_LENGTH", "MAX_ROWS", "MAX_BUSY", "MAX_BATCHED")
SECONDS = {"BATCH_WAIT_MS": "milliseconds", "BUSY_WAIT_S": "seconds"}


def check_limits(config) -> None:
    """Refuse at start a limit that is not a number ("EMOTION_MAX_TEXT_CHARS=5k"), which would fail every request."""
    for key in COUNTS:
        if not isinstance(config[key], int) or isinstance(config[key], bool) or config[key] < 1:
            raise EmotionCoreError(f"{key} (EMOTION_{key}) must be a whole number of at least 1, not {config[key]!r}.")
    for key, unit in SECONDS.items():
        if not isinstance(config[key], int | float) or isinstance(config[key], bool) or config[key] < 0:
            raise EmotionCoreError(f"{key} (EMOTION_{key}) must be a number of {unit}, not {config[key]!r}.")


def create_app(config: dict | None = None) -> Flask:
    """Build the app; the model is loaded here, once per process."""
    app = Flask(__name__)
    app.config.from_mapping(
        MODEL=None,                           # None: $EMOTION_MODEL, else the bundled model
        MAX_TEXT_CHARS=MAX_TEXT_CHARS,        # per text, page and API alike
        MAX_BATCH=64,                         # texts per /api/predict request
        MAX_CONTENT_LENGTH=10 * 1024 * 1024,  # bytes per request, CSV uploads included
        MAX_ROWS=MAX_APP_ROWS,                # rows per /api/score upload
        MAX_BUSY=2,                           # requests running the model alone at once (2 CPU cores: more only contend)
        BATCHING=True,                        # single texts in flight together share one model call
        MAX_BATCHED=16,                       # single texts in flight at once, waiting for or in a shared call
        BATCH_WAIT_MS=2.0,                    # how long a single text may wait for others to join it
        BUSY_WAIT_S=10.0,                     # how long a request waits for a free slot before a 503
        FEEDBACK=True,                        # corrections can be saved (EMOTION_FEEDBACK=off: not)
        FEEDBACK_DB=None,                     # where (None: $EMOTION_FEEDBACK_DB, else emotion_core.feedback's default)
    )
    app.config.from_prefixed_env("EMOTION")  # e.g. EMOTION_MAX_TEXT_CHARS=5000
    app.config.update(config or {})
    check_limits(app.config)
    app.json.sort_keys = False  # probabilities stay highest first
    configure_hub()
    model = Classifier.from_pretrained(app.config["MODEL"])
    app.extensions["classifier"] = model
    if app.config["BATCHING"]:
        app.extensions["batcher"] = Batcher(model.predict_batch, max_batch=app.config["MAX_BATCHED"],
                                            max_wait_s=app.config["BATCH_WAIT_MS"] / 1000)
    app.config["FEEDBACK"] = feedback.enabled(app.config["FEEDBACK"])
    if app.config["FEEDBACK"]:
        app.extensions["feedback"] = feedback.FeedbackStore.for_app(app.config["FEEDBACK_DB"])  # opened at the first save
    app.jinja_env.globals.update(colors=label_colors(model.labels), model_name=model.name, shown=display_name, language_name=language_name,
                                 max_chars=app.config["MAX_TEXT_CHARS"], labels=model.labels, feedback=app.config["FEEDBACK"],
                                 max_size=size_limit(app.config["MAX_CONTENT_LENGTH"]), max_rows=app.config["MAX_ROWS"],
                                 examples=example_texts())
    app.extensions["model_slots"] = threading.BoundedSemaphore(app.config["MAX_BUSY"])
    app.extensions["batch_slots"] = threading.BoundedSemaphore(app.config["MAX_BATCHED"])
    app.before_request(take_model_slot)
    app.teardown_request(give_model_slot)
    app.after_request(add_security_headers)
    app.register_error_handler(HTTPException, http_error)
    app.add_url_rule("/", view_func=index, methods=["GET", "POST"])
    app.add_url_rule("/api/predict", view_func=api_predict, methods=["POST"])
    app.add_url_rule("/api/score", view_func=api_score, methods=["POST"])
    app.add_url_rule("/feedback", view_func=feedback_form, methods=["POST"])
    app.add_url_rule("/api/feedback", view_func=api_feedback, methods=["POST"])
    app.add_url_rule("/healthz", view_func=healthz)
    return app


def classifier() -> Classifier:
    """The model this app loaded at start."""
    return current_app.extensions["classifier"]


class InputError(Exception):
    """A request the user can fix, with the HTTP status to answer it with."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def check_text(text) -> str:
    """A text fit to classify, or an InputError saying what is wrong with it."""
    limit = current_app.config["MAX_TEXT_CHARS"]
    if not isinstance(text, str):
        raise InputError(f"Each text must be a string, not {type(text).__name__}.")
    if not text.strip():
        raise InputError("Text is empty: type something to classify.")
    try:
        check_unicode(text)
    except EmotionCoreError as exc:
        raise InputError(str(exc)) from None
    try:
        check_length(text, limit)
    except EmotionCoreError as exc:
        raise InputError(str(exc), 413) from None
    return text


def take_model_slot() -> None:
    """Let at most MAX_BUSY requests run the model alone, and MAX_BATCHED single texts share batched calls;
    the others wait briefly, then get a 503 with Retry-After."""
    if request.endpoint not in MODEL_ROUTES or request.method != "POST":
        return
    if not take_slot("batch_slots" if request.endpoint == "api_predict" and batched(json_body()) else "model_slots"):
        abort(503)


def json_body():
    """The request's JSON, None when it is none (or nested too deep to read: Python's parser recurses)."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None


def take_slot(kind: str = "model_slots") -> bool:
    """Wait briefly for a slot of this kind; True when taken (it is freed when the request ends)."""
    if not current_app.extensions[kind].acquire(timeout=current_app.config["BUSY_WAIT_S"]):
        return False
    g.model_slot = kind
    return True


def give_model_slot(_exc=None) -> None:
    """Free the slot whatever happened in the request."""
    kind = g.pop("model_slot", None)
    if kind:
        current_app.extensions[kind].release()


def batched(body) -> bool:
    """A /api/predict body that shares a batched call: one text, no explanation, no sentences, batching on."""
    return (current_app.config["BATCHING"] and isinstance(body, dict) and "text" in body and "texts" not in body
            and not body.get("explain") and not body.get("sentences"))


def add_security_headers(response):
    """Every response: a strict Content-Security-Policy and no MIME sniffing."""
    response.headers.update(SECURITY_HEADERS)
    return response


def size_limit(size: int) -> str:
    """A request size limit as people read it: 10 MB, 64 KB."""
    return f"{size / 2**20:g} MB" if size >= 2**20 else f"{size / 2**10:g} KB"


def http_error(exc: HTTPException):
    """JSON errors under /api/, the page with the message elsewhere."""
    limit = size_limit(current_app.config["MAX_CONTENT_LENGTH"])
    message = ERROR_MESSAGES[exc.code].format(limit=limit) if exc.code in ERROR_MESSAGES else exc.description
    headers = {"Retry-After": "1"} if exc.code == 503 else {}
    if request.path.startswith("/api/"):
        return jsonify(error=message), exc.code, headers
    return render_template("index.html", text="", result=None, error=message), exc.code, headers


# ----------------------------------------------------------------------------- views

def index():
    """The form; on POST, the same page with every emotion's probability, highest first."""
    if request.method == "POST":
        return page(request.form.get("text", ""))
    return render_template("index.html", text="", result=None, error=None)


def page(text: str, notice: str | None = None, problem: InputError | None = None, key: str | None = None):
    """The page with `text` classified, explained and split into sentences (or the message saying why it cannot
    be), and a notice or a problem from saving a correction of it. `key`: the correction form's, kept from the
    form just sent so that a second answer on this page replaces the first (a new one for a new prediction)."""
    result, error, status = None, problem and str(problem), problem.status if problem else 200
    try:
        language = classifier().languages([check_text(text)])[0]
        if not classifier().reads(language):
            result = {"emotion": None, "language": language, "message": not_english_message(language)}
            return render_template("index.html", text=text, result=result, error=error, notice=notice), status
        why = explain(classifier(), text)  # the probabilities come from the same pass
        probs = why.probabilities
        words = [{"word": w, "score": s, "css": highlight_class(c)} for w, s, c in zip(why.words, why.scores, why.scaled())]
        sentences = classifier().analyze([text])[0].sentences
        result = {"emotion": next(iter(probs)), "language": language, "probabilities": probs, "words": words, "faint": why.faint,
                  "sentences": sentences if len(sentences) > 1 else [], "key": key or uuid.uuid4().hex}
    except InputError as exc:
        error, status = str(exc), 400 if exc.status == 422 else exc.status
    return render_template("index.html", text=text, result=result, error=error, notice=notice), status


def highlight_class(scaled: float) -> str:
    """A CSS class for a word's scaled score: w-pos-1..4 (pushed up), w-neg-1..4 (pulled down), w-0."""
    level = min(4, round(abs(scaled) * 4))
    return "w-0" if level == 0 else f"w-{'pos' if scaled > 0 else 'neg'}-{level}"


def api_predict():
    """{"text": "..."} or {"texts": [...]}, optionally "explain": true -> every label's probability, highest first."""
    if not request.is_json:
        return jsonify(error=ERROR_MESSAGES[415]), 415
    body = json_body()
    if body is None:
        return jsonify(error="The body is not valid JSON."), 400
    try:
        return jsonify(predict_body(body))
    except InputError as exc:
        return jsonify(error=str(exc)), exc.status


def predict_body(body) -> dict:
    """Validate a /api/predict body and classify it."""
    if not isinstance(body, dict) or ("text" in body) == ("texts" in body):
        raise InputError('Send an object with either "text" (a string) or "texts" (a list of strings).', 400)
    want_why, want_sentences = body.get("explain", False), body.get("sentences", False)
    if not isinstance(want_why, bool) or not isinstance(want_sentences, bool):
        raise InputError('"explain" and "sentences" must be true or false.', 400)
    if batched(body):
        return {"model": classifier().name, **current_app.extensions["batcher"].submit(check_text(body["text"])).as_dict()}
    if "text" in body:
        return {"model": classifier().name, **predictions([check_text(body["text"])], want_why, want_sentences)[0]}
    texts, limit = body["texts"], current_app.config["MAX_BATCH"]
    if not isinstance(texts, list) or not texts:
        raise InputError('"texts" must be a non-empty list of strings.')
    if len(texts) > limit:
        raise InputError(f'Too many texts: {len(texts)} (the limit is {limit} per request).', 413)
    return {"model": classifier().name, "predictions": predictions([check_text(t) for t in texts], want_why, want_sentences)}


def predictions(texts: list[str], want_why: bool, want_sentences: bool) -> list[dict]:
    """Each text's emotion and probabilities, with its explanation and its sentences' results when asked."""
    if want_why:
        check_explained_words(texts)
    if want_sentences:
        answers = [document.as_dict() for document in classifier().analyze(texts)]
    else:
        answers = [prediction.as_dict() for prediction in classifier().predict_batch(texts)]
    if want_why:
        for answer, text in zip(answers, texts):  # a text not read has no words that drove an answer
            answer["explanation"] = explain(classifier(), text).as_dict() if answer["emotion"] else None
    return answers


def check_explained_words(texts: list[str]) -> None:
    """Refuse to explain more words in one request than one text of the longest allowed can have: each word is
    one more pass of the model, and a request holds its slot until it is done."""
    words, limit = sum(len(text.split()) for text in texts), (current_app.config["MAX_TEXT_CHARS"] + 1) // 2
    if words > limit:
        raise InputError(f"Too many words to explain: {words:,} (the limit is {limit:,} per request). "
                         'Send fewer texts with "explain", or none.', 413)


def api_score():
    """A CSV upload (form field `file`, optional `text_column`, `sentences=true` for a row per sentence) -> the scored CSV."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return jsonify(error='Upload a CSV file in the form field "file".'), 400
    name = Path(secure_filename(upload.filename) or "upload.csv")
    name = name.with_name(name.stem[:MAX_NAME] + name.suffix[:MAX_NAME])  # a name the file system takes
    workdir = Path(tempfile.mkdtemp(prefix="emotion-flask-"))  # one folder per request, gone before the answer
    try:
        src, out = workdir / name.name, workdir / f"{name.stem}-scored.csv"
        upload.save(src)
        score_csv(src, out, classifier(), text_column=request.form.get("text_column") or None, progress=False,
                  max_rows=current_app.config["MAX_ROWS"], sentences=request.form.get("sentences", "").lower() in ("1", "true"))
        scored = open(out, "rb")  # sent after the folder is removed: an open file outlives its name
    except EmotionCoreError as exc:
        return jsonify(error=str(exc)), 422
    finally:  # not on the response's close: a server that sends files itself (waitress) never calls it
        shutil.rmtree(workdir, ignore_errors=True)
    return send_file(scored, mimetype="text/csv", as_attachment=True, download_name=out.name)


def save_correction(text, label, source: str, key=None) -> bool:
    """Store a person's correction of the model on `text`; an InputError when it cannot be, the store's message
    (status 503) when the store cannot be written. True when stored, False when that key was stored already."""
    if not current_app.config["FEEDBACK"]:
        raise InputError("Corrections are off on this server (EMOTION_FEEDBACK=off).", 404)
    if not isinstance(label, str) or not (key is None or isinstance(key, str) and len(key) <= 64):
        raise InputError('Send "label" (one of the model\'s labels) and, optionally, "key" (up to 64 characters).', 400)
    try:
        found = feedback.correction_for(classifier(), check_text(text), label, source, key or None,
                                        limit=current_app.config["MAX_TEXT_CHARS"])
    except EmotionCoreError as exc:
        raise InputError(str(exc)) from None
    give_model_slot()  # done with the model: a store waiting on another writer must not hold predictions up
    try:
        return current_app.extensions["feedback"].save(found)
    except feedback.KeyTaken as exc:
        raise InputError(str(exc), 409) from None
    except EmotionCoreError as exc:  # the detail (a path on the server) is for the log, not for the visitor
        current_app.logger.warning("%s", exc)
        raise InputError(feedback.UNAVAILABLE, 503) from None


def feedback_form():
    """The page's "save correction" form: the same page again, saying whether the correction was kept."""
    text, problem, notice, key = request.form.get("text", ""), None, None, request.form.get("key") or None
    try:
        saved = save_correction(text, request.form.get("label"), "flask", key)
        notice = (f"Saved: thank you, this text reads as {display_name(request.form['label'])}." if saved else
                  "This correction was saved already.")
    except InputError as exc:
        problem = exc
    if "model_slot" not in g and not take_slot():  # saving gave it back while the store was written
        busy = render_template("index.html", text=text, result=None, error=ERROR_MESSAGES[503], notice=notice)
        return busy, 503, {"Retry-After": "1"}  # what was saved is still said
    return page(text, notice=notice, problem=problem, key=key if problem is None or problem.status == 503 else None)


def api_feedback():
    """{"text": "...", "label": "joy", "key": optional id} -> {"saved": true, "label": "joy"} (false: that key was saved)."""
    if not request.is_json:
        return jsonify(error=ERROR_MESSAGES[415]), 415
    body = json_body()
    if not isinstance(body, dict):
        return jsonify(error='Send a JSON object with "text" and "label".'), 400
    try:
        saved = save_correction(body.get("text"), body.get("label"), "api", body.get("key"))
    except InputError as exc:
        return jsonify(error=str(exc)), exc.status
    return jsonify(saved=saved, label=body["label"]), 201 if saved else 200


def healthz():
    """Liveness for load balancers and scripts: status and the loaded model."""
    return jsonify(status="ok", model=classifier().name, engine=classifier().engine.name, labels=classifier().labels)


# ----------------------------------------------------------------------------- serving

def main(argv: list[str] | None = None) -> None:
    """Serve with waitress: bounded worker threads, no debug mode."""
    import waitress

    parser = argparse.ArgumentParser(description="Serve the emotion web form and JSON API with waitress.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    parser.add_argument("--threads", type=int, default=32,
                        help="worker threads (default: 32; at most MAX_BUSY + MAX_BATCHED of them use the model at once, "
                             "the rest wait or answer 503)")
    parser.add_argument("--model", help="model folder or Hub id (default: $EMOTION_MODEL, else the bundled model)")
    args = parser.parse_args(argv)
    try:
        app = create_app({"MODEL": args.model} if args.model else None)
    except EmotionCoreError as exc:  # a model that cannot be loaded, a bad setting: one line, as the commands say it
        sys.exit(f"error: {exc}")
    print(f"Serving {app.extensions['classifier'].name} on http://{args.host}:{args.port}/")
    waitress.serve(app, host=args.host, port=args.port, threads=args.threads)


if __name__ == "__main__":
    main()
