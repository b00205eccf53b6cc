"""`Classifier`: the one inference API that the CLI, `score`, Gradio and Flask all go through.

Answering needs only the model folder's tokenizer, its labels and an engine: with the default
ONNX engines neither torch nor transformers is imported, which is most of what a start costs.
The PyTorch model is loaded when something needs it (the torch engines, export).
"""

import functools
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .calibration import load_calibration
from .config import MAX_TEXT_CHARS, resolve_model
from .documents import Document, Sentence, combine, sentence_spans, word_windows
from .engines import load_engine, run_batches, without_rescoring
from .errors import EmotionCoreError
from .hub import hub_failure, hub_unreachable
from .language import ENGLISH, any_language_setting, detect_languages, not_english_message
from .model_folder import CONFIG, METRICS, RUN_CONFIG, SERVED, WEIGHTS_INDEX, check_model_folder, read_json
from .normalize import load_steps, normalize
from .tokens import SPECIAL_TOKENS, FolderTokenizer

logger = logging.getLogger(__name__)

HUB_FILES = [*SERVED, WEIGHTS_INDEX, "model-*-of-*.safetensors", SPECIAL_TOKENS]  # at the repo's top level only
MODEL_HINT = "Set EMOTION_MODEL to a local model folder, or unset it to use the bundled model."


def check_length(text: str, limit: int = MAX_TEXT_CHARS) -> None:
    """Refuse a text longer than the apps accept, saying how long it is and what the limit is."""
    if len(text) > limit:
        raise EmotionCoreError(f"Text is too long: {len(text):,} characters (the limit is {limit:,}).")


def check_texts(texts: Sequence[str]) -> None:
    """Refuse a batch with an empty text (or one that is not a string, or not Unicode), naming which."""
    for i, text in enumerate(texts):
        where = "" if len(texts) == 1 else f" (item {i})"
        if not isinstance(text, str) or not text.strip():
            raise EmotionCoreError(f"Text is empty{where}: type something to classify.")
        check_unicode(text, where)


