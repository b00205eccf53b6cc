"""Which words drove a prediction: leave-one-word-out occlusion, all variants in one batched pass.

For a text of n words we score n + 1 inputs at once: the text itself and the text without word i
(or with word i's pieces replaced by [MASK]). A word's score is how much the predicted emotion's
log-odds fall when the word is gone: positive words pushed the prediction up, negative ones
pulled it down. (Log-odds keep words apart when the model is 99.9% sure, where probabilities
barely move; they rank words exactly as the fall in probability does.) Word pieces are grouped
into whitespace-separated words, so "heartbroken" is one word even when the tokenizer splits it.
Attention weights are cheaper but not faithful; integrated gradients, SHAP or LIME need tens to
thousands of passes. Occlusion needs one batch, and
`benchmarks/bench_explain.py` measures that it is faithful.
"""

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .calibration import softmax
from .documents import pieces
from .errors import EmotionCoreError
from .normalize import normalize_words
from .predict import check_texts

MODES = ("delete", "mask")
WORD = re.compile(r"\S+")  # a word is what str.split() gives
EXPLAIN_TOKENS = 48  # the longest piece a long document's words are scored in (explain_document)
SCALE_FLOOR = 1.0  # log-odds: a word that moves the odds less than e-fold is never shown at full strength


@dataclass
class Explanation:
    """The predicted label, every label's probability, and one score per word of the text.

    `probabilities` (highest first) come from the same forward pass as the scores, so an app that
    shows bars and highlights needs no second pass.
    """

    label: str
    probabilities: dict[str, float]
    words: list[str]
    scores: list[float]  # fall in the label's log-odds without the word; 0 for words past the truncation point
    seen: list[int]      # indices of the words the model sees (all but those past the truncation point)

    @property
    def probability(self) -> float:
        """The predicted label's probability."""
        return self.probabilities[self.label]

    def scaled(self) -> list[float]:
        """Scores in [-1, 1] for highlighting: divided by the largest magnitude, but never by less than SCALE_FLOOR.

        When a text says its emotion twice ("lonely and sad"), no single word moves the prediction
        much, and dividing hundredths by the largest of them would paint noise in full colour.
        """
        peak = max([SCALE_FLOOR, *(abs(s) for s in self.scores)])
        return [s / peak for s in self.scores]

    @property
    def faint(self) -> bool:
        """True when no word on its own moves the log-odds by an eighth of SCALE_FLOOR: nothing is highlighted."""
        return all(abs(s) < SCALE_FLOOR / 8 for s in self.scores)

    def top_words(self, k: int = 3) -> list[tuple[str, float]]:
        """The k words that pushed the label up the most (positive scores only), strongest first."""
        ranked = sorted(((w, s) for w, s in zip(self.words, self.scores) if s > 0), key=lambda ws: -ws[1])
        return ranked[:k]

    def as_dict(self) -> dict:
        """The JSON shape both APIs return."""
        return {"label": self.label, "probability": self.probability,
                "words": [{"word": w, "score": s, "scaled": c} for w, s, c in zip(self.words, self.scores, self.scaled())]}


def occlude(classifier, text: str, groups: Sequence[Sequence[int]] | None = None,
            mode: str = "delete") -> tuple[list[str], np.ndarray, list[int]]:
    """Calibrated logits of the text (row 0) and of the text with each group of word indices removed
    (rows 1...), all divided by the temperature of the text's own answer, from one batched forward pass.

    `groups=None` means one group per word the model sees. Also returns the words, and the
    indices of the words the model sees (the rest are past the truncation point).
    """
    words = text.split()
    rows, seen = variants(classifier, words, groups, mode)
    return words, scaled_as_first(classifier, classifier.logits_of_ids(rows, batch_size=64)), seen


def scaled_as_first(classifier, logits: np.ndarray, answer: int | None = None) -> np.ndarray:
    """Every row calibrated with the temperature of one answer (row 0's, or `answer`), so that variants compare."""
    answer = int(np.argmax(logits[0])) if answer is None else answer
    return classifier.calibration.scale(logits, answers=np.full(len(logits), answer))


def variants(classifier, words: list[str], groups: Sequence[Sequence[int]] | None = None,
             mode: str = "delete") -> tuple[list[list[int]], list[int]]:
    """Token ids of the words (row 0) and of the words with each group left out or masked (rows 1...),
    and the indices of the words the model sees."""
    if mode not in MODES:
        raise EmotionCoreError(f"Unknown occlusion mode {mode!r}: choose one of {', '.join(MODES)}.")
    if not words:
        raise EmotionCoreError("Text is empty: type something to classify.")
    tokenizer = classifier.tokenizer
    if mode == "mask" and tokenizer.mask_token_id is None:
        raise EmotionCoreError(f"The tokenizer of {classifier.name} has no [MASK] token; use mode 'delete'.")
    normalised = normalize_words(words, classifier.normalization)  # as the model reads the whole text
    ids, word_ids = tokenizer.words(normalised)  # cut below: see Classifier.encode
    ids, word_ids = classifier.cut(ids), classifier.cut(word_ids)
    seen = sorted(set(word_ids) - {None})
    rows = [ids]
    for group in ([[i] for i in seen] if groups is None else groups):
        gone = set(group)
        if mode == "delete":
            rows.append([t for t, w in zip(ids, word_ids) if w not in gone])
        else:
            rows.append([tokenizer.mask_token_id if w in gone else t for t, w in zip(ids, word_ids)])
    return rows, seen