def check_unicode(text: str, where: str = "") -> None:
    """Refuse a text holding a lone surrogate, which a JSON client can send and no tokenizer, file or database takes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EmotionCoreError(f"Text is not valid Unicode{where}: character {exc.start + 1} is a lone surrogate "
                               f"(U+{ord(text[exc.start]):04X}).") from None


class Prediction(dict):
    """One text's answer: every label's probability, highest first, and `language`, the text's ISO 639-1 code.

    The model reads English: a text that is clearly in another language gets no probabilities (an
    empty dict), `label` None and a `message` that says so, unless the classifier reads every
    language (`any_language`). A text too short or too mixed to tell is read as English ("en").
    """

    def __init__(self, probabilities: dict[str, float], language: str = ENGLISH):
        super().__init__(probabilities)
        self.language = language

    @property
    def label(self) -> str | None:
        """The most probable label; None for a text the model did not read."""
        return next(iter(self), None)

    @property
    def message(self) -> str | None:
        """Why the text has no emotion, in words for people; None when it has one."""
        return None if self else not_english_message(self.language)

    def as_dict(self) -> dict:
        """The JSON shape every API returns: emotion (null when not read), language, probabilities, and the message
        when there is one."""
        return {"emotion": self.label, "language": self.language, "probabilities": dict(self),
                **({"message": self.message} if self.message else {})}


class Classifier:
    """Emotion probabilities for English text, from a model folder or a Hub id.

    >>> classifier = Classifier.from_pretrained()          # argument, $EMOTION_MODEL, or the bundled model
    >>> classifier.predict("i feel like a new person")     # {'joy': 0.97, 'love': 0.01, ...}, its .language 'en'
    """

    def __init__(self, files: Path, source: str, engine: str | None = None, any_language: bool | None = None):
        """`files`: the model folder, or where a Hub model's files were downloaded to. `any_language`: read texts in
        every language, not only English (default: $EMOTION_ANY_LANGUAGE)."""
        config = read_json(files / CONFIG)
        self.labels: list[str] = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
        self.tokenizer = FolderTokenizer(files)
        # the limit the model was trained with, capped by what its position embeddings allow
        positions = config.get("max_position_embeddings", 512)
        self.max_length = min(self.tokenizer.model_max_length or positions, positions)
        self.source = source
        self.files = files
        self.folder = files if Path(source).exists() else None  # a local folder, which commands may write into
        self.engine = load_engine(engine, lambda: self.model, files)
        self.document_engine = without_rescoring(self.engine)  # for the pieces of documents whose sentences no one sees
        self.metrics = read_json(files / METRICS, missing_ok=True)
        self.run_config = read_json(files / RUN_CONFIG, missing_ok=True)
        self.normalization = load_steps(files)  # the text normalisation the model was trained with
        self.calibration = load_calibration(files, self.labels)  # T = 1 for folders without calibration.json
        self.closing = self.tokenizer.closing_tokens()
        self.any_language = any_language_setting() if any_language is None else any_language
        self.predict_proba(["warm-up"])  # a folder the engine cannot run fails here, at start, not at the first request

    @classmethod
    def from_pretrained(cls, model: str | Path | None = None, engine: str | None = None,
                        any_language: bool | None = None) -> "Classifier":
        """A model folder, or a Hub id's files (safetensors only, never `trust_remote_code`).

        `engine` is one of `emotion_core.engines.ENGINES`; default: $EMOTION_ENGINE, else `auto`.
        `any_language`: read texts in every language, not only English; default: $EMOTION_ANY_LANGUAGE.
        """
        source = resolve_model(model)
        folder = Path(source)
        if folder.exists():
            check_model_folder(folder)
            classifier = cls(folder, source, engine, any_language)
        elif source.startswith((".", "/", "~")) or source.count("/") > 1:
            raise EmotionCoreError(f"Model folder {source} not found. {MODEL_HINT}")
        else:
            files = download(source)
            try:
                check_model_folder(files)
                classifier = cls(files, source, engine, any_language)
            except EmotionCoreError as exc:  # it names the download's folder: say which model that is
                raise EmotionCoreError(f"Hub model '{source}' cannot be used: {exc}") from None
        logger.info("loaded %s (%d labels, engine %s)", source, len(classifier.labels), classifier.engine.name)
        return classifier

    @functools.cached_property
    def model(self):
        """The PyTorch model (fp32), loaded on first use: the torch engines and export need it, the ONNX engines don't."""
        import torch
        from transformers import AutoModelForSequenceClassification

        try:
            net = AutoModelForSequenceClassification.from_pretrained(
                self.files, use_safetensors=True, trust_remote_code=False, dtype=torch.float32)
        except Exception as exc:  # a damaged file: one line that names the folder
            first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise EmotionCoreError(f"Model {self.source} could not be loaded: {first_line}") from None
        return net.eval()

    @property
    def name(self) -> str:
        """A short name for display: the folder's or the Hub id's last part."""
        return Path(self.source).name

    def predict(self, text: str) -> Prediction:
        """Every label's probability for one text, highest first, and its language (`Prediction`)."""
        return self.predict_batch([text])[0]

    def predict_batch(self, texts: Sequence[str], batch_size: int | None = None) -> list[Prediction]:
        """Like `predict` for many texts, batched by length with dynamic padding; texts the model does not read
        (not English) are left out of the batches."""
        texts = list(texts)
        check_texts(texts)
        languages = self.languages(texts)
        probs = iter(self.predict_proba([text for text, language in zip(texts, languages) if self.reads(language)],
                                        batch_size))
        return [Prediction(self.to_dict(next(probs)) if self.reads(language) else {}, language) for language in languages]

    def languages(self, texts: Sequence[str]) -> list[str]:
        """Each text's language (ISO 639-1; "en" also for a text too short or mixed to tell)."""
        return detect_languages(texts)

    def reads(self, language: str) -> bool:
        """Whether the model reads text in this language: English, or any with `any_language`."""
        return self.any_language or language == ENGLISH

    def to_dict(self, row: np.ndarray) -> dict[str, float]:
        """One row of probabilities as {label: probability}, highest first."""
        order = np.argsort(-row, kind="stable")
        return {self.labels[i]: float(row[i]) for i in order}

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Calibrated probabilities as an array (texts × labels, in `self.labels` order), for every text whatever its
        language: the model's own reading, which evaluation and the benchmarks measure (`predict_batch` and
        `analyze` leave out texts not in English).

        A text longer than the model's window is read sentence by sentence (documents.py).
        """
        rows = [probs for probs, *_ in self.read(texts, sentences=False, batch_size=batch_size)]
        return np.stack(rows) if rows else np.empty((0, len(self.labels)), dtype=np.float32)

    def analyze(self, texts: Sequence[str], batch_size: int | None = None) -> list[Document]:
        """Each text's probabilities and each of its sentences' (a text that fits the window is still scored whole).

        The language is decided for the whole text, then for each of its sentences: a text the model
        does not read has no probabilities and no sentences; a sentence it does not read, inside a
        text it does, has none of its own.
        """
        texts = list(texts)
        check_texts(texts)
        languages = self.languages(texts)
        read = iter(self.read([text for text, language in zip(texts, languages) if self.reads(language)], sentences=True,
                              batch_size=batch_size))
        documents = []
        for text, language in zip(texts, languages):
            if not self.reads(language):
                documents.append(Document({}, [], whole=False, language=language))
                continue
            probs, spans, rows, fits = next(read)
            pieces = [text[a:b] for a, b in spans]
            found = self.languages(pieces) if len(pieces) > 1 else [language]
            sentences = [Sentence(piece, a, b, self.to_dict(row) if self.reads(own) else {}, own)
                         for piece, (a, b), row, own in zip(pieces, spans, rows, found)]
            documents.append(Document(self.to_dict(probs), sentences, whole=fits, language=language))
        return documents

    def read(self, texts: Sequence[str], sentences: bool, batch_size: int | None = None) -> list[tuple]:
        """Score the texts that fit the window whole, and in pieces those too long for it (all, with `sentences`).

        Pieces whose own results are not returned are scored without the engine's fp32 rescoring
        of near-ties (`engines.without_rescoring`). For each text: its probabilities, its pieces'
        (start, end) spans and their probabilities (the text itself when it is one piece), and
        whether it fit the window.
        """
        texts = list(texts)  # a pandas column or an array too
        check_texts(texts)
        ids = self.encode(texts, truncate=False)
        fits = [len(row) <= self.max_length for row in ids]
        spans, piece_ids = self.split([text if sentences or not fit else None for text, fit in zip(texts, fits)], fits)
        piece_engine = self.engine if sentences else self.document_engine
        logits = np.concatenate([self.logits_of_ids([row for row, fit in zip(ids, fits) if fit], batch_size),
                                 self.logits_of_ids(piece_ids, batch_size, engine=piece_engine)])
        probs = self.calibration.probabilities(logits).astype(np.float32)
        whole, offset, out = iter(probs), sum(fits), []
        for text, fit, found in zip(texts, fits, spans):
            rows, offset = probs[offset:offset + len(found)], offset + len(found)
            doc = next(whole) if fit else combine(rows.astype(np.float64), self.labels).astype(np.float32)
            if not found:
                found, rows = [(len(text) - len(text.lstrip()), len(text.rstrip()))], doc[None]
            out.append((doc, found, rows, fit))
        return out

    def split(self, texts: Sequence[str | None], fits: list[bool]) -> tuple[list[list[tuple[int, int]]], list[list[int]]]:
        """Each text's pieces (none for None, or for a text that fits and is one sentence) and their token ids.

        Every sentence of every text is tokenized in one call; only a sentence too long for the
        window is cut into word windows (documents.py).
        """
        spans = [sentence_spans(text) or [(0, len(text))] if text is not None else [] for text in texts]
        spans = [[] if fit and len(found) == 1 else found for found, fit in zip(spans, fits)]
        flat = [(i, a, b) for i, found in enumerate(spans) for a, b in found]
        pieces, piece_ids = [[] for _ in texts], []
        for (i, a, b), row in zip(flat, self.encode([texts[i][a:b] for i, a, b in flat], truncate=False)):
            if len(row) <= self.max_length:
                pieces[i].append((a, b))
                piece_ids.append(row)
                continue
            windows = word_windows(texts[i], a, b, self.token_counts, self.max_length - self.tokenizer.special_tokens)
            pieces[i] += windows
            piece_ids += self.encode([texts[i][wa:wb] for wa, wb in windows])
        return pieces, piece_ids

    def token_counts(self, texts: list[str]) -> list[int]:
        """How many tokens each text is, normalised, without special tokens."""
        texts = [normalize(text, self.normalization) for text in texts]
        return [len(row) for row in self.tokenizer.ids(texts, special_tokens=False)]

    def logits(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Raw class scores (texts × labels), each text cut at the window as in training (evaluation, calibration).

        Texts normalised, sorted by length, each batch padded to its longest: batches of the
        engine's size by default (32; 64 for int8 on one thread), measured fastest on 2 CPU cores,
        run two at a time by the ONNX engines (docs/benchmarks.md).
        """
        texts = list(texts)
        check_texts(texts)
        return self.logits_of_ids(self.encode(texts), batch_size)

    def encode(self, texts: Sequence[str], truncate: bool = True) -> list[list[int]]:
        """Token ids of each text, normalised and (by default) cut at the window as in training.

        The tokenizer never truncates (its settings would be state shared by request threads): the
        ids are cut here.
        """
        if len(texts) == 0:
            return []
        texts = [normalize(text, self.normalization) for text in texts]
        ids = self.tokenizer.ids(texts)
        return [self.cut(row) for row in ids] if truncate else ids

    def cut(self, ids: list) -> list:
        """The first tokens of a too-long row and its closing special tokens, as the tokenizer's truncation keeps them."""
        if len(ids) <= self.max_length:
            return ids
        return ids[:self.max_length - self.closing] + ids[len(ids) - self.closing:]

    def scorer(self, ids: Sequence[Sequence[int]]):
        """A function giving an engine's class scores for these inputs, batched as this classifier batches them."""
        return lambda engine: self.logits_of_ids(ids, engine=engine)

    def logits_of_ids(self, ids: Sequence[Sequence[int]], batch_size: int | None = None, engine=None) -> np.ndarray:
        """Raw class scores for token-id lists (with special tokens), batched by length (by `engine`, default ours)."""
        engine = engine or self.engine
        batch_size = engine.batch_size if batch_size is None else batch_size
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths share a batch
        chunks = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
        out = np.empty((len(ids), len(self.labels)), dtype=np.float32)
        for chunk, scores in zip(chunks, run_batches(engine, (self.pad([ids[i] for i in chunk]) for chunk in chunks))):
            out[chunk] = scores
        return out

    def pad(self, ids: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """One batch: input_ids padded to its longest row, and the attention mask."""
        width = max(len(row) for row in ids)
        input_ids = np.full((len(ids), width), self.tokenizer.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for i, row in enumerate(ids):
            input_ids[i, :len(row)], mask[i, :len(row)] = row, 1
        return input_ids, mask


def download(repo_id: str) -> Path:
    """The files of a Hub model a classifier reads (from the local cache when the Hub can't be reached)."""
    from huggingface_hub import snapshot_download

    unreachable = hub_unreachable()
    try:
        return Path(snapshot_download(repo_id, allow_patterns=HUB_FILES, local_files_only=bool(unreachable)))
    except Exception as exc:  # not found, an unreachable Hub, an empty cache: one line that names the model
        raise hub_failure(f"model '{repo_id}'", exc, hint=MODEL_HINT, unreachable=unreachable) from None