def log_odds(logits: np.ndarray, label: int) -> np.ndarray:
    """log(p / (1 - p)) of one label for each row of logits, computed without ever rounding p to 1."""
    others = np.delete(logits, label, axis=1)
    return logits[:, label] - np.logaddexp.reduce(others, axis=1)


def explain(classifier, text: str, mode: str = "delete") -> Explanation:
    """Score every word of `text` by how much it pushed the predicted emotion up (or down).

    A text longer than the model's window is explained piece by piece (`explain_document`).
    """
    check_texts([text])
    if len(classifier.encode([text], truncate=False)[0]) > classifier.max_length:
        return explain_document(classifier, text, mode)
    words, logits, seen = occlude(classifier, text, mode=mode)
    label = int(logits[0].argmax())
    odds = log_odds(logits, label)
    scores = [0.0] * len(words)
    for row, i in enumerate(seen, start=1):
        scores[i] = float(odds[0] - odds[row])
    return Explanation(classifier.labels[label], classifier.to_dict(softmax(logits[:1])[0]), words, scores, seen)


def explain_document(classifier, text: str, mode: str = "delete") -> Explanation:
    """A long text's words, each scored within its own sentence by how much it pushed the document's
    emotion up, all sentences' variants in one batched pass.

    A sentence longer than EXPLAIN_TOKENS is scored in windows of that many tokens that do not
    overlap: the cost of occlusion grows with words times their context, and a word's push on
    an emotion is mostly local. Every variant is divided by the temperature of the document's
    answer, so that scores compare across sentences.
    """
    probs = classifier.predict_proba([text])[0]
    label = int(probs.argmax())
    spans = [(m.start(), m.end()) for m in WORD.finditer(text)]
    words, scores, seen, parts, rows = [text[a:b] for a, b in spans], [0.0] * len(spans), set(), [], []
    starts = [a for a, _ in spans]
    for start, end in pieces(text, classifier.token_counts, EXPLAIN_TOKENS, overlap=0.0):
        inside = range(bisect.bisect_left(starts, start), bisect.bisect_left(starts, end))  # the words that start in it
        if not inside:
            continue
        piece_rows, piece_seen = variants(classifier, [words[i] for i in inside], mode=mode)
        parts.append((len(rows), [inside[i] for i in piece_seen]))
        rows += piece_rows
    odds = log_odds(scaled_as_first(classifier, classifier.logits_of_ids(rows, batch_size=64), label), label)
    for first, indices in parts:
        for row, i in enumerate(indices, start=first + 1):
            scores[i] = float(odds[first] - odds[row])
            seen.add(i)
    return Explanation(classifier.labels[label], classifier.to_dict(probs), words, scores, sorted(seen))


def faithfulness(classifier, texts: Sequence[str], ks: Sequence[int] = (1, 2, 3), mode: str = "delete",
                 draws: int = 10, seed: int = 0) -> dict[int, dict]:
    """Does removing the top-k explained words hurt the prediction more than removing k random words?

    For each text and k: the fall in the predicted emotion's probability without the k words with
    the highest scores, against the mean fall over `draws` seeded draws of k random words (from the
    words the model sees). Texts with k words or fewer are skipped for that k. Per k: the mean
    falls, their ratio, and the share of texts where the top-k fall beats the random mean.
    """
    rng = np.random.default_rng(seed)
    falls: dict[int, list[tuple[float, float]]] = {k: [] for k in ks}
    for text in texts:
        e = explain(classifier, text, mode)
        label, seen = classifier.labels.index(e.label), e.seen
        ranked = sorted(seen, key=lambda i: -e.scores[i])
        for k in ks:
            if len(seen) <= k:
                continue
            groups = [ranked[:k]] + [list(rng.choice(seen, size=k, replace=False)) for _ in range(draws)]
            p = softmax(occlude(classifier, text, groups, mode)[1])[:, label]
            falls[k].append((float(p[0] - p[1]), float(np.mean(p[0] - p[2:]))))
    report = {}
    for k, pairs in falls.items():
        top, rand = np.array(pairs).T if pairs else (np.zeros(0), np.zeros(0))
        report[k] = {"texts": len(pairs), "top_fall": float(top.mean()) if pairs else 0.0,
                     "random_fall": float(rand.mean()) if pairs else 0.0,
                     "ratio": float(top.mean() / rand.mean()) if pairs and rand.mean() > 0 else float("inf"),
                     "beats_random": float((top > rand).mean()) if pairs else 0.0}
    return report
